import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { scanRun, type SessionEvent } from '../../src/core/index.js';
import { SessionLog } from '../../src/core/session-log.js';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { tempDir } from '../fakes/pods.js';

const started = (run: number, at = run * 1000): SessionEvent => ({ type: 'container.started', at, containerId: `c${run}`, containerName: 'cldpd-web-00000001', exec: false, run });
const plain = (line: string, stream: 'stdout' | 'stderr' = 'stdout'): SessionEvent => ({ type: 'output', at: 1, stream, line });
const exited = (at: number): SessionEvent => ({ type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 5 });
/** An output event as a Session logs a stream-json line. */
function agentLine(value: object): SessionEvent {
  const line = JSON.stringify(value);
  return { type: 'output', at: 1, stream: 'stdout', line, agent: parseStreamJsonLine(line) };
}
const text = (t: string) => agentLine({ type: 'assistant', message: { content: [{ type: 'text', text: t }] } });
const result = (answer: string, cost: number, turns: number) =>
  agentLine({ type: 'result', subtype: 'success', is_error: false, result: answer, total_cost_usd: cost, num_turns: turns, session_id: 'claude-1' });

async function logOf(events: SessionEvent[]): Promise<string> {
  const path = join(await tempDir(), 'log.jsonl');
  const log = await SessionLog.open(path);
  await log.append(events);
  await log.close();
  return path;
}

describe('scanRun', () => {
  it('tells whether the run started, its lines per stream and its terminal event', async () => {
    const path = await logOf([started(1), plain('a'), plain('b', 'stderr'), text('hi'), exited(1500)]);
    expect(await scanRun(path, 1)).toMatchObject({ started: true, lines: { stdout: 2, stderr: 1 }, terminal: { type: 'container.exited', at: 1500 } });
    expect(await scanRun(path, 2)).toMatchObject({ started: false, lines: { stdout: 0, stderr: 0 }, terminal: undefined, agent: {} });
  });

  it('reads a missing log as an empty one', async () => {
    expect(await scanRun(join(await tempDir(), 'none.jsonl'), 1)).toEqual({ started: false, terminal: undefined, lines: { stdout: 0, stderr: 0 }, tail: [], agent: {}, log: { bytes: 0, cut: false, skipped: { stdout: 0, stderr: 0, bytes: 0 } }, blocked: {} });
  });

  it('recovered summary: sums up what the agent said in the run, as a live run does, and nothing of other runs', async () => {
    const path = await logOf([
      started(1), text('first run'), result('first answer', 0.5, 4), exited(1500),
      started(2), agentLine({ type: 'system', subtype: 'init', session_id: 'claude-1' }), text('Fixed it.'),
      agentLine({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: { command: 'npm test' } }] } }),
      result('All green.', 0.75, 2), exited(2500),
    ]);
    const run1 = await scanRun(path, 1);
    expect(run1.agent).toMatchObject({ lastText: 'first run', result: { text: 'first answer' }, runCostUsd: 0.5, runTurns: 4 });
    const run2 = await scanRun(path, 2);
    expect(run2.agent).toEqual({
      claudeSessionId: 'claude-1', lastText: 'Fixed it.', lastTool: 'Bash: npm test', activity: 'Bash: npm test',
      result: expect.objectContaining({ kind: 'result', text: 'All green.', costUsd: 0.75, turns: 2 }),
      runCostUsd: 0.75, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 2,
      spend: { usd: 0.75, estimatedUsd: 0, settledUsd: 0, recent: [] },
    });
  });

  it('recovered summary: counts the run\'s cost and turns from what was spent before it, given its terminal', async () => {
    const path = await logOf([started(2), result('ok', 0.75, 2), exited(2500)]);
    const seen: unknown[] = [];
    const { agent } = await scanRun(path, 2, {
      before: (terminal) => {
        seen.push(terminal);
        return { costUsd: 0.5, turns: 4 };
      },
    });
    expect(seen).toEqual([expect.objectContaining({ type: 'container.exited', at: 2500 })]);
    expect(agent).toMatchObject({ runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 });
  });

  it('recovered summary: keeps the last plain lines of the run for the tail, never stream-json', async () => {
    const path = await logOf([started(1), plain('old'), started(2), plain('one'), text('said'), plain('two'), plain('three', 'stderr'), result('ok', 0.1, 1)]);
    const { tail, terminal } = await scanRun(path, 2, { keep: 2 });
    expect(tail).toEqual(['two', 'three']);
    expect(terminal).toBeUndefined();
  });

  it('a run started again (its process re-created) is read from its last start', async () => {
    const path = await logOf([started(1), plain('a'), result('stale', 1, 1), started(1), plain('b')]);
    expect(await scanRun(path, 1)).toMatchObject({ lines: { stdout: 1, stderr: 0 }, tail: ['b'], agent: {} });
  });
});
