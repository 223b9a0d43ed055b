import { describe, expect, it } from 'vitest';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { isWellFormed } from '../../src/core/text.js';

describe('parseStreamJsonLine', () => {
  it.each([
    ['plain text', 'hello world', []],
    ['empty', '', []],
    ['broken JSON', '{"type":', []],
    ['a JSON array', '[1,2]', []],
    ['another JSON object', '{"level":"info"}', []],
    ['init', '{"type":"system","subtype":"init","session_id":"s-1","model":"opus"}', [{ kind: 'init', claudeSessionId: 's-1', model: 'opus' }]],
    ['init without id', '{"type":"system","subtype":"init"}', [{ kind: 'system', subtype: 'init' }]],
    ['other system message', '{"type":"system","subtype":"thinking_tokens","session_id":"s"}', [{ kind: 'system', subtype: 'thinking_tokens' }]],
    ['an unknown message of the CLI', '{"type":"rate_limit_event","session_id":"s"}', [{ kind: 'other', type: 'rate_limit_event' }]],
    ['a JSON log line of another program', '{"type":"info","msg":"x"}', []],
    [
      'thinking',
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'thinking', thinking: 'hmm, let me see', signature: 's' }] } }),
      [{ kind: 'thinking', chars: 15 }],
    ],
    [
      'tool result, never its text beyond the first line',
      JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: 't1', content: 'password=hunter2\nline 2\nline 3', is_error: false }] } }),
      [{ kind: 'tool_result', toolUseId: 't1', isError: false, chars: 30, lines: 3, firstLine: 'password=hunter2' }],
    ],
    [
      'tool result with text parts, an error',
      JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', content: [{ type: 'text', text: '\n  boom' }], is_error: true }] } }),
      [{ kind: 'tool_result', isError: true, chars: 7, lines: 2, firstLine: 'boom' }],
    ],
    [
      'a replayed user message',
      JSON.stringify({ type: 'user', isReplay: true, message: { role: 'user', content: [{ type: 'text', text: '- do this' }] } }),
      [{ kind: 'message', text: '- do this', replay: true }],
    ],
    [
      'error result with errors',
      JSON.stringify({ type: 'result', subtype: 'error_during_execution', is_error: true, errors: ['API Error: 500', { message: 'then this' }, 7] }),
      [{ kind: 'result', isError: true, subtype: 'error_during_execution', errors: ['API Error: 500', 'then this'] }],
    ],
    [
      'assistant text and tools',
      JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', name: 'Bash', input: { command: 'ls -la' } }, { type: 'tool_use', name: 'Read', input: { file_path: '/a.ts' } }] } }),
      [{ kind: 'text', text: 'Looking.' }, { kind: 'tool', name: 'Bash', summary: 'ls -la' }, { kind: 'tool', name: 'Read', summary: '/a.ts' }],
    ],
    ['blank assistant text', JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: '  ' }] } }), [{ kind: 'other', type: 'assistant' }]],
    [
      'success result',
      JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'Done.', total_cost_usd: 0.25, num_turns: 7, duration_ms: 61000, session_id: 's-1' }),
      [{ kind: 'result', isError: false, subtype: 'success', text: 'Done.', costUsd: 0.25, turns: 7, durationMs: 61000, claudeSessionId: 's-1' }],
    ],
    [
      'error result',
      JSON.stringify({ type: 'result', subtype: 'error_max_turns', is_error: false, num_turns: 50 }),
      [{ kind: 'result', isError: true, subtype: 'error_max_turns', turns: 50 }],
    ],
    [
      'stopped spend: an assistant message\'s usage, with its id, model and the characters of its content',
      JSON.stringify({ type: 'assistant', message: { id: 'msg_1', model: 'claude-opus-5-5', content: [{ type: 'text', text: 'Looking.' }, { type: 'tool_use', name: 'Bash', input: { command: 'ls' } }], usage: { input_tokens: 10, output_tokens: 1, cache_creation_input_tokens: 300, cache_read_input_tokens: 4000, cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 }, server_tool_use: { web_search_requests: 2 }, inference_geo: 'us' } } }),
      [
        { kind: 'text', text: 'Looking.' }, { kind: 'tool', name: 'Bash', summary: 'ls' },
        { kind: 'usage', messageId: 'msg_1', model: 'claude-opus-5-5', contentChars: 8 + 4 + 16, tokens: { input: 10, output: 1, cacheWrite5m: 100, cacheWrite1h: 200, cacheRead: 4000, webSearches: 2, usOnly: true } },
      ],
    ],
    [
      'stopped spend: usage of wrong types counts nothing, and a message of usage alone is understood',
      JSON.stringify({ type: 'assistant', message: { content: [], usage: { input_tokens: 'many', output_tokens: -5, cache_read_input_tokens: 1e400, cache_creation_input_tokens: 7, cache_creation: { ephemeral_1h_input_tokens: 50 } } } }),
      [{ kind: 'usage', contentChars: 0, tokens: { input: 0, output: 0, cacheWrite5m: 0, cacheWrite1h: 7, cacheRead: 0, webSearches: 0, usOnly: false } }],
    ],
    ['result with wrong types', JSON.stringify({ type: 'result', is_error: true, total_cost_usd: 'lots' }), [{ kind: 'result', isError: true }]],
  ])('%s', (_, line, expected) => {
    expect(parseStreamJsonLine(line)).toEqual(expected);
  });

  const toolLine = (input: unknown) => JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input }] } });

  it('secrets in part: keeps a tool call\'s argument whole, newlines and all, for redaction to see', () => {
    const command = `cd /repo &&\n  echo ${'x'.repeat(500)}\t"TOKEN=abc def\n ghi-0123456789"`;
    expect(parseStreamJsonLine(toolLine({ command }))).toEqual([{ kind: 'tool', name: 'Bash', summary: command }]);
  });

  it('secrets in part: a tool call without a telling argument is summarised by its whole JSON', () => {
    const input = { body: `${'y'.repeat(400)} secret-at-the-end` };
    expect(parseStreamJsonLine(toolLine(input))).toEqual([{ kind: 'tool', name: 'Bash', summary: JSON.stringify(input) }]);
  });

  it('unicode: a tool result\'s first line is shortened between characters, never inside one', () => {
    for (let lead = 0; lead < 4; lead++) {
      const content = `${'x'.repeat(lead)}${'\u{1F600}'.repeat(100)}`;
      const [event] = parseStreamJsonLine(JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', content }] } }));
      const firstLine = (event as { firstLine: string }).firstLine;
      expect(isWellFormed(firstLine)).toBe(true);
      expect(firstLine.length).toBeLessThanOrEqual(120);
      expect(firstLine.endsWith('…')).toBe(true);
    }
  });
});
