import { createServer, type Server } from 'node:http';
import { connect, type AddressInfo, type Socket } from 'node:net';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { addressKey, limitConnections, type ConnectionCounts } from '../../src/web/connection-limits.js';
import { until } from '../integration/harness.js';

let server: Server;
let port: number;
let counts: ConnectionCounts;
/** Requests whose head the server has read. */
let requests = 0;
const sockets: Socket[] = [];

beforeEach(async () => {
  requests = 0;
  server = createServer((req, res) => {
    requests += 1;
    // /slow answers only when its body has ended: a busy connection meanwhile.
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  counts = limitConnections(server, { perAddress: 4, total: 8 });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** Opens a connection from `from` (a loopback address) and writes `text`; resolves once the server counts it or closed it. */
async function open(from: string, text = 'GET / HTTP/1.1\r\nHost: x\r\n'): Promise<Socket> {
  const socket = connect({ port, host: '127.0.0.1', localAddress: from });
  socket.on('error', () => undefined);
  sockets.push(socket);
  await new Promise<void>((r) => socket.once('connect', () => socket.write(text, () => r())));
  return socket;
}

const closed = (s: Socket) => s.destroyed || s.readyState === 'closed';

async function get(from: string): Promise<number> {
  const socket = await open(from, 'GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (d) => (text += String(d)));
    socket.on('close', () => resolve(Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0)));
  });
}

it('connections: an address is counted by itself, an IPv6 one by its /64', () => {
  expect(addressKey('203.0.113.9')).toBe('203.0.113.9');
  expect(addressKey('::ffff:203.0.113.9')).toBe('203.0.113.9');
  expect(addressKey('2001:db8:1:2:a:b:c:d')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:0db8:0001:0002::1')).toBe('2001:db8:1:2::/64');
  expect(addressKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
  expect(addressKey('::1')).toBe('0:0:0:0::/64');
  expect(addressKey(undefined)).toBe('');
});

it('connections: slow heads from one address make room for a new request from it, and hold no room of another address', async () => {
  const slow: Socket[] = [];
  for (let i = 0; i < 10; i++) slow.push(await open('127.0.0.2'));
  await until('the oldest slow heads to be closed', () => slow.slice(0, 6).every(closed), 5_000);
  expect(counts.open).toBe(4);
  expect(await get('127.0.0.1')).toBe(200);
  expect(await get('127.0.0.2')).toBe(200);
  expect(counts.refused).toBe(0);
});

it('connections: requests in progress are never closed for a newcomer; over its limit, the newcomer of that address is', async () => {
  const busy: Socket[] = [];
  for (let i = 0; i < 4; i++) busy.push(await open('127.0.0.2', 'POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n'));
  await until('four busy connections', () => requests === 4, 5_000);
  const late = await open('127.0.0.2');
  await until('the newcomer to be closed', () => closed(late), 5_000);
  expect(busy.some(closed)).toBe(false);
  expect(counts.refused).toBe(1);
  // Other addresses have the rest of the total.
  expect(await get('127.0.0.3')).toBe(200);
});

it('connections: over the total, the oldest idle connection of any address makes room', async () => {
  const idle: Socket[] = [];
  for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.4']) for (let i = 0; i < 3; i++) idle.push(await open(from));
  await until('the oldest to be closed', () => closed(idle[0] as Socket), 5_000);
  expect(counts.open).toBe(8);
  expect(await get('127.0.0.5')).toBe(200);
});

it('connections: below the pressure, one address (a reverse proxy, a burst of deliveries) may hold more than its share, all answered', async () => {
  // Arrange: another server, whose per-address limit applies only from 6 connections on.
  const roomy = createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const roomyCounts = limitConnections(roomy, { perAddress: 2, total: 8, pressure: 6 });
  await new Promise<void>((r) => roomy.listen(0, '127.0.0.1', r));
  const roomyPort = (roomy.address() as AddressInfo).port;
  const held: Socket[] = [];
  try {
    // Act: five requests in progress at once from one address, then their bodies.
    for (let i = 0; i < 5; i++) {
      const socket = connect({ port: roomyPort, host: '127.0.0.1', localAddress: '127.0.0.2' });
      socket.on('error', () => undefined);
      held.push(socket);
      await new Promise<void>((r) => socket.once('connect', () => socket.write('POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n', () => r())));
    }
    await until('five connections held', () => roomyCounts.open === 5, 5_000);
    const answers = held.map((socket) => new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d) => (text += String(d)));
      socket.on('close', () => resolve(text.slice(0, 15)));
    }));
    for (const socket of held) socket.write('ok');

    // Assert
    expect(await Promise.all(answers)).toEqual(Array(5).fill('HTTP/1.1 200 OK'));
    expect(roomyCounts).toMatchObject({ evicted: 0, refused: 0 });
  } finally {
    for (const socket of held) socket.destroy();
    roomy.closeAllConnections();
    await new Promise((r) => roomy.close(r));
  }
});
