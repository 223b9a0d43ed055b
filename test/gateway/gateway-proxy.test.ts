import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseEgressEntry, type EgressRule } from '../../src/gateway/rules.js';
import { MAX_CONNECTIONS, forbiddenAddress } from '../../src/gateway/proxy.js';
import { freePort, GatewayProcess, httpsThroughTunnel, openTunnel, rawExchange, selfSigned, tempDir, until } from './gateway-process.js';

const run = promisify(execFile);
const HOSTS = '127.0.0.1 localhost\n127.0.0.1 allowed.test other.test wild.test a.wild.test deep.a.wild.test\n';
// A listener that never accepts: its process blocks before its event loop runs again, and once its
// queue of two (backlog 1) is taken, the kernel leaves further connections waiting.
const NEVER_ACCEPTS = `const s = require('node:net').createServer().listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => {
  require('node:fs').writeSync(1, s.address().port + '\\n');
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
});`;

function rule(entry: string): EgressRule {
  const parsed = parseEgressEntry(entry);
  if ('error' in parsed) throw new Error(parsed.error);
  return parsed;
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

describe('the egress gateway as an HTTP proxy', () => {
  let cert: ReturnType<typeof selfSigned>;
  let tlsServer: https.Server;
  let httpServer: http.Server;
  let spareServer: http.Server;
  let tlsPort: number;
  let httpPort: number;
  let sparePort: number;
  let deadPort: number;
  let stuckPort: number;
  let stuck: ChildProcess;
  const queueTakers: net.Socket[] = [];
  let gateway: GatewayProcess;
  let port: number;
  const seen: Array<{ method: string; url: string; headers: http.IncomingHttpHeaders; body: string }> = [];

  beforeAll(async () => {
    const dir = tempDir('gateway-proxy-');
    cert = selfSigned(dir, ['allowed.test', 'other.test', '*.wild.test', 'wild.test']);
    tlsServer = https.createServer({ key: cert.key, cert: cert.cert }, (req, res) => res.end(`tls hello ${req.headers.host}`));
    httpServer = http.createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        // The answer to /path names a header of its own in Connection, which is for this hop only.
        res.writeHead(200, req.url === '/path?q=1' ? { 'content-type': 'text/plain', 'x-upstream': 'yes', connection: 'x-drop-me', 'x-drop-me': '1' } : { 'content-type': 'text/plain' });
        res.end(`plain hello ${req.headers.host} ${body.length}`);
      });
    });
    spareServer = http.createServer((_req, res) => res.end('spare'));
    [tlsPort, httpPort, sparePort] = await Promise.all([listen(tlsServer), listen(httpServer), listen(spareServer)]);
    deadPort = await freePort();
    stuck = spawn(process.execPath, ['-e', NEVER_ACCEPTS], { stdio: ['ignore', 'pipe', 'inherit'] });
    stuckPort = Number(await new Promise<string>((resolve) => stuck.stdout!.once('data', (d: Buffer) => resolve(String(d)))));
    // Fill its queue (two places with backlog 1 on Linux): until a connection is left waiting.
    for (let connected = true; connected && queueTakers.length < 16;) {
      const socket = net.connect(stuckPort, '127.0.0.1').on('error', () => undefined);
      queueTakers.push(socket);
      connected = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => resolve(false), 1000);
        socket.once('connect', () => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    }
    gateway = new GatewayProcess({
      port: await freePort(),
      allow: {
        base: [rule(`allowed.test:${tlsPort}`), rule(`allowed.test:${httpPort}`), rule(`*.wild.test:${tlsPort}`), rule(`127.0.0.1:${httpPort}`), rule(`allowed.test:${deadPort}`), rule(`allowed.test:${stuckPort}`)],
        layers: [],
      },
    }, HOSTS);
    port = await gateway.listening();
  });

  afterAll(async () => {
    await gateway?.stop();
    for (const socket of queueTakers) socket.destroy();
    stuck?.kill();
    tlsServer?.close();
    httpServer?.close();
    spareServer?.close();
  });

  it('lets curl through to an allowed host by CONNECT, TLS end to end, the name resolved by the gateway', async () => {
    const { stdout } = await run('curl', ['-sS', '--max-time', '10', '--cacert', cert.certFile, '-x', `http://127.0.0.1:${port}`, `https://allowed.test:${tlsPort}/`]);
    expect(stdout).toBe(`tls hello allowed.test:${tlsPort}`);
  });

  it('lets a TLS client through when the ClientHello names the CONNECT host, in any case', async () => {
    expect(await httpsThroughTunnel(port, `allowed.test:${tlsPort}`, 'allowed.test', cert.cert)).toContain('tls hello');
    expect(await httpsThroughTunnel(port, `ALLOWED.test:${tlsPort}`, 'allowed.TEST', cert.cert)).toContain('tls hello');
  });

  it('refuses CONNECT to a host not listed with 403 naming it and pod.json, and prints a blocked notice', async () => {
    const answer = await rawExchange(port, `CONNECT other.test:${tlsPort} HTTP/1.1\r\nHost: other.test:${tlsPort}\r\n\r\n`);
    expect(answer.status).toBe(403);
    expect(answer.body).toContain(`other.test:${tlsPort} is not in this pod's egress list`);
    expect(answer.body).toContain('pod.json');
    await until('the notice', () => gateway.blocked().some((n) => n.host === 'other.test' && n.port === tlsPort && n.via === 'connect'));
  });

  it('refuses a tunnel to an allowed host whose ClientHello names another host, or none, with a TLS alert and a notice', async () => {
    await expect(httpsThroughTunnel(port, `allowed.test:${tlsPort}`, 'other.test', cert.cert)).rejects.toThrow(/access denied/i);
    await until('the tls notice', () => gateway.blocked().some((n) => n.host === 'other.test' && n.port === tlsPort && n.via === 'tls'));
    await expect(httpsThroughTunnel(port, `allowed.test:${tlsPort}`, '', cert.cert)).rejects.toThrow(/access denied/i);
    await until('the tls notice for no name', () => gateway.blocked().some((n) => n.host === 'allowed.test' && n.via === 'tls'));
  });

  it('passes bytes that are not TLS through a tunnel to an allowed host', async () => {
    const tunnel = await openTunnel(port, `allowed.test:${httpPort}`);
    expect(tunnel.status).toBe(200);
    const text = await new Promise<string>((resolve, reject) => {
      let out = '';
      tunnel.socket.setEncoding('utf8').on('data', (chunk: string) => (out += chunk)).on('end', () => resolve(out)).on('error', reject);
      tunnel.socket.write(`GET /inside HTTP/1.1\r\nHost: allowed.test\r\nConnection: close\r\n\r\n`);
    });
    expect(text).toContain('plain hello allowed.test');
  });

  it('refuses a tunnel that does not speak TLS to a host listed without its port: a Host of another site behind the same front never gets through', async () => {
    // A front (a CDN) routes by Host alone: an allowed name on port 80 must not carry a request for another site.
    const seenHosts: string[] = [];
    const front = http.createServer((req, res) => {
      seenHosts.push(req.headers.host ?? '');
      res.end('front answered\n');
    });
    await new Promise<void>((resolve) => front.listen(80, '127.0.0.80', resolve));
    const local = new GatewayProcess({ port: await freePort(), allow: { base: [rule('cdn.test')], layers: [] } }, `${HOSTS}127.0.0.80 cdn.test\n`);
    try {
      const gatewayPort = await local.listening();
      const tunnel = await openTunnel(gatewayPort, 'cdn.test:80');
      expect(tunnel.status).toBe(200);
      const inside = await new Promise<string>((resolve, reject) => {
        let out = '';
        tunnel.socket.setEncoding('utf8').on('data', (chunk: string) => (out += chunk)).on('close', () => resolve(out)).on('error', reject);
        tunnel.socket.write('GET / HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
      });
      expect(inside).toMatch(/^HTTP\/1\.1 403/);
      expect(inside).toContain('"cdn.test:80"');
      await until('the notice', () => local.blocked().some((n) => n.host === 'cdn.test' && n.port === 80 && n.via === 'http'));
      // The same request as a proxy request: its Host is checked, and a matching one goes.
      const proxied = await rawExchange(gatewayPort, 'GET http://cdn.test/ HTTP/1.1\r\nHost: cdn.test\r\nConnection: close\r\n\r\n');
      expect(proxied.status).toBe(200);
      expect(seenHosts).toEqual(['cdn.test']);
    } finally {
      await local.stop();
      front.close();
    }
  });

  it('holds what a host sends first until the client has spoken, and keeps a half-closed tunnel open the other way', async () => {
    const speaker = net.createServer({ allowHalfOpen: true }, (socket) => {
      socket.write('banner;');
      socket.on('data', (chunk) => socket.write(`echo ${chunk};`)).on('end', () => socket.end('bye'));
    });
    const speakerPort = await listen(speaker);
    const local = new GatewayProcess({ port: await freePort(), allow: { base: [rule(`allowed.test:${speakerPort}`)], layers: [] } }, HOSTS);
    try {
      const tunnel = await openTunnel(await local.listening(), `allowed.test:${speakerPort}`);
      expect(tunnel.status).toBe(200);
      const text = await new Promise<string>((resolve, reject) => {
        let out = '';
        const timer = setTimeout(() => reject(new Error(`the tunnel did not end within 10 s: ${out}`)), 10_000);
        tunnel.socket.setEncoding('utf8').on('data', (chunk: string) => {
          out += chunk;
          if (out.endsWith('echo hi;')) tunnel.socket.end();
        }).on('end', () => {
          clearTimeout(timer);
          resolve(out);
        }).on('error', reject);
        tunnel.socket.write('hi');
      });
      expect(text).toBe('banner;echo hi;bye');
    } finally {
      await local.stop();
      speaker.close();
    }
  });

  it('allows names under a wildcard entry, not the bare suffix', async () => {
    expect(await httpsThroughTunnel(port, `a.wild.test:${tlsPort}`, 'a.wild.test', cert.cert)).toContain('tls hello');
    expect((await openTunnel(port, `deep.a.wild.test:${tlsPort}`)).status).toBe(200);
    expect((await rawExchange(port, `CONNECT wild.test:${tlsPort} HTTP/1.1\r\n\r\n`)).status).toBe(403);
  });

  it('allows beyond the base list only what every layer allows (the pod\'s list, narrowed by the repository\'s)', async () => {
    const layered = new GatewayProcess({
      port: await freePort(),
      allow: { base: [rule(`allowed.test:${tlsPort}`)], layers: [[rule(`*.wild.test:${tlsPort}`), rule(`other.test:${tlsPort}`)], [rule(`a.wild.test:${tlsPort}`)]] },
    }, HOSTS);
    try {
      const at = await layered.listening();
      const status = async (host: string) => (await rawExchange(at, `CONNECT ${host}:${tlsPort} HTTP/1.1\r\n\r\n`)).status;
      expect(await httpsThroughTunnel(at, `a.wild.test:${tlsPort}`, 'a.wild.test', cert.cert)).toContain('tls hello');
      expect(await httpsThroughTunnel(at, `allowed.test:${tlsPort}`, 'allowed.test', cert.cert)).toContain('tls hello');
      expect(await status('deep.a.wild.test')).toBe(403);
      expect(await status('other.test')).toBe(403);
    } finally {
      await layered.stop();
    }
  });

  it('allows a listed host on its listed port only', async () => {
    expect((await rawExchange(port, `CONNECT allowed.test:${sparePort} HTTP/1.1\r\n\r\n`)).status).toBe(403);
    await until('the port notice', () => gateway.blocked().some((n) => n.host === 'allowed.test' && n.port === sparePort));
  });

  it('allows an address only when that address is listed, in its one written form', async () => {
    const listed = await openTunnel(port, `127.0.0.1:${httpPort}`);
    expect(listed.status).toBe(200);
    listed.socket.destroy();
    for (const target of [`127.0.0.1:${tlsPort}`, `127.1:${httpPort}`, `2130706433:${httpPort}`, `0x7f.0.0.1:${httpPort}`, `[::1]:${httpPort}`, `[::ffff:127.0.0.1]:${httpPort}`]) {
      expect((await rawExchange(port, `CONNECT ${target} HTTP/1.1\r\n\r\n`)).status, target).toBe(403);
    }
  });

  it('forwards an absolute-form request to an allowed host without the proxy\'s own headers, body and answer streamed', async () => {
    seen.length = 0;
    const body = 'x'.repeat(100_000);
    const answer = await rawExchange(port, [
      `POST http://allowed.test:${httpPort}/path?q=1 HTTP/1.1`, `Host: allowed.test:${httpPort}`, 'Proxy-Authorization: Basic c2VjcmV0', 'Proxy-Connection: keep-alive',
      'Connection: close, x-hop', 'X-Hop: 1', 'X-Kept: 1', `Content-Length: ${body.length}`, '', body].join('\r\n'));
    expect(answer.status).toBe(200);
    expect(answer.body).toContain(`plain hello allowed.test:${httpPort} 100000`);
    expect(answer.head).toMatch(/x-upstream: yes/i);
    expect(answer.head).not.toMatch(/x-drop-me/i);
    expect(seen[0]).toMatchObject({ method: 'POST', url: '/path?q=1', body });
    expect(seen[0]!.headers).not.toHaveProperty('proxy-authorization');
    expect(seen[0]!.headers).not.toHaveProperty('proxy-connection');
    expect(seen[0]!.headers).not.toHaveProperty('x-hop');
    expect(seen[0]!.headers['x-kept']).toBe('1');
  });

  it('answers a client that closes its side once its request is sent (HTTP/1.0, as nc does)', async () => {
    seen.length = 0;
    const answer = await rawExchange(port, `GET http://allowed.test:${httpPort}/half HTTP/1.0\r\nHost: allowed.test:${httpPort}\r\n\r\n`, { halfClose: true });
    expect(answer.status).toBe(200);
    expect(seen[0]).toMatchObject({ url: '/half' });
  });

  it('forwards a chunked request body as a body, not as bytes after the request', async () => {
    seen.length = 0;
    const answer = await rawExchange(port, [`GET http://allowed.test:${httpPort}/chunked HTTP/1.1`, `Host: allowed.test:${httpPort}`, 'Transfer-Encoding: chunked', 'Connection: close', '',
      '5\r\nhello\r\n0\r\n\r\n'].join('\r\n'));
    expect(answer.status).toBe(200);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ url: '/chunked', body: 'hello' });
  });

  it('refuses an absolute-form request to a host not listed, and one whose Host header names another host', async () => {
    seen.length = 0;
    const other = await rawExchange(port, `GET http://other.test:${httpPort}/ HTTP/1.1\r\nHost: other.test:${httpPort}\r\nConnection: close\r\n\r\n`);
    expect(other.status).toBe(403);
    expect(other.body).toContain(`other.test:${httpPort} is not in this pod's egress list`);
    await until('the http notice', () => gateway.blocked().some((n) => n.host === 'other.test' && n.port === httpPort && n.via === 'http'));
    const fronted = await rawExchange(port, `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: evil.test\r\nConnection: close\r\n\r\n`);
    expect(fronted.status).toBe(403);
    await until('the Host notice', () => gateway.blocked().some((n) => n.host === 'evil.test' && n.via === 'http'));
    expect(seen).toHaveLength(0);
  });

  it('answers 431 to a request head over its bound, and 400 to a CONNECT without a port', async () => {
    const huge = await rawExchange(port, `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    expect(huge.status).toBe(431);
    expect((await rawExchange(port, 'CONNECT allowed.test HTTP/1.1\r\n\r\n')).status).toBe(400);
  });

  it('answers 502 naming the host when an allowed host cannot be reached', async () => {
    const tunnel = await rawExchange(port, `CONNECT allowed.test:${deadPort} HTTP/1.1\r\n\r\n`);
    expect(tunnel.status).toBe(502);
    expect(tunnel.body).toContain(`allowed.test:${deadPort} (ECONNREFUSED)`);
    const plain = await rawExchange(port, `GET http://allowed.test:${deadPort}/ HTTP/1.1\r\nHost: allowed.test:${deadPort}\r\nConnection: close\r\n\r\n`);
    expect(plain.status).toBe(502);
    expect(gateway.blocked().some((n) => n.port === deadPort)).toBe(false);
  });

  it('closes a tunnel whose client sends nothing within the ClientHello timeout, and answers a CONNECT to a host that never accepts', async () => {
    const silent = (async () => {
      const tunnel = await openTunnel(port, `allowed.test:${tlsPort}`);
      expect(tunnel.status).toBe(200);
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the silent tunnel stayed open 20 s')), 20_000);
        tunnel.socket.on('close', () => {
          clearTimeout(timer);
          resolve();
        }).resume();
      });
    })();
    const hanging = openTunnel(port, `allowed.test:${stuckPort}`);
    const [answer] = await Promise.all([hanging, silent]);
    expect(answer.status).toBe(504);
    expect(answer.head).toContain(`allowed.test:${stuckPort} did not accept a connection within 15 s`);
  });

  it('survives garbage from many clients at once and goes on serving', async () => {
    const hello = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03]);
    const payloads: Array<Buffer | string> = [
      'GET / HTTP/1.1\r\n\r\n', 'CONNECT\r\n\r\n', 'CONNECT :0 HTTP/1.1\r\n\r\n', '\r\n\r\n\r\n', 'GET http://[::1 HTTP/1.1\r\n\r\n',
      `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: [bad\r\n\r\n`, 'GET ftp://allowed.test/ HTTP/1.1\r\nHost: allowed.test\r\n\r\n',
      `CONNECT allowed.test:${tlsPort} HTTP/1.1\r\n\r\n${randomBytes(2000).toString('latin1')}`,
      Buffer.concat([Buffer.from(`CONNECT allowed.test:${tlsPort} HTTP/1.1\r\n\r\n`), hello]),
      Buffer.concat([Buffer.from(`CONNECT allowed.test:${tlsPort} HTTP/1.1\r\n\r\n`), Buffer.from([0x16, 0x03, 0x01, 0xff, 0xff]), randomBytes(70_000)]),
      `POST http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\nContent-Length: 1000\r\n\r\nshort`,
      `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n`,
    ];
    for (let i = 0; i < 200; i += 1) payloads.push(randomBytes(1 + (i * 37) % 3000));
    await Promise.all(payloads.map((payload, i) => new Promise<void>((resolve) => {
      const socket = net.connect(port, '127.0.0.1');
      const done = (): void => {
        clearTimeout(timer);
        socket.destroy();
        resolve();
      };
      const timer = setTimeout(done, 3000);
      socket.on('error', done).on('close', done).on('data', () => undefined);
      socket.write(payload, () => {
        if (i % 3 === 0) socket.destroy(); // some hang up at once, some wait for an answer
        else if (i % 3 === 1) socket.end();
      });
    })));
    expect(gateway.child.exitCode).toBeNull();
    expect(await httpsThroughTunnel(port, `allowed.test:${tlsPort}`, 'allowed.test', cert.cert)).toContain('tls hello');
    expect(gateway.stderr).toBe('');
  });

  it(`answers 503 to a connection beyond ${MAX_CONNECTIONS} open at once and takes connections again when they close`, async () => {
    const open: net.Socket[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i += 1) {
        open.push(await new Promise<net.Socket>((resolve, reject) => {
          const socket = net.connect(port, '127.0.0.1', () => resolve(socket));
          socket.on('error', reject);
        }));
      }
      // Each is counted once the gateway accepted it: one round trip on the last settles the rest.
      const last = await rawExchange(port, `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\nConnection: close\r\n\r\n`);
      expect(last.status).toBe(503);
      expect(last.body).toContain(String(MAX_CONNECTIONS));
    } finally {
      for (const socket of open) socket.destroy();
    }
    let status = 0;
    const deadline = Date.now() + 10_000;
    while (status !== 200 && Date.now() < deadline) {
      status = (await rawExchange(port, `GET http://allowed.test:${httpPort}/ HTTP/1.1\r\nHost: allowed.test:${httpPort}\r\nConnection: close\r\n\r\n`)).status;
    }
    expect(status).toBe(200);
  });

  it('ends open tunnels and exits 0 on SIGTERM', async () => {
    const tunnel = await openTunnel(port, `allowed.test:${httpPort}`);
    expect(tunnel.status).toBe(200);
    const closed = new Promise<void>((resolve) => tunnel.socket.on('close', () => resolve()).on('error', () => undefined).resume());
    expect(await gateway.stop()).toBe(0);
    await closed;
  });
});

