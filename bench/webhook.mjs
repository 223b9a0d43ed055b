// 3. Webhook ack: signed issues.labeled deliveries at 10 and 100 concurrent against
// `cldpd serve`, beside a bare Node HTTP server answering 202, in the same run.
import { createHmac, generateKeyPairSync, randomUUID } from 'node:crypto';
import { createServer, request, Agent } from 'node:http';
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

async function load(port, path, total, concurrency) {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  let errors = 0;
  let next = 0;
  const bodies = Array.from({ length: total }, (_, i) => payload(i + 1));
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

export async function benchWebhook({ total = 2000, levels = [10, 100], redisUrl = 'redis://127.0.0.1:6379/14' } = {}) {
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
  const { Queue } = await import('bullmq');
  const intake = new Queue('cldpd-intake', { connection: redis });
  await intake.pause();

  const bare = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(202);
      res.end();
    });
  });
  await new Promise((r) => bare.listen(0, '127.0.0.1', r));
  const barePort = bare.address().port;

  const results = [];
  for (const concurrency of levels) {
    const before = await intake.count();
    const cldpd = await load(port, '/api/github/webhooks', total, concurrency);
    const enqueued = (await intake.count()) - before;
    const raw = await load(barePort, '/', total, concurrency);
    results.push({ concurrency, cldpd, raw, enqueued, distinct: total });
  }
  serve.kill('SIGTERM');
  bare.close();
  await intake.obliterate({ force: true }).catch(() => undefined);
  await intake.close();
  redis.disconnect();
  return results;
}
