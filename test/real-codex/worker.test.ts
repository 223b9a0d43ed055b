import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { Reporter, RunCommand } from '../../src/queue/contract.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { isToolResultTurn, lastUserText, toolOutputs, userTexts, type Script } from '../fakes/fake-openai.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { RealCodexWorld, agentEvents, describeWithRealCodex } from './harness.js';

/**
 * A typed message starts a shell `sleep` of `seconds(its text)`, then echoes "asked: <text>";
 * the command's output is answered "Answered: a | b", naming every "ask: <word>" the thread
 * holds (typed or from earlier runs).
 */
function askingScript(seconds: (typed: string) => number): Script {
  return (body) => {
    if (isToolResultTurn(body)) {
      const asked = [...userTexts(body), ...toolOutputs(body)].flatMap((t) => t.match(/ask: \w+/g) ?? []);
      return { items: [{ type: 'text', text: `Answered: ${[...new Set(asked)].join(' | ')}` }] };
    }
    const typed = lastUserText(body);
    return { items: [{ type: 'shell', command: `sleep ${seconds(typed)}; echo done` }] };
  };
}

const script = askingScript((typed) => (typed.includes('ask: slow') ? 3 : 0));

/** Every body each status comment was given, by the comment's id, as GitHub would hold them. */
const comments = new Map<number, string[]>();
const commentsApi: CommentsApi = {
  create: async (_issue, body) => ({ id: 1, url: 'u', ...(comments.set(1, [...(comments.get(1) ?? []), body]) ? {} : {}) }),
  update: async (_issue, id, body) => void comments.set(id, [...(comments.get(id) ?? []), body]),
  list: async () => [],
};
const statusReporter = new StatusReporter({ comments: commentsApi, budget: localWriteBudget(600_000), intervalMs: 0, redactorFor: async () => (t: string) => t, logger: pino({ level: 'silent' }) });

/** The last body of a run's status comment. */
const finalComment = (command: RunCommand): string => comments.get(command.statusCommentId ?? -1)?.at(-1) ?? '';
const world = new RealCodexWorld(script);

function command(seq: number, kind: 'start' | 'resume', prompt: string, n = 51): RunCommand {
  return {
    seq, kind, issueKey: `acme-web-${n}`, sessionId: `codex-0000a0${n}`, pod: 'codex', prompt, statusCommentId: 100 + seq, requestedBy: 'alice', enqueuedAt: Date.now(),
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: n, url: `https://github.com/acme/web/issues/${n}` },
  };
}

