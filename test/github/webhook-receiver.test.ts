import { createHmac } from 'node:crypto';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { createWebhookReceiver, type VerifiedDelivery } from '../../src/github/webhook-receiver.js';

const SECRET = 's3cret';
const MiB = 1024 * 1024;
let server: Server;
let port: number;
let received: VerifiedDelivery[];
let observed: string[];
/** What the handler says of a verified delivery; `throw` makes it fail. */
let handled: 'accepted' | 'ignored' | 'throw' | undefined;

beforeEach(async () => {
  received = [];
  observed = [];
  handled = undefined;
  const receiver = createWebhookReceiver({
    secret: SECRET, path: '/hook', maxBodyBytes: 8 * MiB, maxBufferedBytes: 2 * MiB,
    log: { warn: () => undefined, error: () => undefined },
    receive: async (d) => {
      received.push(d);
      if (handled === 'throw') throw new Error('Redis is down');
      return handled;
    },
    observe: (event, outcome) => void observed.push(`${event}:${outcome}`),
  });
  server = createServer((req, res) => {
    if (!receiver(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterEach(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

function post(body: Buffer, headers: Record<string, string | number> = {}, path = '/hook'): Promise<number> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'd1',
      'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, 'content-length': body.length, ...headers,
    } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.end(body);
  });
}

/** Sends `sent` bytes of a body that says it has `declared`, and never finishes it. */
function stall(declared: number, sent: number): Promise<() => void> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/hook', method: 'POST', headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`, 'content-length': declared,
    } });
    req.on('error', () => undefined);
    req.write(Buffer.alloc(sent, 0x20), () => setTimeout(() => resolve(() => req.destroy()), 200));
  });
}

it('memory: a verified delivery is handed on keyed by the SHA-256 of its body, whatever its delivery id', async () => {
  const body = Buffer.from('{"action":"labeled"}');
  expect(await post(body)).toBe(200);
  expect(await post(body, { 'x-github-delivery': 'another-id' })).toBe(200);
  expect(received.map((d) => d.key)).toEqual([received[0]?.key, received[0]?.key]);
  expect(received.map((d) => d.deliveryId)).toEqual(['d1', 'another-id']);
});

it('memory: refuses without reading what it can refuse from the headers', async () => {
  const body = Buffer.from('{}');
  expect(await post(body, { 'x-hub-signature-256': 'sha256=xyz' })).toBe(401);
  expect(await post(body, { 'content-type': 'text/plain' })).toBe(415);
  expect(await post(body, { 'content-length': 9 * MiB })).toBeOneOf([0, 413]);
  expect(await post(Buffer.from('{"a":1}'), { 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update('{"a":2}').digest('hex')}` })).toBe(401);
  expect(received).toEqual([]);
});

it('memory: stalled large bodies that fill the shared allowance do not turn a small genuine delivery away', async () => {
  // Two bodies held unverified, each 1 MiB beyond the first MiB: the 2 MiB allowance is full.
  const aborts = [await stall(4 * MiB, 2 * MiB), await stall(4 * MiB, 2 * MiB)];
  try {
    expect(await post(Buffer.alloc(3 * MiB, 0x20))).toBeOneOf([0, 503]); // a large one is turned away…
    expect(await post(Buffer.from('{"action":"labeled"}'))).toBe(200); // …a small one is not
    expect(received).toHaveLength(1);
  } finally {
    for (const abort of aborts) abort();
  }
});

it('first run: a delivery POSTed to the root, where an app registered through the setup page sends it, is taken the same way', async () => {
  const body = Buffer.from('{"action":"labeled"}');
  expect(await post(body, {}, '/')).toBe(200);
  expect(await post(body, { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }, '/')).toBe(401);
  expect(received).toHaveLength(1);
  expect(await post(body, {}, '/elsewhere')).toBe(404);
});

it('metrics: each answered request is told with its event and what became of it', async () => {
  const body = Buffer.from('{"action":"labeled"}');
  expect(await post(body)).toBe(200);
  handled = 'ignored';
  expect(await post(body, { 'x-github-event': 'issue_comment' })).toBe(200);
  handled = 'throw';
  expect(await post(body)).toBe(500);
  expect(await post(body, { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` })).toBe(401);
  expect(await post(body, { 'x-hub-signature-256': 'none' })).toBe(401);
  expect(await post(body, { 'content-type': 'text/plain' })).toBe(415);
  expect(await post(body, { 'x-github-event': '' })).toBe(400);
  const notJson = Buffer.from('not json');
  expect(await post(notJson)).toBe(400);
  expect(observed).toEqual([
    'issues:accepted', 'issue_comment:ignored', 'issues:failed', 'issues:bad_signature', 'issues:bad_signature',
    'issues:refused', ':refused', 'issues:bad_json',
  ]);
});

it('metrics: an observer that throws changes no answer', async () => {
  const receiver = createWebhookReceiver({ secret: SECRET, path: '/hook', log: { warn: () => undefined, error: () => undefined }, receive: async () => 'accepted', observe: () => { throw new Error('boom'); } });
  const other = createServer((req, res) => {
    if (!receiver(req, res)) res.writeHead(404).end();
  });
  await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
  const body = '{"action":"labeled"}';
  try {
    const response = await fetch(`http://127.0.0.1:${(other.address() as AddressInfo).port}/hook`, {
      method: 'POST', body, signal: AbortSignal.timeout(10_000),
      headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
    });
    expect(response.status).toBe(200);
    expect(await response.text()).toBe('ok\n');
  } finally {
    other.closeAllConnections();
    await new Promise((r) => other.close(r));
  }
});

/** POSTs `body` signed, in chunked transfer encoding, one chunk per `piece` bytes; resolves with the status (0: cut off) and the pieces written before the answer. */
function postInPieces(body: Buffer, piece: number): Promise<{ status: number; written: number }> {
  return new Promise((resolve) => {
    let written = 0;
    let status: number | undefined;
    const req = request({ host: '127.0.0.1', port, path: '/hook', method: 'POST', headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`,
    } }, (res) => {
      status = res.statusCode ?? 0;
      res.resume();
      res.on('end', () => resolve({ status: status ?? 0, written }));
    });
    req.on('error', () => resolve({ status: status ?? 0, written }));
    const pump = (): void => {
      while (written * piece < body.length && status === undefined && !req.destroyed) {
        const chunk = body.subarray(written * piece, (written + 1) * piece);
        written += 1;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (status === undefined && !req.destroyed) req.end();
    };
    pump();
  });
}

it('chunks: a body that arrives a byte at a time is refused once it passes the free pieces, and nothing is handed on', async () => {
  const body = Buffer.from(JSON.stringify({ action: 'labeled', pad: 'x'.repeat(64 * 1024) }));
  const sent = await postInPieces(body, 1);
  expect(sent.status).toBeOneOf([0, 400]);
  expect(sent.written).toBeLessThan(body.length);
  expect(observed).toEqual(['issues:refused']);
  expect(received).toEqual([]);
});

it('chunks: a genuine body in small pieces, over several growths of its buffer, is handed on whole', async () => {
  const payload = { action: 'labeled', pad: 'é'.repeat(150 * 1024) };
  const body = Buffer.from(JSON.stringify(payload));
  expect((await postInPieces(body, 100)).status).toBe(200);
  expect((await postInPieces(body, 64 * 1024 + 7)).status).toBe(200);
  expect(received.map((d) => d.payload)).toEqual([payload, payload]);
});
