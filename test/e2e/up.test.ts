import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { CLI, CldpdProcess, appPrivateKey, deliver, freePort } from './processes.js';

const payload = (label: string, number = 1) => ({
  action: 'labeled',
  label: { name: label },
  issue: { number, html_url: `https://github.com/solo/app/issues/${number}`, title: 'One machine', body: 'hello' },
  repository: { name: 'app', owner: { login: 'solo' } },
  installation: { id: 1 },
  sender: { login: 'owner', type: 'User' },
});

describeWithDocker('npm start (cldpd up) on one machine', () => {
  const world = new TestWorld();
  const github = new FakeGitHub();
  let up: CldpdProcess;
  let port: number;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    await world.pod('solo');
    await github.start();
    github.roles.set('owner', 'admin');
    port = await freePort();
    env = {
      PATH: process.env.PATH, HOME: world.home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: 's', PORT: String(port), HOST: '127.0.0.1',
      GHE_HOST: github.host, GHE_PROTOCOL: 'http', CLDPD_HOME: world.home, CLDPD_PODS_DIR: world.podsDir, CLDPD_HOST_ID: world.hostId,
      CLDPD_STATUS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info',
    };
    up = new CldpdProcess('up', env, join(world.home, 'up.log'));
    await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
  });

  afterAll(async () => {
    await up?.stop();
    for (const pid of redisServersOf(world.home)) process.kill(pid, 'SIGKILL');
    await github.close();
    await world.close();
  });

  it('first run: without credentials it serves the setup page, which says what the app may do and what comes next', async () => {
    const dir = join(world.home, `first-run-${randomUUID().slice(0, 8)}`);
    mkdirSync(dir);
    const setupPort = await freePort();
    const { APP_ID: _, PRIVATE_KEY: __, WEBHOOK_SECRET: ___, ...bare } = env;
    const logFile = join(world.home, 'first-run.log');
    const first = new CldpdProcess('up', { ...bare, PORT: String(setupPort), CLDPD_LOG_FORMAT: 'json' }, logFile, dir);
    try {
      await until('the setup page', async () => (await fetch(`http://127.0.0.1:${setupPort}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
      // Without the key the log printed, nobody else on the network gets the page.
      expect((await fetch(`http://127.0.0.1:${setupPort}/`)).status).toBe(403);
      const key = new RegExp(`open http://localhost:${setupPort}/\\?key=([0-9a-f]{32}) to register one`).exec(readFileSync(logFile, 'utf8'))?.[1];
      expect(key).toBeTruthy();
      const opened = await fetch(`http://127.0.0.1:${setupPort}/?key=${key}`, { redirect: 'manual' });
      const cookie = (opened.headers.get('set-cookie') ?? '').split(';')[0] as string;
      const page = await (await fetch(`http://127.0.0.1:${setupPort}/`, { headers: { cookie } })).text();
      for (const text of ['issues: write', 'contents: write', 'pull_requests: write', 'issue_comment', '/api/github/webhooks', 'cldpd:hello', 'npm start']) expect(page).toContain(text);
    } finally {
      expect(await first.stop('SIGTERM')).toBe(0);
    }
    expect(existsSync(join(dir, '.env'))).toBe(false); // nothing written until GitHub answers
  });

  it('runs its own Redis (AOF, Unix socket) and takes a label to a final comment', async () => {
    expect(existsSync(join(world.home, 'redis', 'redis.sock'))).toBe(true);
    expect(await deliver(port, 'issues', payload('cldpd:solo'), { id: randomUUID(), secret: 's' })).toBe(200);
    await until('the final comment', () => github.comments.some((c) => c.body.includes('cldpd: finished')), 60_000);
    expect(github.comments).toHaveLength(1);
    expect(existsSync(join(world.home, 'redis', 'appendonlydir')) || existsSync(join(world.home, 'redis', 'appendonly.aof'))).toBe(true);
  });

  it('shuts down cleanly on SIGTERM and stops its Redis', async () => {
    expect(await up.stop('SIGTERM')).toBe(0);
    await until('the socket to go', () => !existsSync(join(world.home, 'redis', 'redis.sock')), 10_000);
  });

  it('exit: after a SIGKILL, a restarted up replaces the redis-server left behind, a second up is refused, and SIGTERM ends it all', async () => {
    const start = () => new CldpdProcess('up', env, join(world.home, 'up.log'));
    up = start();
    await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
    expect(await up.stop('SIGKILL')).toBe(null);
    const orphans = redisServersOf(world.home);
    expect(orphans).toHaveLength(1); // SIGKILL gives up no chance to stop its child
    up = start();
    await until('the webhook server again', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
    const servers = redisServersOf(world.home);
    expect(servers).toHaveLength(1);
    expect(servers).not.toContain(orphans[0]);
    // A second up on the same home is refused and leaves the first one's Redis alone.
    const second = new CldpdProcess('up', { ...env, PORT: String(await freePort()) }, join(world.home, 'up-second.log'));
    expect(await second.exited).toBe(1);
    expect(readFileSync(join(world.home, 'up-second.log'), 'utf8')).toContain('Another cldpd');
    expect(redisServersOf(world.home)).toEqual(servers);
    // The label still makes it to a final comment on the restarted process.
    expect(await deliver(port, 'issues', payload('cldpd:solo', 2), { id: randomUUID(), secret: 's' })).toBe(200);
    await until('the second final comment', () => github.comments.filter((c) => c.body.includes('cldpd: finished')).length === 2, 60_000);
    expect(await up.stop('SIGTERM')).toBe(0);
    expect(redisServersOf(world.home)).toEqual([]);
  });
});

/** Pids of the redis-server processes whose data folder is under `home`. */
function redisServersOf(home: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      if (cmdline.join(' ').includes('redis-server') && cmdline.join(' ').includes(join(home, 'redis'))) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}
