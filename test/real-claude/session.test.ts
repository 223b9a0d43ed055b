import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { renderTranscript } from '../fakes/transcript.js';
import type { Session, SessionEvent } from '../../src/core/index.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { isToolResultTurn, lastUserText, userTexts, type Script } from '../fakes/fake-anthropic.js';
import { collect, until } from '../integration/harness.js';
import { CLAUDE_BASE_IMAGE, RealClaudeWorld, agentEvents, describeWithRealClaude } from './harness.js';

/** "password=hunter2-in-a-file", base64: the tool's output carries the secret, the tool call does not. */
const SECRET_B64 = Buffer.from('password=hunter2-in-a-file\n').toString('base64');

/**
 * What the fake model does by default: on a typed message, append its last line to
 * notes.txt and show the notes with Bash (the output also carries a secret made inside the
 * container); on a tool result, answer in Markdown without repeating the output.
 */
const notesScript: Script = (body) => {
  if (isToolResultTurn(body)) return { blocks: [{ type: 'text', text: `## Done\n\nThe notes file has ${(userTexts(body).at(-1) ?? '').split('\n').length} lines.` }] };
  const line = lastUserText(body).split('\n').at(-1)?.slice(0, 40) ?? '';
  return {
    blocks: [
      { type: 'thinking', thinking: 'I will append a note and show the file.' },
      { type: 'text', text: 'Appending a note.' },
      { type: 'tool_use', name: 'Bash', input: { command: `echo "note: ${line}" >> notes.txt && echo ${SECRET_B64} | base64 -d > secret.txt && cat secret.txt notes.txt`, description: 'append a note' } },
    ],
  };
};

const world = new RealClaudeWorld(notesScript);

/** Every status comment body a run would produce, the final one included. */
async function statusBodies(session: Session, events: readonly SessionEvent[]): Promise<string[]> {
  const bodies: string[] = [];
  const comments: CommentsApi = {
    create: async (_issue, body) => (bodies.push(body), { id: 2, url: 'u' }),
    update: async (_issue, _id, body) => void bodies.push(body),
    list: async () => [],
  };
  const command: RunCommand = {
    seq: 1, kind: session.run === 1 ? 'start' : 'resume', issueKey: 'acme-web-1', pod: session.podName, sessionId: session.id, prompt: 'p',
    statusCommentId: 1, requestedBy: 'alice', enqueuedAt: 0,
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
  };
  const report = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 0, redactorFor: async () => (t: string) => t, logger: pino({ level: 'silent' }) }).forRun(command);
  for (const event of events) {
    report.event(event, session.agent);
    await new Promise((r) => setImmediate(r)); // let each progress edit happen
  }
  // At least one progress edit lands before the final one, however busy the machine is.
  await until('a progress edit', () => bodies.length > 0, 10_000);
  const terminal = await session.outcome();
  await report.finish({ kind: terminal.type === 'error' ? 'error' : 'exited', sessionId: session.id, terminal, agent: session.agent, lastLines: events.flatMap((e) => (e.type === 'output' && !e.agent ? [e.line] : [])).slice(-20) });
  return bodies;
}

/** The terminal transcript of a run, as `cldpd start` prints it. */
function transcript(events: readonly SessionEvent[], sessionId: string): string {
  return renderTranscript(events, { sessionId, verbose: false }).map((p) => p.text).join('');
}

