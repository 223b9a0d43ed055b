import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { geminiAgent, geminiLimit, GeminiStreamReader } from '../../../src/core/agents/gemini-agent.js';
import type { AgentEvent } from '../../../src/core/events.js';

/** A fixture of the real CLI's stdout (test/fixtures/agents/gemini/README.md says how each was made). */
function fixture(name: string): string[] {
  return readFileSync(new URL(`../../fixtures/agents/gemini/${name}.jsonl`, import.meta.url), 'utf8').split('\n').filter((l) => l.length > 0);
}

const NOW = Date.UTC(2026, 11, 6, 13, 30, 0);

/** Every line of a run through one reader: the events of each line, in order. */
function read(lines: readonly string[], options: ConstructorParameters<typeof GeminiStreamReader>[0] = { now: () => NOW }): AgentEvent[][] {
  const reader = geminiAgent.reader(options);
  return lines.map((l) => reader.line(l));
}

function resultOf(events: AgentEvent[][]): Extract<AgentEvent, { kind: 'result' }> {
  const result = events.flat().find((e) => e.kind === 'result');
  if (result?.kind !== 'result') throw new Error('no result');
  return result;
}

/** What a person would read of the run: words, tool calls and results, in order. */
function told(events: AgentEvent[][]): string[] {
  return events.flat().flatMap((e) => {
    if (e.kind === 'text') return [`text: ${e.text}`];
    if (e.kind === 'tool') return [`tool: ${e.name}: ${e.summary}`];
    if (e.kind === 'tool_result') return [`result: ${e.isError ? 'error ' : ''}${e.chars} chars, ${e.lines} lines, ${e.firstLine}`];
    if (e.kind === 'message') return [`prompt: ${e.text}`];
    return [];
  });
}

const FIXTURES = ['tool', 'resume', 'turns', 'rate', 'daily', 'ratelong', 'toolerror', 'badrequest', 'empty', 'stopped'];

