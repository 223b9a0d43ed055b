import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';

/** An output item the fake model answers with. */
export type FakeItem =
  | { readonly type: 'text'; readonly text: string }
  /** A reasoning item with a readable summary (Codex shows it as a `reasoning` item). */
  | { readonly type: 'reasoning'; readonly summary: string }
  /**
   * A shell command, as Codex 0.171 runs one: a call of its freeform `exec` tool whose
   * JavaScript calls `tools.exec_command({ cmd })` and hands the output back with `text()`.
   */
  | { readonly type: 'shell'; readonly command: string; readonly yieldMs?: number }
  /** A freeform (custom) tool call, as the model gives it: the tool's name and its raw input. */
  | { readonly type: 'custom'; readonly name: string; readonly input: string }
  /** A function tool call: its name and JSON arguments. */
  | { readonly type: 'function'; readonly name: string; readonly arguments: Readonly<Record<string, unknown>> };

/** One answer of the fake model, or a failure the API gives. */
export type FakeReply =
  | { readonly items: readonly FakeItem[]; readonly inputTokens?: number; readonly cachedTokens?: number; readonly outputTokens?: number; readonly reasoningTokens?: number; readonly delayMs?: number }
  /** An HTTP error: the status, the error's type and code, its message, and headers (retry-after, the rate-limit ones). */
  | { readonly status: number; readonly errorType: string; readonly code?: string; readonly message: string; readonly headers?: Readonly<Record<string, string>>; readonly extra?: Readonly<Record<string, unknown>> }
  /** A stream that starts and then breaks off: the connection is destroyed after response.created. */
  | { readonly cut: true }
  /** A stream that starts, then reports `response.failed` with the error, as the API does mid-stream. */
  | { readonly failed: { readonly code: string; readonly message: string } };

/** An input item of a Responses request (the parts the tests read; every other field is kept as sent). */
export interface InputItem {
  readonly type?: string;
  readonly role?: string;
  readonly content?: ReadonlyArray<{ readonly type?: string; readonly text?: string }> | string;
  readonly output?: unknown;
  readonly call_id?: string;
  readonly name?: string;
  readonly [key: string]: unknown;
}

/** The parts of a Responses request body the tests read. */
export interface ResponsesBody {
  readonly model: string;
  readonly stream?: boolean;
  readonly instructions?: unknown;
  readonly tools?: ReadonlyArray<{ readonly type?: string; readonly name?: string }>;
  readonly input: readonly InputItem[];
  readonly [key: string]: unknown;
}

/** A request as the fake received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body when it was a Responses request's JSON; undefined otherwise (see `size`). */
  readonly body: ResponsesBody | undefined;
  /** The body's size in bytes. */
  readonly size: number;
  readonly at: number;
}

/** Decides the answer to one conversation request. */
export type Script = (request: ResponsesBody, index: number) => FakeReply | Promise<FakeReply>;

/** The texts of a message item's content. */
function texts(item: InputItem): string[] {
  if (typeof item.content === 'string') return [item.content];
  return Array.isArray(item.content) ? item.content.flatMap((c) => (typeof c.text === 'string' ? [c.text] : [])) : [];
}

function outputText(output: unknown): string {
  if (typeof output === 'string') return output;
  if (Array.isArray(output)) return output.map((o) => (o && typeof o === 'object' && typeof (o as { text?: unknown }).text === 'string' ? (o as { text: string }).text : '')).join('\n');
  if (output && typeof output === 'object' && typeof (output as { content?: unknown }).content === 'string') return (output as { content: string }).content;
  return output === undefined ? '' : JSON.stringify(output);
}

const TOOL_OUTPUTS = new Set(['function_call_output', 'custom_tool_call_output']);

/**
 * Every text the user side of a conversation carries: typed text (Codex's own context
 * blocks included) and tool outputs.
 */
