import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { AgentSummaryAccumulator, Session, scanRun, type AgentEvent, type SessionEvent, type SessionOptions } from '../../src/core/index.js';
import { parseLogLine } from '../fakes/session-log.js';
import { FakeRunner, err, out, type Script } from '../fakes/fake-runner.js';
import { tempDir } from '../fakes/pods.js';

const spec = { name: 'cldpd-p-00000000', image: 'img', cmd: ['x'], env: {}, workdir: undefined, labels: {}, mounts: [], memoryBytes: 1, cpus: 1, pids: 1, network: 'none', stopGraceSeconds: 1, stdin: false };

async function startSession(runner: FakeRunner, overrides: Partial<SessionOptions> = {}): Promise<{ session: Session; logPath: string }> {
  const logPath = join(await tempDir(), 'log.jsonl');
  const session = await Session.start({
    id: 'p-00000000',
    podName: 'p',
    run: 1,
    runner,
    logPath,
    build: { tag: 'img', contextDir: '/ctx', buildArgs: {}, labels: {}, timeoutSeconds: 60 },
    launch: async () => ({ handle: await runner.run(spec), containerName: spec.name, exec: false }),
    timeoutSeconds: 60,
    stopGraceSeconds: 1,
    removeOnExit: true,
    ...overrides,
  });
  return { session, logPath };
}

/** Reads all events, failing the test instead of hanging if the stream never ends. */
async function collect(session: Session, timeoutMs = 5000): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  const reading = (async () => {
    for await (const e of session.events()) events.push(e);
  })();
  await Promise.race([reading, new Promise((_, reject) => setTimeout(() => reject(new Error(`no terminal event within ${timeoutMs} ms`)), timeoutMs))]);
  return events;
}

async function logged(path: string): Promise<SessionEvent[]> {
  return (await readFile(path, 'utf8')).split('\n').map(parseLogLine).filter((e): e is SessionEvent => e !== undefined);
}

function withScript(script: Script): FakeRunner {
  const runner = new FakeRunner();
  runner.scripts.push(script);
  return runner;
}

