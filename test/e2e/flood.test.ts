import { createHmac, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { tempDir } from '../fakes/pods.js';
import { until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, CldpdProcess, appPrivateKey, freePort, serverUp } from './processes.js';

const SECRET = 'flood-secret';
/** This file's Redis database: the others use 1 to 15. */
const DB = 0;
const PATH = '/api/github/webhooks';
/** The server's V8 heap limit: far above what it needs, far below what holding a body a byte a Buffer would take. */
const HEAP_MB = 128;

const labeled = (n: number) => ({
  action: 'labeled', label: { name: 'cldpd:flood' },
  issue: { number: n, html_url: `https://github.com/flood/app/issues/${n}`, title: `Issue ${n}`, body: 'b' },
  repository: { name: 'app', owner: { login: 'flood' } }, installation: { id: 5 }, sender: { login: 'alice', type: 'User' },
});

/** The resident and peak resident memory of a process, in MiB (Linux). */
function memoryOf(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name: string) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

describeWithRedis('floods against the real webhook server', () => {
  let redis: Redis;
  let server: CldpdProcess;
  let port: number;
  let home: string;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    home = await tempDir('cldpd-flood-');
    const db = await testRedis(DB);
    redis = db.redis;
    port = await freePort();
    server = new CldpdProcess('serve', {
      PATH: process.env.PATH, HOME: home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1',
      // No GitHub: the intake step fails and retries off the request path; deliveries are still queued and answered.
      GHE_HOST: '127.0.0.1:9', GHE_PROTOCOL: 'http', REDIS_URL: db.url, CLDPD_HOME: home, CLDPD_METRICS_PORT: '0', CLDPD_STOP_SECONDS: '3', LOG_LEVEL: 'warn',
      NODE_OPTIONS: `--max-old-space-size=${HEAP_MB}`,
    }, join(home, 'server.log'));
    await serverUp(port);
  });

  afterAll(async () => {
    await server?.stop();
    await redis?.flushdb().catch(() => undefined);
    redis?.disconnect();
  });

  /** A signed delivery on a connection of its own from `from`, as GitHub sends it; resolves with the status (0: no answer within GitHub's 10 s). */
  function deliver(n: number, from = '127.0.0.1'): Promise<number> {
    const body = JSON.stringify(labeled(n));
    return new Promise((resolve) => {
      const req = httpRequest({ host: '127.0.0.1', port, path: PATH, method: 'POST', agent: false, localAddress: from, timeout: 10_000, headers: {
        'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'content-length': Buffer.byteLength(body),
        'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, connection: 'close',
      } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(0));
      req.end(body);
    });
  }

  /**
   * POSTs a 1 MiB body to the webhook path in chunked encoding, one byte per chunk, with a
   * signature of the right shape; resolves with the status (0: the connection was cut).
   */
  function byteAtATime(): Promise<number> {
    const frames = Buffer.from('1\r\n \r\n'.repeat(64 * 1024));
    return new Promise((resolve) => {
      let status = 0;
      const socket = connect(port, '127.0.0.1');
      const finish = () => resolve(status);
      socket.on('error', finish);
      socket.on('close', finish);
      socket.on('data', (d) => (status ||= Number(/^HTTP\/1\.1 (\d+)/.exec(String(d))?.[1] ?? 0)));
      socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      let sent = 0;
      const pump = (): void => {
        while (sent < 16 && !socket.destroyed) {
          sent += 1; // 16 × 64 Ki one-byte chunks: 1 MiB
          if (!socket.write(frames)) return void socket.once('drain', pump);
        }
        if (!socket.destroyed) socket.end('0\r\n\r\n');
      };
      pump();
    });
  }

  it('chunks: bodies streamed a byte at a time hold no memory per byte, and a genuine delivery is accepted after them', async () => {
    const before = memoryOf(server.child.pid as number);
    const answers = await Promise.all(Array.from({ length: 8 }, () => byteAtATime()));
    for (const status of answers) expect([0, 400]).toContain(status);
    expect(server.child.exitCode).toBeNull();
    // Held as a Buffer per byte, 8 MiB of body took some 1.6 GB of heap: the process died at its heap limit.
    expect(memoryOf(server.child.pid as number).peak - before.peak).toBeLessThan(64);
    expect(await deliver(1)).toBe(200);
  });

  it('connections: 300 slow connections from one address and 50 from GitHub\'s own leave signed deliveries accepted', async () => {
    const held = new Set<Socket>();
    let flooding = true;
    let opened = 0;
    /** Keeps one slow connection from `from` open, opening another a second after the server closes it. */
    const hold = (from: string, kind: 'head' | 'body'): void => {
      if (!flooding) return;
      const socket = connect({ port, host: '127.0.0.1', localAddress: from });
      held.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        held.delete(socket);
        setTimeout(() => hold(from, kind), 1_000).unref();
      });
      socket.on('connect', () => {
        opened += 1;
        socket.write(kind === 'head'
          ? `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
          : `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nContent-Length: 100000\r\n\r\n{`);
      });
    };
    try {
      for (let i = 0; i < 300; i++) hold('127.0.0.2', i % 2 === 0 ? 'head' : 'body');
      for (let i = 0; i < 50; i++) hold('127.0.0.1', 'head');
      await until('the slow connections to be opened', () => opened >= 350, 10_000);
      const statuses: number[] = [];
      for (let n = 10; n < 20; n++) statuses.push(await deliver(n));
      expect(statuses).toEqual(Array(10).fill(200));
      expect(server.child.exitCode).toBeNull();
    } finally {
      flooding = false;
      for (const socket of held) socket.destroy();
    }
  });
});