export function userTexts(body: ResponsesBody): string[] {
  return body.input.flatMap((item) => (item.role === 'user' ? texts(item) : TOOL_OUTPUTS.has(item.type ?? '') ? [outputText(item.output)] : []));
}

/** Every text the assistant said earlier in the conversation (its messages as Codex sends them back). */
export function assistantTexts(body: ResponsesBody): string[] {
  return body.input.flatMap((item) => (item.role === 'assistant' ? texts(item) : []));
}

/** True when the request ends with a tool's output (the agent continues after a tool call). */
export function isToolResultTurn(body: ResponsesBody): boolean {
  for (let i = body.input.length - 1; i >= 0; i--) {
    const item = body.input[i];
    if (!item) continue;
    if (TOOL_OUTPUTS.has(item.type ?? '')) return true;
    if (item.role === 'user' || item.role === 'assistant') return false;
  }
  return false;
}

/** The tool outputs of the request's last turn, as text. */
export function toolOutputs(body: ResponsesBody): string[] {
  return body.input.filter((i) => TOOL_OUTPUTS.has(i.type ?? '')).map((i) => outputText(i.output));
}

/** The typed text of the last user message: its last text (Codex puts its own context blocks before it). */
export function lastUserText(body: ResponsesBody): string {
  for (let i = body.input.length - 1; i >= 0; i--) {
    const item = body.input[i];
    if (item?.role === 'user') return texts(item).filter((t) => !t.startsWith('<')).at(-1) ?? '';
  }
  return '';
}

/** The JavaScript Codex's `exec` tool is given to run one shell command and hand its output back. */
export function execScript(command: string, yieldMs?: number): string {
  const args = { cmd: command, ...(yieldMs !== undefined ? { yield_time_ms: yieldMs } : {}) };
  return `const r = await tools.exec_command(${JSON.stringify(args)});\ntext(r.output);\nif (r.exit_code !== undefined) text("exit " + r.exit_code);\n`;
}

let counter = 0;
function id(prefix: string): string {
  counter += 1;
  return `${prefix}_${Date.now().toString(16)}${counter.toString(16).padStart(6, '0')}`;
}

/** Splits text into a few deltas, as the API streams it. */
function pieces(text: string): string[] {
  if (text.length < 8) return [text];
  const size = Math.ceil(text.length / 3);
  return [text.slice(0, size), text.slice(size, 2 * size), text.slice(2 * size)];
}

/**
 * A local fake of OpenAI's Responses API for the real Codex CLI (its `openai_base_url`).
 * `POST <base>/responses` with `stream: true` is answered with server-sent events the way
 * the API streams them (response.created, response.in_progress, output_item.added, the
 * item's deltas, output_item.done, response.completed with usage), from the test's script;
 * an HTTP error carries the script's status, headers and the API's error body. The
 * Responses WebSocket (a GET upgrade on the same path, which Codex tries first) is refused
 * with 426 Upgrade Required, on which Codex uses HTTPS at once. `GET <base>/models` is
 * answered with an empty list. Every request is recorded (headers and body), the unknown
 * ones too (answered 404).
 */
export class FakeOpenAI {
  readonly requests: RecordedRequest[] = [];
  private server: Server | undefined;
  private conversationIndex = 0;

  constructor(private script: Script) {}

  /** Replaces the script; the conversation counter starts again at 0. */
  setScript(script: Script): void {
    this.script = script;
    this.conversationIndex = 0;
  }

