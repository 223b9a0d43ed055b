import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A content block the fake model answers with. */
export type FakeBlock =
  | { readonly type: 'text'; readonly text: string }
  | { readonly type: 'thinking'; readonly thinking: string }
  | { readonly type: 'tool_use'; readonly name: string; readonly input: Record<string, unknown>; readonly id?: string };

/** One answer of the fake model, or an HTTP error the API would give. */
export type FakeReply =
  | { readonly blocks: readonly FakeBlock[]; readonly stopReason?: 'end_turn' | 'tool_use' | 'max_tokens'; readonly inputTokens?: number; readonly outputTokens?: number; readonly delayMs?: number }
  | { readonly status: number; readonly errorType: string; readonly message: string; readonly headers?: Readonly<Record<string, string>> }
  /** A stream that starts and then breaks off: the connection is destroyed after message_start. */
  | { readonly cut: true }
  /** A stream that starts, then reports an error event as the API does mid-stream. */
  | { readonly streamError: string; readonly message: string };

/** A Messages API request as the fake received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: MessagesBody | undefined;
  readonly at: number;
}

/** The parts of a Messages request body the tests read. */
export interface MessagesBody {
  readonly model: string;
  readonly stream?: boolean;
  readonly system?: unknown;
  readonly tools?: ReadonlyArray<{ name: string }>;
  readonly messages: ReadonlyArray<{ role: 'user' | 'assistant' | 'system'; content: string | ReadonlyArray<Record<string, unknown>> }>;
  readonly max_tokens?: number;
}

/** Decides the answer to one main-conversation request. */
export type Script = (request: MessagesBody, index: number) => FakeReply | Promise<FakeReply>;

/**
 * Every text the user side of a conversation carries: typed text, tool results, and the
 * CLI's own "system" messages (it passes a message sent mid-turn in one of those).
 */
export function userTexts(body: MessagesBody): string[] {
  const out: string[] = [];
  for (const m of body.messages) {
    if (m.role === 'assistant') continue;
    if (typeof m.content === 'string') out.push(m.content);
    else for (const block of m.content) {
      if (block.type === 'text' && typeof block.text === 'string') out.push(block.text);
      if (block.type === 'tool_result') {
        const c = block.content;
        if (typeof c === 'string') out.push(c);
        else if (Array.isArray(c)) for (const part of c as Array<Record<string, unknown>>) if (typeof part.text === 'string') out.push(part.text);
      }
    }
  }
  return out;
}

/**
 * The content of the user's turn the request ends with: every user message after the last
 * assistant message (the CLI may add messages of its own, such as a "system" one, after it).
 */
export function lastUser(body: MessagesBody): ReadonlyArray<Record<string, unknown>> {
  const blocks: Array<Record<string, unknown>> = [];
  for (let i = body.messages.length - 1; i >= 0; i--) {
    const m = body.messages[i] as MessagesBody['messages'][number] | { role: string; content: unknown };
    if (m.role === 'assistant') break;
    if (m.role !== 'user') continue;
    const content = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : (m.content as Array<Record<string, unknown>>);
    blocks.unshift(...content);
  }
  return blocks;
}

/** True when the request's last user message carries a tool result (the agent continues after a tool call). */
export function isToolResultTurn(body: MessagesBody): boolean {
  return lastUser(body).some((b) => b.type === 'tool_result');
}

/** The typed text of the last user message: its last text block (the CLI puts its own reminders before it). */
export function lastUserText(body: MessagesBody): string {
  const texts = lastUser(body).filter((b) => b.type === 'text').map((b) => String(b.text));
  return texts.at(-1) ?? '';
}

function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
}

/**
 * A local fake of the Anthropic Messages API for the real Claude Code CLI
 * (`ANTHROPIC_BASE_URL`). It streams SSE the way the API does (message_start,
 * content_block_start, text/thinking/input_json deltas, content_block_stop, message_delta
 * with stop_reason and usage, message_stop), answers the conversation with the test's
 * script, and records every request so tests can assert what the agent sent.
 *
 * Requests the CLI makes on the side (a title or topic from the small model, token counts)
 * are answered with a short text and recorded, but do not consume the script.
 */
