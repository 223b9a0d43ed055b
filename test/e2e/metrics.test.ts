import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { tempDir } from '../fakes/pods.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { parseSamples, sampleValue } from '../web/scrape.js';
import { CLI, CldpdProcess, appPrivateKey, deliver, freePort, processEnv } from './processes.js';

const SECRET = 'metrics-webhook-secret';
/** This file's Redis database: the other e2e and integration files use 10 to 14. */
const DB = 9;

const labeled = (label: string, number: number) => ({
  action: 'labeled',
  label: { name: label },
  issue: { number, html_url: `https://github.com/acme/metrics/issues/${number}`, title: `Issue ${number}`, body: 'Count me.', updated_at: new Date().toISOString() },
  repository: { name: 'metrics', owner: { login: 'acme' } },
  installation: { id: 77 },
  sender: { login: 'alice', type: 'User' },
});

/** GETs a path of a process (on 127.0.0.1 unless told), giving up after 10 s (a process that does not answer fails the test, never hangs it). */
async function get(port: number, path: string, address = '127.0.0.1'): Promise<{ status: number; text: string }> {
  try {
    const response = await fetch(`http://${address}:${port}${path}`, { signal: AbortSignal.timeout(10_000) });
    return { status: response.status, text: await response.text() };
  } catch (err) {
    return { status: 0, text: (err as Error).message };
  }
}

const scrape = async (port: number): Promise<string> => {
  const { status, text } = await get(port, '/metrics');
  if (status !== 200) throw new Error(`/metrics answered ${status}: ${text}`);
  return text;
};

/** The queues a scrape counts, from the `cldpd_queue_jobs` series. */
const queuesIn = (text: string): string[] => [...new Set(parseSamples(text).filter((s) => s.name === 'cldpd_queue_jobs').map((s) => s.labels.queue ?? ''))].sort();