describe('Session', () => {
  it('emits build, start, output and exit in the contract order, and logs exactly what it emits', async () => {
    const runner = withScript({ chunks: [out('one\ntw'), err('warn\n'), out('o\nthree')], exitCode: 3 });
    const { session, logPath } = await startSession(runner);
    const events = await collect(session);
    expect(events.map((e) => e.type)).toEqual([
      'build.started', 'build.output', 'build.output', 'build.completed', 'container.started', 'output', 'output', 'output', 'output', 'container.exited',
    ]);
    const lines = events.flatMap((e) => (e.type === 'output' ? [`${e.stream}:${e.line}`] : []));
    expect(lines).toEqual(['stdout:one', 'stderr:warn', 'stdout:two', 'stdout:three']);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 3, reason: 'exited' });
    expect(await session.wait()).toBe(3);
    expect(await logged(logPath)).toEqual(events);
    expect(runner.methods()).toContain('remove');
  });

  it('writes each event to the log before the consumer sees it', async () => {
    const runner = withScript({ chunks: Array.from({ length: 50 }, (_, i) => out(`line ${i}\n`)), exitCode: 0 });
    const { session, logPath } = await startSession(runner);
    let checked = 0;
    for await (const event of session.events()) {
      const inLog = await logged(logPath);
      expect(inLog).toContainEqual(event);
      checked += 1;
    }
    expect(checked).toBe(56);
  });

  it('ends a failed build with an error and starts no container', async () => {
    const runner = new FakeRunner();
    runner.buildError = 'The command \'/bin/sh -c exit 7\' returned a non-zero code: 7';
    const { session } = await startSession(runner);
    const events = await collect(session);
    expect(events.map((e) => e.type)).toEqual(['build.started', 'build.output', 'build.output', 'error']);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'BuildFailed', message: expect.stringContaining('non-zero code: 7') });
    expect(runner.methods()).not.toContain('run');
    await expect(session.wait()).rejects.toMatchObject({ code: 'BuildFailed' });
  });

  it('ends with an error when the container cannot be created', async () => {
    const runner = new FakeRunner();
    runner.runError = new Error('no space left on device');
    const { session } = await startSession(runner);
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', message: 'no space left on device' });
    expect(events.filter((e) => e.type === 'error' || e.type === 'container.exited')).toHaveLength(1);
  });

  it('stopped during the build: no container, an error that says so', async () => {
    const runner = new FakeRunner();
    runner.buildGate = new Promise(() => undefined); // a build that never finishes by itself
    const { session } = await startSession(runner);
    const reading = collect(session);
    await new Promise((r) => setTimeout(r, 20));
    await session.stop();
    const events = await reading;
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'Stopped', message: expect.stringContaining('stopped before its container started') });
    expect(runner.methods()).not.toContain('run');
  });

  it('a build that outlives buildTimeoutSeconds is cancelled with a clear error', async () => {
    const runner = new FakeRunner();
    runner.buildGate = new Promise(() => undefined);
    const { session } = await startSession(runner, { build: { tag: 'img', contextDir: '/ctx', buildArgs: {}, labels: {}, timeoutSeconds: 0.05 } });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'BuildFailed', message: expect.stringContaining('buildTimeoutSeconds') });
  });

  it('stops a running container on timeout and says so', async () => {
    const runner = withScript({ chunks: [out('working\n')], exitCode: 0, hold: true });
    const { session } = await startSession(runner, { timeoutSeconds: 0.05 });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'timeout', exitCode: 143 });
    expect(runner.methods().filter((m) => m === 'stop')).toHaveLength(1);
  });

  it('stop is idempotent', async () => {
    const runner = withScript({ chunks: [], exitCode: 0, hold: true });
    const { session } = await startSession(runner);
    const reading = collect(session);
    while (!session.containerId) await new Promise((r) => setTimeout(r, 5));
    await Promise.all([session.stop(), session.stop()]);
    await session.stop();
    const events = await reading;
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped' });
    expect(runner.methods().filter((m) => m === 'stop')).toHaveLength(1);
    await session.stop(); // after the end too
  });

  it('wait() drains the events when nobody reads them, so a chatty container is not blocked', async () => {
    const runner = withScript({ chunks: Array.from({ length: 3000 }, (_, i) => out(`${i}\n`)), exitCode: 0 });
    const { session, logPath } = await startSession(runner, { capacity: 8 });
    expect(await session.wait()).toBe(0);
    expect((await logged(logPath)).filter((e) => e.type === 'output')).toHaveLength(3000);
  });

  it('allows only one reader of the events', async () => {
    const { session } = await startSession(withScript({ chunks: [], exitCode: 0 }));
    session.events();
    expect(() => session.events()).toThrow(/already being read/);
  });

  it('understands Claude Code stream-json and reports the Claude session id once', async () => {
    const seen: string[] = [];
    const lines = [
      '{"type":"system","subtype":"init","session_id":"claude-1"}',
      '{"type":"assistant","message":{"content":[{"type":"text","text":"Fixed it."},{"type":"tool_use","name":"Bash","input":{"command":"npm test"}}]}}',
      '{"type":"result","subtype":"success","is_error":false,"result":"All green.","num_turns":3,"total_cost_usd":0.5,"duration_ms":900,"session_id":"claude-1"}',
    ];
    const runner = withScript({ chunks: [out(lines.join('\n') + '\n')], exitCode: 0 });
    const { session } = await startSession(runner, { onClaudeSession: async (id) => void seen.push(id) });
    const events = await collect(session);
    const agentEvents = events.flatMap((e) => (e.type === 'output' ? e.agent ?? [] : []));
    expect(agentEvents.map((a) => a.kind)).toEqual(['init', 'text', 'tool', 'result']);
    expect(session.agent).toMatchObject({ claudeSessionId: 'claude-1', lastText: 'Fixed it.', lastTool: 'Bash: npm test', result: { text: 'All green.', turns: 3, costUsd: 0.5 } });
    expect(seen).toEqual(['claude-1']);
  });

  it('does not remove the container of an exec run', async () => {
    const runner = withScript({ chunks: [out('x\n')], exitCode: 0 });
    const { session } = await startSession(runner, { removeOnExit: false, build: undefined });
    const events = await collect(session);
    expect(events[0]?.type).toBe('container.started');
    expect(runner.methods()).not.toContain('remove');
  });

  it('calls onFinish once with the terminal event', async () => {
    const finished: SessionEvent[] = [];
    const { session } = await startSession(withScript({ chunks: [], exitCode: 9 }), { onFinish: async (t) => void finished.push(t) });
    await session.wait();
    expect(finished).toHaveLength(1);
    expect(finished[0]).toMatchObject({ type: 'container.exited', exitCode: 9 });
  });
});