describe('Gemini CLI stream-json, as the real CLI wrote it', () => {
  it('a tool call: the prompt, the words before it whole, the command, its output by size, the answer whole, then the result with tokens and turns', () => {
    const lines = fixture('tool');
    const events = read(lines);
    const said = lines.map((l) => JSON.parse(l) as { session_id?: string; stats?: { duration_ms: number } });
    expect(events[0]).toEqual([{ kind: 'init', claudeSessionId: said[0]?.session_id, model: 'auto' }]);
    expect(told(events)).toEqual([
      'prompt: Run a command',
      'text: Let me run it.',
      'tool: run_shell_command: echo hello from the container; id -un',
      'result: 30 chars, 2 lines, hello from the container',
      expect.stringMatching(/^text: The command printed: <untrusted_context>\nOutput: hello from the container\nagent\n/) as string,
    ]);
    const result = resultOf(events);
    expect(result).toMatchObject({ isError: false, runOnly: true, turns: 2, tokens: { input: 2505, output: 65, cachedInput: 1000 }, durationMs: said.at(-1)?.stats?.duration_ms });
    expect(result.claudeSessionId).toBe(said[0]?.session_id);
    expect(result.text).toMatch(/^The command printed:/);
    expect(result.costUsd).toBeUndefined();
    expect(result.limit).toBeUndefined();
    // The answer's pieces are told once, whole, on the result's line.
    expect(events.at(-1)?.map((e) => e.kind)).toEqual(['text', 'result']);
  });

  it('prices the run\'s tokens when the pod gives prices: cached input at its own price', () => {
    const result = resultOf(read(fixture('tool'), { prices: { input: 2, output: 10, cachedInput: 0.5 }, now: () => NOW }));
    expect(result.costUsd).toBeCloseTo((1505 * 2 + 1000 * 0.5 + 65 * 10) / 1e6, 12);
  });

  it('a resumed run: the same session id, its own turn, the prompt that began with "-" taken as words', () => {
    const first = read(fixture('tool'));
    const resumed = read(fixture('resume'));
    const idOf = (ev: AgentEvent[][]) => ev.flat().find((e) => e.kind === 'init');
    expect(idOf(resumed)).toEqual(idOf(first));
    expect(told(resumed)).toEqual(['prompt: -n and what did it print?', 'text: You said: -n and what did it print?']);
    expect(resultOf(resumed)).toMatchObject({ isError: false, turns: 1, text: 'You said: -n and what did it print?' });
  });

  it('the turn limit (exit 53): an error result that says the run stopped at its limit, not a provider refusal', () => {
    const result = resultOf(read(fixture('turns')));
    expect(result).toMatchObject({ isError: true, subtype: 'error_max_turns', turns: 2 });
    expect(result.errors?.[0]).toMatch(/Reached max session turns/);
    expect(result.limit).toBeUndefined();
    expect(result.text).toBeUndefined();
  });

  it('a 429 the CLI waited out itself: a plain success', () => {
    const result = resultOf(read(fixture('rate')));
    expect(result).toMatchObject({ isError: false, text: 'After the wait.', turns: 1 });
    expect(result.limit).toBeUndefined();
  });

  it('a daily quota the CLI gave up on: a usage limit that resets at midnight Pacific time', () => {
    const result = resultOf(read(fixture('daily')));
    expect(result.isError).toBe(true);
    // 13:30 UTC on 6 December is 05:30 in Los Angeles (UTC-8): midnight there is 08:00 UTC on the 7th.
    // Refused on its first request: the CLI rolled the prompt back, so the run is repeated, not continued.
    expect(result.limit).toEqual({ kind: 'usage', resetAt: Date.UTC(2026, 11, 7, 8, 0, 0), repeat: true });
    expect(result.errors?.[0]).toMatch(/exhausted your daily quota/);
  });

  it('a 429 whose retry delay is longer than the CLI waits: a rate limit that resets after that delay', () => {
    const result = resultOf(read(fixture('ratelong')));
    expect(result.limit).toEqual({ kind: 'rate', resetAt: NOW + 3_600_000, repeat: true });
  });

  it('a refusal after an answered turn is continued, not repeated: the conversation keeps the prompt', () => {
    const lines = fixture('ratelong').filter((l) => !l.includes('"type":"result"'));
    const last = fixture('ratelong').find((l) => l.includes('"type":"result"')) ?? '';
    const answered = [...lines, '{"type":"message","role":"assistant","content":"Working on it.","delta":true}', '{"type":"tool_use","tool_name":"run_shell_command","tool_id":"t1","parameters":{"command":"ls"}}', '{"type":"tool_result","tool_id":"t1","status":"success","output":"a"}', last];
    const result = resultOf(read(answered));
    expect(result.limit).toEqual({ kind: 'rate', resetAt: NOW + 3_600_000 });
    expect(result.turns).toBe(1);
  });

  it('two tool calls in one response, one failing: each by its path, the failure by its output', () => {
    const events = read(fixture('toolerror'));
    expect(told(events)).toEqual([
      'prompt: write and read',
      'tool: write_file: notes.txt',
      'tool: read_file: missing.txt',
      'result: 0 chars, 0 lines, ',
      'result: error 15 chars, 1 lines, File not found.',
      'text: Wrote it.',
    ]);
    const results = events.flat().filter((e) => e.kind === 'tool_result');
    expect(results.map((r) => r.kind === 'tool_result' && r.toolUseId)).toEqual([expect.stringMatching(/^write_file/), expect.stringMatching(/^read_file/)]);
    // write_file's content is never the summary.
    expect(JSON.stringify(events)).not.toContain('one\\ntwo');
    expect(resultOf(events)).toMatchObject({ isError: false, turns: 2 });
  });

  it('an API error that is no refusal (400): an error result with its message, no limit', () => {
    const result = resultOf(read(fixture('badrequest')));
    expect(result).toMatchObject({ isError: true, subtype: 'unknown' });
    expect(result.errors?.[0]).toMatch(/INVALID_ARGUMENT/);
    expect(result.limit).toBeUndefined();
  });

  it('an error line: told as an error, and its words carried by the result', () => {
    const events = read(fixture('empty'));
    expect(events.flat().filter((e) => e.kind === 'system')).toEqual([{ kind: 'system', subtype: 'error' }]);
    const result = resultOf(events);
    expect(result).toMatchObject({ isError: true, subtype: 'error' });
    expect(result.errors).toEqual([expect.stringMatching(/empty response/)]);
  });

  it('a run stopped during a tool call: what it said up to the call, no result', () => {
    const events = read(fixture('stopped'));
    expect(told(events)).toEqual(['prompt: wait', 'tool: run_shell_command: sleep 300; echo done']);
    expect(events.flat().some((e) => e.kind === 'result')).toBe(false);
  });

  it.each(FIXTURES)('%s: every line of the CLI\'s JSON yields an event, and none is the raw line', (name) => {
    const lines = fixture(name);
    const events = read(lines);
    lines.forEach((line, i) => {
      expect(events[i]?.length, line).toBeGreaterThan(0);
      for (const e of events[i] ?? []) if (e.kind === 'text') expect(e.text).not.toContain('"type":');
    });
  });
});

