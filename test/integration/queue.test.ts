import { join } from 'node:path';
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Dispatcher, HostInventory, SessionStore } from '../../src/core/index.js';
import { octokitComments } from '../../src/github/comments-api.js';
import { Intake } from '../../src/github/intake.js';
import { parseStatusMarker } from '../../src/github/status-comment.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { IntakeJob, RunCommand, Trigger } from '../../src/queue/contract.js';
import { IssueQueue } from '../../src/queue/issue-queue.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { INTAKE_QUEUE } from '../../src/queue/names.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { FAKE_APP_LOGIN, FakeGitHub, fakeOctokit, type FakeComment } from '../fakes/fake-github.js';
import { FakeRunner, out, type Script } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from './harness.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('queue semantics on a real Redis', () => {
  let redis: Redis;
  let state: IssueStores;
  let producer: Producer;

  beforeAll(async () => {
    ({ redis } = await testRedis(11));
    state = issueStores(redis);
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
    const store = new SessionStore(join(home, 'sessions'));
    const dispatcher = new Dispatcher({ runner, pods, store, hostId, hostEnv: {} });
    const inventory = new HostInventory({ runner, store, hostId });
    const reporter = new RecordingReporter();
    const worker = new RunWorker({ connection: redis, hostId, concurrency, dispatcher, inventory, state, producer, reporter, logger: pino({ level: 'silent' }), recheckMs: 200 });
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

  it('a host\'s slots are shared by its two queues: with one slot, a resume of its session and a new session never run at once', async () => {
    const { reporter, worker } = await startWorker('host-one-slot', 1, { delayMs: 300 });
    try {
      const x = 'acme-web-350';
      const y = 'acme-web-450';
      await producer.run(runCommand(x, 1, 'start', 'web-000000c1'));
      await until('the first run', () => reporter.finished(x).length === 1, 30_000);
      expect((await state.get(x)).hostId).toBe('host-one-slot');
      // Now a resume goes to the host's own queue and a new session to the shared one.
      await producer.run(runCommand(x, 2, 'resume', 'web-000000c1'));
      await producer.run(runCommand(y, 1, 'start', 'web-000000d1'));
      await until('both runs to finish', () => reporter.finished(x).length === 2 && reporter.finished(y).length === 1, 30_000);
      const [resume, fresh] = [reporter.finished(x)[1], reporter.finished(y)[0]];
      const overlap = (resume?.startedAt ?? 0) < (fresh?.finishedAt ?? 0) && (fresh?.startedAt ?? 0) < (resume?.finishedAt ?? 0);
      expect(overlap).toBe(false);
    } finally {
      await worker.close();
    }
  });

  it('an intake retried after its run was queued (the same command again) strands no other issue: every run happens once, nothing waits without a turn', async () => {
    const { reporter, worker } = await startWorker('host-retry', 1, { delayMs: 100 });
    try {
      const a = 'acme-web-360';
      const b = 'acme-web-460';
      await producer.run(runCommand(a, 1, 'start', 'web-000000e1'));
      await producer.run(runCommand(b, 1, 'start', 'web-000000f1'));
      await until('both first runs', () => reporter.finished(a).length === 1 && reporter.finished(b).length === 1, 30_000);
      const resumeA = runCommand(a, 2, 'resume', 'web-000000e1');
      await producer.run(resumeA);
      await until('the resume', () => reporter.finished(a).length === 2, 30_000);
      await producer.run(resumeA); // the retried intake: already handled, it must not take a turn meant for another issue
      await producer.run(runCommand(b, 2, 'resume', 'web-000000f1'));
      await until('b\'s resume', () => reporter.finished(b).length === 2, 30_000);
      expect(reporter.finished(a)).toHaveLength(2);
      const pool = await state.poolSnapshot('host-retry');
      expect(pool.entries.filter((e) => e.issueKey === b)).toEqual([]);
    } finally {
      await worker.close();
    }
  });

  it('crash: a worker that dies between a run\'s final report and taking it off the queue does not run it again', async () => {
    const home = await tempDir();
    const pods = { podsDir: join(home, 'pods'), homeDir: home };
    await writePod(pods.podsDir, 'web');
    const runner = new FakeRunner();
    runner.defaultScript = { chunks: [out('{"type":"system","subtype":"init","session_id":"claude-c"}\n')], exitCode: 0 };
    const store = new SessionStore(join(home, 'sessions'));
    const dispatcher = new Dispatcher({ runner, pods, store, hostId: 'host-crash', hostEnv: {} });
    const inventory = new HostInventory({ runner, store, hostId: 'host-crash' });
    const reporter = new RecordingReporter();
    // The first "done" never happens: what a SIGKILL right after the final comment leaves.
    const dying = issueStores(redis);
    let killed = false;
    dying.done = async (command) => {
      if (!killed) {
        killed = true;
        throw new Error('killed before the command left the queue');
      }
      return IssueQueue.prototype.done.call(new IssueQueue(redis), command);
    };
    const worker = new RunWorker({ connection: redis, hostId: 'host-crash', concurrency: 1, dispatcher, inventory, state: dying, producer, reporter, logger: pino({ level: 'silent' }), recheckMs: 200 });
    await worker.start();
    try {
      const key = 'acme-web-310';
      await producer.run(runCommand(key, 1, 'start', 'web-00000311'));
      await until('the command to leave the queue after the retried drain', async () => killed && (await state.pending(key)) === 0, 30_000);
      expect(runner.calls.filter((c) => c.method === 'run')).toHaveLength(1); // one container, ever
      const finishes = reporter.runs.filter((r) => r.command.issueKey === key);
      expect(finishes.every((r) => r.outcome?.kind === 'exited')).toBe(true);
      expect(finishes.length).toBeGreaterThanOrEqual(1); // the final was written again, not the run
      expect((await state.get(key)).running).toBe(0);
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
  describe('queue positions on the status comments', () => {
    const github = new FakeGitHub();
    const octokit = fakeOctokit(github);
    const comments = octokitComments(async () => octokit);
    const silent = pino({ level: 'silent' });
    const init = out('{"type":"system","subtype":"init","session_id":"claude-x"}\n');
    let deliveries = 0;

    beforeAll(async () => {
      await github.start();
      github.roles.set('alice', 'write');
    });

    afterAll(async () => {
      await github.close();
    });

    /** Runs the intake of `trigger` on issue acme/web#n, as the server's intake queue would. */
    async function trigger(n: number, what: Trigger): Promise<string> {
      const intake = new Intake({ state, producer, comments, octokitFor: async () => octokit, appLogin: async () => FAKE_APP_LOGIN, logger: silent });
      deliveries += 1;
      return intake.process({
        deliveryId: `position-${n}-${deliveries}`, trigger: what, sender: { login: 'alice', type: 'User' }, receivedAt: Date.now(),
        issue: { installationId: 1, owner: 'acme', repo: 'web', number: n, url: `https://github.com/acme/web/issues/${n}`, title: `Issue ${n}`, body: 'work' },
      });
    }
    const label: Trigger = { kind: 'label', pod: 'web' };
    const resume = (prompt: string): Trigger => ({ kind: 'resume', prompt, commentId: 1, commentBody: `/cldpd resume ${prompt}` });

    /** A RunWorker whose reporter writes the status comments on the fake GitHub and keeps queue positions up to date. */
    async function startGitHubWorker(hostId: string, runner: FakeRunner) {
      const home = await tempDir();
      const pods = { podsDir: join(home, 'pods'), homeDir: home };
      await writePod(pods.podsDir, 'web');
      runner.defaultScript = { chunks: [init], exitCode: 0 };
      const store = new SessionStore(join(home, 'sessions'));
      const dispatcher = new Dispatcher({ runner, pods, store, hostId, hostEnv: {} });
      const inventory = new HostInventory({ runner, store, hostId });
      const reporter = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 20, hostId, redactorFor: async () => (text: string) => text, logger: silent });
      const worker = new RunWorker({ connection: redis, hostId, concurrency: 2, dispatcher, inventory, state, producer, reporter, positions: reporter, logger: silent, recheckMs: 200 });
      await worker.start();
      return worker;
    }

    /** The status comment of command `seq` on acme/web#n. */
    function statusComment(n: number, seq: number): FakeComment {
      const found = github.commentsOn(`acme/web#${n}`).find((c) => parseStatusMarker(c.body)?.seq === seq);
      if (!found) throw new Error(`no status comment of command ${seq} on #${n}`);
      return found;
    }
    const isQueued = (body: string) => body.includes('cldpd: queued');
    const shows = (n: number, seq: number, text: string) => () => statusComment(n, seq).body.includes(text);
    /** The queue positions comment `seq` showed, in order. */
    const positions = (n: number, seq: number) => (statusComment(n, seq).history ?? []).filter(isQueued).map((body) => /\d+ ahead in the queue|next in the queue/.exec(body)?.[0]);
    /** Once a comment moved past `queued`, it never shows `queued` again. */
    function expectNeverBackToQueued(n: number): void {
      for (const comment of github.commentsOn(`acme/web#${n}`).filter((c) => parseStatusMarker(c.body))) {
        const history = comment.history ?? [];
        const moved = history.findIndex((body) => !isQueued(body));
        expect(moved, `comment ${comment.id} ends up past queued`).toBeGreaterThan(0);
        expect(history.slice(moved).filter(isQueued), `comment ${comment.id} went back to queued`).toEqual([]);
      }
    }

    it('positions: a waiting run\'s comment counts down as the runs ahead of it end, then shows its own run', async () => {
      const n = 910;
      expect(await trigger(n, label)).toBe('queued start #1');
      expect(await trigger(n, resume('two'))).toBe('queued resume #2');
      expect(await trigger(n, resume('three'))).toBe('queued resume #3');
      expect(statusComment(n, 1).body).toContain('next in the queue');
      expect(statusComment(n, 2).body).toContain('1 ahead in the queue');
      expect(statusComment(n, 3).body).toContain('2 ahead in the queue');

      let endFirst!: () => void;
      let endSecond!: () => void;
      const runner = new FakeRunner();
      runner.scripts.push(
        { chunks: [init], exitCode: 0, then: { after: new Promise<void>((r) => (endFirst = r)), chunks: [] } },
        { chunks: [init], exitCode: 0, then: { after: new Promise<void>((r) => (endSecond = r)), chunks: [] } },
      );
      const worker = await startGitHubWorker('host-pos1', runner);
      try {
        await until('the first run to run', shows(n, 1, 'cldpd: running'), 15_000);
        expect(statusComment(n, 3).body).toContain('2 ahead in the queue'); // the running one counts

        endFirst();
        await until('the third to be one run from the front', shows(n, 3, '1 ahead in the queue'), 15_000);
        const third = statusComment(n, 3).body;
        // Everything else it showed is kept, and the host is known now.
        expect(third).toContain('cldpd: queued (pod `web`, resume)');
        expect(third).toMatch(/session `web-[0-9a-f]{16}`/);
        expect(third).toContain('requested by');
        expect(third).toContain('host `host-pos1`');
        await until('the second run to run', shows(n, 2, 'cldpd: running'), 15_000);

        endSecond();
        await until('the third run to finish', shows(n, 3, 'cldpd: finished'), 15_000);
        await until('the first runs\' final edits', () => shows(n, 1, 'cldpd: finished')() && shows(n, 2, 'cldpd: finished')(), 15_000);
        expect(positions(n, 3)).toEqual(['2 ahead in the queue', '1 ahead in the queue']);
        // The second never moved (one ahead until it ran), the first never waited: not edited as queued.
        expect(positions(n, 2)).toEqual(['1 ahead in the queue']);
        expect(positions(n, 1)).toEqual(['next in the queue']);
        expectNeverBackToQueued(n);
      } finally {
        await worker.close();
      }
    });

    it('positions: runs cancelled by /cldpd stop get no position update; a run queued behind them counts only what will run', async () => {
      const n = 911;
      await trigger(n, label);
      await trigger(n, resume('two'));
      await trigger(n, resume('three'));
      /** A Docker host whose stop takes effect only when the test says so. */
      class SlowStopRunner extends FakeRunner {
        asked = false;
        open: () => void = () => undefined;
        readonly gate = new Promise<void>((r) => (this.open = r));
        override async stop(containerId: string, graceSeconds: number): Promise<void> {
          this.asked = true;
          await this.gate;
          return super.stop(containerId, graceSeconds);
        }
      }
      const runner = new SlowStopRunner();
      runner.scripts.push({ chunks: [init], exitCode: 0, hold: true });
      const worker = await startGitHubWorker('host-pos2', runner);
      try {
        await until('the first run to run', shows(n, 1, 'cldpd: running'), 15_000);
        expect(await trigger(n, { kind: 'stop', commentId: 2 })).toBe('stopping');
        await until('the stop to reach the container', () => runner.asked, 15_000);
        // Queued while the stopped run still runs: the two runs the stop cancelled are not ahead of it.
        expect(await trigger(n, resume('four'))).toBe('queued resume #4');
        expect(statusComment(n, 4).body).toContain('1 ahead in the queue');

        runner.open();
        await until('the fourth run to finish', shows(n, 4, 'cldpd: finished'), 15_000);
        expect(statusComment(n, 1).body).toContain('cldpd: stopped');
        expect(statusComment(n, 2).body).toContain('cldpd: cancelled');
        expect(statusComment(n, 3).body).toContain('cldpd: cancelled');
        // The cancelled ones were never shown a new place, before or after they were cancelled.
        expect(positions(n, 2)).toEqual(['1 ahead in the queue']);
        expect(positions(n, 3)).toEqual(['2 ahead in the queue']);
        expect(positions(n, 4)).toEqual(['1 ahead in the queue', 'next in the queue']);
        expectNeverBackToQueued(n);
      } finally {
        runner.open();
        await worker.close();
      }
    });

    it('positions: a queued render still on its way when the run starts never lands over the run\'s own report', async () => {
      const n = 912;
      await trigger(n, label);
      await trigger(n, resume('two'));
      await trigger(n, resume('three'));
      let endFirst!: () => void;
      const runner = new FakeRunner();
      // The second run ends at once: the third starts while its "1 ahead" render may still be under way.
      runner.scripts.push({ chunks: [init], exitCode: 0, then: { after: new Promise<void>((r) => (endFirst = r)), chunks: [] } });
      // GitHub is slow to apply queued renders, quick with everything else.
      github.writeDelay = (request) => (isQueued(String(request.body.body ?? '')) ? 300 : 0);
      const worker = await startGitHubWorker('host-pos3', runner);
      try {
        await until('the first run to run', shows(n, 1, 'cldpd: running'), 15_000);
        endFirst();
        await until('the third run to finish', shows(n, 3, 'cldpd: finished'), 15_000);
        expect(positions(n, 3)).toEqual(['2 ahead in the queue', '1 ahead in the queue']);
        expectNeverBackToQueued(n);
      } finally {
        github.writeDelay = undefined;
        await worker.close();
      }
    });
  });
});

function runCommand(issueKey: string, seq: number, kind: 'start' | 'resume', sessionId: string): RunCommand {
  const number = Number(issueKey.split('-').at(-1));
  return {
    seq, kind, issueKey, sessionId, pod: 'web', prompt: `run ${seq}`, statusCommentId: seq, requestedBy: 'alice', enqueuedAt: Date.now(),
    issue: { installationId: 1, owner: 'acme', repo: 'web', number, url: `https://github.com/acme/web/issues/${number}` },
  };
}
