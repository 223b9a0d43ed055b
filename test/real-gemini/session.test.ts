import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Session, SessionEvent } from '../../src/core/index.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { feedEntries } from '../../src/web/feed-writer.js';
import { functionResponses, isFunctionResponseTurn, lastUserText, modelTexts, rateLimited, userTexts, type GenerateBody, type Script } from '../fakes/fake-gemini.js';
import { renderTranscript } from '../fakes/transcript.js';
import { collect, until } from '../integration/harness.js';
import { GEMINI_BASE_IMAGE, RealGeminiWorld, TEST_GEMINI_KEY, agentEvents, describeWithRealGemini } from './harness.js';

/** "password=hunter2-in-a-file", base64: the tool's output carries the secret, the tool call does not. */
const SECRET_B64 = Buffer.from('password=hunter2-in-a-file\n').toString('base64');

/** What the pods pay per million tokens: the CLI reports tokens only. */
const PRICES = { input: 1.25, output: 10, cachedInput: 0.31 };

/**
 * The fake model: on a typed message, a thought, words, and a shell call that appends the
 * message's last line to notes.txt and shows the notes (with a secret made inside the
 * container, and the user it ran as); on a function response, an answer in Markdown that
 * counts the notes without repeating them.
 */
const notesScript: Script = (body) => {
  if (isFunctionResponseTurn(body)) {
    const output = functionResponses(body).map((r) => r.output).join('\n');
    return { parts: [{ text: `## Done\n\nThe notes file has ${output.split('\n').filter((l) => l.includes('note: ')).length} notes.` }], promptTokens: 3000, outputTokens: 40, cachedTokens: 2000 };
  }
  const line = lastUserText(body).split('\n').at(-1)?.slice(0, 40) ?? '';
  return {
    parts: [
      { thought: 'I will append a note and show the file.' },
      { text: 'Appending a note.' },
      { functionCall: { name: 'run_shell_command', args: { command: `echo "note: ${line}" >> notes.txt && echo ${SECRET_B64} | base64 -d > secret.txt && cat secret.txt notes.txt && id -un`, description: 'append a note' } } },
    ],
    promptTokens: 2000, outputTokens: 30,
  };
};

const world = new RealGeminiWorld(notesScript);

/**
 * Every status comment body a run would produce, the final one included; after each event
 * that `settle` picks, the edit it causes lands before the next event is reported.
 */