describe('Session.stop before the container exists', () => {
  const exited = (events: SessionEvent[]) => events.at(-1) as Extract<SessionEvent, { type: 'container.exited' }>;
  const stopsOf = (runner: FakeRunner) => runner.calls.filter((c) => c.method === 'stop').map((c) => c.args[0]);

  it('stop before launch: a stop while the container is being created stops it as soon as it exists', async () => {
    const runner = withScript({ chunks: [out('working\n')], exitCode: 0, hold: true });
    runner.launchDelayMs = 200;
    const { session } = await startSession(runner, { timeoutSeconds: 0.5 });
    const reading = collect(session, 2000);
    await new Promise((r) => setTimeout(r, 50));
    expect(runner.methods()).toContain('run'); // the container is being created
    const stopped = session.stop();
    await stopped; // resolves once the container has stopped
    expect(stopsOf(runner)).toEqual(['c1']);
    expect(exited(await reading)).toMatchObject({ type: 'container.exited', reason: 'stopped', exitCode: 143 });
  });

  it('stop before launch: the timeout counts from the launch on and stops the container as soon as it exists', async () => {
    const runner = withScript({ chunks: [], exitCode: 0, hold: true });
    runner.launchDelayMs = 400;
    const { session } = await startSession(runner, { timeoutSeconds: 0.2 });
    const events = await collect(session, 2000);
    expect(stopsOf(runner)).toEqual(['c1']);
    expect(exited(events)).toMatchObject({ type: 'container.exited', reason: 'timeout', exitCode: 143 });
    expect(exited(events).durationMs).toBeLessThan(150); // stopped on creation, not a whole timeout later
  });

  it('stop before launch: a runner.stop that failed is tried again by the next stop()', async () => {
    const runner = withScript({ chunks: [], exitCode: 0, hold: true });
    runner.stopErrors.push(new Error('Docker is busy'));
    const { session } = await startSession(runner);
    const reading = collect(session, 2000);
    while (!session.containerId) await new Promise((r) => setTimeout(r, 5));
    await expect(session.stop()).rejects.toThrow('Docker is busy');
    await session.stop();
    expect(stopsOf(runner)).toEqual(['c1', 'c1']);
    expect(exited(await reading)).toMatchObject({ reason: 'stopped', exitCode: 143 });
    await session.stop(); // done: no third attempt
    expect(stopsOf(runner)).toHaveLength(2);
  });

  it('stop before launch: when the stop of a container being created fails, the timeout stops it, and the first reason is reported', async () => {
    const runner = withScript({ chunks: [], exitCode: 0, hold: true });
    runner.launchDelayMs = 100;
    runner.stopErrors.push(new Error('Docker is busy'));
    const { session } = await startSession(runner, { timeoutSeconds: 0.3 });
    const reading = collect(session, 2000);
    await new Promise((r) => setTimeout(r, 20));
    await expect(session.stop()).rejects.toThrow('Docker is busy');
    const events = await reading;
    expect(stopsOf(runner)).toEqual(['c1', 'c1']);
    expect(exited(events)).toMatchObject({ reason: 'stopped', exitCode: 143 });
  });

  it('stop before launch: concurrent stops during the creation share one runner.stop', async () => {
    const runner = withScript({ chunks: [], exitCode: 0, hold: true });
    runner.launchDelayMs = 100;
    const { session } = await startSession(runner, { build: undefined });
    const reading = collect(session, 2000);
    await new Promise((r) => setTimeout(r, 20));
    await Promise.all([session.stop(), session.stop('timeout'), session.stop()]);
    expect(stopsOf(runner)).toEqual(['c1']);
    expect(exited(await reading)).toMatchObject({ reason: 'stopped' });
  });

  it('stop before launch: a stop during the build still cancels it, starts no container, and resolves', async () => {
    const runner = new FakeRunner();
    runner.buildGate = new Promise(() => undefined);
    const { session } = await startSession(runner);
    const reading = collect(session, 2000);
    await new Promise((r) => setTimeout(r, 20));
    await session.stop();
    expect((await reading).at(-1)).toMatchObject({ type: 'error', code: 'Stopped', message: expect.stringContaining('stopped before its container started') });
    expect(runner.methods()).not.toContain('run');
    expect(runner.methods()).not.toContain('stop');
  });

  it('stop before launch: a stop after the run has ended does nothing', async () => {
    const runner = withScript({ chunks: [out('done\n')], exitCode: 0 });
    const { session } = await startSession(runner);
    await collect(session);
    await session.stop();
    expect(runner.methods()).not.toContain('stop');
  });
});

