import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Session, SessionEvent } from '../../src/core/index.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { feedEntries, redactEntry } from '../../src/web/feed-writer.js';
import { renderEntry } from '../../src/web/session-page.js';
import { isToolResultTurn, lastUserText, toolOutputs, userTexts, type Script } from '../fakes/fake-openai.js';
import { renderTranscript } from '../fakes/transcript.js';
import { collect, until } from '../integration/harness.js';
import { CODEX_BASE_IMAGE, RealCodexWorld, agentEvents, describeWithRealCodex } from './harness.js';

/** "password=hunter2-in-a-file", base64: the tool's output carries the secret, the tool call does not. */
const SECRET_B64 = Buffer.from('password=hunter2-in-a-file\n').toString('base64');

/**
 * What the fake model does by default: on a typed message, think, say so, and append its
 * last line to notes.txt with a shell command that also prints who runs it, where, and a
 * secret made inside the container; on the command's output, answer in Markdown with the
 * number of notes, never repeating the output.
 */
const notesScript: Script = (body) => {
  if (isToolResultTurn(body)) {
    const output = toolOutputs(body).at(-1) ?? '';
    return { items: [{ type: 'text', text: `## Done\n\nThe notes file has ${(output.match(/^note: /gm) ?? []).length} notes; ran as ${/^agent$/m.test(output) ? 'agent' : 'someone else'}.` }], inputTokens: 1500, cachedTokens: 1000, outputTokens: 40 };
  }
  const line = lastUserText(body).split('\n').at(-1)?.slice(0, 40) ?? '';
  return {
    items: [
      { type: 'reasoning', summary: 'I will append a note and show the file.' },
      { type: 'text', text: 'Appending a note.' },
      { type: 'shell', command: `echo "note: ${line}" >> notes.txt && whoami && pwd && echo ${SECRET_B64} | base64 -d && cat notes.txt` },
    ],
    inputTokens: 1200, cachedTokens: 0, outputTokens: 50,
  };
};

const world = new RealCodexWorld(notesScript);

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
  await until('a progress edit', () => bodies.length > 0, 10_000);
  const terminal = await session.outcome();
  await report.finish({ kind: terminal.type === 'error' ? 'error' : 'exited', sessionId: session.id, terminal, agent: session.agent, lastLines: events.flatMap((e) => (e.type === 'output' && !e.agent ? [e.line] : [])).slice(-20) });
  return bodies;
}

/** The live session page's transcript of a run: its entries as the page renders them. */
function livePage(events: readonly SessionEvent[]): string {
  return events.flatMap((e) => feedEntries(e, { kind: 'start', requestedBy: 'alice' })).map((entry, n) => renderEntry({ id: `${n}-0`, n, entry: redactEntry(entry, (t) => t) })).join('\n');
}

/** The terminal transcript of a run, as `cldpd start` prints it. */
function transcript(events: readonly SessionEvent[], sessionId: string): string {
  return renderTranscript(events, { sessionId, verbose: false }).map((p) => p.text).join('');
}

