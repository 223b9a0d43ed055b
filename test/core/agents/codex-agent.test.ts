import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { codexAgent, codexCommands, codexLimit, codexResetTime, unwrapShell } from '../../../src/core/agents/codex-agent.js';
import type { AgentEvent } from '../../../src/core/events.js';
import { promptChannel, renderCommand } from '../../../src/core/prompt.js';

/** A fixture of real `codex exec --json` output (see test/fixtures/agents/codex/README.md). */
function fixture(name: string): string[] {
  return readFileSync(new URL(`../../fixtures/agents/codex/${name}.jsonl`, import.meta.url), 'utf8').split('\n').filter((l) => l !== '');
}

/** Every event of a run read by one reader, line by line; `now` advances 10 ms a line. */
function read(lines: readonly string[], options: { prices?: { input: number; output: number; cachedInput?: number }; start?: number } = {}): AgentEvent[][] {
  let clock = options.start ?? Date.UTC(2026, 11, 6, 13, 24);
  const reader = codexAgent.reader({ ...(options.prices ? { prices: options.prices } : {}), now: () => (clock += 10) });
  return lines.map((l) => reader.line(l));
}

const result = (events: AgentEvent[][]) => events.flat().find((e): e is Extract<AgentEvent, { kind: 'result' }> => e.kind === 'result');

describe('codexAgent: its commands', () => {
  it('start: exec --json, its endpoint as config, no approvals or sandbox of its own, any directory, its calls home off, the prompt last behind --', () => {
    const { command } = codexAgent.commands({});
    expect(command).toEqual(['codex', 'exec', '-c', 'openai_base_url={modelUrl}', '-c', 'analytics.enabled=false', '--disable', 'plugins', '--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox', '--', '{prompt}']);
    expect(promptChannel(command)).toEqual({ kind: 'argv' });
  });

  it('resume continues the thread by its id, the prompt behind --: a prompt that looks like an option stays the prompt', () => {
    const { resumeCommand } = codexAgent.commands({});
    const argv = renderCommand(resumeCommand, { prompt: '--version -h', sessionId: 's-1', claudeSessionId: '01a24b86-9f30-7413-bb8a-fe5b54b51f51', modelUrl: 'https://api.openai.com/v1' });
    expect(argv.slice(0, 4)).toEqual(['codex', 'exec', '-c', 'openai_base_url=https://api.openai.com/v1']);
    expect(argv.slice(-5)).toEqual(['--dangerously-bypass-approvals-and-sandbox', 'resume', '01a24b86-9f30-7413-bb8a-fe5b54b51f51', '--', '--version -h']);
  });

  it('an endpoint of its own goes in as config too (Codex reads no variable for it)', () => {
    const { command, resumeCommand } = codexCommands({ baseUrl: 'http://gw:3128/secret' });
    expect(command.slice(0, 4)).toEqual(['codex', 'exec', '-c', 'openai_base_url=http://gw:3128/secret']);
    expect(resumeCommand.slice(0, 4)).toEqual(['codex', 'exec', '-c', 'openai_base_url=http://gw:3128/secret']);
  });

  it('has no turn or budget limit, takes no input while it runs, keeps ~/.codex, and its keys go as a bearer token', () => {
    expect(codexAgent.limits).toEqual({ maxTurns: undefined, maxBudgetUsd: undefined });
    expect(codexAgent.takesLiveInput).toBe(false);
    expect(codexAgent.persist).toEqual(['~/.codex']);
    expect(codexAgent.quietEnv).toEqual({ RUST_LOG: 'error,codex_api::endpoint::responses_websocket=off' });
    expect(codexAgent.provider.keys.map((k) => k.name).sort()).toEqual(['CODEX_API_KEY', 'OPENAI_API_KEY']);
    expect(codexAgent.provider.keys.every((k) => k.header === 'authorization' && k.scheme === 'Bearer')).toBe(true);
  });
});