  /** The requests that carried the conversation (the ones the script answered). */
  get conversation(): RecordedRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/responses') && r.body && isConversation(r.body));
  }

  /** Requests to paths the fake does not serve. */
  get unknown(): RecordedRequest[] {
    return this.requests.filter((r) => !(r.path.endsWith('/responses') || r.path.endsWith('/models')));
  }

  /** Listens on a free port; resolves the base URL to give Codex (`http://host:port/v1`). */
  async listen(host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'server_error', code: 'server_error', message: String(err) } }));
    }));
    this.server.on('upgrade', (req: IncomingMessage, socket: Duplex) => {
      this.record(req, Buffer.alloc(0));
      const refusal = JSON.stringify({ error: { type: 'invalid_request_error', code: 'websocket_unsupported', message: 'This server takes Responses over HTTPS only.' } });
      socket.end(`HTTP/1.1 426 Upgrade Required\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(refusal)}\r\nconnection: close\r\n\r\n${refusal}`);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, host, resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://${host}:${port}/v1`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private record(req: IncomingMessage, raw: Buffer): ResponsesBody | undefined {
    let body: ResponsesBody | undefined;
    try {
      const parsed = raw.length ? (JSON.parse(raw.toString('utf8')) as unknown) : undefined;
      body = parsed && typeof parsed === 'object' && Array.isArray((parsed as { input?: unknown }).input) ? (parsed as ResponsesBody) : undefined;
    } catch {
      body = undefined;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    this.requests.push({ method: req.method ?? '', path, headers: req.headers, body, size: raw.length, at: Date.now() });
    return body;
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const body = this.record(req, Buffer.concat(chunks));
    const path = (req.url ?? '').split('?')[0] ?? '';

    if (req.method === 'GET' && path.endsWith('/models')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [] }));
      return;
    }
    if (!path.endsWith('/responses') || req.method !== 'POST' || !body) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { type: 'invalid_request_error', code: 'not_found', message: `no ${req.method} ${path} here` } }));
      return;
    }
    const reply: FakeReply = isConversation(body) ? await this.script(body, this.conversationIndex++) : { items: [{ type: 'text', text: 'Side request' }] };
    if ('status' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json', 'x-request-id': id('req'), ...(reply.headers ?? {}) });
      res.end(JSON.stringify({ error: { type: reply.errorType, code: reply.code ?? reply.errorType, message: reply.message, param: null, ...(reply.extra ?? {}) } }));
      return;
    }
    const responseId = id('resp');
    const base = { id: responseId, object: 'response', created_at: Math.floor(Date.now() / 1000), model: body.model, error: null, incomplete_details: null, parallel_tool_calls: false, tool_choice: 'auto', tools: [] };
    let seq = 0;
    const send = (event: Record<string, unknown> & { type: string }): void => {
      res.write(`event: ${event.type}\ndata: ${JSON.stringify({ ...event, sequence_number: seq++ })}\n\n`);
    };
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', 'x-request-id': id('req'), 'openai-processing-ms': '12' });
    send({ type: 'response.created', response: { ...base, status: 'in_progress', output: [], usage: null } });
    send({ type: 'response.in_progress', response: { ...base, status: 'in_progress', output: [], usage: null } });
    if ('cut' in reply) {
      res.write('event: response.output_item.added\ndata: {"type":"response.output_i');
      await new Promise((r) => setTimeout(r, 50));
      res.destroy();
      return;
    }
    if ('failed' in reply) {
      send({ type: 'response.failed', response: { ...base, status: 'failed', output: [], usage: null, error: { code: reply.failed.code, message: reply.failed.message } } });
      res.end();
      return;
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const output: Array<Record<string, unknown>> = [];
    reply.items.forEach((item, index) => {
      const done = streamItem(send, item, index);
      output.push(done);
    });
    const inputTokens = reply.inputTokens ?? 1000;
    const outputTokens = reply.outputTokens ?? 100;
    send({
      type: 'response.completed',
      response: {
        ...base, status: 'completed', output,
        usage: {
          input_tokens: inputTokens, input_tokens_details: { cached_tokens: reply.cachedTokens ?? 0 },
          output_tokens: outputTokens, output_tokens_details: { reasoning_tokens: reply.reasoningTokens ?? 0 },
          total_tokens: inputTokens + outputTokens,
        },
      },
    });
    res.end();
  }
}

type Send = (event: Record<string, unknown> & { type: string }) => void;