describeWithRealCodex(`the real Codex CLI in a Debian pod (${CODEX_BASE_IMAGE})`, () => {
  beforeAll(async () => {
    await world.init();
    await world.codexPod('codex');
  });
  afterAll(async () => {
    await world.close();
  });

  it('starts: the command the fake asks for runs in the container as its user; the answer and tokens surface; comments, page and transcript show words and tool calls, never raw JSON', async () => {
    world.api.setScript(notesScript);
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('codex', { prompt: 'first task' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });

    const agent = agentEvents(events);
    expect(agent.map((a) => a.kind)).toEqual(expect.arrayContaining(['init', 'thinking', 'text', 'tool', 'tool_result', 'result']));
    expect(session.agent.claudeSessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(session.agent.result).toMatchObject({ isError: false, text: '## Done\n\nThe notes file has 1 notes; ran as agent.', tokens: { input: 2700, output: 90, cachedInput: 1000 } });
    expect((await world.store.load(session.id)).claudeSessionId).toBe(session.agent.claudeSessionId);

    // The command ran in the container, in the workspace, as the image's user: its output went back to the model.
    const requests = world.api.conversation.slice(before);
    expect(requests).toHaveLength(2);
    const output = toolOutputs(requests[1]?.body ?? { model: '', input: [] }).join('\n');
    expect(output).toMatch(/^agent$/m);
    expect(output).toMatch(/^\/workspace$/m);
    expect(requests[0]?.headers.authorization).toBe('Bearer sk-codex-test-key');
    // Its calls home are off: nothing but the Responses API was asked for (a WebSocket first, refused).
    expect(world.api.unknown).toEqual([]);

    // Every stdout line of the real stream was understood: none is left as plain output.
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stdout' && !e.agent)).toEqual([]);

    const shown = transcript(events, session.id);
    expect(shown).toContain('→ shell: echo "note: first task" >> notes.txt && whoami');
    expect(shown).toContain('Appending a note.');
    expect(shown).not.toMatch(/\{"type":/);

    // The tool's output is in the log (so this check could fail) but in no comment and not on the page.
    expect(events.some((e) => e.type === 'output' && e.line.includes('password=hunter2-in-a-file'))).toBe(true);
    const page = livePage(events);
    expect(page).toContain('Appending a note.');
    expect(page).toContain('<b>shell</b> <code>echo &#34;note: first task&#34; &#62;&#62; notes.txt');
    expect(page).toContain('↳ result: 4 lines');
    expect(page).not.toContain('hunter2');
    expect(page).not.toMatch(/\{&#34;type&#34;|\{"type"/);
    const bodies = await statusBodies(session, events);
    expect(bodies.length).toBeGreaterThan(1);
    for (const body of bodies) {
      expect(body).not.toContain('hunter2');
      expect(body).not.toContain('"type":');
    }
    expect(bodies.at(-1)).toContain('## Done');
    expect(bodies.at(-1)).toContain('2,700 tokens in (1,000 cached), 90 out');
  });

  it('resumes after exit in a new container: the earlier turns reach the API, the workspace and ~/.codex persisted', async () => {
    world.api.setScript(notesScript);
    const first = await world.dispatcher.start('codex', { prompt: 'remember the word PELICAN' });
    expect((await collect(first)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(await world.containersOf(first.id)).toEqual([]); // the first container is gone

    const before = world.api.conversation.length;
    const second = await world.dispatcher.resume(first.id, 'what was the word?');
    const events = await collect(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: false, run: 2 });
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(second.agent.claudeSessionId).toBe(first.agent.claudeSessionId);

    // The resumed thread carries the first run's turns: its prompt, its command's output, its answer.
    const resumed = world.api.conversation.slice(before)[0]?.body ?? { model: '', input: [] };
    const texts = userTexts(resumed).join('\n');
    expect(texts).toContain('remember the word PELICAN');
    expect(texts).toContain('note: remember the word PELICAN');
    expect(JSON.stringify(resumed.input)).toContain('The notes file has 1 notes');
    expect(lastUserText(resumed)).toBe('what was the word?');
    // The workspace persisted: the second run's notes file has both notes.
    expect(second.agent.result?.text).toContain('The notes file has 2 notes');
    // Codex counts the thread's tokens, earlier runs included.
    expect(second.agent.result?.tokens).toEqual({ input: 5400, output: 180, cachedInput: 2000 });
  });

  it.each([
    ['starts with a dash', '- first item\n- second item'],
    ['is an option name', '--help'],
  ])('takes a prompt that %s verbatim, never as an option', async (_, prompt) => {
    world.api.setScript(() => ({ items: [{ type: 'text', text: 'Understood.' }] }));
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('codex', { prompt });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(session.agent.result?.text).toBe('Understood.');
    expect(lastUserText(world.api.conversation.slice(before)[0]?.body ?? { model: '', input: [] })).toBe(prompt);
  });

  it('stops during a tool call: the container ends on the stop and is removed, nothing left running; a resume continues the thread', async () => {
    world.api.setScript((body) => (isToolResultTurn(body) ? { items: [{ type: 'text', text: 'never' }] } : { items: [{ type: 'shell', command: 'sleep 300; echo done' }] }));
    const session = await world.dispatcher.start('codex', { prompt: 'wait a long time' });
    let stopping: Promise<void> | undefined;
    const events = await collect(session, (e) => {
      if (e.type === 'output' && (e.agent ?? []).some((a) => a.kind === 'tool') && !stopping) stopping = session.stop();
    });
    await stopping;
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped' });
    expect(await world.containersOf(session.id)).toEqual([]);
    expect(session.agent.result).toBeUndefined(); // Codex writes nothing more on SIGTERM

    // The thread survives the stop: a resume continues it, the stopped command's output reading "aborted".
    world.api.setScript((body) => ({ items: [{ type: 'text', text: `Seen: ${toolOutputs(body).join(' | ')}` }] }));
    const resumed = await world.dispatcher.resume(session.id, 'after the stop');
    expect((await collect(resumed)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(resumed.agent.claudeSessionId).toBe(session.agent.claudeSessionId);
    expect(resumed.agent.result?.text).toBe('Seen: aborted');
  });

  it('reports an API error the agent gave up on, in its words', async () => {
    world.api.setScript(() => ({ status: 400, errorType: 'invalid_request_error', message: 'this request is refused' }));
    const session = await world.dispatcher.start('codex', { prompt: 'anything' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 1 });
    expect(session.agent.result).toMatchObject({ isError: true, text: expect.stringContaining('this request is refused') });
    expect(session.agent.result?.limit).toBeUndefined();
  });
});