describe('GeminiStreamReader: what is not the CLI\'s JSON, and hostile lines', () => {
  it.each([
    ['plain text', 'hello world'],
    ['empty', ''],
    ['broken JSON', '{"type":"message","role":'],
    ['a JSON array', '[{"type":"init"}]'],
    ['a JSON log line of another program', '{"type":"info","msg":"x"}'],
    ['a string type of the wrong kind', '{"type":5,"timestamp":"2026-01-01T00:00:00Z"}'],
  ])('%s: no events', (_, line) => {
    expect(new GeminiStreamReader().line(line)).toEqual([]);
  });

  it('a line of the CLI\'s kind it does not know yet (a type with its timestamp): other', () => {
    expect(new GeminiStreamReader().line('{"type":"thought","timestamp":"2026-12-06T13:30:00Z","content":"x"}')).toEqual([{ kind: 'other', type: 'thought' }]);
  });

  it.each([
    ['init without a session id', { type: 'init', session_id: 42 }],
    ['a message whose content is not text', { type: 'message', role: 'assistant', content: { nested: [1, [2, [3]]] } }],
    ['a message of an unknown role', { type: 'message', role: 'system', content: 'x' }],
    ['a tool call without a name', { type: 'tool_use', tool_name: ['run'], parameters: 'rm -rf /' }],
    ['an error line without words', { type: 'error', severity: 7 }],
  ])('%s: other or an event of its kind, never raw JSON', (_, value) => {
    const events = new GeminiStreamReader().line(JSON.stringify(value));
    expect(events.length).toBeGreaterThan(0);
    for (const e of events) expect(['other', 'system', 'message']).toContain(e.kind);
  });

  it('a tool call with odd parameters: its telling argument when it is text, else nothing', () => {
    const reader = new GeminiStreamReader();
    expect(reader.line(JSON.stringify({ type: 'tool_use', tool_name: 'run_shell_command', tool_id: 't', parameters: { command: ['ls'], description: 'list' } }))).toEqual([{ kind: 'tool', name: 'run_shell_command', summary: 'list', id: 't' }]);
    expect(reader.line(JSON.stringify({ type: 'tool_use', tool_name: 'mcp_tool', parameters: 'x' }))).toEqual([{ kind: 'tool', name: 'mcp_tool', summary: '' }]);
    expect(reader.line(JSON.stringify({ type: 'tool_use', tool_name: 'replace', parameters: { file_path: 'a.ts', old_string: 'secret', new_string: 'x' } }))).toEqual([{ kind: 'tool', name: 'replace', summary: 'a.ts' }]);
  });

  it('stats of the wrong types, negative or absurd: no tokens, or only what is whole', () => {
    const reader = new GeminiStreamReader({ prices: { input: 1, output: 1 } });
    expect(resultOf([reader.line(JSON.stringify({ type: 'result', status: 'success', stats: { input_tokens: '5', output_tokens: 1 } }))]).tokens).toBeUndefined();
    const r = resultOf([reader.line(JSON.stringify({ type: 'result', status: 'success', stats: { input_tokens: 10.7, output_tokens: 1e300, cached: 99, duration_ms: -4 } }))]);
    expect(r.tokens).toEqual({ input: 10, output: 1e12, cachedInput: 10 });
    expect(r.durationMs).toBeUndefined();
    expect(resultOf([reader.line(JSON.stringify({ type: 'result', status: 'success', stats: [1, 2] }))])).toMatchObject({ isError: false });
    expect(resultOf([reader.line(JSON.stringify({ type: 'result', status: 'error', error: 'boom' }))])).toMatchObject({ isError: true, subtype: 'error' });
  });

  it('a message\'s pieces that never end: told in bounded parts, so memory stays bounded', () => {
    const reader = new GeminiStreamReader();
    const piece = 'x'.repeat(64 * 1024);
    const texts: string[] = [];
    for (let i = 0; i < 40; i++) {
      for (const e of reader.line(JSON.stringify({ type: 'message', role: 'assistant', content: piece, delta: true }))) if (e.kind === 'text') texts.push(e.text);
    }
    expect(texts.length).toBe(2);
    for (const t of texts) expect(t.length).toBe(1024 * 1024);
    // The rest comes with the next line.
    const rest = reader.line(JSON.stringify({ type: 'result', status: 'success', stats: {} }));
    expect(rest[0]).toEqual({ kind: 'text', text: piece.repeat(8) });
  });

  it('one huge piece (2 MiB): told at once, whole', () => {
    const huge = 'y'.repeat(2 * 1024 * 1024);
    const events = new GeminiStreamReader().line(JSON.stringify({ type: 'message', role: 'assistant', content: huge, delta: true }));
    expect(events).toEqual([{ kind: 'text', text: huge }]);
  });

  it('an error line\'s words are cut, and a looping CLI\'s many error lines are not all kept', () => {
    const reader = new GeminiStreamReader();
    for (let i = 0; i < 100; i++) reader.line(JSON.stringify({ type: 'error', severity: 'warning', message: `Loop detected ${i} ${'z'.repeat(10_000)}` }));
    const result = resultOf([reader.line(JSON.stringify({ type: 'result', status: 'success' }))]);
    expect(result.errors).toHaveLength(20);
    for (const e of result.errors ?? []) expect(e.length).toBeLessThanOrEqual(4000);
  });

  it('never throws, and a line of the CLI\'s kind always yields an event, whatever its fields hold', () => {
    const field = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.jsonValue({ maxDepth: 4 }));
    const line = fc.record({
      type: fc.constantFrom('init', 'message', 'tool_use', 'tool_result', 'error', 'result'),
      timestamp: fc.oneof(fc.string(), fc.date({ noInvalidDate: true }).map((d) => d.toISOString())),
      role: fc.oneof(fc.constantFrom('user', 'assistant'), field),
      content: field, delta: field, session_id: field, model: field, tool_name: fc.oneof(fc.string(), field), tool_id: field,
      parameters: field, status: fc.oneof(fc.constantFrom('success', 'error'), field), output: field, error: field, stats: field, message: field, severity: field,
    }, { requiredKeys: ['type'] });
    fc.assert(fc.property(fc.array(line, { maxLength: 20 }), (lines) => {
      const reader = new GeminiStreamReader({ prices: { input: 1, output: 2 } });
      for (const l of lines) {
        const text = JSON.stringify(l);
        const events = reader.line(text);
        expect(events.length).toBeGreaterThan(0);
        for (const e of events) if (e.kind === 'text') expect(e.text).not.toBe(text);
      }
    }), { numRuns: 300 });
  });
});