describeWithDocker('/metrics, /healthz and /readyz of the real processes', () => {
  describeWithRedis('cldpd serve and cldpd worker after one run', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis;
    let port: number;
    let metricsPort: number;
    let serverMetricsPort: number;
    let server: CldpdProcess;
    let worker: CldpdProcess;
    const statusOf = (n: number) => github.commentsOn(`acme/metrics#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'));

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      // The fake agent works 4 s on a prompt that says "pause": long enough to see the session live.
      await world.pod('metrics');
      await writeFile(join(world.podsDir, 'metrics', 'template.md'), 'Take a pause.');
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(DB);
      redis = db.redis;
      port = await freePort();
      metricsPort = await freePort();
      serverMetricsPort = await freePort();
      const env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET });
      server = new CldpdProcess('serve', { ...env, CLDPD_METRICS_PORT: String(serverMetricsPort) }, join(world.home, 'server.log'));
      // HOST is every interface; the metrics stay on loopback (CLDPD_METRICS_ADDRESS's default).
      worker = new CldpdProcess('worker', { ...env, CLDPD_METRICS_PORT: String(metricsPort), HOST: '0.0.0.0' }, join(world.home, 'worker.log'));
      await until('the webhook server', async () => (await get(port, '/ping')).status === 200, 30_000);
      await until('the worker to be ready', async () => (await get(metricsPort, '/readyz')).status === 200, 60_000);
    });

    afterAll(async () => {
      await worker?.stop();
      await server?.stop();
      await github.close();
      await redis?.flushdb().catch(() => undefined);
      redis?.disconnect();
      await world.close();
    });

    it('health and readiness: the server checks Redis, the worker Redis and Docker', async () => {
      expect(await get(serverMetricsPort, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
      expect(await get(serverMetricsPort, '/readyz')).toEqual({ status: 200, text: 'ready: redis\n' });
      expect(await get(metricsPort, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
      expect(await get(metricsPort, '/readyz')).toEqual({ status: 200, text: 'ready: redis, docker\n' });
    });

    it('metrics access: the webhook port answers /healthz only; the metrics ports answer on loopback, not on another address of the machine', async () => {
      expect(await get(port, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
      for (const path of ['/metrics', '/readyz']) expect((await get(port, path)).status).toBe(404);
      for (const p of [serverMetricsPort, metricsPort]) {
        expect((await get(p, '/metrics')).status).toBe(200);
        // 127.0.0.2 is this machine too, but not the loopback address the metrics listen on.
        expect(await get(p, '/readyz', '127.0.0.2')).toMatchObject({ status: 0 });
      }
    });

    it('a labelled issue run to its end moves the server\'s and the worker\'s counters and histograms', async () => {
      const before = { server: await scrape(serverMetricsPort), worker: await scrape(metricsPort) };
      expect(sampleValue(before.worker, 'cldpd_runs_started_total', { pod: 'metrics' })).toBeUndefined();

      expect(await deliver(port, 'issues', labeled('cldpd:metrics', 1), { id: randomUUID(), secret: SECRET })).toBe(200);
      expect(await deliver(port, 'issues', labeled('cldpd:metrics', 2), { id: randomUUID(), secret: 'not-the-secret' })).toBe(401);
      expect(await deliver(port, 'issues', labeled('bug', 3), { id: randomUUID(), secret: SECRET })).toBe(200);

      // While the agent works (4 s), its container's start is counted and the worker follows one session.
      let running = '';
      await until('the run\'s container to start', async () => {
        running = await scrape(metricsPort);
        return sampleValue(running, 'cldpd_runs_started_total', { pod: 'metrics' }) === 1;
      }, 60_000);
      expect(sampleValue(running, 'cldpd_sessions_active', { host: world.hostId })).toBe(1);
      expect(sampleValue(running, 'cldpd_runs_finished_total', { pod: 'metrics', outcome: 'finished' })).toBeUndefined();

      await until('the final status comment', () => /cldpd: finished/.test(statusOf(1)?.body ?? ''), 60_000);
      const served = await scrape(serverMetricsPort);
      expect(sampleValue(served, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'accepted' })).toBe(1);
      expect(sampleValue(served, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'bad_signature' })).toBe(1);
      expect(sampleValue(served, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'ignored' })).toBe(1);
      // The intake's "queued" comment.
      expect(sampleValue(served, 'cldpd_github_writes_total', { kind: 'post' })).toBe(1);
      // The server runs nothing: its run counters stay empty.
      expect(sampleValue(served, 'cldpd_runs_started_total', { pod: 'metrics' })).toBeUndefined();
      expect(queuesIn(served)).toEqual(['cldpd-intake', 'cldpd-run']);
      expect(sampleValue(served, 'cldpd_queue_jobs', { queue: 'cldpd-intake', state: 'active' })).toBe(0);

      const worked = await scrape(metricsPort);
      expect(sampleValue(worked, 'cldpd_runs_started_total', { pod: 'metrics' })).toBe(1);
      expect(sampleValue(worked, 'cldpd_runs_finished_total', { pod: 'metrics', outcome: 'finished' })).toBe(1);
      expect(sampleValue(worked, 'cldpd_run_duration_seconds_count', { pod: 'metrics', outcome: 'finished' })).toBe(1);
      // The fake agent works 4 s; the run cannot have taken less, nor (here) an hour.
      const duration = sampleValue(worked, 'cldpd_run_duration_seconds_sum', { pod: 'metrics', outcome: 'finished' }) ?? 0;
      expect(duration).toBeGreaterThanOrEqual(3.5);
      expect(duration).toBeLessThan(3600);
      expect(sampleValue(worked, 'cldpd_run_time_to_start_seconds_count', { pod: 'metrics' })).toBe(1);
      expect(sampleValue(worked, 'cldpd_run_time_to_start_seconds_sum', { pod: 'metrics' })).toBeGreaterThan(0);
      // What the fake agent's result line says: total_cost_usd 0.0125, num_turns 2.
      expect(sampleValue(worked, 'cldpd_agent_cost_usd_total', { pod: 'metrics' })).toBeCloseTo(0.0125, 10);
      expect(sampleValue(worked, 'cldpd_agent_turns_total', { pod: 'metrics' })).toBe(2);
      // The run's status comment: edited as it ran and at its end, never posted again.
      expect(sampleValue(worked, 'cldpd_github_writes_total', { kind: 'edit' })).toBeGreaterThanOrEqual(2);
      expect(sampleValue(worked, 'cldpd_github_writes_total', { kind: 'post' })).toBeUndefined();
      expect(sampleValue(worked, 'cldpd_sessions_active', { host: world.hostId })).toBe(0);
      expect(queuesIn(worked)).toEqual([`cldpd-host-${world.hostId}`, 'cldpd-run']);
      expect(sampleValue(worked, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'accepted' })).toBeUndefined();
    });
  });

  describeWithRedis('cldpd up', () => {
    const world = new TestWorld();
    let up: CldpdProcess;
    let port: number;
    let metricsPort: number;
    let redis: Redis;

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      const db = await testRedis(DB);
      redis = db.redis;
      port = await freePort();
      metricsPort = await freePort();
      up = new CldpdProcess('up', {
        PATH: process.env.PATH, HOME: world.home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1',
        GHE_HOST: '127.0.0.1:9', GHE_PROTOCOL: 'http', REDIS_URL: db.url, CLDPD_HOME: world.home, CLDPD_PODS_DIR: world.podsDir, CLDPD_HOST_ID: world.hostId,
        // `up` serves the server's and the worker's metrics on one metrics port.
        CLDPD_METRICS_PORT: String(metricsPort), LOG_LEVEL: 'info',
      }, join(world.home, 'up.log'));
      await until('cldpd up to be ready', async () => (await get(metricsPort, '/readyz')).status === 200, 60_000);
    });

    afterAll(async () => {
      await up?.stop();
      await redis?.flushdb().catch(() => undefined);
      redis?.disconnect();
      await world.close();
    });

    it('serves the server\'s and the worker\'s metrics on its one metrics port, and checks Redis and Docker', async () => {
      expect(await get(metricsPort, '/readyz')).toEqual({ status: 200, text: 'ready: redis, docker\n' });
      const text = await scrape(metricsPort);
      expect(queuesIn(text)).toEqual([`cldpd-host-${world.hostId}`, 'cldpd-intake', 'cldpd-run']);
      expect(sampleValue(text, 'cldpd_sessions_active', { host: world.hostId })).toBe(0);
      expect(text).toContain('# TYPE cldpd_webhook_deliveries_total counter');
      expect(sampleValue(text, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
      // The webhook port tells anyone the process lives, nothing more.
      expect(await get(port, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
      expect((await get(port, '/metrics')).status).toBe(404);
    });
  });
});

describeWithRedis('/readyz when Redis stops', () => {
  let redisServer: ChildProcess | undefined;
  let server: CldpdProcess | undefined;
  let port: number;
  let metricsPort: number;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    const home = await tempDir('cldpd-readyz-');
    // A Redis of this test's own, so stopping it touches nobody else's.
    const redisPort = await freePort();
    redisServer = spawn('redis-server', ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--daemonize', 'no', '--dir', home], { stdio: 'ignore' });
    const started = new Promise<never>((_, reject) => redisServer?.once('error', (err) => reject(new Error(`redis-server could not be started (${err.message}): install it (scripts/setup.sh does)`))));
    const probe = new Redis(redisPort, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => 100 });
    probe.on('error', () => undefined);
    try {
      await Promise.race([started, until('the test\'s redis-server', async () => (await probe.ping().catch(() => '')) === 'PONG', 15_000)]);
    } finally {
      probe.disconnect();
    }
    port = await freePort();
    metricsPort = await freePort();
    server = new CldpdProcess('serve', {
      PATH: process.env.PATH, HOME: home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1',
      GHE_HOST: '127.0.0.1:9', GHE_PROTOCOL: 'http', REDIS_URL: `redis://127.0.0.1:${redisPort}/0`, CLDPD_HOME: home, CLDPD_STOP_SECONDS: '3', LOG_LEVEL: 'info',
      CLDPD_METRICS_PORT: String(metricsPort),
    }, join(home, 'server.log'));
    await until('the server to be ready', async () => (await get(metricsPort, '/readyz')).status === 200, 30_000);
  });

  afterAll(async () => {
    await server?.stop();
    if (redisServer && redisServer.exitCode === null && redisServer.signalCode === null) redisServer.kill('SIGKILL');
  });

  it('turns 503 naming Redis once its Redis is gone, while /healthz stays 200 and /metrics still answers', async () => {
    expect(await get(metricsPort, '/readyz')).toEqual({ status: 200, text: 'ready: redis\n' });
    const gone = new Promise((resolve) => redisServer?.once('exit', resolve));
    redisServer?.kill('SIGKILL');
    await gone;

    let last = { status: 0, text: '' };
    await until('/readyz to say Redis is not ready', async () => {
      last = await get(metricsPort, '/readyz');
      return last.status === 503;
    }, 20_000);
    expect(last.text).toMatch(/^not ready: redis \(.+\)\n$/);
    expect(await get(metricsPort, '/healthz')).toEqual({ status: 200, text: 'ok\n' });
    // The queues cannot be counted now: the scrape leaves them out rather than hang.
    const text = await scrape(metricsPort);
    expect(queuesIn(text)).toEqual([]);
    expect(sampleValue(text, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
  });
});

describeWithRedis('a metrics port that is the webhook port', () => {
  it('metrics port: cldpd serve refuses to start and names both settings, before it takes either port', async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    const home = await tempDir('cldpd-same-port-');
    const db = await testRedis(DB);
    const port = await freePort();
    const serve = new CldpdProcess('serve', {
      PATH: process.env.PATH, HOME: home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1',
      REDIS_URL: db.url, CLDPD_HOME: home, CLDPD_METRICS_PORT: String(port), LOG_LEVEL: 'info',
    }, join(home, 'serve.log'));
    try {
      const code = await Promise.race([serve.exited, new Promise<'running'>((resolve) => setTimeout(() => resolve('running'), 30_000).unref())]);
      expect(code).toBe(1);
      const { readFile } = await import('node:fs/promises');
      const log = await readFile(join(home, 'serve.log'), 'utf8');
      expect(log).toContain('CLDPD_METRICS_PORT and PORT are both');
    } finally {
      await serve.stop();
      db.redis.disconnect();
    }
  });
});
