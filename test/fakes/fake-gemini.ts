import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A part the fake model answers with: words, thought, or a function (tool) call. */
export type FakePart =
  | { readonly text: string }
  | { readonly thought: string }
  | { readonly functionCall: { readonly name: string; readonly args: Record<string, unknown> } };

/** One answer of the fake model, or an HTTP error the API would give. */
export type FakeReply =
  | {
      readonly parts: readonly FakePart[];
      readonly finishReason?: 'STOP' | 'MAX_TOKENS' | 'SAFETY';
      readonly promptTokens?: number;
      readonly outputTokens?: number;
      readonly cachedTokens?: number;
      /** Before the first chunk. */
      readonly delayMs?: number;
    }
  /** Google's error JSON: `{error: {code, message, status, details}}`. */
  | { readonly status: number; readonly code: string; readonly message: string; readonly details?: readonly unknown[]; readonly headers?: Readonly<Record<string, string>> }
  /** A stream that starts and then breaks off: the connection is destroyed after the first chunk. */
  | { readonly cut: true };

/** A part of a `contents` entry as the CLI sends it. */
export interface ContentPart {
  readonly text?: string;
  readonly thought?: boolean;
  readonly functionCall?: { readonly name: string; readonly args?: Record<string, unknown>; readonly id?: string };
  readonly functionResponse?: { readonly name: string; readonly response?: Record<string, unknown>; readonly id?: string };
}

/** The parts of a generateContent request body the tests read. */
export interface GenerateBody {
  readonly contents: ReadonlyArray<{ readonly role?: 'user' | 'model'; readonly parts?: readonly ContentPart[] }>;
  readonly systemInstruction?: { readonly parts?: readonly ContentPart[] };
  readonly tools?: ReadonlyArray<{ readonly functionDeclarations?: ReadonlyArray<{ readonly name: string }> }>;
  readonly generationConfig?: Record<string, unknown>;
}

/** A request as the fake received it. */
export interface RecordedRequest {
  readonly method: string;
  /** The path without the query: `/v1beta/models/gemini-2.5-pro:streamGenerateContent`. */
  readonly path: string;
  readonly query: string;
  /** The model the path names, and the method after the colon (`streamGenerateContent`, `generateContent`, `countTokens`…). */
  readonly model: string | undefined;
  readonly action: string | undefined;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: GenerateBody | undefined;
  readonly at: number;
}

/** Decides the answer to one conversation request (one that carries the CLI's tools). */
export type Script = (request: GenerateBody, index: number) => FakeReply | Promise<FakeReply>;

/** Every text part the conversation's user side carries, function responses' output included. */
export function userTexts(body: GenerateBody): string[] {
  const out: string[] = [];
  for (const c of body.contents) {
    if (c.role === 'model') continue;
    for (const p of c.parts ?? []) {
      if (typeof p.text === 'string') out.push(p.text);
      const response = p.functionResponse?.response;
      if (response) out.push(typeof response.output === 'string' ? response.output : JSON.stringify(response));
    }
  }
  return out;
}

/** Every text the model side of the conversation carries (its earlier answers, as the CLI sends them back). */
export function modelTexts(body: GenerateBody): string[] {
  return body.contents.filter((c) => c.role === 'model').flatMap((c) => (c.parts ?? []).filter((p) => typeof p.text === 'string' && !p.thought).map((p) => p.text as string));
}

/** The parts of the turn the request ends with (the CLI's last `user` entry). */
export function lastUserParts(body: GenerateBody): readonly ContentPart[] {
  const last = body.contents.at(-1);
  return last && last.role !== 'model' ? (last.parts ?? []) : [];
}

/** True when the request's last turn carries function responses (the agent goes on after a tool call). */
export function isFunctionResponseTurn(body: GenerateBody): boolean {
  return lastUserParts(body).some((p) => p.functionResponse !== undefined);
}

/** The function responses of the last turn: name and output text. */
export function functionResponses(body: GenerateBody): Array<{ name: string; output: string }> {
  return lastUserParts(body).flatMap((p) => {
    if (!p.functionResponse) return [];
    const r = p.functionResponse.response ?? {};
    return [{ name: p.functionResponse.name, output: typeof r.output === 'string' ? r.output : JSON.stringify(r) }];
  });
}

