import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeOpenAI, isToolResultTurn, lastUserText, toolOutputs, userTexts, type ResponsesBody } from './fake-openai.js';

const body = (input: ResponsesBody['input']): ResponsesBody => ({ model: 'gpt-test', stream: true, input });

/** Server-sent events of a response: each event's type and data. */
function events(text: string): Array<{ event: string; data: Record<string, unknown> }> {
  return text.split('\n\n').filter(Boolean).map((block) => {
    const event = /^event: (.*)$/m.exec(block)?.[1] ?? '';
    return { event, data: JSON.parse(/^data: (.*)$/m.exec(block)?.[1] ?? '{}') as Record<string, unknown> };
  });
}

describe('FakeOpenAI', () => {
  const api = new FakeOpenAI(() => ({ items: [] }));
  let base = '';
  beforeAll(async () => {
    base = await api.listen();
  });
  afterAll(async () => {
    await api.close();
  });

  const post = (b: unknown) => fetch(`${base}/responses`, { method: 'POST', headers: { 'content-type': 'application/json', authorization: 'Bearer k' }, body: JSON.stringify(b) });

  it('streams a text answer and a shell call as the Responses API does, usage on response.completed, and records the request', async () => {
    api.setScript(() => ({ items: [{ type: 'text', text: 'Hello there, friend.' }, { type: 'shell', command: 'ls -la' }], inputTokens: 10, cachedTokens: 4, outputTokens: 3 }));
    const res = await post(body([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }]));
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const got = events(await res.text());
    expect(got.map((e) => e.event)).toEqual([
      'response.created', 'response.in_progress',
      'response.output_item.added', 'response.content_part.added', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.delta', 'response.output_text.done', 'response.content_part.done', 'response.output_item.done',
      'response.output_item.added', 'response.custom_tool_call_input.delta', 'response.custom_tool_call_input.delta', 'response.custom_tool_call_input.delta', 'response.custom_tool_call_input.done', 'response.output_item.done',
      'response.completed',
    ]);
    expect(got.map((e) => e.data.sequence_number)).toEqual(got.map((_, i) => i));
    const call = got[15]?.data.item as Record<string, unknown>;
    expect(call).toMatchObject({ type: 'custom_tool_call', name: 'exec', input: expect.stringContaining('tools.exec_command({"cmd":"ls -la"})') });
    expect((got.at(-1)?.data.response as Record<string, unknown>).usage).toEqual({ input_tokens: 10, input_tokens_details: { cached_tokens: 4 }, output_tokens: 3, output_tokens_details: { reasoning_tokens: 0 }, total_tokens: 13 });
    expect(api.conversation.at(-1)).toMatchObject({ method: 'POST', path: '/v1/responses', headers: expect.objectContaining({ authorization: 'Bearer k' }) });
  });

  it('answers an HTTP error with its headers and the API\'s error body', async () => {
    api.setScript(() => ({ status: 429, errorType: 'usage_limit_reached', message: 'limit', headers: { 'retry-after': '7' }, extra: { resets_at: 123 } }));
    const res = await post(body([{ type: 'message', role: 'user', content: [{ type: 'input_text', text: 'hi' }] }]));
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.json()).toEqual({ error: { type: 'usage_limit_reached', code: 'usage_limit_reached', message: 'limit', param: null, resets_at: 123 } });
  });

  it('refuses the Responses WebSocket with 426, lists no models, and records unknown paths', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/responses`, { headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': 'x' } });
      req.on('response', (res) => resolve(res.statusCode ?? 0));
      req.on('upgrade', () => reject(new Error('upgraded')));
      req.on('error', reject);
      req.end();
    });
    expect(status).toBe(426);
    expect(await (await fetch(`${base}/models`)).json()).toEqual({ object: 'list', data: [] });
    expect((await fetch(`${base}/elsewhere`)).status).toBe(404);
    expect(api.unknown.map((r) => r.path)).toEqual(['/v1/elsewhere']);
  });

  it('reads a request as Codex sends it: typed text, tool outputs, whether it continues after a tool', () => {
    const first = body([
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: '<environment_context>…</environment_context>' }] },
      { type: 'message', role: 'user', content: [{ type: 'input_text', text: 'do it' }] },
    ]);
    expect(lastUserText(first)).toBe('do it');
    expect(isToolResultTurn(first)).toBe(false);
    const next = body([...first.input, { type: 'custom_tool_call', name: 'exec', call_id: 'c' }, { type: 'custom_tool_call_output', call_id: 'c', output: [{ type: 'input_text', text: 'out' }] }]);
    expect(isToolResultTurn(next)).toBe(true);
    expect(toolOutputs(next)).toEqual(['out']);
    expect(userTexts(next)).toEqual(['<environment_context>…</environment_context>', 'do it', 'out']);
  });
});