describeWithRealClaude(`the real Claude Code CLI in a Debian pod (${CLAUDE_BASE_IMAGE})`, () => {
  beforeAll(async () => {
    await world.init();
    await world.claudePod('agent');
  });
  afterAll(async () => {
    await world.close();
  });

  it('starts: final answer, Claude session id, cost and turns surfaced; tool calls and results in the transcript, never raw in a comment', async () => {
    world.api.setScript(notesScript);
    const session = await world.dispatcher.start('agent', { prompt: 'first task' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });

    const agent = agentEvents(events);
    expect(agent.map((a) => a.kind)).toEqual(expect.arrayContaining(['init', 'message', 'thinking', 'text', 'tool', 'tool_result', 'result']));
    expect(session.agent.claudeSessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session.agent.result).toMatchObject({ isError: false, subtype: 'success', text: expect.stringContaining('## Done') });
    expect(session.agent.runCostUsd).toBeGreaterThan(0);
    expect(session.agent.runTurns).toBeGreaterThan(0);
    const record = await world.store.load(session.id);
    expect(record).toMatchObject({ claudeSessionId: session.agent.claudeSessionId, costUsd: session.agent.sessionCostUsd, last: { exitCode: 0, costUsd: session.agent.runCostUsd } });

    // Every stdout line of the real stream was understood: none is left as plain output.
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stdout' && !e.agent)).toEqual([]);
    // No config-file complaints or other noise on stderr.
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stderr' && e.line.trim())).toEqual([]);

    const shown = transcript(events, session.id);
    expect(shown).toContain('→ Bash: echo "note: first task" >> notes.txt');
    expect(shown).toMatch(/ {2}⎿ password=hunter2-in-a-file \(\+1 line\)/);
    expect(shown).toContain('Appending a note.');
    expect(shown).not.toMatch(/\{"type":/); // never raw JSON

    // The tool's output is in the log (so this check could fail) but in no comment.
    expect(events.some((e) => e.type === 'output' && e.line.includes('password=hunter2-in-a-file'))).toBe(true);
    const bodies = await statusBodies(session, events);
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) {
      expect(body).not.toContain('hunter2');
      expect(body).not.toContain('"type":');
    }
    expect(bodies.at(-1)).toContain('## Done');
  });

  it('resumes after exit in a new container: the history reaches the API, the workspace files are there, stderr stays quiet', async () => {
    world.api.setScript(notesScript);
    const first = await world.dispatcher.start('agent', { issueUrl: 'https://github.com/acme/web/issues/7', prompt: 'remember the word PELICAN' });
    const firstEvents = await collect(first);
    expect(firstEvents.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(await world.containersOf(first.id)).toEqual([]); // the first container is gone

    const before = world.api.conversation.length;
    const second = await world.dispatcher.resume(first.id, 'what was the word?');
    const events = await collect(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: false, run: 2 });
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(second.agent.claudeSessionId).toBe(first.agent.claudeSessionId);
    expect(second.agent.result).toMatchObject({ isError: false });

    // The resumed conversation carries the first run's turns: its prompt and its tool result.
    const resumed = world.api.conversation.slice(before)[0]?.body;
    const texts = userTexts(resumed ?? { model: '', messages: [] }).join('\n');
    expect(texts).toContain('remember the word PELICAN');
    expect(texts).toContain('note: remember the word PELICAN');
    expect(lastUserText(resumed ?? { model: '', messages: [] })).toBe('what was the word?');
    // The workspace persisted: the second run's cat shows both notes.
    const results = agentEvents(events).filter((a) => a.kind === 'tool_result');
    expect(results.some((r) => r.kind === 'tool_result' && r.lines >= 3)).toBe(true);
    expect(events.some((e) => e.type === 'output' && e.line.includes('note: remember the word PELICAN') && e.line.includes('note: what was the word?'))).toBe(true);
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stderr' && e.line.trim())).toEqual([]);

    // Cost: the run's own and the session's, which Claude Code reports as one total.
    expect(second.agent.sessionCostUsd).toBeCloseTo((first.agent.sessionCostUsd ?? 0) + (second.agent.runCostUsd ?? 0), 6);
    expect(second.agent.runCostUsd).toBeGreaterThan(0);
  });

  it.each([
    ['starts with a dash', '- first item\n- second item'],
    ['is an option name', '--help'],
    ['is 200 KB', `Read this:\n${'0123456789abcdef'.repeat(12_800)}\nend of the long prompt`],
  ])('takes a prompt that %s verbatim, never as an option or in argv', async (_, prompt) => {
    world.api.setScript(() => ({ blocks: [{ type: 'text', text: 'Understood.' }] }));
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('agent', { prompt });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(session.agent.result?.text).toBe('Understood.');
    const request = world.api.conversation.slice(before)[0]?.body;
    expect(request).toBeDefined();
    expect(userTexts(request ?? { model: '', messages: [] }).some((t) => t.includes(prompt))).toBe(true);
  });

  it('limits: pod.json maxTurns reaches the real CLI as --max-turns; the run ends there and its comment says so', async () => {
    await world.claudePod('agent-one-turn', { maxTurns: 1 });
    world.api.setScript(() => ({ blocks: [{ type: 'tool_use', name: 'Bash', input: { command: 'ls' } }] }));
    const session = await world.dispatcher.start('agent-one-turn', { prompt: 'loop forever' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 1 });
    expect(session.agent.result).toMatchObject({ isError: true, subtype: 'error_max_turns', errors: [expect.stringContaining('maximum number of turns')] });
    expect(transcript(events, session.id)).toContain('cldpd: agent error (error_max_turns)');
    const final = (await statusBodies(session, events)).at(-1) ?? '';
    expect(final).toContain('cldpd: stopped at its limit');
    expect(final).toContain("the pod's turn limit (`maxTurns` in its pod.json)");
  });

  it('limits: a run stopped by its budget (pod.json maxBudgetUsd, the real CLI\'s --max-budget-usd) says so in its comment', async () => {
    await world.claudePod('agent-budget', { maxBudgetUsd: 0.05 });
    let calls = 0;
    // Each answer costs dollars (the CLI prices the tokens the API says it used) and asks for another tool call.
    world.api.setScript(() => {
      calls += 1;
      return { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: `echo step ${calls}` } }], stopReason: 'tool_use', inputTokens: 2_000_000, outputTokens: 1000 };
    });
    const session = await world.dispatcher.start('agent-budget', { prompt: 'spend' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited' });
    expect(session.agent.result).toMatchObject({ isError: true, subtype: 'error_max_budget_usd' });
    expect(session.agent.result?.costUsd).toBeGreaterThan(0.05);
    expect(calls).toBeLessThan(5); // it stopped soon after the budget was spent, not at the API's pace
    const final = (await statusBodies(session, events)).at(-1) ?? '';
    expect(final).toContain('cldpd: stopped at its limit');
    expect(final).toContain("the pod's spending limit for a run (`maxBudgetUsd` in its pod.json), having spent $");
  });

  it('limits: on a resume, maxBudgetUsd bounds what that run spends, not the session\'s total', async () => {
    await world.claudePod('agent-budget-resume', { maxBudgetUsd: 0.05 });
    world.api.setScript(() => ({ blocks: [{ type: 'text', text: 'ok' }], stopReason: 'end_turn', inputTokens: 10_000, outputTokens: 10 }));
    const first = await world.dispatcher.start('agent-budget-resume', { prompt: 'one' });
    await collect(first);
    let calls = 0;
    world.api.setScript(() => {
      calls += 1;
      return { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: `echo ${calls}` } }], stopReason: 'tool_use', inputTokens: 10_000, outputTokens: 10 };
    });
    const second = await world.dispatcher.resume(first.id, 'two');
    await collect(second);
    // The session had spent $0.04 of its $0.05 before this run: the run still took a second turn (its own $0.04), then stopped.
    expect(calls).toBe(2);
    expect(second.agent.result).toMatchObject({ isError: true, subtype: 'error_max_budget_usd' });
    expect(second.agent.runCostUsd).toBeGreaterThan(0.05);
    expect(second.agent.sessionCostUsd).toBeGreaterThan(second.agent.runCostUsd ?? 0);
  });

  it('reports an API error the agent gave up on', async () => {
    world.api.setScript(() => ({ status: 400, errorType: 'invalid_request_error', message: 'this request is refused' }));
    const session = await world.dispatcher.start('agent', { prompt: 'anything' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 1 });
    expect(session.agent.result).toMatchObject({ isError: true, text: expect.stringContaining('this request is refused') });
  });

  it('refuses a root image with the default command before starting it, and says what to change', async () => {
    await world.claudePod('rooted', {}, `FROM ${CLAUDE_BASE_IMAGE}\nWORKDIR /workspace\n`);
    const session = await world.dispatcher.start('rooted', { prompt: 'hi' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'InvalidPod', message: expect.stringMatching(/runs as root.*USER agent.*IS_SANDBOX/s) });
    expect(events.some((e) => e.type === 'container.started')).toBe(false);
    expect(await world.containersOf(session.id)).toEqual([]);
  });

  it('runs a root image when pod.json says IS_SANDBOX=1, as the real CLI allows', async () => {
    await world.claudePod('rooted-sandbox', { env: { IS_SANDBOX: '1' } }, `FROM ${CLAUDE_BASE_IMAGE}\nWORKDIR /workspace\n`);
    world.api.setScript(() => ({ blocks: [{ type: 'text', text: 'As root.' }] }));
    const session = await world.dispatcher.start('rooted-sandbox', { prompt: 'hi' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(session.agent.result?.text).toBe('As root.');
  });
});