describe('AgentSummaryAccumulator', () => {
  const result = (costUsd: number, turns: number): AgentEvent => ({ kind: 'result', isError: false, text: 'done', costUsd, turns, claudeSessionId: 'claude-2' });

  it('recovered summary: keeps the last text and tool, and says what the agent is doing', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add([{ kind: 'init', claudeSessionId: 'claude-1' }, { kind: 'text', text: 'Looking.' }, { kind: 'thinking', chars: 10 }]);
    expect(acc.summary).toEqual({ claudeSessionId: 'claude-1', lastText: 'Looking.', activity: 'thinking' });
    acc.add([{ kind: 'tool', name: 'Bash', summary: 'npm test' }, { kind: 'tool_result', isError: false, chars: 1, lines: 1, firstLine: 'ok' }]);
    expect(acc.summary).toMatchObject({ lastTool: 'Bash: npm test', activity: 'Bash: npm test' });
    acc.add([{ kind: 'message', text: 'more', replay: true }, { kind: 'tool', name: 'Read', summary: '' }]);
    expect(acc.summary).toMatchObject({ lastTool: 'Read', activity: 'Read' });
    acc.add([{ kind: 'message', text: 'more', replay: true }]);
    expect(acc.summary.activity).toBe('reading a new instruction');
  });

  it.each([
    ['a first run', { costUsd: 0, turns: 0 }, result(0.5, 4), { runCostUsd: 0.5, sessionCostUsd: 0.5, runTurns: 4, sessionTurns: 4 }],
    ['a resume reporting the whole session', { costUsd: 0.5, turns: 4 }, result(0.75, 2), { runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 }],
    ['a resume reporting its own process only', { costUsd: 0.5, turns: 4 }, result(0.25, 1), { runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 1, sessionTurns: 5 }],
  ])('recovered summary: counts cost and turns of %s', (_, before, event, expected) => {
    const acc = new AgentSummaryAccumulator(before);
    acc.add([event]);
    expect(acc.summary).toMatchObject({ ...expected, claudeSessionId: 'claude-2', result: event });
  });

  it('recovered summary: counts again from another "before", and continues a seed without changing it', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add([result(0.75, 2)]);
    acc.rebase({ costUsd: 0.5, turns: 4 });
    expect(acc.summary).toMatchObject({ runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 });

    const seed = { claudeSessionId: 'claude-1', lastText: 'Earlier.', messagesSent: 1 };
    const next = new AgentSummaryAccumulator({ costUsd: 0, turns: 0 }, seed);
    next.add([{ kind: 'tool', name: 'Edit', summary: 'a.ts' }]);
    expect(next.summary).toEqual({ claudeSessionId: 'claude-1', lastText: 'Earlier.', messagesSent: 1, lastTool: 'Edit: a.ts', activity: 'Edit: a.ts' });
    expect(seed).toEqual({ claudeSessionId: 'claude-1', lastText: 'Earlier.', messagesSent: 1 });
  });
});

describe('SessionLog', () => {
  it('writes output lines that any JSON parser reads back exactly', async () => {
    const { SessionLog } = await import('../../src/core/session-log.js');
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path);
    const lines = ['plain', 'with "quotes"', 'back\\slash', 'tab\there', 'ctrl\u0001x', 'emoji \u{1F600} and \u2028 separator', '', 'é'];
    const events: SessionEvent[] = lines.map((line, i) => (i % 2 ? { type: 'output', at: i, stream: 'stderr', line, partial: true } : { type: 'output', at: i, stream: 'stdout', line }));
    await log.append(events);
    await log.close();
    const text = await readFile(path, 'utf8');
    expect(text.trim().split('\n').map((l) => JSON.parse(l) as unknown)).toEqual(events);
  });
});

