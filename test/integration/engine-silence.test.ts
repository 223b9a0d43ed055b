import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dispatcher, HostInventory, SessionStore } from '../../src/core/index.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { FakeRunner, out } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from './harness.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

function runCommand(number: number): RunCommand {
  return {
    seq: 1, kind: 'start', issueKey: `acme-silent-${number}`, sessionId: `web-${String(number).padStart(8, '0')}`, pod: 'web', prompt: 'run', statusCommentId: number,
    requestedBy: 'alice', enqueuedAt: Date.now(), issue: { installationId: 1, owner: 'acme', repo: 'silent', number, url: `https://github.com/acme/silent/issues/${number}` },
  };
}

describeWithRedis('a worker whose Docker engine stops answering', () => {
  let redis: Redis;
  let state: IssueStores;
  let producer: Producer;
  const workers: RunWorker[] = [];
  const said: Array<{ level: number; msg: string }> = [];
  let answers = true;

  /** A RunWorker on a fake engine that answers while `engine()` says so; what it logs goes to `said`. */
  async function startWorker(hostId: string, engine: () => boolean) {
    const home = await tempDir();
    const pods = { podsDir: join(home, 'pods'), homeDir: home };
    await writePod(pods.podsDir, 'web');
    const runner = new FakeRunner();
    runner.defaultScript = { chunks: [out('{"type":"system","subtype":"init","session_id":"claude-x"}\n')], exitCode: 0, delayMs: 100 };
    const store = new SessionStore(join(home, 'sessions'));
    const logger = pino({ level: 'info' }, { write: (line: string) => void said.push({ ...(JSON.parse(line) as { level: number; msg: string }) }) });
    const worker = new RunWorker({
      connection: redis, hostId, concurrency: 2, state, producer, reporter: new RecordingReporter(), logger, recheckMs: 200, hostGoneMs: 900,
      dispatcher: new Dispatcher({ runner, pods, store, hostId, hostEnv: {} }), inventory: new HostInventory({ runner, store, hostId }),
      engineAnswers: async () => {
        if (!engine()) throw Object.assign(new Error('connect ENOENT /run/engine.sock'), { code: 'ENOENT' });
      },
    });
    workers.push(worker);
    await worker.start();
    return runner;
  }

  beforeAll(async () => {
    ({ redis } = await testRedis(33));
    state = issueStores(redis);
    producer = new Producer(redis, state);
  });

  afterAll(async () => {
    for (const w of workers) await w.close();
    await producer.close();
    redis?.disconnect();
  });

  it('stops saying its host is alive, says why, takes no run (one it was already waiting for goes back to the queue), logs each change once, and is alive again once the engine answers', async () => {
    const silentRunner = await startWorker('host-silent', () => answers);
    answers = false;
    await until('the silent host unseen', async () => (await redis.exists('cldpd:host:host-silent')) === 0, 10_000);
    const silent = (await state.hosts()).find((h) => h.hostId === 'host-silent');
    expect(silent?.alive).toBe(false);
    expect(silent?.engineSilentSince).toBeGreaterThan(0);

    // The paused worker's fetch, already waiting on Redis, takes the first of these: it must go back.
    const liveRunner = await startWorker('host-live', () => true);
    for (let n = 1; n <= 6; n++) await producer.run(runCommand(n));
    await until('six runs done', async () => {
      const records = await Promise.all([1, 2, 3, 4, 5, 6].map((n) => state.get(`acme-silent-${n}`)));
      return records.every((r) => r.hostId === 'host-live' && r.running === 0 && (r.lastState ?? '').includes('finished'));
    }, 30_000);
    expect(silentRunner.calls.filter((c) => c.method === 'run')).toEqual([]);
    expect(liveRunner.calls.filter((c) => c.method === 'run')).toHaveLength(6);

    answers = true;
    await until('the silent host alive again', async () => (await redis.exists('cldpd:host:host-silent')) === 1, 10_000);
    expect((await state.hosts()).find((h) => h.hostId === 'host-silent')?.engineSilentSince).toBeUndefined();
    expect(said.filter((l) => l.level === 50 && l.msg.includes('Docker engine does not answer'))).toHaveLength(1);
    expect(said.filter((l) => l.msg.includes('Docker engine answers again'))).toHaveLength(1);
  }, 60_000);
});