/** The typed text of the last user turn: its last text part. */
export function lastUserText(body: GenerateBody): string {
  return lastUserParts(body).filter((p) => typeof p.text === 'string').map((p) => p.text as string).at(-1) ?? '';
}

/**
 * A 429 as the Gemini API gives it when a quota is spent: RESOURCE_EXHAUSTED with a
 * QuotaFailure and a RetryInfo naming when to retry (`"<n>s"`).
 */
export function rateLimited(retryDelaySeconds: number, quotaId = 'GenerateRequestsPerMinutePerProjectPerModel-FreeTier'): FakeReply {
  return {
    status: 429,
    code: 'RESOURCE_EXHAUSTED',
    message: `You exceeded your current quota, please check your plan and billing details. Please retry in ${retryDelaySeconds}s.`,
    details: [
      { '@type': 'type.googleapis.com/google.rpc.QuotaFailure', violations: [{ quotaMetric: 'generativelanguage.googleapis.com/generate_content_free_tier_requests', quotaId, quotaDimensions: { location: 'global', model: 'gemini-2.5-pro' }, quotaValue: '2' }] },
      { '@type': 'type.googleapis.com/google.rpc.Help', links: [{ description: 'Learn more about Gemini API quotas', url: 'https://ai.google.dev/gemini-api/docs/rate-limits' }] },
      { '@type': 'type.googleapis.com/google.rpc.RetryInfo', retryDelay: `${retryDelaySeconds}s` },
    ],
  };
}

/**
 * A local fake of the Gemini API (generativelanguage.googleapis.com) for the real Gemini CLI
 * (`GOOGLE_GEMINI_BASE_URL`). `streamGenerateContent?alt=sse` streams `data:` chunks the way
 * the API does (the text in pieces, function calls whole, the finish reason and the usage
 * metadata on the last chunk), answered by the test's script; every request is recorded so
 * tests can assert what the CLI sent.
 *
 * Requests the CLI makes on the side (its model router's classifier, countTokens, a request
 * without tools) are answered and recorded but do not consume the script. Anything else is a
 * 404 in Google's error shape, and its path is kept in `unknown`.
 */
export class FakeGemini {
  readonly requests: RecordedRequest[] = [];
  /** Paths the fake does not serve, as `METHOD path`: what the CLI called that a real test should know of. */
  readonly unknown: string[] = [];
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
    return this.requests.filter((r) => r.action === 'streamGenerateContent' && r.body !== undefined && isConversation(r.body));
  }

  async listen(host = '127.0.0.1'): Promise<string> {
    this.server = createServer((req, res) => void this.handle(req, res).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { code: 500, message: String(err), status: 'INTERNAL' } }));
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
    let body: GenerateBody | undefined;
    try {
      body = text ? (JSON.parse(text) as GenerateBody) : undefined;
    } catch {
      body = undefined;
    }
    const [path = '', query = ''] = (req.url ?? '').split('?');
    const m = /^\/v1(?:beta|alpha)?\/models\/([^/:]+)(?::(\w+))?$/.exec(path);
    const model = m?.[1];
    const action = m?.[2];
    this.requests.push({ method: req.method ?? '', path, query, model, action, headers: req.headers, body, at: Date.now() });

    if (req.method === 'POST' && action === 'countTokens') return json(res, 200, { totalTokens: 100 });
    if (req.method === 'POST' && action === 'streamGenerateContent' && body) {
      const reply = isConversation(body) ? await this.script(body, this.conversationIndex++) : { parts: [{ text: 'Side request' }] };
      return stream(res, reply, model ?? 'gemini');
    }
    if (req.method === 'POST' && action === 'generateContent' && body) return json(res, 200, sideAnswer(body, model ?? 'gemini'));
    if (req.method === 'GET' && m && !action) return json(res, 200, { name: `models/${model}`, displayName: model, inputTokenLimit: 1_048_576, outputTokenLimit: 65_536 });
    this.unknown.push(`${req.method} ${path}`);
    json(res, 404, { error: { code: 404, message: `no ${req.method} ${path} here`, status: 'NOT_FOUND' } });
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=UTF-8' });
  res.end(JSON.stringify(body));
}

