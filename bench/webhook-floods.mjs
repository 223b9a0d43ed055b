// 3b. Floods against `cldpd serve`, each while a genuine signed delivery is sent every
// 200 ms on a connection of its own, GitHub's way (10 s to answer):
//   chunks       connections each streaming a 1 MiB body one byte per chunk (chunked
//                encoding, a wrong signature), again as soon as one is answered or cut
//   connections  300 slow connections from 127.0.0.2, half still sending their request head,
//                half a webhook request whose body never comes, each opened again a second
//                after the server closes it; the deliveries come from 127.0.0.1
// Redis: CLDPD_BENCH_REDIS_URL (its database is emptied), default redis://127.0.0.1:6379/14.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { connect } from 'node:net';
import { spawn } from 'node:child_process';
import { Redis } from 'ioredis';
import { CLI, benchHome, percentile } from './lib.mjs';

const SECRET = 'bench-secret';
const PATH = '/api/github/webhooks';

/** The resident and peak resident memory of a process, in MiB (Linux); undefined once it is gone. */
function memoryOf(pid) {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
    return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

async function startServe(redisUrl) {
  const port = 3950 + Math.floor(Math.random() * 40);
  const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  const child = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, APP_ID: '1', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, CLDPD_HOME: benchHome(), CLDPD_METRICS_PORT: '0', CLDPD_STOP_SECONDS: '3', LOG_LEVEL: 'warn', GHE_HOST: '127.0.0.1:9', GHE_PROTOCOL: 'http' },
    stdio: 'ignore',
  });
  for (let i = 0; i < 300; i++) {
    if (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status === 200, () => false)) return { port, child };
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('cldpd serve did not start');
}

/** One signed delivery on a new connection; resolves with its status (0: none within 10 s) and latency in ms. */
function deliver(port, n) {
  const body = JSON.stringify({
    action: 'labeled', label: { name: 'cldpd:bench' }, repository: { name: 'app', owner: { login: 'bench' } }, installation: { id: 1 }, sender: { login: 'alice', type: 'User' },
    issue: { number: n, html_url: `https://github.com/bench/app/issues/${n}`, title: `t${n}`, body: `flood ${randomUUID()}` },
  });
  const started = process.hrtime.bigint();
  return new Promise((resolve) => {
    const done = (status) => resolve({ status, ms: Number(process.hrtime.bigint() - started) / 1e6 });
    const req = request({ host: '127.0.0.1', port, path: PATH, method: 'POST', agent: false, timeout: 10_000, headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'content-length': Buffer.byteLength(body),
      'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`, connection: 'close',
    } }, (res) => {
      res.resume();
      res.on('end', () => done(res.statusCode));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => done(0));
    req.end(body);
  });
}

/** Sends a delivery every 200 ms until `until()` says stop; resolves with their outcomes. */
async function probe(port, until) {
  const sent = [];
  let n = 0;
  while (until()) {
    sent.push(deliver(port, ++n));
    await new Promise((r) => setTimeout(r, 200));
  }
  const results = await Promise.all(sent);
  const ok = results.filter((r) => r.status === 200);
  const ms = ok.map((r) => r.ms);
  return { sent: results.length, ok: ok.length, p50: percentile(ms, 50), p99: percentile(ms, 99), max: Math.max(...ms) };
}

const FRAMES = Buffer.from('1\r\n \r\n'.repeat(64 * 1024));

/** A 1 MiB body one byte per chunk; resolves when the server answered or cut it. */
function byteAtATime(port) {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    let status = 0;
    socket.on('data', (d) => (status ||= Number(/^HTTP\/1\.1 (\d+)/.exec(String(d))?.[1] ?? 0)));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(status));
    socket.write(`POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
    let sent = 0;
    const pump = () => {
      while (sent < 16 && !socket.destroyed) {
        sent += 1;
        if (!socket.write(FRAMES)) return void socket.once('drain', pump);
      }
      if (!socket.destroyed) socket.end('0\r\n\r\n');
    };
    pump();
  });
}

export async function benchWebhookFloods({ chunkConnections = 4, seconds = 8, slow = 300, redisUrl = process.env.CLDPD_BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379/14' } = {}) {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  const result = {};

  // Chunks.
  {
    const { port, child } = await startServe(redisUrl);
    const quiet = await probe(port, ((end) => () => Date.now() < end)(Date.now() + 2000));
    const before = memoryOf(child.pid);
    const end = Date.now() + seconds * 1000;
    const statuses = {};
    const flooding = Promise.all(Array.from({ length: chunkConnections }, async () => {
      while (Date.now() < end && child.exitCode === null) {
        const status = await byteAtATime(port);
        statuses[status] = (statuses[status] ?? 0) + 1;
      }
    }));
    const during = await probe(port, () => Date.now() < end);
    await flooding;
    const after = memoryOf(child.pid);
    result.chunks = { connections: chunkConnections, seconds, quiet, during, before, after, died: after === undefined, statuses };
    child.kill('SIGTERM');
  }

  // Connections.
  {
    const { port, child } = await startServe(redisUrl);
    const quiet = await probe(port, ((end) => () => Date.now() < end)(Date.now() + 2000));
    let flooding = true;
    let opened = 0;
    const held = new Set();
    const hold = (kind) => {
      if (!flooding) return;
      const socket = connect({ port, host: '127.0.0.1', localAddress: '127.0.0.2' });
      held.add(socket);
      socket.on('error', () => undefined);
      socket.on('close', () => {
        held.delete(socket);
        setTimeout(() => hold(kind), 1000);
      });
      socket.on('connect', () => {
        opened += 1;
        socket.write(kind === 'head'
          ? `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n`
          : `POST ${PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-GitHub-Event: issues\r\nX-Hub-Signature-256: sha256=${'0'.repeat(64)}\r\nContent-Length: 100000\r\n\r\n{`);
      });
    };
    for (let i = 0; i < slow; i++) hold(i % 2 ? 'body' : 'head');
    const end = Date.now() + seconds * 1000;
    const during = await probe(port, () => Date.now() < end);
    flooding = false;
    for (const socket of held) socket.destroy();
    result.connections = { slow, seconds, quiet, during, opened };
    child.kill('SIGTERM');
  }
  await redis.flushdb();
  redis.disconnect();
  return result;
}