describe('Session live input (stream-json with replayed user messages)', () => {
  const stdinSpec = { ...spec, stdin: true };
  const live = { text: 'first task', channel: { kind: 'stream-json' as const, live: true } };
  const replay = (text: string) => out(`${JSON.stringify({ type: 'user', isReplay: true, message: { role: 'user', content: [{ type: 'text', text }] } })}\n`);
  const result = (cost: number) => out(`${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', total_cost_usd: cost, num_turns: 1 })}\n`);
  const messages = (text: string) => text.trim().split('\n').map((l) => (JSON.parse(l) as { message: { content: Array<{ text: string }> } }).message.content[0]?.text);

  async function liveSession(runner: FakeRunner) {
    const started = await startSession(runner, {
      build: undefined, prompt: live,
      launch: async () => ({ handle: await runner.run(stdinSpec), containerName: stdinSpec.name, exec: false }),
    });
    while (!started.session.containerId) await new Promise((r) => setTimeout(r, 2));
    return { ...started, input: () => runner.stdin.get(started.session.containerId as string) };
  }

  it('writes the prompt as a user message and closes the input once it is taken and answered', async () => {
    const runner = withScript({ chunks: [replay('first task'), result(0.1)], exitCode: 0, hold: true });
    const { session, input } = await liveSession(runner);
    const events = collect(session);
    while (!input()?.ended) await new Promise((r) => setTimeout(r, 2));
    expect(messages(input()?.text ?? '')).toEqual(['first task']);
    expect(session.acceptsInput).toBe(false);
    expect(await session.send('too late')).toBe(false); // the caller resumes after the run instead
    await session.stop();
    await events;
  });

  it('keeps the input open for a message sent before the answer, until that message is answered too', async () => {
    let release!: () => void;
    const after = new Promise<void>((r) => (release = r));
    // The agent takes the first message, the second arrives mid-turn and is merged into it,
    // then one result answers both (as the real CLI does).
    const runner = withScript({ chunks: [replay('first task')], exitCode: 0, hold: true, then: { after, chunks: [replay('second'), result(0.2)] } });
    const { session, input } = await liveSession(runner);
    const events = collect(session);
    while (!input()?.text) await new Promise((r) => setTimeout(r, 2));
    expect(await session.send('second')).toBe(true);
    expect(input()?.ended).toBe(false);
    release();
    while (!input()?.ended) await new Promise((r) => setTimeout(r, 2));
    expect(messages(input()?.text ?? '')).toEqual(['first task', 'second']);
    expect(session.agent.messagesSent).toBe(1);
    expect(session.untakenMessages()).toEqual([]);
    await session.stop();
    await events;
  });

  it('does not close the input while a message is reserved, and closes it when the reservation is given back', async () => {
    let release!: () => void;
    const after = new Promise<void>((r) => (release = r));
    const runner = withScript({ chunks: [replay('first task')], exitCode: 0, hold: true, then: { after, chunks: [result(0.1)] } });
    const { session, input } = await liveSession(runner);
    const events = collect(session);
    const reservation = session.reserve();
    expect(reservation).toBeDefined();
    release();
    while (!session.agent.result) await new Promise((r) => setTimeout(r, 2));
    expect(input()?.ended).toBe(false); // the answer came, but a message is on its way
    reservation?.cancel();
    expect(input()?.ended).toBe(true);
    await session.stop();
    await events;
  });

  it('names the messages the agent never took once the run has ended', async () => {
    let release!: () => void;
    const after = new Promise<void>((r) => (release = r));
    // The agent takes the first prompt and "dies" (exits) without taking the one sent after it.
    const runner = withScript({ chunks: [replay('first task')], exitCode: 1, then: { after, chunks: [] } });
    const { session } = await liveSession(runner);
    const events = collect(session);
    while (session.agent.activity === undefined) await new Promise((r) => setTimeout(r, 2));
    const reservation = session.reserve();
    const taken = session.whenTaken('7');
    await reservation?.send('second', '7');
    const late = session.reserve(); // held across the end of the run
    expect(session.untakenMessages()).toEqual(['7']);
    release();
    await events;
    expect(session.untakenMessages()).toEqual(['7']);
    expect(await taken).toBe(false);
    expect(await session.whenTaken('7')).toBe(false);
    // After the end nothing more is written, and a reservation's send says so.
    expect(session.reserve()).toBeUndefined();
    await expect(late?.send('third', '8')).rejects.toMatchObject({ code: 'Stopped' });
  });

  it('takes no message once stopped', async () => {
    const runner = withScript({ chunks: [replay('first task')], exitCode: 0, hold: true });
    const { session } = await liveSession(runner);
    const events = collect(session);
    while (session.agent.activity === undefined) await new Promise((r) => setTimeout(r, 2));
    await session.stop();
    expect(session.reserve()).toBeUndefined();
    expect(await session.send('x')).toBe(false);
    await events;
  });

});

