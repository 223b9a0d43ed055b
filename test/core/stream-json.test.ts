import { describe, expect, it } from 'vitest';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';

describe('parseStreamJsonLine', () => {
  it.each([
    ['plain text', 'hello world', []],
    ['empty', '', []],
    ['broken JSON', '{"type":', []],
    ['a JSON array', '[1,2]', []],
    ['another JSON object', '{"level":"info"}', []],
    ['init', '{"type":"system","subtype":"init","session_id":"s-1","model":"opus"}', [{ kind: 'init', claudeSessionId: 's-1', model: 'opus' }]],
    ['init without id', '{"type":"system","subtype":"init"}', []],
    [
      'assistant text and tools',
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', name: 'Bash', input: { command: 'ls -la' } }, { type: 'tool_use', name: 'Read', input: { file_path: '/a.ts' } }] } }),
      [{ kind: 'text', text: 'Looking.' }, { kind: 'tool', name: 'Bash', summary: 'ls -la' }, { kind: 'tool', name: 'Read', summary: '/a.ts' }],
    ],
    ['blank assistant text', JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: '  ' }] } }), []],
    ['tool result (user) ignored', JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', content: 'x' }] } }), []],
    [
      'success result',
      JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'Done.', total_cost_usd: 0.25, num_turns: 7, duration_ms: 61000, session_id: 's-1' }),
      [{ kind: 'result', isError: false, text: 'Done.', costUsd: 0.25, turns: 7, durationMs: 61000, claudeSessionId: 's-1' }],
    ],
    [
      'error result',
      JSON.stringify({ type: 'result', subtype: 'error_max_turns', is_error: false, num_turns: 50 }),
      [{ kind: 'result', isError: true, turns: 50 }],
    ],
    ['result with wrong types', JSON.stringify({ type: 'result', is_error: true, total_cost_usd: 'lots' }), [{ kind: 'result', isError: true }]],
  ])('%s', (_, line, expected) => {
    expect(parseStreamJsonLine(line)).toEqual(expected);
  });

  it('clips long tool arguments to one line', () => {
    const [event] = parseStreamJsonLine(JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: { command: `echo\n${'x'.repeat(500)}` } }] } }));
    expect(event).toMatchObject({ kind: 'tool', name: 'Bash' });
    const summary = (event as { summary: string }).summary;
    expect(summary.length).toBeLessThanOrEqual(200);
    expect(summary).not.toContain('\n');
  });
});
