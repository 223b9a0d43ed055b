// The GitHub App's happy path with its worker on rootless Podman: label → queued comment →
// run → final comment, and a resume that finds the first run's persisted files.
import './rootless-env.js';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import type { SessionEvent } from '../../src/core/index.js';
import { parseLogLine } from '../fakes/session-log.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from '../e2e/processes.js';

const SECRET = 'podman-e2e-secret';
const OWNER = 'acme';
const REPO = 'gadgets';

describeWithDocker('the GitHub App with its worker on rootless Podman', () => {
  describeWithRedis('server and worker processes, fake GitHub API, rootless Podman and Redis', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis | undefined;
    let port: number;
    let server: CldpdProcess | undefined;
    let worker: CldpdProcess | undefined;
    let env: NodeJS.ProcessEnv;

    const statusComments = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).filter((c) => c.body.startsWith('<!-- cldpd:status'));
    const finished = (n: number, count: number) => until(`${count} finished status comment(s) on #${n}`, () => statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body)).length >= count, 90_000);
    const label = (n: number, pod = 'podman-e2e') => webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 4343, issue: n, label: `cldpd:${pod}`, body: 'Please fix.' });

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      await world.pod('podman-e2e');
      await world.pod('podman-e2e-slow', { command: ['sh', '-c', 'i=1; while [ $i -le 40 ]; do echo "line $i"; i=$((i+1)); sleep 0.1; done'] });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(35);
      redis = db.redis;
      port = await freePort();
      // The worker's engine is the rootless Podman service; the server never touches one.
      env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { DOCKER_HOST: process.env.DOCKER_HOST, CLDPD_JOB_LOCK_SECONDS: '4' } });
      ({ server, worker } = await startServerAndWorker(env, { logDir: world.home, port }));
    });

    afterAll(async () => {
      await stopSuite({ worker, server, github, redis, world });
    });

    it('label → queued comment → run on Podman → final comment with the agent\'s answer; a resume sees the files the first run persisted', async () => {
      expect(await deliver(port, 'issues', label(1), { id: randomUUID(), secret: SECRET })).toBe(200);
      await finished(1, 1);
      const [status] = statusComments(1);
      expect(status?.body).toMatch(/cldpd: finished \(pod `podman-e2e`\)/);
      expect(status?.body).toContain('exit code 0');
      expect(status?.body).toContain('all done (first run)');
      expect(status?.edits).toBeGreaterThanOrEqual(1);
      const sessionId = /session `(podman-e2e-[0-9a-f]{16})`/.exec(status?.body ?? '')?.[1] as string;
      expect(sessionId).toBeDefined();

      const resume = webhookPayload('issue_comment', 'created', { owner: OWNER, repo: REPO, installation: 4343, issue: 1, comment: '/cldpd resume now the docs', body: 'Please fix.' });
      expect(await deliver(port, 'issue_comment', resume, { id: randomUUID(), secret: SECRET })).toBe(200);
      await finished(1, 2);
      const comments = statusComments(1);
      expect(comments[1]?.body).toMatch(/cldpd: finished \(pod `podman-e2e`, resume 1\)/);
      expect(comments[1]?.body).toContain(`resumed fake-${sessionId}, note: written by the first run`);
      // The worker said which engine it found, rootless, and warned of what it lacks.
      const log = await readFile(join(world.home, 'worker.log'), 'utf8');
      expect(log).toMatch(/"kind":"podman","rootless":true.*Podman engine ready/);
      expect(log).toContain('enable_icc');
    });

    it('a worker killed mid-run: the new one re-attaches to the container from Podman\'s log, loses no line, and ends with one final comment', async () => {
      await deliver(port, 'issues', label(2, 'podman-e2e-slow'), { id: randomUUID(), secret: SECRET });
      await until('the run to be running', () => statusComments(2).some((c) => c.body.includes('cldpd: running')), 60_000);
      const sessionId = /session `(podman-e2e-slow-[0-9a-f]{16})`/.exec(statusComments(2)[0]?.body ?? '')?.[1] as string;
      const logPath = join(world.home, 'sessions', sessionId, 'log.jsonl');
      await until('a few lines in the log', async () => (await readFile(logPath, 'utf8').catch(() => '')).includes('"line 5"'), 30_000);
      await worker?.stop('SIGKILL');
      expect((await world.containersOf(sessionId)).map((c) => c.State)).toEqual(['running']);

      worker = new CldpdProcess('worker', env, join(world.home, 'worker-2.log'));
      await finished(2, 1);
      expect(statusComments(2)).toHaveLength(1);
      expect(statusComments(2)[0]?.body).toContain('exit code 0');
      const events = (await readFile(logPath, 'utf8')).split('\n').map(parseLogLine).filter((e): e is SessionEvent => !!e);
      expect(events.flatMap((e) => (e.type === 'output' ? [e.line] : []))).toEqual(Array.from({ length: 40 }, (_, i) => `line ${i + 1}`));
      expect(events.filter((e) => e.type === 'container.started')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'container.exited')).toHaveLength(1);
      expect(await world.containersOf(sessionId)).toEqual([]);
    });
  });
});
