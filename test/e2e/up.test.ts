import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { CLI, CldpdProcess, appPrivateKey, deliver, freePort } from './processes.js';

const payload = (label: string) => ({
  action: 'labeled',
  label: { name: label },
  issue: { number: 1, html_url: 'https://github.com/solo/app/issues/1', title: 'One machine', body: 'hello' },
  repository: { name: 'app', owner: { login: 'solo' } },
  installation: { id: 1 },
  sender: { login: 'owner', type: 'User' },
});

describeWithDocker('npm start (cldpd up) on one machine', () => {
  const world = new TestWorld();
  const github = new FakeGitHub();
  let up: CldpdProcess;
  let port: number;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    await world.pod('solo');
    await github.start();
    github.roles.set('owner', 'admin');
    port = await freePort();
    up = new CldpdProcess('up', {
      PATH: process.env.PATH, HOME: world.home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: 's', PORT: String(port), HOST: '127.0.0.1',
      GHE_HOST: github.host, GHE_PROTOCOL: 'http', CLDPD_HOME: world.home, CLDPD_PODS_DIR: world.podsDir, CLDPD_HOST_ID: world.hostId,
      CLDPD_STATUS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info',
    }, join(world.home, 'up.log'));
    await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
  });

  afterAll(async () => {
    await up?.stop();
    await github.close();
    await world.close();
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
});