describeWithRealCodex('a worker with the real Codex CLI', () => {
  describeWithRedis('on a real Redis', () => {
    let redis: Redis;
    let state: IssueStores;
    let producer: Producer;
    let worker: RunWorker;
    const recording = new RecordingReporter();
    const reporter = recording;
    // What the worker reports goes to the recording and to the status comments, as GitHub shows them.
    const both: Reporter = {
      forRun(command) {
        const [a, b] = [recording.forRun(command), statusReporter.forRun(command)];
        return { event: (e, agent) => (a.event(e, agent), b.event(e, agent)), finish: async (o) => (await a.finish(o), await b.finish(o)) };
      },
    };

    beforeAll(async () => {
      await world.init();
      await world.codexPod('codex', { prices: { input: 2, output: 8, cachedInput: 0.5 } });
      ({ redis } = await testRedis(29));
      state = issueStores(redis);
      producer = new Producer(redis, state);
      worker = new RunWorker({ connection: redis, hostId: world.hostId, concurrency: 2, dispatcher: world.dispatcher, inventory: world.inventory, state, producer, reporter: both, logger: pino({ level: process.env.CLDPD_TEST_LOG ?? 'silent' }), recheckMs: 200,
        providerLimits: { credentialOf: async (c) => `pod:${c.pod}`, maxWaits: 3, retryMs: 1000, prompt: 'continue where you stopped' } });
      await worker.start();
    });
    afterAll(async () => {
      await worker.close();
      await producer.close();
      redis.disconnect();
      await world.close();
    });

    it('a resume that arrives while Codex runs waits for the run and continues the same thread after it: two runs, one after the other', async () => {
      const key = 'acme-web-51';
      await producer.run(command(1, 'start', 'ask: slow first'));
      await until('the agent to be in its tool call', () => reporter.runs.some((r) => agentEvents(r.events).some((a) => a.kind === 'tool')), 60_000);

      // What the intake does for a resume comment: queue it, and offer it to the owner host (Codex takes no live input).
      const resume = command(2, 'resume', 'ask: second');
      await producer.run(resume);
      await producer.control(world.hostId, { kind: 'message', issueKey: key, sessionId: resume.sessionId, seq: 2, command: resume });

      await until('both commands to be reported', () => reporter.finished(key).length === 2, 60_000);
      const [first, second] = [reporter.runs.find((r) => r.command.seq === 1), reporter.runs.find((r) => r.command.seq === 2)];
      expect(first?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(first?.outcome?.agent?.result?.text).toBe('Answered: ask: slow');
      expect(second?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(second?.startedAt).toBeGreaterThanOrEqual(first?.finishedAt ?? Number.POSITIVE_INFINITY); // after, never beside
      expect(second?.events.find((e) => e.type === 'container.started')).toMatchObject({ exec: false, run: 2 });
      // The same thread: the second answer names the first run's ask too.
      expect(second?.outcome?.agent?.claudeSessionId).toBe(first?.outcome?.agent?.claudeSessionId);
      expect(second?.outcome?.agent?.result?.text).toBe('Answered: ask: slow | ask: second');
      // Tokens on the outcome, priced by the pod's prices.
      expect(first?.outcome?.agent?.result?.tokens).toEqual({ input: 2000, output: 200, cachedInput: 0 });
      expect(first?.outcome?.agent?.runCostUsd).toBeCloseTo((2000 * 2 + 200 * 8) / 1e6, 9);
      expect(reporter.runs.every((r) => r.finishes === 1)).toBe(true);
      // Each status comment shows the answer and the tokens, in words.
      const shown = finalComment(second?.command as RunCommand);
      expect(shown).toContain('Answered: ask: slow | ask: second');
      expect(shown).toContain('4,000 tokens in, 400 out');
      for (const body of [...comments.values()].flat()) expect(body).not.toContain('"type":');
      await until('the issue queue to empty', async () => (await state.pending(key)) === 0, 10_000);
      expect(await world.containersOf(resume.sessionId)).toEqual([]);
    });

    it('/cldpd stop during a tool call: the control job stops the live run, which says so', async () => {
      const key = 'acme-web-52';
      world.api.setScript((body) => (isToolResultTurn(body) ? { items: [{ type: 'text', text: 'never' }] } : { items: [{ type: 'shell', command: 'sleep 300' }] }));
      const start = command(1, 'start', 'ask: long wait', 52);
      await producer.run(start);
      await until('the agent to be in its tool call', () => reporter.runs.some((r) => r.command.issueKey === key && agentEvents(r.events).some((a) => a.kind === 'tool')), 60_000);
      await state.markStopped(key, 1);
      await producer.control(world.hostId, { kind: 'stop', issueKey: key, sessionId: start.sessionId, seq: 1 });
      await until('the run to be reported', () => reporter.finished(key).length === 1, 60_000);
      expect(reporter.finished(key)[0]?.outcome).toMatchObject({ kind: 'exited', terminal: { reason: 'stopped' } });
      expect(await world.containersOf(start.sessionId)).toEqual([]);
      world.api.setScript(script);
    });

    it('a usage limit (a 429 Codex does not retry): the run ends "waiting" and the session continues by itself after the reset', async () => {
      let calls = 0;
      world.api.setScript(() => {
        calls += 1;
        // Reset a second away: Codex names the minute, which has begun, so the wait is the (shortened) retry delay.
        return calls === 1
          ? { status: 429, errorType: 'usage_limit_reached', message: 'The usage limit has been reached', extra: { plan_type: 'plus', resets_at: Math.floor(Date.now() / 1000) + 1, resets_in_seconds: 1 } }
          : { items: [{ type: 'text', text: 'Recovered after the wait.' }] };
      });
      const key = 'acme-web-53';
      const start = command(1, 'start', 'do the work', 53);
      await producer.run(start);
      await until('both runs to be reported', () => reporter.finished(key).length === 2, 90_000);
      const [first, second] = reporter.finished(key);
      expect(first?.outcome).toMatchObject({ kind: 'waiting', waiting: { kind: 'usage', wait: 1, of: 3 } });
      expect(first?.outcome?.agent?.result).toMatchObject({ isError: true, text: expect.stringContaining('hit your usage limit'), limit: { kind: 'usage' } });
      expect(second?.command).toMatchObject({ kind: 'resume', sessionId: start.sessionId, prompt: 'continue where you stopped', providerWait: { waits: [expect.objectContaining({ kind: 'usage' })] } });
      expect(second?.startedAt).toBeGreaterThanOrEqual(second?.command.providerWait?.notBefore ?? Number.POSITIVE_INFINITY);
      expect(second?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(second?.outcome?.agent?.result?.text).toBe('Recovered after the wait.');
      expect(lastUserText(world.api.conversation.at(-1)?.body ?? { model: '', input: [] })).toBe('continue where you stopped');
      // The run's comment said, while it waited, why and until when, in words; then it carries the continued run.
      const bodies = comments.get(start.statusCommentId ?? -1) ?? [];
      expect(bodies.some((b) => b.includes('The model provider refused for its usage limit; this run continues by itself at'))).toBe(true);
      for (const body of bodies) expect(body).not.toContain('"type":');
      expect(bodies.at(-1)).toContain('Recovered after the wait.');
      world.api.setScript(script);
    });

    it('a rate limit Codex gave up on (429s past its 5 retries, each after retry-after): the run waits and continues by itself', async () => {
      let calls = 0;
      world.api.setScript(() => {
        calls += 1;
        return calls <= 6
          ? { status: 429, errorType: 'rate_limit_exceeded', message: 'Rate limit reached for requests', headers: { 'retry-after': '0', 'x-ratelimit-remaining-requests': '0', 'x-ratelimit-reset-requests': '1s' } }
          : { items: [{ type: 'text', text: 'Recovered from the rate limit.' }] };
      });
      const key = 'acme-web-54';
      const start = command(1, 'start', 'do the work', 54);
      await producer.run(start);
      await until('both runs to be reported', () => reporter.finished(key).length === 2, 90_000);
      const [first, second] = reporter.finished(key);
      expect(calls).toBe(7); // six refused (its first try and five retries), then the resumed run's
      expect(first?.outcome).toMatchObject({ kind: 'waiting', waiting: { kind: 'rate', wait: 1, of: 3 } });
      expect(first?.outcome?.agent?.result?.text).toContain('exceeded retry limit, last status: 429');
      expect(second?.outcome?.agent?.result?.text).toBe('Recovered from the rate limit.');
      world.api.setScript(script);
    });
  });
});
