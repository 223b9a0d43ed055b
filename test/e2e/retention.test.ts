import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../src/core/index.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, type CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from './processes.js';

const run = promisify(execFile);
const SECRET = 'e2e-retention-secret';
const OWNER = 'acme';
const REPO = 'archive';
/** 0.00005 days: 4.3 s. */
const RETENTION_DAYS = '0.00005';

/** An `issues` delivery on one of our issues by alice; `closedAt` says it was closed before. */
function issuesEvent(action: 'labeled' | 'closed' | 'reopened', issue: number, label?: string, closedAt?: string): Record<string, unknown> {
  return webhookPayload('issues', action, { owner: OWNER, repo: REPO, installation: 4646, issue, body: 'Work.', label, closedAt });
}

describeWithDocker('retention', () => {
  describeWithRedis('a closed issue\'s sessions are removed after the retention period; an open or reopened one\'s never; gc', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis;
    let env: NodeJS.ProcessEnv;
    let port: number;
    let server: CldpdProcess;
    let worker: CldpdProcess;
    const statusOf = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'));
    /** Sends the delivery, GitHub's API then telling the same state (what the worker asks before it removes anything). */
    const send = (action: 'labeled' | 'closed' | 'reopened', n: number, label?: string, closedAt?: string) => {
      github.issueStates.set(`${OWNER}/${REPO}#${n}`, action === 'closed' || closedAt ? 'closed' : 'open');
      return deliver(port, 'issues', issuesEvent(action, n, label, closedAt), { id: randomUUID(), secret: SECRET });
    };
    const cldpd = (...args: string[]) => run(process.execPath, [CLI, ...args], { env }).catch((err: { stdout: string; stderr: string; code: number }) => err);

    /** What a session leaves on this host and in Redis. */
    async function traces(sessionId: string, issue: number) {
      const volumes = (await world.docker.listVolumes({ filters: { label: [`${LABELS.session}=${sessionId}`] } })).Volumes ?? [];
      return {
        record: existsSync(join(world.home, 'sessions', sessionId, 'session.json')),
        log: existsSync(join(world.home, 'sessions', sessionId, 'log.jsonl')),
        volumes: volumes.length,
        containers: (await world.containersOf(sessionId)).length,
        issueKeys: (await redis.keys(`cldpd:issue:{${OWNER}.${REPO}-${issue}}*`)).length,
        feed: await redis.exists(`cldpd:feed:${sessionId}`, `cldpd:feed:${sessionId}:head`),
      };
    }

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      await world.pod('quick', { command: ['sh', '-c', 'echo kept > /work/notes.txt; echo done'] });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(2);
      redis = db.redis;
      port = await freePort();
      env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_METRICS_PORT: '0', CLDPD_RETENTION_DAYS: RETENTION_DAYS } });
      ({ server, worker } = await startServerAndWorker(env, { logDir: world.home, port }));
    });

    afterAll(async () => {
      await stopSuite({ worker, server, github, redis, world });
    });

    it('removes exactly the closed issue\'s containers, volumes, records, logs, feed and keys after the period; an open and a reopened issue keep all of theirs', async () => {
      for (const n of [1, 2, 3]) await send('labeled', n, 'cldpd:quick');
      for (const n of [1, 2, 3]) await until(`issue ${n} finished`, () => /cldpd: finished/.test(statusOf(n)?.body ?? ''), 60_000);
      const session = (n: number) => /session `(quick-[0-9a-f]{16})`/.exec(statusOf(n)?.body ?? '')?.[1] as string;
      const [one, two, three] = [session(1), session(2), session(3)];
      for (const [s, n] of [[one, 1], [two, 2], [three, 3]] as const) {
        expect(await traces(s, n)).toMatchObject({ record: true, log: true, volumes: 1, issueKeys: expect.any(Number), feed: 2 });
      }
      const before2 = await traces(two, 2);
      const before3 = await traces(three, 3);

      await send('closed', 1);
      await send('closed', 3);
      await new Promise((r) => setTimeout(r, 200));
      await send('reopened', 3);

      await until('issue 1\'s sessions removed', async () => {
        const t = await traces(one, 1);
        return !t.record && !t.log && t.volumes === 0 && t.containers === 0 && t.issueKeys === 0 && t.feed === 0;
      }, 60_000);
      // Well past the period for issue 3 too: reopened, it keeps everything; issue 2 was never closed.
      await new Promise((r) => setTimeout(r, 6000));
      expect(await traces(three, 3)).toEqual(before3);
      expect(await traces(two, 2)).toEqual(before2);
    });

    it('a session started on a closed issue is removed the period after its last use; one whose issue GitHub says is open again (its reopen never arrived) is kept', async () => {
      const session = (n: number) => /session `(quick-[0-9a-f]{16})`/.exec(statusOf(n)?.body ?? '')?.[1] as string;
      // Issue 5 was closed before anyone asked cldpd to work on it.
      await send('labeled', 5, 'cldpd:quick', new Date(Date.now() - 60_000).toISOString());
      await send('labeled', 6, 'cldpd:quick');
      for (const n of [5, 6]) await until(`issue ${n} finished`, () => /cldpd: finished/.test(statusOf(n)?.body ?? ''), 60_000);
      const [five, six] = [session(5), session(6)];
      await send('closed', 6);
      github.issueStates.set(`${OWNER}/${REPO}#6`, 'open'); // reopened on GitHub; that delivery never arrived
      await until('issue 5\'s session removed', async () => {
        const t = await traces(five, 5);
        return !t.record && t.volumes === 0 && t.issueKeys === 0 && t.feed === 0;
      }, 60_000);
      await until('issue 6 seen open again', async () => (await redis.hget(`cldpd:issue:{${OWNER}.${REPO}-6}`, 'closedAt')) === null && (await redis.hget(`cldpd:issue:{${OWNER}.${REPO}-6}`, 'reopenedAt')) !== null, 30_000);
      expect(await traces(six, 6)).toMatchObject({ record: true, log: true, volumes: 1, feed: 2 });
    });

    it('gc --dry-run changes nothing; gc removes old terminal sessions, and an issue\'s only once Redis says it was closed that long', async () => {
      await send('labeled', 4, 'cldpd:quick');
      await until('issue 4 finished', () => /cldpd: finished/.test(statusOf(4)?.body ?? ''), 60_000);
      // The comment is written before the run is taken off the issue's queue: wait for that too, or gc sees a run going.
      await until('issue 4\'s run taken off its queue', async () => Number((await redis.hget(`cldpd:issue:{${OWNER}.${REPO}-4}`, 'running')) ?? 0) === 0 && (await redis.llen(`cldpd:issue:{${OWNER}.${REPO}-4}:runs`)) === 0, 30_000);
      // With no worker to run its retention job, only gc can remove issue 4's session.
      await worker.stop();
      await send('closed', 4);
      await until('issue 4 recorded as closed', async () => (await redis.hget(`cldpd:issue:{${OWNER}.${REPO}-4}`, 'closedAt')) !== null, 30_000);
      await new Promise((r) => setTimeout(r, 20));

      const started = await cldpd('start', 'quick', '--prompt', 'from a terminal');
      const terminal = /(quick-[0-9a-f]{16})/.exec(`${started.stdout}${started.stderr}`)?.[1] as string;
      expect(terminal).toBeDefined();
      const session = (n: number) => /session `(quick-[0-9a-f]{16})`/.exec(statusOf(n)?.body ?? '')?.[1] as string;
      const [open, reopened, closed] = [session(2), session(3), session(4)];
      const snapshot = async () => ({ terminal: await traces(terminal, 0), open: await traces(open, 2), reopened: await traces(reopened, 3), closed: await traces(closed, 4) });
      const before = await snapshot();
      expect(before.terminal.record).toBe(true);
      expect(before.closed).toMatchObject({ record: true, volumes: 1, feed: 2 });
      expect(before.closed.issueKeys).toBeGreaterThan(0);

      const dry = await cldpd('gc', '--dry-run', '--older-than', '0s');
      expect(dry.stderr).not.toContain(`kept ${closed}`);
      expect(dry.stdout).toMatch(new RegExp(`^would remove  ${terminal}  terminal session  last active .* \\d+ containers?, 1 volume, .+$`, 'm'));
      expect(dry.stdout).toMatch(new RegExp(`^would remove  ${closed}  https://github.com/${OWNER}/${REPO}/issues/4  last active .* 1 volume, .+$`, 'm'));
      expect(dry.stdout).toMatch(new RegExp(`^would remove  https://github.com/${OWNER}/${REPO}/issues/4  its ${before.closed.issueKeys} Redis keys? and 1 live feed$`, 'm'));
      expect(dry.stdout).toMatch(/would free .* \(2 sessions\); nothing was removed \(--dry-run\)/);
      expect(dry.stderr).toContain(`kept ${open}: its issue is open`);
      expect(dry.stderr).toContain(`kept ${reopened}: its issue is open`);
      expect(await snapshot()).toEqual(before);

      // Closed, but not for an hour: kept.
      const young = await cldpd('gc', '--older-than', '1h');
      expect(young.stdout).toMatch(/^freed 0 B \(0 sessions\)$/m);
      expect((await snapshot()).closed).toEqual(before.closed);

      const real = await cldpd('gc', '--older-than', '0s');
      expect(real.stdout).toMatch(new RegExp(`^removed  ${terminal}`, 'm'));
      expect(real.stdout).toMatch(new RegExp(`^removed  ${closed}`, 'm'));
      const after = await snapshot();
      expect(after.terminal).toMatchObject({ record: false, log: false, volumes: 0, containers: 0 });
      expect(after.closed).toEqual({ record: false, log: false, volumes: 0, containers: 0, issueKeys: 0, feed: 0 });
      expect(after.open).toEqual(before.open);
      expect(after.reopened).toEqual(before.reopened);
      expect((await cldpd('gc', '--older-than', 'soon')).stderr).toContain('"cldpd gc --older-than" takes a duration like 30d');
    });

    it('gc without a Redis to ask keeps every issue\'s session, saying why', async () => {
      const open = /session `(quick-[0-9a-f]{16})`/.exec(statusOf(2)?.body ?? '')?.[1] as string;
      const before = await traces(open, 2);
      const noRedis = await run(process.execPath, [CLI, 'gc', '--older-than', '0s'], { env: { ...env, REDIS_URL: 'redis://127.0.0.1:1' } }).catch((err: { stdout: string; stderr: string }) => err);
      expect(noRedis.stderr).toMatch(new RegExp(`kept ${open}: an issue's session, and Redis at redis://127.0.0.1:1 does not answer`));
      expect((noRedis as { code?: number }).code).toBe(1);
      expect(await traces(open, 2)).toEqual(before);
    });
  });
});
