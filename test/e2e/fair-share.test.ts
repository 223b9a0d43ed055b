import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../src/core/index.js';
import { SHARED_POOL } from '../../src/queue/fair-pool.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload, type SuiteProcesses } from './processes.js';

const SECRET = 'e2e-fair-share-secret';
const BURST = 20;

describeWithDocker('fair share of a host\'s run slots', () => {
  describeWithRedis('two repositories, one labelling twenty issues and one a single issue, on a host with two slots', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const docker = new Docker();
    let started: SuiteProcesses | undefined;
    let port: number;
    let gate: string;
    let redis: Redis;

    const label = (repo: string, issue: number, sender: string) =>
      deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: 'acme', repo, installation: 4444, issue, body: 'Work.', label: 'cldpd:slow', sender }), { id: randomUUID(), secret: SECRET });
    const comment = (repo: string, issue: number, sender: string, text: string) =>
      deliver(port, 'issue_comment', webhookPayload('issue_comment', 'created', { owner: 'acme', repo, installation: 4444, issue, body: 'Work.', comment: text, sender }), { id: randomUUID(), secret: SECRET });
    const statusOf = (repo: string, issue: number) => github.commentsOn(`acme/${repo}#${issue}`).find((c) => c.body.startsWith('<!-- cldpd:status'));
    const finished = (repo: string, issue: number) => /cldpd: finished/.test(statusOf(repo, issue)?.body ?? '');

    /** When each run's container was created (the engine's events: containers are removed after their run), by issue key. */
    const created = new Map<string, number[]>();
    let events: NodeJS.ReadableStream | undefined;
    async function followCreations(): Promise<void> {
      events = await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [`${LABELS.host}=${world.hostId}`, `${LABELS.pod}=slow`, LABELS.session] } });
      let buffered = '';
      events.on('data', (chunk: Buffer) => {
        buffered += chunk.toString('utf8');
        const lines = buffered.split('\n');
        buffered = lines.pop() ?? '';
        for (const line of lines.filter(Boolean)) {
          const event = JSON.parse(line) as { timeNano: number; Actor: { Attributes: Record<string, string> } };
          // The issue label is the issue's URL: …/acme/<repo>/issues/<n>.
          const [, repo, n] = /\/acme\/([^/]+)\/issues\/(\d+)$/.exec(event.Actor.Attributes[LABELS.issue] ?? '') ?? [];
          const key = `acme.${repo}-${n}`;
          created.set(key, [...(created.get(key) ?? []), event.timeNano / 1e6]);
        }
      });
    }
    const startTimes = () => new Map([...created].map(([key, at]) => [key, at[0] as number]));

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      // Each run waits for the gate, so the whole burst is queued before any run ends.
      gate = join(world.home, 'gate');
      await mkdir(gate, { recursive: true });
      await world.pod('slow', { command: ['sh', '-c', 'echo working; until [ -e /gate/open ]; do sleep 0.2; done'], mounts: [{ source: gate, target: '/gate', readOnly: true }], network: 'none' });
      await followCreations();
      await github.start();
      for (const login of ['ann', 'bob']) github.roles.set(login, 'write');
      const db = await testRedis(31);
      redis = db.redis;
      started = { github, world, redis, server: undefined, worker: undefined };
      port = await freePort();
      const env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_CONCURRENCY: '2', CLDPD_GITHUB_WRITES_PER_MINUTE: '2000' } });
      Object.assign(started, await startServerAndWorker(env, { logDir: world.home, port }));
    });

    afterAll(async () => {
      (events as unknown as { destroy?: () => void } | undefined)?.destroy?.();
      if (started) await stopSuite(started);
      else await Promise.all([github.close(), world.close()]);
    });

    it('the single label waits for at most one run per slot, its queued comment says it is next, the burst\'s comments and /cldpd status show the places the slot order gives; every run happens once', async () => {
      for (let n = 1; n <= BURST; n++) expect(await label('big', n, 'ann')).toBe(200);
      await until('the burst queued', () => Array.from({ length: BURST }, (_, i) => statusOf('big', i + 1)).every(Boolean), 60_000);
      await until('both slots taken and the rest of the burst waiting for one', async () => created.size === 2 && (await redis.zcard(`cldpd:fair:${SHARED_POOL}:queue`)) === BURST - 2, 60_000);
      expect(await label('small', 1, 'bob')).toBe(200);
      await until('the single label waiting', async () => (await redis.zscore(`cldpd:fair:${SHARED_POOL}:queue`, 'acme.small-1')) !== null, 30_000);
      // /cldpd status on the burst's last issue: the single label goes first, then the rest of the burst.
      expect(await comment('big', BURST, 'ann', '/cldpd status')).toBe(200);
      await until('the status reply', () => github.commentsOn(`acme/big#${BURST}`).some((c) => c.body.startsWith('**cldpd status:**')), 30_000);
      const status = github.commentsOn(`acme/big#${BURST}`).find((c) => c.body.startsWith('**cldpd status:**'))?.body ?? '';
      const place = Number(/waiting for a run slot: (\d+) ahead/.exec(status)?.[1] ?? NaN);
      expect(place).toBeGreaterThanOrEqual(1);
      expect(place).toBeLessThanOrEqual(BURST - 2);
      const before = Date.now();
      await writeFile(join(gate, 'open'), '');
      await until('every run finished', () => finished('small', 1) && Array.from({ length: BURST }, (_, i) => finished('big', i + 1)).every(Boolean), 240_000);

      const times = startTimes();
      expect([...created.values()].every((at) => at.length === 1)).toBe(true); // no run started twice
      const small = times.get('acme.small-1') as number;
      expect(small).toBeGreaterThan(0);
      const big = [...times].filter(([key]) => key.startsWith('acme.big-')).map(([, at]) => at);
      expect(big).toHaveLength(BURST); // one container each: none ran twice, none was lost
      // Runs of the burst that began once slots freed and before the single label: one per slot at most.
      expect(big.filter((at) => at > before && at < small).length).toBeLessThanOrEqual(2);
      // The rest of the burst came after it: first come, first served would have run it all first.
      expect(big.filter((at) => at > small).length).toBeGreaterThanOrEqual(BURST - 4);

      const first = statusOf('small', 1)?.history?.[0] ?? '';
      expect(first).toContain('next in the queue');
      // The burst's queued comments showed the places fair share gave them when they were queued.
      const shown = Array.from({ length: BURST }, (_, i) => Number(/(\d+) ahead in the queue/.exec(statusOf('big', i + 1)?.history?.[0] ?? '')?.[1] ?? 0));
      // Labels are taken in several at a time, so the highest place is not exactly the burst's size.
      expect(Math.max(...shown)).toBeGreaterThanOrEqual(BURST / 2);
    });
  });
});
