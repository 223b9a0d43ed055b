import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunCommand } from '../../src/queue/contract.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { isToolResultTurn } from '../fakes/fake-anthropic.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { RealClaudeWorld, agentEvents, askingScript, describeWithRealClaude } from './harness.js';

const script = askingScript((typed) => (typed.includes('ask: slow') ? 4 : 0));

const world = new RealClaudeWorld(script);

function command(seq: number, kind: 'start' | 'resume', prompt: string): RunCommand {
  return {
    seq, kind, issueKey: 'acme-web-41', sessionId: 'live-0000a041', pod: 'live', prompt, statusCommentId: 100 + seq, requestedBy: 'alice', enqueuedAt: Date.now(),
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: 41, url: 'https://github.com/acme/web/issues/41' },
  };
}

describeWithRealClaude('a worker with the real Claude Code CLI', () => {
  describeWithRedis('on a real Redis', () => {
    let redis: Redis;
    let state: IssueStores;
    let producer: Producer;
    let worker: RunWorker;
    const reporter = new RecordingReporter();

    beforeAll(async () => {
      await world.init();
      await world.claudePod('live');
      // Gives up on a 429 at once (the CLI's own retries would take minutes), so the worker's wait is what is tested.
      await world.claudePod('quota', { env: { CLAUDE_CODE_MAX_RETRIES: '0' } });
      ({ redis } = await testRedis(14));
      state = issueStores(redis);
      producer = new Producer(redis, state);
      worker = new RunWorker({ connection: redis, hostId: world.hostId, concurrency: 2, dispatcher: world.dispatcher, inventory: world.inventory, state, producer, reporter, logger: pino({ level: process.env.CLDPD_TEST_LOG ?? 'silent' }), recheckMs: 200,
        providerLimits: { credentialOf: async (c) => `pod:${c.pod}`, maxWaits: 3, retryMs: 1000, prompt: 'continue where you stopped' } });
      await worker.start();
    });
    afterAll(async () => {
      await worker.close();
      await producer.close();
      redis.disconnect();
      await world.close();
    });

    it('puts a /cldpd resume for a running session into its live conversation: one run, one agent, both answered', async () => {
      const key = 'acme-web-41';
      await producer.run(command(1, 'start', 'ask: slow first'));
      await until('the agent to be in its tool call', () => reporter.runs.some((r) => agentEvents(r.events).some((a) => a.kind === 'tool')), 60_000);

      // What the intake does for a resume comment: queue it, and offer it to the owner host.
      const resume = command(2, 'resume', 'ask: second');
      await producer.run(resume);
      await producer.control(world.hostId, { kind: 'message', issueKey: key, sessionId: resume.sessionId, seq: 2, command: resume });

      await until('both commands to be reported', () => reporter.finished(key).length === 2, 60_000);
      const [delivered, run] = [reporter.runs.find((r) => r.command.seq === 2), reporter.runs.find((r) => r.command.seq === 1)];
      expect(delivered?.outcome).toMatchObject({ kind: 'delivered', message: expect.stringContaining('took it as its next instruction') });
      expect(delivered?.events).toEqual([]); // it never ran on its own
      expect(run?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(run?.outcome?.agent?.result?.text).toBe('Answered: ask: slow | ask: second');
      expect(run?.events.filter((e) => e.type === 'container.started')).toHaveLength(1);
      expect((await world.store.load(resume.sessionId)).runs).toBe(1); // no second run, no second agent
      expect(reporter.runs.every((r) => r.finishes === 1)).toBe(true);
      await until('the issue queue to empty', async () => (await state.pending(key)) === 0, 10_000);
      expect(await world.containersOf(resume.sessionId)).toEqual([]);
    });

    it('runs a resume that arrives once the run has ended in a new container, with the conversation', async () => {
      const key = 'acme-web-41';
      await until('the previous test\'s commands to leave the queue', async () => (await state.pending(key)) === 0, 10_000);
      const before = reporter.runs.length;
      const resume = command(3, 'resume', 'ask: third');
      await producer.run(resume);
      await producer.control(world.hostId, { kind: 'message', issueKey: key, sessionId: resume.sessionId, seq: 3, command: resume });
      await until('the resume to be reported', () => reporter.runs.slice(before).some((r) => r.finishedAt), 60_000);
      const run = reporter.runs.slice(before)[0];
      expect(run?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(run?.events.find((e) => e.type === 'container.started')).toMatchObject({ exec: false, run: 2 });
      // A new container continued the same conversation.
      expect(run?.outcome?.agent?.result?.text).toContain('ask: third');
      expect(run?.outcome?.agent?.result?.text).toContain('ask: second');
    });

    it('/cldpd stop during a tool call: the control job stops the live run, which says so', async () => {
      const key = 'acme-web-41';
      await until('the earlier commands to leave the queue', async () => (await state.pending(key)) === 0, 30_000);
      world.api.setScript((body) => (isToolResultTurn(body) ? { blocks: [{ type: 'text', text: 'never' }] } : { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: 'sleep 300', description: 'long' } }] }));
      const before = reporter.runs.length;
      const resume = command(9, 'resume', 'ask: long wait');
      await producer.run(resume);
      await until('the agent to be in its tool call', () => reporter.runs.slice(before).some((r) => agentEvents(r.events).some((a) => a.kind === 'tool')), 60_000);
      // What the intake does for "/cldpd stop".
      await state.markStopped(key, 9);
      await producer.control(world.hostId, { kind: 'stop', issueKey: key, sessionId: resume.sessionId, seq: 9 });
      await until('the run to be reported', () => reporter.runs.slice(before).some((r) => r.finishedAt), 60_000);
      const run = reporter.runs.slice(before)[0];
      expect(run?.outcome).toMatchObject({ kind: 'exited', terminal: { reason: 'stopped' } });
      expect(await world.containersOf(resume.sessionId)).toEqual([]);
      world.api.setScript(script);
    });
  
    it('provider limits: a 429 from the model API ends the run "waiting", and the session continues by itself after the (shortened) reset', async () => {
      let calls = 0;
      world.api.setScript(() => {
        calls += 1;
        return calls === 1
          ? { status: 429, errorType: 'rate_limit_error', message: 'Number of request tokens has exceeded your per-minute rate limit', headers: { 'retry-after': '1' } }
          : { blocks: [{ type: 'text', text: 'Recovered after the wait.' }] };
      });
      const key = 'acme-web-42';
      const start: RunCommand = { ...command(1, 'start', 'do the work'), issueKey: key, sessionId: 'quota-0000a042', pod: 'quota', issue: { ...command(1, 'start', '').issue, number: 42, url: 'https://github.com/acme/web/issues/42' } };
      await producer.run(start);
      await until('both runs to be reported', () => reporter.finished(key).length === 2, 90_000);
      const [first, second] = reporter.runs.filter((r) => r.command.issueKey === key);
      expect(first?.outcome).toMatchObject({ kind: 'waiting', waiting: { kind: 'rate', wait: 1, of: 3 } });
      expect(first?.outcome?.agent?.result?.text).toContain('429');
      expect(second?.command).toMatchObject({ kind: 'resume', sessionId: start.sessionId, prompt: 'continue where you stopped', providerWait: { waits: [expect.objectContaining({ kind: 'rate' })] } });
      expect(second?.startedAt).toBeGreaterThanOrEqual(second?.command.providerWait?.notBefore ?? Number.POSITIVE_INFINITY); // not before the reset
      expect(second?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(second?.outcome?.agent?.result?.text).toBe('Recovered after the wait.');
      expect(world.api.conversation.at(-1)?.body?.messages.some((m: { content: unknown }) => JSON.stringify(m.content).includes('continue where you stopped'))).toBe(true);
    });
  });
});
