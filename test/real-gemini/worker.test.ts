import type { Redis } from 'ioredis';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunCommand } from '../../src/queue/contract.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { Producer } from '../../src/queue/producer.js';
import { RunWorker } from '../../src/queue/run-worker.js';
import { isFunctionResponseTurn, lastUserText, modelTexts, userTexts, type FakeReply, type Script } from '../fakes/fake-gemini.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { RealGeminiWorld, agentEvents, describeWithRealGemini } from './harness.js';

/**
 * A typed message starts a shell `sleep` (longer when it says "slow"), then answers with every
 * "ask: <word>" the conversation holds: which messages reached this conversation.
 */
const askingScript: Script = (body) => {
  if (isFunctionResponseTurn(body)) {
    const asked = userTexts(body).flatMap((t) => t.match(/ask: \w+/g) ?? []);
    return { parts: [{ text: `Answered: ${[...new Set(asked)].join(' | ')}` }] };
  }
  const seconds = lastUserText(body).includes('slow') ? 4 : 0;
  return { parts: [{ functionCall: { name: 'run_shell_command', args: { command: `sleep ${seconds}; echo done`, description: 'wait' } } }] };
};

/**
 * The Gemini API's refusal the CLI gives up on at once ("limit: 0" is a quota it does not
 * retry), with the retry delay it names.
 */
