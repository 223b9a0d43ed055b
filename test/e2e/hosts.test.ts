import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../src/core/index.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, webhookPayload } from './processes.js';

const run = promisify(execFile);
const SECRET = 'e2e-hosts-secret';
const OWNER = 'acme';
const REPO = 'fleet';

/** GitHub's example payload for `event.action`, pointed at our issue. */
function payload(event: 'issues' | 'issue_comment', action: string, issue: number, patch: { label?: string; comment?: string }): Record<string, unknown> {
  return webhookPayload(event, action, { owner: OWNER, repo: REPO, installation: 4444, issue, body: 'Work.', ...patch });
}

describeWithDocker('hosts that go away', () => {
  describeWithRedis('a worker host killed for good, shown as unseen, then forgotten: the issue starts afresh on another host', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const otherHost = `${world.hostId}-b`;
    let redis: Redis;
    let env: NodeJS.ProcessEnv;
    let port: number;
    let server: CldpdProcess;
    let workerA: CldpdProcess;
    let workerB: CldpdProcess | undefined;

    const comments = () => github.commentsOn(`${OWNER}/${REPO}#1`);
    const replies = () => comments().filter((c) => !c.body.startsWith('<!-- cldpd:status'));
    const statuses = () => comments().filter((c) => c.body.startsWith('<!-- cldpd:status'));
    const comment = (text: string) => deliver(port, 'issue_comment', payload('issue_comment', 'created', 1, { comment: text }), { id: randomUUID(), secret: SECRET });
    const cldpd = (...args: string[]) => run(process.execPath, [CLI, ...args], { env }).catch((err: { stdout: string; stderr: string; code: number }) => err);

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      await world.pod('long', { command: ['sh', '-c', 'echo working; sleep 300'], stopGraceSeconds: 1 });
      await world.pod('quick', { command: ['sh', '-c', 'echo "fresh start"'] });
      // Host B has its own pods: there "long" is quick.
      await world.pod('long-b', { command: ['sh', '-c', 'echo "afresh on host B"'] });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(4);
      redis = db.redis;
      port = await freePort();
      env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_JOB_LOCK_SECONDS: '4', CLDPD_HOST_GONE_SECONDS: '3', CLDPD_METRICS_PORT: '0' } });
      ({ server, worker: workerA } = await startServerAndWorker(env, { logDir: world.home, port, workerLog: 'worker-a.log' }));
    });

    afterAll(async () => {
      await workerB?.stop();
      await workerA?.stop('SIGKILL');
      await server?.stop();
      await github.close();
      redis?.disconnect();
      const docker = new Docker();
      for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.host}=${otherHost}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      await world.close();
    });

    it('unseen: /cldpd status and a queued resume say since when; cldpd hosts lists it; forget cancels its runs on the issue; a resume starts afresh on a live host, saying where the session was; the host coming back stops its container', async () => {
      await deliver(port, 'issues', payload('issues', 'labeled', 1, { label: 'cldpd:long' }), { id: randomUUID(), secret: SECRET });
      await until('the run on host A', () => /cldpd: running/.test(statuses()[0]?.body ?? ''), 60_000);
      const sessionId = /session `(long-[0-9a-f]{16})`/.exec(statuses()[0]?.body ?? '')?.[1] as string;
      // Host A goes away for good (its container runs on, with nothing to follow it).
      await workerA.stop('SIGKILL');
      await until('host A unseen', async () => (await redis.exists(`cldpd:host:${world.hostId}`)) === 0, 15_000);

      await comment('/cldpd status');
      await until('the status reply', () => replies().some((c) => c.body.startsWith('**cldpd status:**')), 15_000);
      const status = replies().find((c) => c.body.startsWith('**cldpd status:**'))?.body ?? '';
      expect(status).toMatch(new RegExp(`Host \`${world.hostId}\`, where this issue's session is, has not been seen since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d UTC: its runs wait for it`));
      expect(status).toContain(`\`cldpd hosts forget ${world.hostId}\``);

      await comment('/cldpd resume carry on');
      await until('the queued resume', () => statuses().length === 2, 15_000);
      expect(statuses()[1]?.body).toContain(`Host \`${world.hostId}\`, where this issue's session is, has not been seen since`);

      const listed = await cldpd('hosts');
      expect(listed.stdout).toMatch(new RegExp(`^${world.hostId}\\s+not seen\\s+\\d+s ago\\s+1\\s+acme\\.fleet-1$`, 'm'));

      const podsB = join(world.home, 'pods-b');
      await mkdir(podsB, { recursive: true });
      await cp(join(world.podsDir, 'long-b'), join(podsB, 'long'), { recursive: true });
      await cp(join(world.podsDir, 'quick'), join(podsB, 'quick'), { recursive: true });
      workerB = new CldpdProcess('worker', { ...env, CLDPD_HOST_ID: otherHost, CLDPD_PODS_DIR: podsB }, join(world.home, 'worker-b.log'));
      await until('host B alive', async () => (await redis.exists(`cldpd:host:${otherHost}`)) === 1, 30_000);
      const refused = await cldpd('hosts', 'forget', otherHost);
      expect(refused.stderr).toContain(`host "${otherHost}" was seen`);
      expect((await cldpd('hosts', '--json')).stdout).toContain(`"hostId":"${otherHost}","lastSeen"`);

      const forgot = await cldpd('hosts', 'forget', world.hostId);
      expect(forgot.stdout).toContain(`released acme.fleet-1 (session ${sessionId}): 2 runs cancelled`);
      expect(forgot.stdout).toContain(`forgot host ${world.hostId}: 1 issue released`);
      for (const s of statuses()) {
        expect(s.body).toContain('cldpd: cancelled');
        expect(s.body).toContain(`host \`${world.hostId}\`, where this issue's session was, is gone, and an operator released its issues`);
      }
      expect((await cldpd('hosts', 'forget', world.hostId)).stderr).toContain(`no host "${world.hostId}" is known`); // all reported: nothing left to do

      await comment('/cldpd status');
      await until('the second status reply', () => replies().filter((c) => c.body.includes('was on host')).length === 1, 15_000);
      expect(replies().find((c) => c.body.includes('was on host'))?.body).toContain(`Its session \`${sessionId}\` was on host \`${world.hostId}\`, which an operator released on`);

      // A resume now starts afresh on host B, its comment saying where the earlier session was.
      await comment('/cldpd resume please');
      await until('the fresh session on host B', () => statuses().some((s) => /cldpd: finished \(pod `long`\)/.test(s.body)), 60_000);
      const fresh = statuses().find((s) => /cldpd: finished \(pod `long`\)/.test(s.body));
      expect(fresh?.body).toContain(`host \`${otherHost}\``);
      expect(fresh?.body).toContain(`The issue's earlier session \`${sessionId}\` was on host \`${world.hostId}\`, which an operator released`);
      expect(fresh?.body).toContain('afresh on host B');

      // Host A comes back: the container of its forgotten session is stopped, never followed.
      expect((await world.containersOf(sessionId)).some((c) => c.State === 'running')).toBe(true);
      workerA = new CldpdProcess('worker', env, join(world.home, 'worker-a2.log'));
      await until('the forgotten session\'s container stopped', async () => !(await world.containersOf(sessionId)).some((c) => c.State === 'running'), 60_000);
      // Its runs' comments still say cancelled: the returning host did not report over them.
      const own = statuses().filter((s) => s.body.includes(`session \`${sessionId}\` ·`));
      expect(own).toHaveLength(2);
      expect(own.every((s) => s.body.includes('cldpd: cancelled'))).toBe(true);
    });
  });
});