describe('Session: lines longer than a piece', () => {
  const MiB = 1024 * 1024;
  const secret = 'Zq8vL2mN4pR7tX1yB6cD9fG3hJ5kW0sE';
  const toolResult = (content: string) => JSON.stringify({ type: 'user', message: { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content }] } });
  const outputs = (events: SessionEvent[]) => events.filter((e): e is Extract<SessionEvent, { type: 'output' }> => e.type === 'output');
  /** Pieces that would reach a comment or page as plain output. */
  const plain = (events: SessionEvent[]) => outputs(events).filter((e) => !e.agent);

  it('long lines: a stream-json tool result over a piece is read whole; no piece of it is plain output, the log keeps every byte', async () => {
    const line = toolResult(`${'A'.repeat(MiB - 40)}${secret}${'B'.repeat(MiB + 3)}`);
    const runner = withScript({ chunks: [out(`${line.slice(0, 700_000)}`), out(`${line.slice(700_000)}\nafter\n`)], exitCode: 0 });
    const { session, logPath } = await startSession(runner);
    const events = await collect(session);
    const pieces = outputs(events).slice(0, -1);
    expect(pieces.length).toBe(3);
    expect(pieces.slice(0, -1).every((e) => e.partial && e.agent?.length === 0)).toBe(true);
    expect(pieces.at(-1)?.agent).toEqual([{ kind: 'tool_result', toolUseId: 't1', isError: false, chars: 2 * MiB - 37 + secret.length, lines: 1, firstLine: expect.any(String) as string }]);
    expect(plain(events).map((e) => e.line)).toEqual(['after']);
    const log = outputs(await logged(logPath));
    expect(log.slice(0, -1).map((e) => e.line).join('')).toBe(line);
  });

  it('long lines: a "{" line beyond the parsing bound, or not stream-json, is a payload shown by its size', async () => {
    const huge = toolResult('C'.repeat(9 * MiB));
    const notJson = `{${'D'.repeat(MiB + 10)}`;
    const runner = withScript({ chunks: [out(`${huge}\n`), out(`${notJson}\n`)], exitCode: 0 });
    const { session, logPath } = await startSession(runner);
    const events = await collect(session);
    expect(plain(events)).toEqual([]);
    const ends = outputs(events).filter((e) => !e.partial);
    expect(ends.map((e) => e.agent)).toEqual([
      [{ kind: 'tool_result', isError: false, chars: huge.length, lines: 1, firstLine: '' }],
      [{ kind: 'tool_result', isError: false, chars: notJson.length, lines: 1, firstLine: '' }],
    ]);
    expect(outputs(await logged(logPath)).map((e) => e.line).join('')).toBe(huge + notJson);
  });

  it('long lines: a worker that re-attaches inside a long stream-json line goes on reading it as the agent\'s, never as plain output', async () => {
    const line = toolResult('F'.repeat(3 * MiB));
    // The previous worker logged the first piece, then went away.
    const first = withScript({ chunks: [out(line.slice(0, MiB + 10))], exitCode: 0, hold: true });
    const { session: before, logPath } = await startSession(first);
    const reading = collect(before);
    while (!(await readFile(logPath, 'utf8')).includes('"partial":true')) await new Promise((r) => setTimeout(r, 5));
    const state = await scanRun(logPath, 1);
    expect(state.openLine).toBe('stream-json');
    await before.stop();
    await reading;
    // Docker replays the container's output from its start; the new process skips what was logged.
    const again = withScript({ chunks: [out(`${line}\nafter\n`)], exitCode: 0 });
    const { session } = await startSession(again, { build: undefined, reattach: { stdout: 1, stderr: 0, openLine: state.openLine } });
    const events = await collect(session);
    expect(plain(events).map((e) => e.line)).toEqual(['after']);
    expect(outputs(events).find((e) => !e.partial)?.agent).toEqual([{ kind: 'tool_result', isError: false, chars: line.length - MiB, lines: 1, firstLine: '' }]);
  });

  it('long lines: an injected value across the cut of a plain line reaches one piece whole, and the pieces still join to the line', async () => {
    for (const before of [MiB - 16, MiB - 1, MiB]) {
      const line = `${'x'.repeat(before)}${secret} and more`;
      const runner = withScript({ chunks: [out(`${line}\n`)], exitCode: 0 });
      const { session } = await startSession(runner, { injected: [secret, 'short'] });
      const lines = plain(await collect(session)).map((e) => e.line);
      expect(lines.join('')).toBe(line);
      expect(lines.filter((l) => l.includes(secret))).toHaveLength(1);
      for (const l of lines.filter((l) => !l.includes(secret))) expect(l.endsWith(secret.slice(0, 4)), `cut after ${before}`).toBe(false);
    }
  });

});