const QUOTA_REFUSAL: FakeReply = {
  status: 429,
  code: 'RESOURCE_EXHAUSTED',
  message: 'Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0, model: gemini-2.5-pro. Please retry in 1s.',
  details: [{ '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: '1s' }],
};

const world = new RealGeminiWorld(askingScript);

function command(seq: number, kind: 'start' | 'resume', prompt: string, issue = 51): RunCommand {
  return {
    seq, kind, issueKey: `acme-web-${issue}`, sessionId: `gemini-0000a0${issue}`, pod: 'gemini', prompt, statusCommentId: 100 + seq, requestedBy: 'alice', enqueuedAt: Date.now(),
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: issue, url: `https://github.com/acme/web/issues/${issue}` },
  };
}

describeWithRealGemini('a worker with the real Gemini CLI', () => {
  describeWithRedis('on a real Redis', () => {
    let redis: Redis;
    let state: IssueStores;
    let producer: Producer;
    let worker: RunWorker;
    const reporter = new RecordingReporter();

    beforeAll(async () => {
      await world.init();
      await world.geminiPod('gemini');
      ({ redis } = await testRedis(30));
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

    it('a /cldpd resume while the run works waits, then runs after it in a new container, in the same conversation', async () => {
      world.api.setScript(askingScript);
      const key = 'acme-web-51';
      await producer.run(command(1, 'start', 'ask: slow first'));
      await until('the agent to be in its tool call', () => reporter.runs.some((r) => agentEvents(r.events).some((a) => a.kind === 'tool')), 60_000);

      // What the intake does for a resume comment: queue it, and offer it to the owner host.
      const resume = command(2, 'resume', 'ask: second');
      await producer.run(resume);
      await producer.control(world.hostId, { kind: 'message', issueKey: key, sessionId: resume.sessionId, seq: 2, command: resume });

      await until('both commands to be reported', () => reporter.finished(key).filter((r) => r.outcome?.kind === 'exited').length === 2, 90_000);
      const [first, second] = reporter.finished(key).filter((r) => r.outcome?.kind === 'exited');
      expect(first?.command.seq).toBe(1);
      expect(first?.outcome?.agent?.result?.text).toBe('Answered: ask: slow');
      // The resume never reached the running CLI: it ran afterwards, as run 2 of the same session.
      expect(second?.command.seq).toBe(2);
      expect(second?.events.find((e) => e.type === 'container.started')).toMatchObject({ exec: false, run: 2 });
      expect(second?.startedAt).toBeGreaterThanOrEqual(first?.finishedAt ?? Number.POSITIVE_INFINITY);
      expect(second?.outcome?.agent?.result?.text).toBe('Answered: ask: slow | ask: second');
      expect(second?.outcome?.agent?.claudeSessionId).toBe(first?.outcome?.agent?.claudeSessionId);
      await until('the issue queue to empty', async () => (await state.pending(key)) === 0, 10_000);
      expect(await world.containersOf(resume.sessionId)).toEqual([]);
    });

    it('/cldpd stop during a tool call: the control job stops the run, which says so, and nothing is left', async () => {
      const key = 'acme-web-51';
      await until('the earlier commands to leave the queue', async () => (await state.pending(key)) === 0, 30_000);
      world.api.setScript((body) => (isFunctionResponseTurn(body) ? { parts: [{ text: 'never' }] } : { parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'sleep 300', description: 'long' } } }] }));
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
      const end = run?.events.at(-1);
      expect(end?.type === 'container.exited' && end.exitCode).not.toBe(137); // ended by the SIGTERM, not the grace period's SIGKILL
      expect(await world.containersOf(resume.sessionId)).toEqual([]);
    });

    it('a quota refusal the CLI gives up on mid-work ends the run "waiting"; the session continues by itself after the reset, with its conversation', async () => {
      let calls = 0;
      world.api.setScript((body) => {
        calls += 1;
        if (calls === 1) return { parts: [{ text: 'Looking first.' }, { functionCall: { name: 'run_shell_command', args: { command: 'echo looked', description: 'look' } } }] };
        if (calls === 2) return QUOTA_REFUSAL;
        return { parts: [{ text: `Recovered after the wait: ${lastUserText(body)}` }] };
      });
      const key = 'acme-web-52';
      await producer.run(command(1, 'start', 'do the work', 52));
      await until('both runs to be reported', () => reporter.finished(key).length === 2, 90_000);
      const [first, second] = reporter.runs.filter((r) => r.command.issueKey === key);
      expect(first?.events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 173 });
      expect(first?.outcome).toMatchObject({ kind: 'waiting', waiting: { kind: 'rate', wait: 1, of: 3 } });
      expect(first?.outcome?.agent?.result).toMatchObject({ isError: true, limit: { kind: 'rate' } });
      expect(second?.command).toMatchObject({ kind: 'resume', sessionId: 'gemini-0000a052', prompt: 'continue where you stopped', providerWait: { waits: [expect.objectContaining({ kind: 'rate' })] } });
      expect(second?.startedAt).toBeGreaterThanOrEqual(second?.command.providerWait?.notBefore ?? Number.POSITIVE_INFINITY); // not before the reset
      expect(second?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      // The resumed CLI sent the first run's prompt and the tool's output, then the worker's prompt.
      const resumed = world.api.conversation.at(-1)?.body ?? { contents: [] };
      expect(lastUserText(resumed)).toBe('continue where you stopped');
      expect(userTexts(resumed)).toEqual(expect.arrayContaining([expect.stringContaining('do the work'), expect.stringContaining('looked')]));
      // The CLI marks the refused response in the history it sends.
      expect(modelTexts(resumed)).toEqual(['Looking first.', '[The previous response was interrupted before it completed.]']);
      expect(second?.outcome?.agent?.result?.text).toBe('Recovered after the wait: continue where you stopped');
    });

    it('a quota refusal on the run\'s first request begins the conversation again after the reset, with the start\'s prompt: the CLI kept nothing of it to continue', async () => {
      let calls = 0;
      world.api.setScript((body) => {
        calls += 1;
        if (calls === 1) return QUOTA_REFUSAL;
        return { parts: [{ text: `Done after the wait: ${lastUserText(body)}` }] };
      });
      const key = 'acme-web-53';
      await producer.run(command(1, 'start', 'fix the flaky test', 53));
      await until('both runs to be reported', () => reporter.finished(key).length === 2, 90_000);
      const [first, second] = reporter.runs.filter((r) => r.command.issueKey === key);
      expect(first?.outcome).toMatchObject({ kind: 'waiting', waiting: { kind: 'rate', wait: 1 } });
      expect(first?.outcome?.agent?.result).toMatchObject({ isError: true, turns: 0, limit: { kind: 'rate', repeat: true } });
      expect(second?.command).toMatchObject({ kind: 'resume', sessionId: 'gemini-0000a053', prompt: 'fix the flaky test', providerWait: { waits: [expect.objectContaining({ kind: 'rate' })] } });
      // The session is the same one, on its second run, with the conversation the second run began.
      const request = world.api.conversation.at(-1)?.body ?? { contents: [] };
      expect(userTexts(request).filter((t) => t.includes('fix the flaky test'))).toHaveLength(1);
      expect(second?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 0 } });
      expect(second?.outcome?.agent?.result?.text).toMatch(/^Done after the wait: .*fix the flaky test/s);
    });
  });
});