describe('codexAgent reader: real output', () => {
  it('a text answer: the thread id, the answer, the thread\'s tokens, no cost without prices', () => {
    const events = read(fixture('text'));
    expect(events[0]).toEqual([{ kind: 'init', claudeSessionId: JSON.parse(fixture('text')[0] ?? '{}').thread_id }]);
    expect(events.flat()).toContainEqual({ kind: 'text', text: 'Hello from the fake model.' });
    const r = result(events);
    expect(r).toMatchObject({ kind: 'result', isError: false, text: 'Hello from the fake model.', tokens: { input: 1200, output: 30, cachedInput: 200 } });
    expect(r?.claudeSessionId).toBe((events[0]?.[0] as { claudeSessionId: string }).claudeSessionId);
    expect(r?.costUsd).toBeUndefined();
    expect(r?.runOnly).toBeUndefined(); // Codex's usage is the thread's, not this process's
    expect(r?.durationMs).toBeUndefined(); // Codex reports none
  });

  it('prices the tokens when the pod gives prices (cached input at its own price)', () => {
    const r = result(read(fixture('text'), { prices: { input: 2, output: 10, cachedInput: 0.5 } }));
    expect(r?.costUsd).toBeCloseTo((1000 * 2 + 200 * 0.5 + 30 * 10) / 1e6, 12);
  });

  it('a tool call: thinking, words, the shell command unwrapped at its start, its result by size at its end, the last message as the answer', () => {
    const events = read(fixture('tool-call'));
    const flat = events.flat();
    expect(flat.filter((e) => e.kind !== 'system')).toEqual([
      { kind: 'init', claudeSessionId: expect.any(String) },
      { kind: 'thinking', chars: 'I should run a command.'.length },
      { kind: 'text', text: 'Running it now.' },
      { kind: 'tool', name: 'shell', summary: 'echo hi-from-shell; uname -s', id: 'item_2' },
      { kind: 'tool_result', toolUseId: 'item_2', isError: false, chars: 'hi-from-shell\nLinux\n'.length, lines: 2, firstLine: 'hi-from-shell' },
      { kind: 'text', text: expect.stringContaining('The command said:') },
      expect.objectContaining({ kind: 'result', isError: false, text: expect.stringContaining('The command said:'), tokens: { input: 2700, output: 90, cachedInput: 1000 } }),
    ]);
  });

  it('a command that fails is an error result of the tool, and the run still ends well', () => {
    const flat = read(fixture('command-failed')).flat();
    expect(flat).toContainEqual(expect.objectContaining({ kind: 'tool', name: 'shell', summary: 'ls /nonexistent-dir' }));
    expect(flat).toContainEqual(expect.objectContaining({ kind: 'tool_result', isError: true, lines: 1, firstLine: "ls: cannot access '/nonexistent-dir': No such file or directory" }));
    expect(result([flat])).toMatchObject({ isError: false, text: 'It failed.' });
  });

  it('a file change is an edit naming its files', () => {
    const flat = read(fixture('file-change')).flat();
    expect(flat).toContainEqual({ kind: 'tool', name: 'edit', summary: 'add /workspace/hello.txt', id: 'item_0' });
    expect(flat).toContainEqual({ kind: 'tool_result', toolUseId: 'item_0', isError: false, chars: 14, lines: 1, firstLine: '1 file changed' });
  });

  it('a resumed run (the thread\'s third): the earlier turns in its answer, the tokens of all three runs', () => {
    const r = result(read(fixture('resume')));
    expect(r).toMatchObject({ isError: false, text: expect.stringContaining('run something |'), tokens: { input: 4700, output: 290, cachedInput: 1000 } });
    expect(r?.text).toContain('| again? | and now?');
  });

  it('a resumed run after a stop: the answer, and only the tokens of turns that completed', () => {
    expect(result(read(fixture('resume-after-stop')))).toMatchObject({ isError: false, text: 'I have seen: sleep | aborted | after the stop', tokens: { input: 1000, output: 100, cachedInput: 0 } });
  });

  it('Codex\'s own retries are system events, never words; a retry that worked ends well', () => {
    const events = read(fixture('rate-limit-retried'));
    expect(events[2]).toEqual([{ kind: 'system', subtype: 'retrying' }]);
    expect(result(events)).toMatchObject({ isError: false, text: 'Recovered.' });
  });

  it('429s until it gave up: an error result, a rate limit', () => {
    const r = result(read(fixture('rate-limit-gave-up')));
    expect(r).toMatchObject({ isError: true, limit: { kind: 'rate' }, text: expect.stringContaining('exceeded retry limit, last status: 429 Too Many Requests') });
    expect(r?.errors).toEqual([r?.text]);
  });

  it('a usage limit: its reset time read (the container\'s clock is UTC)', () => {
    const start = Date.UTC(2026, 11, 6, 13, 24);
    const r = result(read(fixture('usage-limit'), { start }));
    expect(r?.limit).toEqual({ kind: 'usage', resetAt: Date.UTC(2026, 11, 6, 14, 24) });
    expect(result(read(fixture('usage-limit-days-away'), { start }))?.limit).toEqual({ kind: 'usage', resetAt: Date.UTC(2026, 11, 9, 13, 24) });
  });

  it('a usage limit that names no reset waits an hour', () => {
    const start = Date.UTC(2026, 11, 6, 13, 24);
    const r = result(read(fixture('usage-limit-no-reset'), { start }));
    expect(r?.limit?.kind).toBe('usage');
    expect(r?.limit?.resetAt).toBeGreaterThan(start + 3_590_000);
  });

  it('an exhausted quota is an error, not a wait (it needs a person)', () => {
    const r = result(read(fixture('insufficient-quota')));
    expect(r).toMatchObject({ isError: true, text: 'Quota exceeded. Check your plan and billing details.' });
    expect(r?.limit).toBeUndefined();
  });

  it('a stream that failed on a rate limit: a rate limit, reset after the wait it asked for', () => {
    const start = Date.UTC(2026, 11, 6, 13, 24);
    const r = result(read(fixture('stream-failed'), { start }));
    expect(r?.limit?.kind).toBe('rate');
    expect(r?.limit?.resetAt).toBeGreaterThanOrEqual(start + 2000);
  });

  it('stopped in a tool call: the tool, and no result', () => {
    const flat = read(fixture('stopped-in-tool-call')).flat();
    expect(flat).toContainEqual(expect.objectContaining({ kind: 'tool', name: 'shell', summary: 'sleep 300; echo done' }));
    expect(result([flat])).toBeUndefined();
  });

  it('notices (an error item) are system events, and go with a failed result', () => {
    const events = read(fixture('websocket-refused-then-http'));
    // The error item, and the error Codex gave up on (its retries are 'retrying').
    expect(events.flat().filter((e) => e.kind === 'system' && e.subtype === 'error')).toHaveLength(2);
    const r = result(events);
    expect(r?.isError).toBe(true);
    expect(r?.errors?.[0]).toContain('Falling back from WebSockets to HTTPS transport');
    expect(result(read(fixture('code-mode-host-missing')))).toMatchObject({ isError: false });
  });

  it('every line of every fixture yields events, none of them raw JSON', () => {
    const names = ['text', 'tool-call', 'command-failed', 'file-change', 'resume', 'resume-after-stop', 'rate-limit-retried', 'rate-limit-gave-up', 'usage-limit', 'usage-limit-days-away', 'usage-limit-no-reset', 'insufficient-quota', 'stream-failed', 'stopped-in-tool-call', 'websocket-refused-then-http', 'code-mode-host-missing'];
    for (const name of names) {
      const lines = fixture(name);
      const events = read(lines);
      events.forEach((e, i) => expect(e.length, `${name} line ${i + 1}`).toBeGreaterThan(0));
      for (const e of events.flat()) if (e.kind === 'text') expect(e.text.startsWith('{"')).toBe(false);
    }
  });
});