async function statusBodies(session: Session, events: readonly SessionEvent[], settle: (e: SessionEvent) => boolean = () => false): Promise<string[]> {
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
    const seen = bodies.length;
    report.event(event, session.agent);
    await new Promise((r) => setImmediate(r)); // let each progress edit happen
    if (settle(event)) await until('the edit of a settled event', () => bodies.length > seen, 10_000);
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

const NO_BODY: GenerateBody = { contents: [] };

describeWithRealGemini(`the real Gemini CLI in a Debian pod (${GEMINI_BASE_IMAGE})`, () => {
  beforeAll(async () => {
    await world.init();
    await world.geminiPod('gemini', { prices: PRICES });
  });
  afterAll(async () => {
    await world.close();
  });

  it('starts: the tool call the model asks for runs in the container; the answer, session id, tokens and cost surfaced; words and tool calls shown, never raw JSON', async () => {
    world.api.setScript(notesScript);
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('gemini', { prompt: 'first task' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });

    // The shell call ran in the container, as the image's user: its output reached the model.
    const requests = world.api.conversation.slice(before);
    expect(requests).toHaveLength(2);
    const ran = functionResponses(requests[1]?.body ?? NO_BODY);
    expect(ran).toEqual([{ name: 'run_shell_command', output: expect.stringMatching(/password=hunter2-in-a-file\nnote: first task\nagent\b/) as string }]);
    expect(requests[0]?.headers['x-goog-api-key']).toBe(TEST_GEMINI_KEY);
    // Only the model endpoints were called: nothing the fake does not know.
    expect(world.api.unknown).toEqual([]);

    const agent = agentEvents(events);
    expect(agent.map((a) => a.kind)).toEqual(expect.arrayContaining(['init', 'message', 'text', 'tool', 'tool_result', 'result']));
    expect(session.agent.claudeSessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session.agent.result).toMatchObject({ isError: false, runOnly: true, turns: 2, text: '## Done\n\nThe notes file has 1 notes.' });
    // Its tokens: both model calls and the CLI's routing call (5 in, 5 out), priced by the pod.
    const tokens = session.agent.result?.tokens;
    expect(tokens).toEqual({ input: 5005, output: 75, cachedInput: 2000 });
    expect(session.agent.runCostUsd).toBeCloseTo((((tokens?.input ?? 0) - 2000) * 1.25 + 2000 * 0.31 + (tokens?.output ?? 0) * 10) / 1e6, 9);
    const record = await world.store.load(session.id);
    expect(record).toMatchObject({ claudeSessionId: session.agent.claudeSessionId });

    // Every stdout line of the real stream was understood: none is left as plain output.
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stdout' && !e.agent)).toEqual([]);

    const shown = transcript(events, session.id);
    expect(shown).toContain('Appending a note.');
    expect(shown).toContain('→ run_shell_command: echo "note: first task" >> notes.txt');
    expect(shown).toMatch(/ {2}⎿ password=hunter2-in-a-file \(\+2 lines\)/);
    expect(shown).toContain('## Done');
    expect(shown).not.toMatch(/\{"type":/);

    // The tool's output is in the log (so this check could fail) but in no comment.
    expect(events.some((e) => e.type === 'output' && e.line.includes('password=hunter2-in-a-file'))).toBe(true);
    const bodies = await statusBodies(session, events, (e) => e.type === 'output' && (e.agent ?? []).some((a) => a.kind === 'tool'));
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) {
      expect(body).not.toContain('hunter2');
      expect(body).not.toContain('"type":');
    }
    expect(bodies.some((b) => b.includes('Latest: run_shell_command: echo "note: first task" >> notes.txt'))).toBe(true);
    const final = bodies.at(-1) ?? '';
    expect(final).toContain('## Done');
    expect(final).toContain('5,005 tokens in (2,000 cached), 75 out');
    const page = events.flatMap((e) => feedEntries(e, { kind: 'start', requestedBy: 'alice' }));
    expect(page.filter((p) => p.k === 'text').map((p) => (p.k === 'text' ? p.text : ''))).toEqual(['Appending a note.', '## Done\n\nThe notes file has 1 notes.']);
    expect(page.some((p) => p.k === 'tool' && p.name === 'run_shell_command')).toBe(true);
    expect(JSON.stringify(page)).not.toContain('\\"type\\":');
  });

  it('resumes after exit in a new container: the earlier turns reach the API, the workspace files are there', async () => {
    world.api.setScript(notesScript);
    const first = await world.dispatcher.start('gemini', { issueUrl: 'https://github.com/acme/web/issues/7', prompt: 'remember the word PELICAN' });
    expect((await collect(first)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(await world.containersOf(first.id)).toEqual([]); // the first container is gone

    const before = world.api.conversation.length;
    const second = await world.dispatcher.resume(first.id, 'what was the word?');
    const events = await collect(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: false, run: 2 });
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(second.agent.claudeSessionId).toBe(first.agent.claudeSessionId);

    // The resumed conversation carries the first run's turns: its prompt, its words, the tool's output, its answer.
    const resumed = world.api.conversation.slice(before)[0]?.body ?? NO_BODY;
    const said = userTexts(resumed).join('\n');
    expect(said).toContain('remember the word PELICAN');
    expect(said).toContain('note: remember the word PELICAN');
    expect(modelTexts(resumed)).toEqual(expect.arrayContaining(['Appending a note.', '## Done\n\nThe notes file has 1 notes.']));
    expect(lastUserText(resumed)).toBe('what was the word?');
    // The workspace persisted: the second run's cat shows both notes.
    expect(second.agent.result?.text).toBe('## Done\n\nThe notes file has 2 notes.');
    // Tokens and cost are the run's own; the session's add up.
    expect(second.agent.sessionCostUsd).toBeCloseTo((first.agent.sessionCostUsd ?? 0) + (second.agent.runCostUsd ?? 0), 9);
  });

  it.each([
    ['starts with a dash', '- first item\n- second item'],
    ['is an option name', '--resume latest'],
  ])('takes a prompt that %s verbatim, never as an option', async (_, prompt) => {
    world.api.setScript(() => ({ parts: [{ text: 'Understood.' }] }));
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('gemini', { prompt });
    expect((await collect(session)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(session.agent.result?.text).toBe('Understood.');
    expect(lastUserText(world.api.conversation.slice(before)[0]?.body ?? NO_BODY)).toBe(prompt);
  });

  it('a 429 with a short retry delay: the CLI waits it out itself and the run goes on', async () => {
    let calls = 0;
    world.api.setScript(() => (++calls === 1 ? rateLimited(1) : { parts: [{ text: 'After the wait.' }] }));
    const session = await world.dispatcher.start('gemini', { prompt: 'hi' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(calls).toBe(2);
    expect(session.agent.result).toMatchObject({ isError: false, text: 'After the wait.' });
    expect(session.agent.result?.limit).toBeUndefined();
    // What it said while waiting is on stderr, as plain lines.
    const stderr = events.flatMap((e) => (e.type === 'output' && e.stream === 'stderr' ? [e.line] : []));
    expect(stderr).toEqual(expect.arrayContaining([expect.stringMatching(/^Attempt 1 failed: You exceeded your current quota/), expect.stringMatching(/Retrying after \d+ms/)]));
  });

  it('pod.json maxTurns reaches the CLI as its setting (cldpd\'s system defaults): exit 53, the run says it stopped at its limit', async () => {
    await world.geminiPod('gemini-one-turn', { maxTurns: 1 });
    world.api.setScript(() => ({ parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'ls' } } }] }));
    const session = await world.dispatcher.start('gemini-one-turn', { prompt: 'loop forever' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 53 });
    expect(session.agent.result).toMatchObject({ isError: true, subtype: 'error_max_turns', turns: 1, errors: [expect.stringContaining('max session turns')] });
    expect((await statusBodies(session, events)).at(-1)).toContain('cldpd: stopped at its limit');
  });

  it('an API error the CLI gives up on (400): an error result with the API\'s words', async () => {
    world.api.setScript(() => ({ status: 400, code: 'INVALID_ARGUMENT', message: 'this request is refused' }));
    const session = await world.dispatcher.start('gemini', { prompt: 'anything' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 144 });
    expect(session.agent.result).toMatchObject({ isError: true, errors: [expect.stringContaining('this request is refused')] });
    expect(session.agent.result?.limit).toBeUndefined();
  });

  it('stops during a tool call: the CLI ends on SIGTERM, not the grace period\'s SIGKILL, and nothing is left', async () => {
    world.api.setScript((body) => (isFunctionResponseTurn(body) ? { parts: [{ text: 'never' }] } : { parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'sleep 300; echo done', description: 'long' } } }] }));
    const session = await world.dispatcher.start('gemini', { prompt: 'something long' });
    let stopping: Promise<void> | undefined;
    const events = await collect(session, (e) => {
      if (e.type === 'output' && (e.agent ?? []).some((a) => a.kind === 'tool') && !stopping) stopping = session.stop();
    });
    await stopping;
    const end = events.at(-1);
    expect(end).toMatchObject({ type: 'container.exited', reason: 'stopped' });
    expect(end?.type === 'container.exited' && end.exitCode).not.toBe(137);
    expect(session.agent.result).toBeUndefined();
    expect(await world.containersOf(session.id)).toEqual([]);
  });
});