describe('Session: the agent\'s own reader', () => {
  it('reads each whole stdout line with the pod\'s reader, in order and with its state: a long line read whole, stderr and other lines plain', async () => {
    const runner = new FakeRunner();
    const long = `{"say":"${'x'.repeat(1024 * 1024 + 10)}"}`;
    runner.scripts.push({ chunks: [out('{"say":"one"}\n{"say":"tw'), out('o"}\nplain words\n'), err('{"say":"not mine"}\n'), out(`${long}\n`)], exitCode: 0 });
    const seen: string[] = [];
    // A reader that remembers what came before: each text says how many lines it has read.
    let lines = 0;
    const reader = {
      line(text: string): AgentEvent[] {
        lines += 1;
        seen.push(text.slice(0, 20));
        const said = /^\{"say":"(\w{1,10})/.exec(text);
        return said ? [{ kind: 'text', text: `${lines}: ${said[1]}` }] : [];
      },
    };
    const { session } = await startSession(runner, { reader });
    const events = await collect(session);
    const texts = events.flatMap((e) => (e.type === 'output' && e.agent ? e.agent : [])).map((a) => (a.kind === 'text' ? a.text : a.kind));
    expect(texts).toEqual(['1: one', '2: two', '4: xxxxxxxxxx']);
    // stderr is never the agent's; a plain line is read and yields nothing, so it stays plain output.
    expect(seen).not.toContain('{"say":"not mine"}');
    expect(events.some((e) => e.type === 'output' && e.line === 'plain words' && !e.agent)).toBe(true);
    expect(session.agent.lastText).toBe('4: xxxxxxxxxx');
  });
});

describe('Session: a re-attached run\'s reader', () => {
  it('reads the lines a previous process already logged, without telling them again: what it keeps across lines is as it was', async () => {
    const runner = new FakeRunner();
    runner.scripts.push({ chunks: [out('{"n":1}\n{"n":2}\n{"n":3}\n'), err('{"n":"err"}\n')], exitCode: 0 });
    let lines = 0;
    const reader = { line: (text: string): AgentEvent[] => (text.startsWith('{"n":') ? [{ kind: 'text', text: `line ${++lines}` }] : []) };
    const { session } = await startSession(runner, { reader, reattach: { stdout: 2, stderr: 0 } });
    const events = await collect(session);
    const texts = events.flatMap((e) => (e.type === 'output' && e.agent ? e.agent : [])).map((a) => (a.kind === 'text' ? a.text : a.kind));
    // The two lines already logged were read (the reader counted them) but not emitted again.
    expect(texts).toEqual(['line 3']);
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stdout')).toHaveLength(1);
  });
});
