import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, GatewayProcess, rawExchange, selfSigned, tempDir } from './gateway-process.js';

const HOSTS = '127.0.0.1 localhost provider.test\n';
const REAL_KEY = 'sk-ant-real-key-of-the-operator';

/** What the fake provider received. */
interface Received {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

/** A fake model provider: /base/v1/messages echoes, /base/v1/stream streams events on cue, /base/v1/limited answers 429. */
function provider(received: Received[], cue: { next?: () => void }): http.RequestListener {
  return (req, res) => {
    let body = '';
    req.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => {
      received.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
      if (req.url?.startsWith('/base/v1/stream')) {
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        res.write('event: message_start\ndata: {"n":1}\n\n');
        // The second event only once the client has read the first one through the gateway.
        cue.next = () => {
          res.write('event: message_stop\ndata: {"n":2}\n\n');
          res.end();
        };
        return;
      }
      if (req.url?.startsWith('/base/v1/limited')) {
        res.writeHead(429, { 'content-type': 'application/json', 'retry-after': '17', 'anthropic-ratelimit-requests-remaining': '0',
          'anthropic-ratelimit-requests-reset': '2026-12-06T11:00:00Z', 'x-should-apply': 'yes' });
        res.end('{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}');
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', 'request-id': 'req_1' });
      res.end(JSON.stringify({ ok: true, url: req.url }));
    });
  };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port)));
}

/** A request to the gateway as a client of ANTHROPIC_BASE_URL would make it (origin-form, no proxy). */
function request(port: number, path: string, options: { method?: string; headers?: http.OutgoingHttpHeaders; body?: string } = {}): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method: options.method ?? 'POST', headers: options.headers, agent: false, timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('error', reject).on('timeout', () => req.destroy(new Error('no answer within 10 s')));
    req.end(options.body);
  });
}

