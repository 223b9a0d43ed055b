import { describe, expect, it } from 'vitest';
import { AgentSummaryAccumulator, RECENT_MESSAGES } from '../../src/core/agent-summary.js';
import type { AgentEvent } from '../../src/core/events.js';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';

/** One line of an assistant message, as Claude Code writes it: one content block, the message's usage as at its start. */
function line(id: string, block: object, usage: object = { input_tokens: 2000, output_tokens: 1, cache_creation_input_tokens: 10_000, cache_read_input_tokens: 50_000 }, model = 'claude-sonnet-4-5-20250929'): AgentEvent[] {
  return parseStreamJsonLine(JSON.stringify({ type: 'assistant', message: { id, model, role: 'assistant', content: [block], usage } }));
}
const result = (costUsd: number): AgentEvent[] => parseStreamJsonLine(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', total_cost_usd: costUsd }));
/** 2000 input, 10,000 written and 50,000 read from the cache at Sonnet 4.5's prices: $0.0585, and output on top. */
const PROMPT_USD = 0.0585;

describe('AgentSummaryAccumulator spend', () => {
  it('stopped spend: a message counts once, however many lines repeat its usage; its output at least a token per 4 characters', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add(line('msg_1', { type: 'text', text: 'x'.repeat(400) }));
    acc.add(line('msg_1', { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } }));
    // 400 + 4 + 16 characters: 105 output tokens at $15 a million.
    expect(acc.summary.spend?.usd).toBeCloseTo(PROMPT_USD + 105 * 15e-6, 9);
    expect(acc.summary.spend?.estimatedUsd).toBe(acc.summary.spend?.usd);
    expect(acc.summary.runCostUsd).toBeUndefined(); // an estimate is never shown as the run's cost
  });

  it('stopped spend: the output tokens a line reports count when more than its characters say', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add(line('msg_1', { type: 'text', text: 'hi' }, { input_tokens: 0, output_tokens: 1000 }));
    expect(acc.summary.spend?.usd).toBeCloseTo(0.015, 9);
  });

  it('stopped spend: the result\'s cost replaces the estimate of what came before it, never added to it; what follows it is estimated on top', () => {
    const acc = new AgentSummaryAccumulator({ costUsd: 1, turns: 3 }); // the session's earlier runs
    acc.add(line('msg_1', { type: 'text', text: 'hi' }));
    acc.add(result(1.25));
    expect(acc.summary.spend).toEqual({ usd: 0.25, estimatedUsd: 0, settledUsd: 0, recent: [] });
    acc.add(line('msg_2', { type: 'text', text: 'hi' }));
    expect(acc.summary.spend?.usd).toBeCloseTo(0.25 + PROMPT_USD + 1 * 15e-6, 9);
    acc.add(result(1.5));
    expect(acc.summary.spend?.usd).toBeCloseTo(0.5, 9);
  });

  it('stopped spend: a result without a cost leaves the estimate standing', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add(line('msg_1', { type: 'text', text: 'hi' }));
    acc.add(parseStreamJsonLine(JSON.stringify({ type: 'result', subtype: 'error_during_execution', is_error: true })));
    expect(acc.summary.spend?.usd).toBeCloseTo(PROMPT_USD + 15e-6, 9);
  });

  it('stopped spend: interleaved messages (subagents) count once each; past the recent ones they are settled, not lost', () => {
    const acc = new AgentSummaryAccumulator();
    for (let i = 0; i < RECENT_MESSAGES + 4; i++) {
      acc.add(line(`msg_${i}`, { type: 'text', text: 'hi' }));
      acc.add(line('msg_sub', { type: 'text', text: 'yo' }));
    }
    // msg_sub's lines repeat its usage: one message, its characters added up.
    const each = PROMPT_USD + 15e-6;
    expect(acc.summary.spend?.usd).toBeCloseTo((RECENT_MESSAGES + 4) * each + PROMPT_USD + Math.ceil((2 * (RECENT_MESSAGES + 4)) / 4) * 15e-6, 9);
    expect(acc.summary.spend?.recent).toHaveLength(RECENT_MESSAGES);
  });

  it('stopped spend: a run re-attached after a restart, seeded with the summary so far, counts a message cut in two by the restart once', () => {
    const before = new AgentSummaryAccumulator();
    before.add(line('msg_1', { type: 'text', text: 'x'.repeat(40) }));
    const after = new AgentSummaryAccumulator(undefined, JSON.parse(JSON.stringify(before.summary)));
    after.add(line('msg_1', { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } }));
    const whole = new AgentSummaryAccumulator();
    whole.add(line('msg_1', { type: 'text', text: 'x'.repeat(40) }));
    whole.add(line('msg_1', { type: 'tool_use', id: 't1', name: 'Bash', input: { command: 'ls' } }));
    expect(after.summary.spend?.usd).toBeCloseTo(whole.summary.spend?.usd ?? NaN, 12);
  });

  it('stopped spend: a re-attached run that had its result keeps the result\'s cost when more is estimated after it', () => {
    const before = new AgentSummaryAccumulator();
    before.add(result(0.5));
    const after = new AgentSummaryAccumulator(undefined, before.summary);
    after.add(line('msg_2', { type: 'text', text: 'hi' }));
    expect(after.summary.spend?.usd).toBeCloseTo(0.5 + PROMPT_USD + 15e-6, 9);
  });
});

describe('AgentSummaryAccumulator: an agent that counts per run', () => {
  it('a run-only cost adds to the session\'s, even when it is more than all before it; a result without text answers with the last message', () => {
    const acc = new AgentSummaryAccumulator({ costUsd: 0.5, turns: 2 });
    acc.add([{ kind: 'text', text: 'The fix is in.' }, { kind: 'result', isError: false, costUsd: 0.75, turns: 1, runOnly: true }]);
    expect(acc.summary).toMatchObject({ runCostUsd: 0.75, sessionCostUsd: 1.25, runTurns: 1, sessionTurns: 3 });
    expect(acc.summary.result?.text).toBe('The fix is in.');
  });

  it('an error result keeps its own words: the last message is not taken for an answer', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add([{ kind: 'text', text: 'working on it' }, { kind: 'result', isError: true, errors: ['stream disconnected'] }]);
    expect(acc.summary.result?.text).toBeUndefined();
  });
});

describe('AgentSummaryAccumulator: a conversation id from the stream', () => {
  it('keeps an id, and ignores one that could be read as an option or a path', () => {
    const acc = new AgentSummaryAccumulator();
    acc.add([{ kind: 'init', claudeSessionId: 'thread-1' }, { kind: 'init', claudeSessionId: '--yolo' }, { kind: 'result', isError: false, claudeSessionId: '../x' }]);
    expect(acc.summary.claudeSessionId).toBe('thread-1');
  });
});
