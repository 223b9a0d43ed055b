import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, SessionStore } from '../../src/core/index.js';
import type { IntakeJob, RunCommand } from '../../src/queue/contract.js';
import { IssueState } from '../../src/queue/issue-state.js';
import { INTAKE_QUEUE } from '../../src/queue/names.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { FakeRunner, out, type Script } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from './harness.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('queue semantics on a real Redis', () => {
  let redis: Redis;
  let state: IssueState;
  let producer: Producer;

  beforeAll(async () => {
    ({ redis } = await testRedis(11));
    state = new IssueState(redis);
    producer = new Producer(redis, state);
  });

  afterAll(async () => {
    await producer.close();
    redis.disconnect();
  });

  it('a webhook delivered 10 times (some at once) makes one intake job', async () => {
    const job: IntakeJob = {
      deliveryId: '72d3162e-cc78-11e3-81ab-4c9367dc0958',
      trigger: { kind: 'label', pod: 'web' },
      issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1', title: 't', body: null },
      sender: { login: 'alice', type: 'User' },
      receivedAt: Date.now(),
    };
    await Promise.all(Array.from({ length: 5 }, () => producer.intake(job)));
    for (let i = 0; i < 5; i++) await producer.intake(job);
    const queue = new Queue(INTAKE_QUEUE, { connection: redis });
    const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed');
    await queue.close();
    expect((counts.waiting ?? 0) + (counts.active ?? 0) + (counts.delayed ?? 0) + (counts.completed ?? 0)).toBe(1);
  });

  it('a run queued twice with the same seq is queued once', async () => {
    const command = runCommand('acme-web-9', 1, 'start', 'web-00000009');
    expect(await state.append(command)).toBe(1);
    expect(await state.append(command)).toBe(0);
    expect(await state.pending('acme-web-9')).toBe(1);
  });

  /** A RunWorker on a fake Docker host whose containers speak stream-json and last as `script` says. */
  async function startWorker(hostId: string, concurrency: number, script: { delayMs?: number; hold?: boolean }) {
    const home = await tempDir();
    const pods = { podsDir: join(home, 'pods'), homeDir: home };
    await writePod(pods.podsDir, 'web');
    const runner = new FakeRunner();
    runner.defaultScript = { chunks: [out('{"type":"system","subtype":"init","session_id":"claude-x"}\n')], exitCode: 0, ...script };
    const dispatcher = new Dispatcher({ runner, pods, store: new SessionStore(join(home, 'sessions')), hostId, hostEnv: {} });
    const reporter = new RecordingReporter();
    const worker = new RunWorker({ connection: redis, hostId, concurrency, dispatcher, state, producer, reporter, logger: pino({ level: 'silent' }), recheckMs: 200 });
    await worker.start();
    return { runner, reporter, worker };
  }

  it('runs one issue\'s commands one at a time, in order, and different issues in parallel', async () => {
    const { reporter, worker } = await startWorker('host-q', 4, { delayMs: 300 });
    try {
      const a = 'acme-web-100';
      const b = 'acme-web-200';
      await producer.run(runCommand(a, 1, 'start', 'web-000000a1'));
      await producer.run(runCommand(a, 2, 'resume', 'web-000000a1'));
      await producer.run(runCommand(b, 1, 'start', 'web-000000b1'));
      await producer.run(runCommand(a, 3, 'resume', 'web-000000a1'));
      await until('all four runs to finish', () => reporter.runs.filter((r) => r.finishedAt).length === 4, 30_000);

      const runsA = reporter.finished(a);
      expect(runsA.map((r) => r.command.seq)).toEqual([1, 2, 3]);
      for (let i = 1; i < runsA.length; i++) {
        expect(runsA[i]?.startedAt).toBeGreaterThanOrEqual(runsA[i - 1]?.finishedAt ?? Infinity); // never overlapping
      }
      expect(runsA.every((r) => r.outcome?.kind === 'exited')).toBe(true);
      const [runB] = reporter.finished(b);
      // B ran while A's runs were going on: issues do not wait for each other.
      expect(runB?.startedAt).toBeLessThan(runsA[2]?.startedAt ?? 0);
      expect(reporter.runs.every((r) => r.finishes === 1)).toBe(true);
      expect((await state.get(a)).hostId).toBe('host-q');
      // The command leaves the issue's queue just after its final report.
      await until('the issue queue to empty', async () => (await state.pending(a)) === 0, 5_000);
    } finally {
      await worker.close();
    }
  });

  it('host: a new session of an issue whose host is gone starts on a live host; one whose host is alive waits for it', async () => {
    const { reporter, worker } = await startWorker('host-live', 2, {});
    try {
      const gone = 'acme.web-600';
      await state.set(gone, { hostId: 'host-gone' }); // never said it runs
      await producer.run(runCommand(gone, 1, 'start', 'web-00000601'));
      await until('the start to run here', () => reporter.finished(gone).length === 1, 10_000);
      expect(reporter.finished(gone)[0]?.outcome?.kind).toBe('exited');
      expect((await state.get(gone)).hostId).toBe('host-live');

      const away = 'acme.web-601';
      await state.heartbeat('host-busy', 60_000); // alive, just not taking this worker's jobs
      await state.set(away, { hostId: 'host-busy' });
      await producer.run(runCommand(away, 1, 'start', 'web-00000602'));
      await new Promise((r) => setTimeout(r, 1000));
      expect(reporter.finished(away)).toEqual([]);
      expect((await state.get(away)).hostId).toBe('host-busy');

      // A resume never moves: the session and its volumes are on the old host.
      const stay = 'acme.web-602';
      await state.set(stay, { hostId: 'host-gone', sessionId: 'web-00000603' });
      await producer.run(runCommand(stay, 1, 'resume', 'web-00000603'));
      await new Promise((r) => setTimeout(r, 1000));
      expect(reporter.finished(stay)).toEqual([]);
      expect((await state.get(stay)).hostId).toBe('host-gone');
    } finally {
      await worker.close();
    }
  });

  it('collision: an issue worked on under the old owner-repo-n key is found there, but never another repository\'s', async () => {
    // Written by a version whose keys were owner-repo-n: acme-web/app#7 and acme/web-app#7 shared "acme-web-app-7".
    await state.set('acme-web-app-7', { sessionId: 'web-00000701', pod: 'web', lastStatusUrl: 'https://github.com/acme-web/app/issues/7#issuecomment-1' });
    expect(await state.keyFor({ owner: 'acme-web', repo: 'app', number: 7 })).toBe('acme-web-app-7');
    expect(await state.alias('acme-web.app-7')).toBe('acme-web-app-7'); // remembered
    expect(await state.keyFor({ owner: 'acme', repo: 'web-app', number: 7 })).toBe('acme.web-app-7');
    expect((await state.get(await state.keyFor({ owner: 'acme', repo: 'web-app', number: 7 }))).sessionId).toBeUndefined();
  });

  describe('a /cldpd resume for a running session', () => {
    const replay = (text: string) => out(`${JSON.stringify({ type: 'user', isReplay: true, message: { role: 'user', content: [{ type: 'text', text }] } })}\n`);
    const result = out(`${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', total_cost_usd: 0.1, num_turns: 1 })}\n`);

    async function liveRun(hostId: string, key: string, then: Script['then']) {
      const w = await startWorker(hostId, 2, {});
      w.runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-x"}\n'), replay('run 1')], exitCode: 0, ...(then ? { then } : {}) });
      await producer.run(runCommand(key, 1, 'start', 'web-000000d1'));
      await until('the run to be live', () => w.reporter.runs.some((r) => r.events.some((e) => e.type === 'output' && e.agent?.some((a) => a.kind === 'message'))), 10_000);
      const resume = runCommand(key, 2, 'resume', 'web-000000d1');
      await producer.run(resume);
      await producer.control(hostId, { kind: 'message', issueKey: key, sessionId: resume.sessionId, seq: 2, command: resume });
      await until('the message to be written to the agent', () => [...w.runner.stdin.values()].some((s) => s.text.includes('run 2')), 10_000);
      return w;
    }

    it('goes into the live agent: delivered once the agent takes it, and never run on its own', async () => {
      let release!: () => void;
      const after = new Promise<void>((r) => (release = r));
      const key = 'acme-web-500';
      const { runner, reporter, worker } = await liveRun('host-d1', key, { after, chunks: [replay('run 2'), result] });
      try {
        expect(await state.deliveryState(key, 2)).toBe('pending'); // sent, not yet taken
        release();
        await until('both commands reported', () => reporter.finished(key).length === 2, 10_000);
        expect(reporter.finished(key).map((r) => [r.command.seq, r.outcome?.kind])).toEqual(expect.arrayContaining([[1, 'exited'], [2, 'delivered']]));
        await until('the issue queue to empty', async () => (await state.pending(key)) === 0, 10_000);
        expect(runner.calls.filter((c) => c.method === 'run')).toHaveLength(1); // one container, one agent
        expect(await state.deliveryState(key, 2)).toBe('delivered');
      } finally {
        await worker.close();
      }
    });

    it('runs on its own after the run when the agent ended without taking it', async () => {
      let release!: () => void;
      const after = new Promise<void>((r) => (release = r));
      const key = 'acme-web-501';
      // The agent exits without reading the second message.
      const { runner, reporter, worker } = await liveRun('host-d2', key, { after, chunks: [result] });
      try {
        release();
        await until('both commands reported', () => reporter.finished(key).length === 2, 10_000);
        const runs = reporter.finished(key);
        expect(runs.map((r) => [r.command.seq, r.outcome?.kind])).toEqual([[1, 'exited'], [2, 'exited']]);
        expect(runs[1]?.events.find((e) => e.type === 'container.started')).toMatchObject({ exec: false, run: 2 });
        expect(runner.calls.filter((c) => c.method === 'run')).toHaveLength(2);
      } finally {
        await worker.close();
      }
    });
  });

  it('delivery claims: the drain and a delivery never both take one resume', async () => {
    const key = 'acme-web-502';
    expect(await state.claimDelivery(key, 1, 5_000)).toBe(true);
    expect(await state.drainClaim(key, 1)).toBe('pending');
    await state.unclaimDelivery(key, 1);
    expect(await state.drainClaim(key, 1)).toBe('run');
    expect(await state.claimDelivery(key, 1, 5_000)).toBe(false); // the drain has it now
    expect(await state.claimDelivery(key, 2, 200)).toBe(true);
    await state.markDelivered(key, 2);
    await state.renewDelivery(key, 2, 100); // only a pending claim is renewed
    await new Promise((r) => setTimeout(r, 300));
    expect(await state.drainClaim(key, 2)).toBe('delivered');
    expect(await state.claimDelivery(key, 3, 150)).toBe(true);
    await new Promise((r) => setTimeout(r, 300)); // a delivery whose worker died lapses
    expect(await state.drainClaim(key, 3)).toBe('run');
  });

  it('a stop cancels runs that have not started and says so on each', async () => {
    const { runner, reporter, worker } = await startWorker('host-s', 2, { hold: true });
    try {
      const key = 'acme-web-300';
      for (let seq = 1; seq <= 3; seq++) await producer.run(runCommand(key, seq, seq === 1 ? 'start' : 'resume', 'web-000000c1'));
      await until('the first run to start', () => reporter.runs.some((r) => r.startedAt), 10_000);
      await state.markStopped(key, 3);
      await producer.control('host-s', { kind: 'stop', issueKey: key, sessionId: 'web-000000c1', seq: 3 });
      await until('every run to be reported', () => reporter.runs.filter((r) => r.finishedAt).length === 3, 15_000);
      const runs = reporter.finished(key);
      expect(runs.map((r) => r.outcome?.kind)).toEqual(['exited', 'cancelled', 'cancelled']);
      expect(runs[0]?.outcome?.terminal).toMatchObject({ exitCode: 143 });
      expect(runner.containers.size).toBe(0);
    } finally {
      await worker.close();
    }
  });
});

function runCommand(issueKey: string, seq: number, kind: 'start' | 'resume', sessionId: string): RunCommand {
  const number = Number(issueKey.split('-').at(-1));
  return {
    seq, kind, issueKey, sessionId, pod: 'web', prompt: `run ${seq}`, statusCommentId: seq, requestedBy: 'alice', enqueuedAt: Date.now(),
    issue: { installationId: 1, owner: 'acme', repo: 'web', number, url: `https://github.com/acme/web/issues/${number}` },
  };
}