describe('geminiLimit', () => {
  it.each([
    ['the daily quota', '[API Error: You have exhausted your daily quota on this model.]', { kind: 'usage', resetAt: Date.UTC(2026, 11, 7, 8) }],
    ['a retry delay in seconds', '[API Error: You exceeded your current quota. Please retry in 31.5s.\nSuggested retry after 31s.]', { kind: 'rate', resetAt: NOW + 31_500 }],
    ['a retry delay in ms', 'RESOURCE_EXHAUSTED Please retry in 250ms', { kind: 'rate', resetAt: NOW + 250 }],
    ['a 429 without a delay', '[API Error: got status: 429 Too Many Requests.]', { kind: 'rate' }],
    ['the model\'s capacity', 'You have exhausted your capacity on this model.', { kind: 'rate' }],
    ['an overload the CLI retried', '[API Error: {"error":{"code":503,"message":"The model is overloaded. Please try again later.","status":"UNAVAILABLE"}}]', { kind: 'rate' }],
  ])('%s', (_, message, expected) => {
    expect(geminiLimit(message, NOW)).toEqual(expected);
  });

  it.each([
    ['a bad request', '[API Error: {"error":{"code":400,"message":"Request contains an invalid argument."}}]'],
    ['a server error', '[API Error: An internal error has occurred.]'],
    ['no words', ''],
  ])('%s: none', (_, message) => {
    expect(geminiLimit(message, NOW)).toBeUndefined();
  });

  it('the daily quota as the clocks go back: midnight in Los Angeles in summer time is 07:00 UTC', () => {
    expect(geminiLimit('exhausted your daily quota', Date.UTC(2026, 6, 1, 12))).toEqual({ kind: 'usage', resetAt: Date.UTC(2026, 6, 2, 7) });
  });
});