describe('the egress gateway\'s model route', () => {
  const secret = randomBytes(32).toString('base64url');
  const received: Received[] = [];
  const cue: { next?: () => void } = {};
  let plainProvider: http.Server;
  let tlsProvider: https.Server;
  let gateway: GatewayProcess;
  let tlsGateway: GatewayProcess;
  let port: number;
  let tlsGatewayPort: number;

  beforeAll(async () => {
    const cert = selfSigned(tempDir('gateway-model-'), ['provider.test']);
    plainProvider = http.createServer(provider(received, cue));
    tlsProvider = https.createServer({ key: cert.key, cert: cert.cert }, provider(received, cue));
    const [plainPort, tlsPort] = await Promise.all([listen(plainProvider), listen(tlsProvider)]);
    const model = (upstream: string) => ({ secretSha256: createHash('sha256').update(secret).digest('hex'), upstream, setHeaders: { 'x-api-key': REAL_KEY } });
    gateway = new GatewayProcess({ port: await freePort(), allow: { base: [], layers: [] }, model: model(`http://provider.test:${plainPort}/base/`), names: ['cldpd-gateway'] }, HOSTS);
    // The provider's certificate is trusted the way Node trusts any extra CA: NODE_EXTRA_CA_CERTS.
    tlsGateway = new GatewayProcess({ port: await freePort(), allow: { base: [], layers: [] }, model: model(`https://provider.test:${tlsPort}/base`) }, HOSTS, { NODE_EXTRA_CA_CERTS: cert.certFile });
    [port, tlsGatewayPort] = await Promise.all([gateway.listening(), tlsGateway.listening()]);
  });

  afterAll(async () => {
    await Promise.all([gateway?.stop(), tlsGateway?.stop()]);
    plainProvider?.close();
    tlsProvider?.close();
  });

  it('forwards /<secret>/<path> to the provider under its path prefix, the client\'s credentials replaced by the run\'s', async () => {
    received.length = 0;
    const answer = await request(port, `/${secret}/v1/messages?beta=true`, {
      headers: { 'x-api-key': 'sk-ant-from-the-container', 'x-goog-api-key': 'goog-from-the-container', authorization: 'Bearer container', 'proxy-authorization': 'Basic x', 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: '{"model":"claude"}',
    });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual({ ok: true, url: '/base/v1/messages?beta=true' });
    expect(answer.headers['request-id']).toBe('req_1');
    expect(received).toHaveLength(1);
    const seen = received[0]!;
    expect(seen).toMatchObject({ method: 'POST', url: '/base/v1/messages?beta=true', body: '{"model":"claude"}' });
    expect(seen.headers['x-api-key']).toBe(REAL_KEY);
    expect(seen.headers.authorization).toBeUndefined();
    expect(seen.headers['x-goog-api-key']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(seen.headers['anthropic-version']).toBe('2023-06-01');
    expect(seen.headers.host).toMatch(/^provider\.test:\d+$/);
    expect(JSON.stringify(seen)).not.toContain('from-the-container');
    expect(JSON.stringify(seen)).not.toContain(secret);
  });

  it('answers a WebSocket upgrade on the model route with 426, passing nothing on: the client falls back to HTTP at once', async () => {
    received.length = 0;
    const answer = await rawExchange(port, `GET /${secret}/v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`);
    expect(answer.status).toBe(426);
    expect(received).toHaveLength(0);
    // Without the run's secret it is refused as any other request is.
    expect((await rawExchange(port, `GET /not-the-secret/v1/responses HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n`)).status).toBe(401);
  });

  it('forwards the same request sent through the gateway as a proxy (absolute-form to the gateway\'s own address)', async () => {
    received.length = 0;
    const answer = await rawExchange(port, `GET http://127.0.0.1:${port}/${secret}/v1/models HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nx-api-key: sk-container\r\nConnection: close\r\n\r\n`);
    expect(answer.status).toBe(200);
    expect(received).toHaveLength(1);
    expect(received[0]).toMatchObject({ url: '/base/v1/models' });
    expect(received[0]!.headers['x-api-key']).toBe(REAL_KEY);
    // By a name the configuration gives it (its network alias), as well as by its addresses.
    const byName = await rawExchange(port, `GET http://cldpd-gateway:${port}/${secret}/v1/models HTTP/1.1\r\nHost: cldpd-gateway:${port}\r\nConnection: close\r\n\r\n`);
    expect(byName.status).toBe(200);
    expect(received).toHaveLength(2);
  });

  it('answers 401 to a wrong or missing secret and forwards nothing', async () => {
    received.length = 0;
    const wrong = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    for (const path of [`/${wrong}/v1/messages`, '/v1/messages', '/', `//${secret}/v1/messages`, `/${secret.toUpperCase()}x/v1/messages`]) {
      const answer = await request(port, path, { headers: { 'x-api-key': 'sk-container' }, body: '{}' });
      expect(answer.status, path).toBe(401);
      expect(answer.body).toContain('the model endpoint as the run was given it');
    }
    const viaProxy = await rawExchange(port, `POST http://127.0.0.1:${port}/${wrong}/v1/messages HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}`);
    expect(viaProxy.status).toBe(401);
    expect(received).toHaveLength(0);
  });

  it('refuses dot segments and encoded slashes that would leave the provider\'s path prefix', async () => {
    received.length = 0;
    for (const path of [`/${secret}/../admin`, `/${secret}/v1/%2e%2e/admin`, `/${secret}/v1/..\\admin`, `/${secret}/..%2F..%2Fadmin`, `/${secret}/v1%5c..%5cadmin`]) {
      expect((await request(port, path, { method: 'GET' })).status, path).toBe(400);
    }
    expect(received).toHaveLength(0);
  });

  it('streams server-sent events as they come, not once the answer ends', async () => {
    cue.next = undefined;
    const events = await new Promise<string[]>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the events did not arrive one by one within 10 s')), 10_000);
      const req = http.request({ host: '127.0.0.1', port, path: `/${secret}/v1/stream`, method: 'POST', agent: false }, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        const seen: string[] = [];
        res.setEncoding('utf8').on('data', (chunk: string) => {
          seen.push(chunk);
          // The provider holds its second event until the first has come through.
          if (seen.length === 1) cue.next?.();
        }).on('end', () => {
          clearTimeout(timer);
          resolve(seen);
        });
      });
      req.on('error', reject);
      req.end('{"stream":true}');
    });
    expect(events.join('')).toBe('event: message_start\ndata: {"n":1}\n\nevent: message_stop\ndata: {"n":2}\n\n');
    expect(events[0]).toBe('event: message_start\ndata: {"n":1}\n\n');
  });

  it('passes a 429 with its retry-after and rate-limit headers through unchanged', async () => {
    const answer = await request(port, `/${secret}/v1/limited`, { body: '{}' });
    expect(answer.status).toBe(429);
    expect(answer.headers['retry-after']).toBe('17');
    expect(answer.headers['anthropic-ratelimit-requests-remaining']).toBe('0');
    expect(answer.headers['anthropic-ratelimit-requests-reset']).toBe('2026-12-06T11:00:00Z');
    expect(JSON.parse(answer.body).error.type).toBe('rate_limit_error');
  });

  it('reaches an https: provider, verifying its certificate, with the same headers', async () => {
    received.length = 0;
    const answer = await request(tlsGatewayPort, `/${secret}/v1/messages`, { headers: { authorization: 'Bearer container' }, body: '{}' });
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body).url).toBe('/base/v1/messages');
    expect(received[0]!.headers['x-api-key']).toBe(REAL_KEY);
    expect(received[0]!.headers.authorization).toBeUndefined();
    cue.next = undefined;
    const limited = await request(tlsGatewayPort, `/${secret}/v1/limited`, { body: '{}' });
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toBe('17');
  });

  it('is no way out to anything else: origin-form requests go to the provider only, and proxy requests are checked against the (empty) list', async () => {
    const proxied = await rawExchange(port, `GET http://provider.test:${port + 0}/x HTTP/1.1\r\nHost: provider.test:${port}\r\nConnection: close\r\n\r\n`);
    // provider.test resolves to this machine, but it is not the gateway's name: an ordinary target, not listed.
    expect(proxied.status).toBe(403);
    const connect = await rawExchange(port, `CONNECT provider.test:443 HTTP/1.1\r\n\r\n`);
    expect(connect.status).toBe(403);
  });
});
