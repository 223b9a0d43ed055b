// What the benchmarks that run the real `cldpd serve` and `cldpd worker` share: the fake
// GitHub API of the tests (compiled with esbuild), a free port, and the two processes.
import { spawn } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { build } from 'esbuild';
import { CLI, ROOT } from './lib.mjs';

/** The fake GitHub API of the tests, compiled for this process. */
export async function fakeGitHub() {
  const dir = mkdtempSync(join(tmpdir(), 'cldpd-bench-fake-'));
  await build({ entryPoints: [join(ROOT, 'test/fakes/fake-github.ts')], outfile: join(dir, 'fake-github.mjs'), bundle: true, platform: 'node', format: 'esm', packages: 'external', logLevel: 'warning' });
  const { FakeGitHub } = await import(join(dir, 'fake-github.mjs'));
  rmSync(dir, { recursive: true, force: true });
  return new FakeGitHub();
}

/** A TCP port nobody listens on right now. */
export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once `check` holds; throws after `timeoutMs`, naming `what`. */
export async function until(what, check, timeoutMs, everyMs = 100) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/**
 * Starts `cldpd serve` and `cldpd worker` (pushed onto `children`, their output in
 * `<home>/serve.log` and `worker.log`) against the fake `github`, app 12345 with a fresh key,
 * and `extra` variables (`cli`: another build of cldpd, to compare); resolves with the webhook port once the server answers and the
 * worker has said it is alive in `redis`.
 */
export async function startServeAndWorker({ home, github, redis, redisUrl, secret, hostId, children, extra = {}, cli = CLI }) {
  const port = await freePort();
  const env = {
    PATH: process.env.PATH, HOME: home,
    APP_ID: '12345', PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey,
    WEBHOOK_SECRET: secret, PORT: String(port), HOST: '127.0.0.1', GHE_HOST: github.host, GHE_PROTOCOL: 'http', REDIS_URL: redisUrl,
    CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: hostId, CLDPD_STATUS_INTERVAL_SECONDS: '1', CLDPD_METRICS_PORT: '0',
    LOG_LEVEL: 'warn', NODE_ENV: 'production',
    ...extra,
  };
  for (const mode of ['serve', 'worker']) {
    const log = createWriteStream(join(home, `${mode}.log`));
    const child = spawn(process.execPath, [cli, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    children.push(child);
  }
  await until('the server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
  await until('the worker', async () => (await redis.hlen('cldpd:hosts').catch(() => 0)) > 0, 30_000);
  return port;
}