export class FakeAnthropic {
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
    return this.requests.filter((r) => r.body && isConversation(r.body));
  }

  async listen(host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message: String(err) } }));
    }));
    await new Promise<void>((resolve) => this.server?.listen(0, host, resolve));
    const { port } = this.server.address() as AddressInfo;
    return `http://${host}:${port}`;
  }

  async close(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    let body: MessagesBody | undefined;
    try {
      body = text ? (JSON.parse(text) as MessagesBody) : undefined;
    } catch {
      body = undefined;
    }
    const path = (req.url ?? '').split('?')[0] ?? '';
    this.requests.push({ method: req.method ?? '', path, headers: req.headers, body, at: Date.now() });

    if (path.endsWith('/v1/messages/count_tokens')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ input_tokens: 100 }));
      return;
    }
    if (!path.endsWith('/v1/messages') || req.method !== 'POST' || !body) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: `no ${req.method} ${path} here` } }));
      return;
    }
    const reply: FakeReply = isConversation(body)
      ? await this.script(body, this.conversationIndex++)
      : { blocks: [{ type: 'text', text: 'Side request' }] };
    if ('status' in reply) {
      res.writeHead(reply.status, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
      res.end(JSON.stringify({ type: 'error', error: { type: reply.errorType, message: reply.message } }));
      return;
    }
    if ('cut' in reply) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      sse(res, 'message_start', { type: 'message_start', message: { id: 'msg_cut', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } });
      res.write('event: content_block_delta\ndata: {"type":"content_block_del');
      await new Promise((r) => setTimeout(r, 50));
      res.destroy();
      return;
    }
    if ('streamError' in reply) {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      sse(res, 'message_start', { type: 'message_start', message: { id: 'msg_err', type: 'message', role: 'assistant', model: body.model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } });
      sse(res, 'error', { type: 'error', error: { type: reply.streamError, message: reply.message } });
      res.end();
      return;
    }
    if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
    const model = body.model;
    const id = `msg_${Math.random().toString(36).slice(2, 14)}`;
    const inputTokens = reply.inputTokens ?? 1000;
    const outputTokens = reply.outputTokens ?? 100;
    const stopReason = reply.stopReason ?? (reply.blocks.some((b) => b.type === 'tool_use') ? 'tool_use' : 'end_turn');
    if (body.stream === false) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        id, type: 'message', role: 'assistant', model, stop_reason: stopReason, stop_sequence: null,
        content: reply.blocks.map((b, i) => (b.type === 'tool_use' ? { type: 'tool_use', id: b.id ?? `toolu_${id}_${i}`, name: b.name, input: b.input } : b.type === 'thinking' ? { ...b, signature: 'sig' } : b)),
        usage: { input_tokens: inputTokens, output_tokens: outputTokens },
      }));
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive', 'request-id': `req_${id}` });
    sse(res, 'message_start', {
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: inputTokens, output_tokens: 1, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 } },
    });
    reply.blocks.forEach((block, index) => {
      if (block.type === 'text') {
        sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } });
        for (const piece of pieces(block.text)) sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } });
      } else if (block.type === 'thinking') {
        sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'thinking', thinking: '', signature: '' } });
        for (const piece of pieces(block.thinking)) sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'thinking_delta', thinking: piece } });
        sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'signature_delta', signature: 'c2lnbmF0dXJl' } });
      } else {
        sse(res, 'content_block_start', { type: 'content_block_start', index, content_block: { type: 'tool_use', id: block.id ?? `toolu_${id}_${index}`, name: block.name, input: {} } });
        for (const piece of pieces(JSON.stringify(block.input))) sse(res, 'content_block_delta', { type: 'content_block_delta', index, delta: { type: 'input_json_delta', partial_json: piece } });
      }
      sse(res, 'content_block_stop', { type: 'content_block_stop', index });
    });
    sse(res, 'message_delta', { type: 'message_delta', delta: { stop_reason: stopReason, stop_sequence: null }, usage: { output_tokens: outputTokens } });
    sse(res, 'message_stop', { type: 'message_stop' });
    res.end();
  }
}

/** Splits text into a few deltas, as the API streams it. */
function pieces(text: string): string[] {
  if (text.length < 8) return [text];
  const size = Math.ceil(text.length / 3);
  return [text.slice(0, size), text.slice(size, 2 * size), text.slice(2 * size)];
}

/** The main conversation carries the agent's tools; side requests (titles, summaries) do not. */
function isConversation(body: MessagesBody): boolean {
  return Array.isArray(body.tools) && body.tools.length > 0;
}