/** Streams one output item as the API does; returns the item as it is when done. */
function streamItem(send: Send, item: FakeItem, index: number): Record<string, unknown> {
  const at = { output_index: index };
  if (item.type === 'text') {
    const itemId = id('msg');
    send({ type: 'response.output_item.added', ...at, item: { id: itemId, type: 'message', status: 'in_progress', role: 'assistant', content: [] } });
    send({ type: 'response.content_part.added', ...at, item_id: itemId, content_index: 0, part: { type: 'output_text', text: '', annotations: [] } });
    for (const delta of pieces(item.text)) send({ type: 'response.output_text.delta', ...at, item_id: itemId, content_index: 0, delta });
    send({ type: 'response.output_text.done', ...at, item_id: itemId, content_index: 0, text: item.text });
    const part = { type: 'output_text', text: item.text, annotations: [] };
    send({ type: 'response.content_part.done', ...at, item_id: itemId, content_index: 0, part });
    const done = { id: itemId, type: 'message', status: 'completed', role: 'assistant', content: [part] };
    send({ type: 'response.output_item.done', ...at, item: done });
    return done;
  }
  if (item.type === 'reasoning') {
    const itemId = id('rs');
    send({ type: 'response.output_item.added', ...at, item: { id: itemId, type: 'reasoning', summary: [] } });
    send({ type: 'response.reasoning_summary_part.added', ...at, item_id: itemId, summary_index: 0, part: { type: 'summary_text', text: '' } });
    for (const delta of pieces(item.summary)) send({ type: 'response.reasoning_summary_text.delta', ...at, item_id: itemId, summary_index: 0, delta });
    send({ type: 'response.reasoning_summary_text.done', ...at, item_id: itemId, summary_index: 0, text: item.summary });
    send({ type: 'response.reasoning_summary_part.done', ...at, item_id: itemId, summary_index: 0, part: { type: 'summary_text', text: item.summary } });
    const done = { id: itemId, type: 'reasoning', summary: [{ type: 'summary_text', text: item.summary }], encrypted_content: Buffer.from(item.summary).toString('base64') };
    send({ type: 'response.output_item.done', ...at, item: done });
    return done;
  }
  if (item.type === 'function') {
    const itemId = id('fc');
    const args = JSON.stringify(item.arguments);
    const callId = id('call');
    send({ type: 'response.output_item.added', ...at, item: { id: itemId, type: 'function_call', status: 'in_progress', call_id: callId, name: item.name, arguments: '' } });
    for (const delta of pieces(args)) send({ type: 'response.function_call_arguments.delta', ...at, item_id: itemId, delta });
    send({ type: 'response.function_call_arguments.done', ...at, item_id: itemId, arguments: args });
    const done = { id: itemId, type: 'function_call', status: 'completed', call_id: callId, name: item.name, arguments: args };
    send({ type: 'response.output_item.done', ...at, item: done });
    return done;
  }
  const [name, input] = item.type === 'shell' ? ['exec', execScript(item.command, item.yieldMs)] : [item.name, item.input];
  const itemId = id('ctc');
  const callId = id('call');
  send({ type: 'response.output_item.added', ...at, item: { id: itemId, type: 'custom_tool_call', status: 'in_progress', call_id: callId, name, input: '' } });
  for (const delta of pieces(input)) send({ type: 'response.custom_tool_call_input.delta', ...at, item_id: itemId, delta });
  send({ type: 'response.custom_tool_call_input.done', ...at, item_id: itemId, input });
  const done = { id: itemId, type: 'custom_tool_call', status: 'completed', call_id: callId, name, input };
  send({ type: 'response.output_item.done', ...at, item: done });
  return done;
}

/** The conversation carries a user message or a tool's output; Codex's side requests (a title, a summary) are told apart by the script's caller. */
function isConversation(body: ResponsesBody): boolean {
  return body.input.some((i) => i.role === 'user' || TOOL_OUTPUTS.has(i.type ?? ''));
}
