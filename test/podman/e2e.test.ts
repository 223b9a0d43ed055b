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
import { CLI, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload, type CldpdProcess } from '../e2e/processes.js';

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

    const statusComments = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).filter((c) => c.body.startsWith('<!-- cldpd:status'));
    const finished = (n: number, count: number) => until(`${count} finished status comment(s) on #${n}`, () => statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body)).length >= count, 90_000);
    const label = (n: number) => webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 4343, issue: n, label: 'cldpd:podman-e2e', body: 'Please fix.' });

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      await world.pod('podman-e2e');
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(35);
      redis = db.redis;
      port = await freePort();
      // The worker's engine is the rootless Podman service; the server never touches one.
      const env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { DOCKER_HOST: process.env.DOCKER_HOST } });
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
  });
});