describe('codexAgent reader: the item kinds of its stream', () => {
  const line = (item: Record<string, unknown>, phase = 'completed') => JSON.stringify({ type: `item.${phase}`, item });

  it('an MCP tool call: server.tool with its telling argument, its result by size', () => {
    const reader = codexAgent.reader();
    expect(reader.line(line({ id: 'm1', type: 'mcp_tool_call', server: 'docs', tool: 'search', arguments: { query: 'backoff' }, status: 'in_progress' }, 'started'))).toEqual([{ kind: 'tool', name: 'docs.search', summary: 'backoff', id: 'm1' }]);
    expect(reader.line(line({ id: 'm1', type: 'mcp_tool_call', server: 'docs', tool: 'search', arguments: { query: 'backoff' }, result: { content: [{ type: 'text', text: 'a\nb' }] }, status: 'completed' }))).toEqual([{ kind: 'tool_result', toolUseId: 'm1', isError: false, chars: 3, lines: 2, firstLine: 'a' }]);
    expect(reader.line(line({ id: 'm2', type: 'mcp_tool_call', server: 'docs', tool: 'get', arguments: {}, error: { message: 'no such doc' }, status: 'failed' }))).toEqual([
      { kind: 'tool', name: 'docs.get', summary: '{}', id: 'm2' },
      { kind: 'tool_result', toolUseId: 'm2', isError: true, chars: 11, lines: 1, firstLine: 'no such doc' },
    ]);
  });

  it('a web search: its query, once', () => {
    const reader = codexAgent.reader();
    expect(reader.line(line({ id: 'w1', type: 'web_search', query: '' }, 'started'))).toEqual([{ kind: 'other', type: 'item.started' }]);
    expect(reader.line(line({ id: 'w1', type: 'web_search', query: 'node 20 zstd' }))).toEqual([{ kind: 'tool', name: 'web_search', summary: 'node 20 zstd', id: 'w1' }]);
  });

  it('a todo list: how much is done and what is next, once; its updates are other events', () => {
    const reader = codexAgent.reader();
    const items = [{ text: 'read', completed: true }, { text: 'fix', completed: false }];
    expect(reader.line(line({ id: 't1', type: 'todo_list', items }, 'started'))).toEqual([{ kind: 'tool', name: 'todo_list', summary: '1/2 done; next: fix', id: 't1' }]);
    expect(reader.line(line({ id: 't1', type: 'todo_list', items }, 'updated'))).toEqual([{ kind: 'other', type: 'item.updated' }]);
  });

  it('an agent message or reasoning still being written says nothing yet; an empty message is not words', () => {
    const reader = codexAgent.reader();
    expect(reader.line(line({ id: 'a', type: 'agent_message', text: 'Hal' }, 'updated'))).toEqual([{ kind: 'other', type: 'item.updated' }]);
    expect(reader.line(line({ id: 'a', type: 'agent_message', text: '  ' }))).toEqual([{ kind: 'other', type: 'item.completed' }]);
  });

  it('a turn that completed with no message has no answer; one with no usage counts 0 tokens', () => {
    const reader = codexAgent.reader();
    expect(reader.line('{"type":"turn.completed"}')).toEqual([expect.objectContaining({ kind: 'result', isError: false, tokens: { input: 0, output: 0, cachedInput: 0 } })]);
    expect((reader.line('{"type":"turn.completed"}')[0] as { text?: string }).text).toBeUndefined();
  });

  it('a failed turn without words still says it failed', () => {
    expect(codexAgent.reader().line('{"type":"turn.failed","error":{}}')).toEqual([expect.objectContaining({ kind: 'result', isError: true, text: 'Codex reported the turn failed, without saying why.' })]);
  });

  it('an unknown item kind, or an unknown event of Codex\'s, is other', () => {
    const reader = codexAgent.reader();
    expect(reader.line(line({ id: 'c', type: 'collab_tool_call' }))).toEqual([{ kind: 'other', type: 'collab_tool_call' }]);
    expect(reader.line('{"type":"thread.archived"}')).toEqual([{ kind: 'other', type: 'thread.archived' }]);
  });
});