async function stream(res: ServerResponse, reply: FakeReply, model: string): Promise<void> {
  if ('status' in reply) {
    res.writeHead(reply.status, { 'content-type': 'application/json; charset=UTF-8', ...(reply.headers ?? {}) });
    res.end(JSON.stringify({ error: { code: reply.status, message: reply.message, status: reply.code, ...(reply.details ? { details: reply.details } : {}) } }));
    return;
  }
  const responseId = `resp_${Math.random().toString(36).slice(2, 14)}`;
  const chunk = (data: unknown): void => void res.write(`data: ${JSON.stringify(data)}\r\n\r\n`);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-content-type-options': 'nosniff' });
  if ('cut' in reply) {
    chunk({ candidates: [{ content: { role: 'model', parts: [{ text: 'Starting' }] }, index: 0 }], modelVersion: model, responseId });
    res.write('data: {"candidates":[{"content":{"ro');
    await new Promise((r) => setTimeout(r, 50));
    res.destroy();
    return;
  }
  if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
  const promptTokens = reply.promptTokens ?? 1000;
  const outputTokens = reply.outputTokens ?? 100;
  const cachedTokens = reply.cachedTokens ?? 0;
  const pieces: object[] = [];
  for (const part of reply.parts) {
    if ('text' in part) for (const piece of split(part.text)) pieces.push({ text: piece });
    else if ('thought' in part) pieces.push({ text: part.thought, thought: true });
    else pieces.push({ functionCall: part.functionCall, thoughtSignature: 'c2lnbmF0dXJl' });
  }
  if (pieces.length === 0) pieces.push({ text: '' });
  pieces.forEach((part, i) => {
    const last = i === pieces.length - 1;
    chunk({
      candidates: [{ content: { role: 'model', parts: [part] }, index: 0, ...(last ? { finishReason: reply.finishReason ?? 'STOP' } : {}) }],
      usageMetadata: last
        ? { promptTokenCount: promptTokens, candidatesTokenCount: outputTokens, ...(cachedTokens ? { cachedContentTokenCount: cachedTokens } : {}), totalTokenCount: promptTokens + outputTokens }
        : { promptTokenCount: promptTokens, totalTokenCount: promptTokens },
      modelVersion: model,
      responseId,
    });
  });
  res.end();
}

/**
 * The CLI's side requests, non-streaming: its model router asks a small model to score the
 * prompt's complexity (a JSON answer); anything else gets a short text.
 */
function sideAnswer(body: GenerateBody, model: string): unknown {
  const system = (body.systemInstruction?.parts ?? []).map((p) => p.text ?? '').join('\n');
  const text = /complexity/i.test(system)
    ? JSON.stringify({ complexity_reasoning: 'A direct request.', complexity_score: 10 })
    : /next_speaker/i.test(system) || /next_speaker/.test(JSON.stringify(body.contents.at(-1) ?? {}))
      ? JSON.stringify({ reasoning: 'The model answered.', next_speaker: 'user' })
      : 'Side request';
  return {
    candidates: [{ content: { role: 'model', parts: [{ text }] }, finishReason: 'STOP', index: 0 }],
    usageMetadata: { promptTokenCount: 5, candidatesTokenCount: 5, totalTokenCount: 10 },
    modelVersion: model,
  };
}

/** Splits text into a few chunks, as the API streams it. */
function split(text: string): string[] {
  if (text.length < 8) return [text];
  const size = Math.ceil(text.length / 3);
  return [text.slice(0, size), text.slice(size, 2 * size), text.slice(2 * size)];
}

/** The conversation carries the CLI's tools; side requests do not. */
function isConversation(body: GenerateBody): boolean {
  return (body.tools ?? []).some((t) => (t.functionDeclarations ?? []).length > 0);
}