describe('geminiAgent', () => {
  it('starts and resumes with the prompt as one --prompt= argument, stream-json out, every tool approved, the workspace trusted', () => {
    const { command, resumeCommand } = geminiAgent.commands({});
    expect(command).toEqual(['gemini', '--output-format', 'stream-json', '--yolo', '--skip-trust', '--prompt={prompt}']);
    expect(resumeCommand).toEqual(['gemini', '--output-format', 'stream-json', '--yolo', '--skip-trust', '--resume', '{agentSessionId}', '--prompt={prompt}']);
  });

  it('has no limit of its own that argv can set, takes no input while it runs, and keeps ~/.gemini', () => {
    expect(geminiAgent.limits).toEqual({ maxTurns: { via: 'setting', name: 'model.maxSessionTurns', env: 'GEMINI_CLI_SYSTEM_DEFAULTS_PATH' }, maxBudgetUsd: undefined });
    expect(geminiAgent.takesLiveInput).toBe(false);
    expect(geminiAgent.persist).toEqual(['~/.gemini']);
  });

  it('runs as one process (so a stop ends it at once) unless the pod says otherwise', () => {
    expect(geminiAgent.env({ podEnv: {}, persisted: [], home: '/home/agent' })).toMatchObject({ GEMINI_CLI_NO_RELAUNCH: 'true' });
    expect(geminiAgent.env({ podEnv: { GEMINI_CLI_NO_RELAUNCH: '' }, persisted: [], home: '/home/agent' })).not.toHaveProperty('GEMINI_CLI_NO_RELAUNCH');
  });

  it('its key goes in x-goog-api-key, its endpoint in GOOGLE_GEMINI_BASE_URL', () => {
    expect(geminiAgent.provider).toEqual({ urlVar: 'GOOGLE_GEMINI_BASE_URL', defaultUrl: 'https://generativelanguage.googleapis.com', keys: [{ name: 'GEMINI_API_KEY', header: 'x-goog-api-key' }] });
  });

  it('a reader per run: what one run said is not carried into the next', () => {
    const lines = fixture('tool');
    const first = geminiAgent.reader();
    for (const l of lines) first.line(l);
    const second = geminiAgent.reader();
    const result = second.line(JSON.stringify({ type: 'result', status: 'success', stats: {} }));
    expect(result).toEqual([{ kind: 'result', isError: false, runOnly: true, turns: 0 }]);
  });

  it('a word like "quota" or "unavailable" in another error is no limit to wait out; the API\'s own refusals are', () => {
    expect(geminiLimit('Disk quota exceeded while writing notes.txt', 0)).toBeUndefined();
    expect(geminiLimit('[API Error: Quota exceeded for metric: generativelanguage.googleapis.com/generate_content_free_tier_requests, limit: 0. Please retry in 1s.]', 0)).toEqual({ kind: 'rate', resetAt: 1000 });
    expect(geminiLimit('service UNAVAILABLE in my test output', 0)).toBeUndefined();
    expect(geminiLimit('[API Error: The model is overloaded (503 UNAVAILABLE)]', 0)).toMatchObject({ kind: 'rate' });
    expect(geminiLimit('[API Error: RESOURCE_EXHAUSTED. Please retry in 2s.]', 0)).toEqual({ kind: 'rate', resetAt: 2000 });
  });

  it('an API key sets the provider\'s endpoint, so a repository\'s .env cannot point the key elsewhere; none without a key', () => {
    expect(geminiAgent.env({ podEnv: { GEMINI_API_KEY: 'k' }, persisted: [], home: '/h' })).toMatchObject({ GOOGLE_GEMINI_BASE_URL: 'https://generativelanguage.googleapis.com' });
    expect(geminiAgent.env({ podEnv: { GEMINI_API_KEY: 'k', GOOGLE_GEMINI_BASE_URL: 'http://mine' }, persisted: [], home: '/h' })).not.toHaveProperty('GOOGLE_GEMINI_BASE_URL');
    expect(geminiAgent.env({ podEnv: {}, persisted: [], home: '/h' })).not.toHaveProperty('GOOGLE_GEMINI_BASE_URL');
  });
});