describe('codexAgent reader: hostile lines', () => {
  it.each([
    ['plain text', 'hello world'],
    ['empty', ''],
    ['broken JSON', '{"type":"item.completed","item":'],
    ['a JSON array', '[{"type":"turn.completed"}]'],
    ['a JSON log line of another program', '{"type":"info","msg":"x"}'],
    ['an object without a type', '{"thread_id":"x"}'],
  ])('%s: plain output, no events', (_, text) => {
    expect(codexAgent.reader().line(text)).toEqual([]);
  });

  it.each([
    ['a thread without an id', '{"type":"thread.started","thread_id":42}'],
    ['an item that is a string', '{"type":"item.completed","item":"x"}'],
    ['an item without a type', '{"type":"item.completed","item":{"id":"x"}}'],
    ['a command of the wrong types', '{"type":"item.completed","item":{"id":7,"type":"command_execution","command":["rm"],"aggregated_output":{"a":1},"exit_code":"0"}}'],
    ['changes that are not a list', '{"type":"item.started","item":{"type":"file_change","changes":{"path":"/etc/passwd"}}}'],
    ['usage of the wrong types', '{"type":"turn.completed","usage":{"input_tokens":"9","cached_input_tokens":-5,"output_tokens":1e308}}'],
    ['an error of the wrong type', '{"type":"turn.failed","error":[1,2]}'],
    ['nested garbage', `{"type":"item.completed","item":{"type":"mcp_tool_call","arguments":${'['.repeat(200)}${']'.repeat(200)},"result":{"content":[null,1,{"type":{}}]}}}`],
    ['a type that is very long', JSON.stringify({ type: `item.${'x'.repeat(10_000)}` })],
  ])('%s: events, never raw JSON, never a throw', (_, text) => {
    const events = codexAgent.reader().line(text);
    expect(events.length).toBeGreaterThan(0);
    expect(JSON.stringify(events).length).toBeLessThan(2_000);
    for (const e of events) if (e.kind === 'text') expect(e.text).not.toContain('{"');
  });

  it('a huge message and a huge command output: the message whole (it is the answer), the output by size only', () => {
    const reader = codexAgent.reader();
    const big = 'word '.repeat(200_000);
    expect(reader.line(JSON.stringify({ type: 'item.completed', item: { id: 'a', type: 'agent_message', text: big } }))).toEqual([{ kind: 'text', text: big }]);
    const out = reader.line(JSON.stringify({ type: 'item.completed', item: { id: 'c', type: 'command_execution', command: 'cat big', aggregated_output: `${'y'.repeat(900_000)}\nsecond`, exit_code: 0 } }));
    expect(out[1]).toMatchObject({ kind: 'tool_result', chars: 900_007, lines: 2 });
    expect((out[1] as { firstLine: string }).firstLine.length).toBeLessThanOrEqual(120);
  });

  it('never throws and never passes JSON on as words, whatever the line', () => {
    const reader = codexAgent.reader();
    fc.assert(fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify({ type: 'item.completed', item: v })), fc.jsonValue().map((v) => JSON.stringify({ type: 'turn.completed', usage: v }))), (text) => {
      const events = reader.line(text);
      for (const e of events) if (e.kind === 'text') expect(typeof e.text).toBe('string');
    }), { numRuns: 500 });
  });
});

