// 3. Webhook ack: signed issues.labeled deliveries at 10 and 100 concurrent against
// `cldpd serve`, beside a bare Node HTTP server answering 202, in the same run.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { request, Agent } from 'node:http';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { CLI, benchHome, percentile } from './lib.mjs';
import { spawn } from 'node:child_process';

const SECRET = 'bench-secret';

function payload(n) {
  return JSON.stringify({
    action: 'labeled', label: { name: 'cldpd:bench' },
    issue: { number: n, html_url: `https://github.com/bench/app/issues/${n}`, title: `t${n}`, body: 'b' },
    repository: { name: 'app', owner: { login: 'bench' } }, installation: { id: 1 }, sender: { login: 'alice', type: 'User' },
  });
}

// Every delivery a distinct body: cldpd keys deliveries by what their signature covers.
let serial = 0;

async function load(port, path, total, concurrency) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let errors = 0;
  let next = 0;
  const bodies = Array.from({ length: total }, () => payload(++serial));
  const send = (i) => new Promise((resolve) => {
    const body = bodies[i];
    const signature = `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;
    const started = process.hrtime.bigint();
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', agent, headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': signature, 'content-length': Buffer.byteLength(body),
    } }, (res) => {
      res.resume();
      res.on('end', () => {
        latencies.push(Number(process.hrtime.bigint() - started) / 1e6);
        if (res.statusCode >= 300) errors += 1;
        resolve();
      });
    });
    req.on('error', () => {
      errors += 1;
      resolve();
    });
    req.end(body);
  });
  const started = process.hrtime.bigint();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < total) await send(next++);
  }));
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  agent.destroy();
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), perSecond: total / seconds, errors };
}

async function waitFor(port) {
  for (let i = 0; i < 300; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status === 200, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('cldpd serve did not start');
}

/** Starts one of webhook-servers.mjs; resolves with its port and a way to stop it. */
async function reference(kind, redisUrl) {
  const child = spawn(process.execPath, [new URL('./webhook-servers.mjs', import.meta.url).pathname, kind, SECRET, redisUrl, 'bench-floor'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once('data', (d) => resolve(Number(String(d).trim())));
    child.once('exit', (code) => reject(new Error(`the ${kind} server exited (${code})`)));
  });
  return { port, path: '/api/github/webhooks', stop: () => child.kill('SIGTERM') };
}

/** The resident and peak resident memory of a process, in MiB (Linux). */
function memoryOf(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (name) => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** POSTs `size` bytes of spaces in 1 MiB chunks with no length and a wrong signature; resolves with the status (0: cut off). */
function oversized(port, path, size) {
  return new Promise((resolve) => {
    let sent = 0;
    let done = false;
    const finish = (status) => {
      if (!done) resolve({ status, sentMiB: sent / 2 ** 20 });
      done = true;
    };
    const req = request({ host: '127.0.0.1', port, path, method: 'POST', headers: {
      'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
    } }, (res) => {
      res.resume();
      finish(res.statusCode);
    });
    req.on('error', () => finish(0));
    const chunk = Buffer.alloc(2 ** 20, 0x20);
    const pump = () => {
      while (sent < size && !done && !req.destroyed) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      if (!done && !req.destroyed) req.end();
    };
    pump();
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

export async function benchWebhook({ total = 2000, levels = [10, 100], rounds = 3, warmup = 500, redisUrl = 'redis://127.0.0.1:6379/14' } = {}) {
  const redis = new Redis(redisUrl);
  await redis.flushdb();
  // A GitHub that answers nothing useful: the intake step runs off the request path anyway,
  // and is paused here so it does not compete with the measured server for the two cores.
  const home = benchHome();
  const port = 3900 + Math.floor(Math.random() * 50);
  const privateKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
  const serve = spawn(process.execPath, [CLI, 'serve'], {
    env: { ...process.env, APP_ID: '1', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1', REDIS_URL: redisUrl, CLDPD_HOME: home, LOG_LEVEL: 'warn', GHE_HOST: '127.0.0.1:9', GHE_PROTOCOL: 'http' },
    stdio: 'ignore',
  });
  await waitFor(port);
  // Oversized deliveries with a wrong signature, 8 at once, on the fresh server: what a stranger can make it hold.
  const before = memoryOf(serve.pid);
  const answers = await Promise.all(Array.from({ length: 8 }, () => oversized(port, '/api/github/webhooks', 60 * 2 ** 20)));
  const after = memoryOf(serve.pid);
  const oversize = { bodies: answers.length, mib: 60, rssBefore: before.rss, peakBefore: before.peak, peakAfter: after.peak, statuses: answers.map((a) => a.status), sentMiB: answers.map((a) => a.sentMiB) };
  const { Queue } = await import('bullmq');
  const intake = new Queue('cldpd-intake', { connection: redis });
  await intake.pause();
  const floorQueue = new Queue('bench-floor', { connection: redis });
  await floorQueue.pause();
  const servers = {
    cldpd: { port, path: '/api/github/webhooks', stop: () => serve.kill('SIGTERM') },
    floor: await reference('floor', redisUrl),
    bare: await reference('bare', redisUrl),
  };
  const names = Object.keys(servers);
  let sentToCldpd = 0;
  const results = [];
  for (const concurrency of levels) {
    // Warm every server up (JIT, connections) before measuring: a server in service is warm.
    for (const name of names) await load(servers[name].port, servers[name].path, warmup, concurrency);
    sentToCldpd += warmup;
    const runs = Object.fromEntries(names.map((n) => [n, []]));
    for (let round = 0; round < rounds; round++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(round + k) % names.length];
        runs[name].push(await load(servers[name].port, servers[name].path, total, concurrency));
        if (name === 'cldpd') sentToCldpd += total;
      }
    }
    const summary = Object.fromEntries(names.map((n) => [n, {
      p50: median(runs[n].map((r) => r.p50)),
      p99: median(runs[n].map((r) => r.p99)),
      perSecond: median(runs[n].map((r) => r.perSecond)),
      perSecondMin: Math.min(...runs[n].map((r) => r.perSecond)),
      perSecondMax: Math.max(...runs[n].map((r) => r.perSecond)),
      errors: runs[n].reduce((sum, r) => sum + r.errors, 0),
    }]));
    const enqueued = await intake.count();
    results.push({ concurrency, rounds, ...summary, raw: summary.bare, enqueued, distinct: sentToCldpd });
  }
  for (const server of Object.values(servers)) server.stop();
  for (const queue of [intake, floorQueue]) {
    await queue.obliterate({ force: true }).catch(() => undefined);
    await queue.close();
  }
  redis.disconnect();
  return Object.assign(results, { oversize });
}
