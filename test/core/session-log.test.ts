import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseLogRecord, scanRun, type LogNote, type SessionEvent } from '../../src/core/index.js';
import { parseLogLine } from '../fakes/session-log.js';
import { SessionLog } from '../../src/core/session-log.js';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { tempDir } from '../fakes/pods.js';

const started = (run: number): SessionEvent => ({ type: 'container.started', at: run * 1000, containerId: `c${run}`, containerName: 'cldpd-web-00000001', exec: false, run });
const plain = (line: string, stream: 'stdout' | 'stderr' = 'stdout'): SessionEvent => ({ type: 'output', at: 1, stream, line });
const exited: SessionEvent = { type: 'container.exited', at: 9000, exitCode: 0, reason: 'exited', durationMs: 5 };
function agentLine(value: object): SessionEvent {
  const line = JSON.stringify(value);
  return { type: 'output', at: 1, stream: 'stdout', line, agent: parseStreamJsonLine(line) };
}
const init = agentLine({ type: 'system', subtype: 'init', session_id: 'claude-1' });
const result = agentLine({ type: 'result', subtype: 'success', is_error: false, result: 'Done.', total_cost_usd: 0.25, num_turns: 3, session_id: 'claude-1' });
const lines = (from: number, count: number, stream: 'stdout' | 'stderr' = 'stdout') => Array.from({ length: count }, (_, i) => plain(`line ${from + i} ${'x'.repeat(40)}`, stream));

async function records(path: string): Promise<Array<SessionEvent | LogNote>> {
  return (await readFile(path, 'utf8')).split('\n').map(parseLogRecord).filter((r): r is SessionEvent | LogNote => r !== undefined);
}