describe('the egress gateway\'s configuration', () => {
  it('refuses to start on a configuration it cannot use, naming the problem, with exit code 2', async () => {
    for (const [config, words] of [
      ['', 'CLDPD_GATEWAY is not set'],
      ['{nope', 'not JSON'],
      ['{"port":3128}', 'allow'],
      ['{"port":0,"allow":{"base":[],"layers":[]}}', 'port'],
      ['{"port":3128,"allow":{"base":[{"host":"*.com","wildcard":false}],"layers":[]}}', 'allow.base[0]'],
      ['{"port":3128,"allow":{"base":[],"layers":[]},"model":{"secretSha256":"x","upstream":"https://a.test","setHeaders":{}}}', 'secretSha256'],
    ] as const) {
      const gateway = new GatewayProcess(config, HOSTS);
      expect(await gateway.exited, config).toBe(2);
      expect(gateway.stderr, config).toContain(words);
      expect(gateway.notices).toEqual([]);
    }
  });
});

describe('the addresses a listed name may not lead to', () => {
  it('refuses this machine\'s own, link-local (cloud metadata) and multicast addresses, in every form; private and public ones pass', () => {
    for (const address of ['127.0.0.1', '127.1.2.3', '0.0.0.0', '169.254.169.254', '224.0.0.1', '::1', '::', 'fe80::1', 'FEBF::1', 'ff02::1', '::ffff:127.0.0.1', '::ffff:169.254.169.254']) {
      expect(forbiddenAddress(address), address).toBe(true);
    }
    for (const address of ['10.0.0.5', '172.18.0.1', '192.168.1.1', '140.82.112.3', '2606:4700::1', 'fd00::2', '::ffff:140.82.112.3']) {
      expect(forbiddenAddress(address), address).toBe(false);
    }
  });
});