describe('unwrapShell', () => {
  it.each([
    ["/bin/bash -lc 'echo hi; uname -s'", 'echo hi; uname -s'],
    ["/bin/bash -lc 'echo '\\''quoted'\\'''", "echo 'quoted'"],
    ['bash -lc ls', 'ls'],
    ['/usr/bin/zsh -c \'a\nb\'', 'a\nb'],
    ['python3 script.py', 'python3 script.py'],
  ])('%s → %s', (command, shown) => {
    expect(unwrapShell(command)).toBe(shown);
  });
});

describe('codexLimit and codexResetTime', () => {
  const now = Date.UTC(2026, 11, 6, 13, 24);
  it.each([
    ['You’ve hit your usage limit. Try again later.', 'usage'],
    ['You\'ve hit your usage limit. Upgrade to Pro … or try again at 2:24 PM.', 'usage'],
    ['exceeded retry limit, last status: 429 Too Many Requests, request id: req_1', 'rate'],
    ['rate limit exceeded: Rate limit reached for gpt in organization on tokens per min. Please try again in 1m30s.', 'rate'],
    ['exceeded retry limit, last status: 500 Internal Server Error', undefined],
    ['Quota exceeded. Check your plan and billing details.', undefined],
  ])('%s → %s', (message, kind) => {
    expect(codexLimit(message, now)?.kind).toBe(kind);
  });

  it('reads "try again in" as the wait', () => {
    expect(codexLimit('rate limit exceeded: Please try again in 1m30s.', now)?.resetAt).toBe(now + 90_000);
    expect(codexLimit('rate limit exceeded: Please try again in 250ms.', now)?.resetAt).toBe(now + 250);
    expect(codexLimit('exceeded retry limit, last status: 429 Too Many Requests', now)?.resetAt).toBeUndefined();
  });

  it('reads a time today (or tomorrow, once passed) and a dated time, as UTC', () => {
    expect(codexResetTime('try again at 2:24 PM.', now)).toBe(Date.UTC(2026, 11, 6, 14, 24));
    expect(codexResetTime('try again at 1:00 PM.', now)).toBe(Date.UTC(2026, 11, 7, 13, 0));
    expect(codexResetTime('try again at 12:05 AM.', now)).toBe(Date.UTC(2026, 11, 7, 0, 5));
    expect(codexResetTime('try again at Jan 2nd, 2027 9:05 AM.', now)).toBe(Date.UTC(2027, 0, 2, 9, 5));
    expect(codexResetTime('try again at Foo 2nd, 2027 9:05 AM.', now)).toBeUndefined();
    expect(codexResetTime('Try again later.', now)).toBeUndefined();
  });

  it('bounds what a forged stream can make it hold or say: token counts, and tool calls told but never finished', () => {
    const reader = codexAgent.reader();
    const result = reader.line(JSON.stringify({ type: 'turn.completed', usage: { input_tokens: 1e300, cached_input_tokens: 5, output_tokens: 7 } })).find((e) => e.kind === 'result');
    expect(result).toMatchObject({ tokens: { input: 1e12, output: 7, cachedInput: 5 } });
    for (let i = 0; i < 5000; i++) reader.line(JSON.stringify({ type: 'item.started', item: { id: `item_${i}`, type: 'command_execution', command: 'true' } }));
    // The oldest forgotten: its end tells the call again rather than nothing, and memory stays bounded.
    const late = reader.line(JSON.stringify({ type: 'item.completed', item: { id: 'item_0', type: 'command_execution', command: 'true', exit_code: 0, aggregated_output: '' } }));
    expect(late.map((e) => e.kind)).toEqual(['tool', 'tool_result']);
    const recent = reader.line(JSON.stringify({ type: 'item.completed', item: { id: 'item_4999', type: 'command_execution', command: 'true', exit_code: 0, aggregated_output: '' } }));
    expect(recent.map((e) => e.kind)).toEqual(['tool_result']);
  });
});