describe('SessionLog: a run\'s log is bounded', () => {
  it('keeps everything when no bound is given', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1 });
    await log.append([started(1), ...lines(1, 2000), exited]);
    await log.close();
    const logged = await records(path);
    expect(logged.filter((r) => r.type === 'output')).toHaveLength(2000);
    expect(logged.some((r) => r.type.startsWith('log.'))).toBe(false);
  });

  it('past the bound, counts output instead of writing it, says where it cut, and still writes lifecycle events and the agent\'s init and result', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const limit = 8 * 1024;
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: limit });
    await log.append([started(1), init]);
    for (let i = 0; i < 50; i++) await log.append([...lines(1 + i * 40, 30), ...lines(1 + i * 40, 10, 'stderr')]);
    await log.append([result, exited]);
    await log.close();

    const size = (await stat(path)).size;
    // The bound, plus the lines that must be kept and the notes.
    expect(size).toBeLessThan(limit + 1024);
    const logged = await records(path);
    const outputs = logged.filter((r): r is Extract<SessionEvent, { type: 'output' }> => r.type === 'output' && !('agent' in r && r.agent));
    const cut = logged.filter((r) => r.type === 'log.cut');
    expect(cut).toEqual([{ type: 'log.cut', at: 1, run: 1, limitBytes: limit }]);
    // The cut comes right after the last line kept.
    const cutAt = logged.findIndex((r) => r.type === 'log.cut');
    expect(logged.slice(cutAt + 1).some((r) => r.type === 'output' && !('agent' in r && r.agent))).toBe(false);
    // An exact count comes before each line written after the cut (here the result), so a re-attach skips what precedes it.
    expect(logged.map((r) => r.type).slice(-3)).toEqual(['log.skipped', 'output', 'container.exited']);
    const last = logged.at(-3) as Extract<LogNote, { type: 'log.skipped' }>;
    const keptStdout = outputs.filter((o) => o.stream === 'stdout').length;
    const keptStderr = outputs.filter((o) => o.stream === 'stderr').length;
    expect(last.stdout + keptStdout).toBe(1500);
    expect(last.stderr + keptStderr).toBe(500);
    expect(last.bytes).toBeGreaterThan(100_000);
    // The agent's answer is kept after the cut; the run's events are still a valid log.
    expect(logged.filter((r) => r.type === 'output' && 'agent' in r && r.agent).length).toBe(2);
    const state = await scanRun(path, 1);
    expect(state).toMatchObject({ started: true, lines: { stdout: 1502, stderr: 500 }, terminal: { type: 'container.exited' }, agent: { claudeSessionId: 'claude-1', result: { text: 'Done.' } }, log: { cut: true } });
    expect(state.log.bytes).toBe(size);
    // Event readers never see the notes.
    expect((await readFile(path, 'utf8')).split('\n').map(parseLogLine).some((e) => e?.type.startsWith('log.'))).toBe(false);
  });

  it('bounds each run on its own: a new run starts with its full allowance', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    for (const run of [1, 2]) {
      const log = await SessionLog.open(path, { run, maxRunBytes: 4096 });
      await log.append([started(run), ...lines(1, 200), exited]);
      await log.close();
    }
    const cuts = (await records(path)).filter((r) => r.type === 'log.cut');
    expect(cuts.map((c) => (c as { run: number }).run)).toEqual([1, 2]);
    const [one, two] = [await scanRun(path, 1), await scanRun(path, 2)];
    expect(one.lines.stdout).toBe(200);
    expect(two.lines.stdout).toBe(200);
    expect(two.log.bytes).toBeLessThan(4096 + 512);
  });

  it('a process that continues a cut run (after a restart) goes on counting from what the log says, and writes nothing more of its output', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const first = await SessionLog.open(path, { run: 1, maxRunBytes: 4096 });
    await first.append([started(1), ...lines(1, 300)]);
    await first.close(); // the worker went away mid-run, after its last count was written
    const before = await scanRun(path, 1);
    expect(before.log.cut).toBe(true);
    expect(before.lines.stdout).toBe(300);

    const second = await SessionLog.open(path, { run: 1, maxRunBytes: 4096, already: before.log });
    await second.append([...lines(301, 100), exited]);
    await second.close();
    const after = await scanRun(path, 1);
    expect(after.lines.stdout).toBe(400);
    expect((await records(path)).filter((r) => r.type === 'log.cut')).toHaveLength(1);
    expect(after.log.bytes).toBeLessThan(4096 + 512);
  });

  it('counts a multi-byte line by its bytes, not its characters', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: 2000 });
    await log.append([started(1), ...Array.from({ length: 100 }, () => plain('é'.repeat(50))), exited]);
    await log.close();
    expect((await stat(path)).size).toBeLessThan(2000 + 400);
  });

  const bigResult = (text: string, cost = 0.5) => agentLine({ type: 'result', subtype: 'success', is_error: false, result: text, total_cost_usd: cost, num_turns: 7, session_id: 'claude-1' });

  it('log bound: 200 result-shaped lines of 1 MB past the bound add at most about 1.2 MiB; the last result is still found, its answer\'s end kept', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const limit = 1024 * 1024;
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: limit });
    await log.append([started(1), init, ...lines(1, 100)]);
    const filler = 'R'.repeat(1_000_000);
    for (let i = 0; i < 200; i++) await log.append([bigResult(`${filler} answer ${i}`, i / 100), ...lines(1000 + i * 10, 10)]);
    await log.append([exited]);
    await log.close();

    const size = (await stat(path)).size;
    expect(size).toBeLessThan(limit + 1.25 * 1024 * 1024);
    const state = await scanRun(path, 1);
    expect(state.terminal).toMatchObject({ type: 'container.exited' });
    expect(state.agent.result?.text?.endsWith(' answer 199')).toBe(true);
    expect(state.agent.result?.text?.length).toBe(32 * 1024);
    expect(state.agent).toMatchObject({ claudeSessionId: 'claude-1', runCostUsd: 1.99, runTurns: 7 });
    // Every output line is logged or counted, once: a re-attach skips exactly what was shown.
    expect(state.lines.stdout).toBe(1 + 100 + 200 * 11);
    // The last result comes right before the end.
    expect((await records(path)).map((r) => r.type).slice(-3)).toEqual(['log.skipped', 'output', 'container.exited']);
  });

  it('log bound: held lines are written when the log is closed mid-run, where a restarted worker reads them', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: 4096 });
    await log.append([started(1), ...lines(1, 200)]);
    for (let i = 0; i < 40; i++) await log.append([bigResult(`${'Q'.repeat(100_000)} ${i}`)]);
    await log.close();
    const state = await scanRun(path, 1);
    expect(state.agent.result?.text?.endsWith('Q 39')).toBe(true);
    expect(state.lines.stdout).toBe(240);
    expect((await stat(path)).size).toBeLessThan(4096 + 1.25 * 1024 * 1024);
  });

  it('log bound: a result line that would cross the bound is cut there and written trimmed; a small one is written as it is', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: 64 * 1024 });
    await log.append([started(1), bigResult('S'.repeat(500_000)), result, exited]);
    await log.close();
    const logged = await records(path);
    expect(logged.map((r) => r.type)).toEqual(['container.started', 'log.cut', 'output', 'output', 'container.exited']);
    expect(logged[2]).toMatchObject({ line: '', agent: [{ kind: 'result', text: 'S'.repeat(32 * 1024) }] });
    expect(logged[3]).toEqual(result);
  });

  it('log bound: a trimmed line stays within 64 KiB when its characters take six bytes each escaped', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1, maxRunBytes: 1024 });
    await log.append([started(1), bigResult(`${'\u0001'.repeat(200_000)}end`), exited]);
    await log.close();
    const text = await readFile(path, 'utf8');
    const line = text.split('\n').find((l) => l.includes('"kind":"result"')) ?? '';
    expect(Buffer.byteLength(line)).toBeLessThanOrEqual(64 * 1024);
    expect((await scanRun(path, 1)).agent.result?.text?.endsWith('end')).toBe(true);
  });

  it('setup output: a setup step\'s output keeps its step in the log, so a re-attach counts only the container\'s own lines', async () => {
    const path = join(await tempDir(), 'log.jsonl');
    const log = await SessionLog.open(path, { run: 1 });
    await log.append([started(1), { ...plain('Cloning into /work'), step: 1 } as SessionEvent, plain('agent says hi')]);
    await log.close();
    expect((await records(path))[1]).toEqual({ type: 'output', at: 1, stream: 'stdout', line: 'Cloning into /work', step: 1 });
    expect((await scanRun(path, 1)).lines.stdout).toBe(1);
  });
});

