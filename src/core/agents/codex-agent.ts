import type { AgentEvent } from '../events.js';
import { parseResetTime } from '../provider-limit.js';
import { shorten } from '../text.js';
import { priceTokens, type Agent, type AgentReaderOptions, type AgentStreamReader } from './agent.js';

/**
 * Options every Codex run takes, each for a reason Codex CLI 0.171 showed:
 * - `-c analytics.enabled=false --disable plugins`: its start-up calls home otherwise
 *   (ab.chatgpt.com for analytics; api.github.com and chatgpt.com for plugins), and no
 *   variable turns those off; a gated container's gateway would refuse them anyway;
 * - `exec --json`: one run, its events as JSON lines on standard output;
 * - `--skip-git-repo-check`: the workdir need not be a git repository;
 * - `--dangerously-bypass-approvals-and-sandbox`: no approvals asked, and no sandbox of its
 *   own: the container is the sandbox (its bubblewrap sandbox cannot start inside Docker:
 *   every command of a `--sandbox workspace-write` run fails with "bwrap: No permissions to
 *   create a new namespace").
 */
const QUIET: readonly string[] = Object.freeze(['-c', 'analytics.enabled=false', '--disable', 'plugins']);
const EXEC: readonly string[] = Object.freeze(['--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox']);

/**
 * Codex's start and resume commands: `codex exec <options> [resume <thread>] -- <prompt>`.
 * The prompt is the last argument, behind `--`; the resume continues the thread
 * `{agentSessionId}` (`exec`'s options apply to it). Its model requests go to `baseUrl`
 * (`-c openai_base_url=…`; by default `{modelUrl}`: the run's gateway when it holds the key,
 * else the pod's OPENAI_BASE_URL or OpenAI's API): Codex 0.171 reads no variable for its
 * endpoint (OPENAI_BASE_URL is ignored), only its config.
 */
export function codexCommands(options: { readonly baseUrl?: string | undefined } = {}): { readonly command: readonly string[]; readonly resumeCommand: readonly string[] } {
  const head = ['codex', 'exec', '-c', `openai_base_url=${options.baseUrl ?? '{modelUrl}'}`, ...QUIET, ...EXEC];
  return { command: [...head, '--', '{prompt}'], resumeCommand: [...head, 'resume', '{agentSessionId}', '--', '{prompt}'] };
}

/** A tool result's first line, for a person's terminal. */
const MAX_FIRST_LINE = 120;
/** How many error texts a failed result keeps. */
const MAX_ERRORS = 5;
/** What Codex says before a retry it makes itself ("Reconnecting... 2/5 (…)"). */
const RETRYING = /^Reconnecting\.\.\./;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A token count: a whole number of 0 or more, else 0. */
function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v > 0 ? Math.floor(Math.min(v, MAX_COUNT)) : 0;
}

/** The most a token count is taken to be (the stream is the container's output). */
const MAX_COUNT = 1e12;

/** Tool calls told at their start and not finished yet, at most: past it the oldest is forgotten (it may be told again at its end). */
const MAX_OPEN_TOOLS = 1000;

/** The command a person typed, out of Codex's `/bin/bash -lc '<command>'` wrapping. */
export function unwrapShell(command: string): string {
  const quoted = /^(?:\/[\w./-]*\/)?(?:ba|z|da)?sh\s+-l?c\s+'((?:[^']|'\\'')*)'$/s.exec(command);
  if (quoted) return (quoted[1] ?? '').replaceAll("'\\''", "'");
  const bare = /^(?:\/[\w./-]*\/)?(?:ba|z|da)?sh\s+-l?c\s+(\S+)$/s.exec(command);
  return bare ? (bare[1] ?? '') : command;
}

/** Sizes and the first line of a tool's output: never its body. */
function toolResult(id: string | undefined, text: string, isError: boolean): AgentEvent {
  const first = text.split('\n').find((l) => l.trim()) ?? '';
  const lines = text === '' ? 0 : text.replace(/\n$/, '').split('\n').length;
  return { kind: 'tool_result', ...(id ? { toolUseId: id } : {}), isError, chars: text.length, lines, firstLine: shorten(first.replace(/\s+/g, ' ').trim(), MAX_FIRST_LINE) };
}

/** What a file change touched: "add src/a.ts, update b.md". */
function changesSummary(changes: unknown): { summary: string; files: number } {
  if (!Array.isArray(changes)) return { summary: '', files: 0 };
  const parts = changes.flatMap((c) => (isRecord(c) && typeof c.path === 'string' ? [`${str(c.kind) ?? 'change'} ${c.path}`] : []));
  return { summary: parts.join(', '), files: parts.length };
}

/**
 * An MCP tool's arguments: its most telling one, else the whole as JSON. Kept whole: redaction
 * must see every secret value entire, so shortening for display is the renderer's job (the
 * line splitter bounds the line).
 */
function argumentsSummary(args: unknown): string {
  if (typeof args === 'string') return args;
  if (!isRecord(args)) return '';
  for (const key of ['command', 'path', 'file_path', 'url', 'query', 'pattern']) {
    const value = args[key];
    if (typeof value === 'string') return value;
  }
  try {
    return JSON.stringify(args);
  } catch {
    return '';
  }
}

/** The text of an MCP tool's result: its text parts. */
function mcpResultText(result: unknown): string {
  if (!isRecord(result) || !Array.isArray(result.content)) return '';
  return result.content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : isRecord(part) ? `[${str(part.type) ?? 'content'}]` : '')).join('\n');
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * When Codex's "You've hit your usage limit. … try again at 2:24 PM." (or "at Dec 9th, 2026
 * 1:24 PM.") says the limit resets. Codex writes the container's local time, with no zone:
 * read as UTC, the zone of a container that sets no TZ. Undefined when it names no time
 * ("Try again later.").
 */
export function codexResetTime(text: string, now: number): number | undefined {
  const dated = /try again at ([A-Za-z]{3})[a-z]* (\d{1,2})(?:st|nd|rd|th)?,? (\d{4}),? (\d{1,2}):(\d{2}) ?([AP]M)/i.exec(text);
  if (dated) {
    const month = MONTHS.indexOf((dated[1] ?? '').toLowerCase());
    const hour = (Number(dated[4]) % 12) + ((dated[6] ?? '').toUpperCase() === 'PM' ? 12 : 0);
    if (month < 0 || Number(dated[5]) > 59) return undefined;
    const at = Date.UTC(Number(dated[3]), month, Number(dated[2]), hour, Number(dated[5]));
    return Number.isFinite(at) ? at : undefined;
  }
  const timed = /try again at (\d{1,2}:\d{2} ?[AP]M)/i.exec(text);
  return timed ? parseResetTime(timed[1] ?? '', now) : undefined;
}

/** How long "Please try again in 2s." / "in 1.5s" / "in 300ms" / "in 1m30s" asks to wait, in ms. */
function retryIn(text: string): number | undefined {
  const m = /try again in ((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)/i.exec(text);
  if (!m) return undefined;
  let ms = 0;
  for (const [, n, unit] of (m[1] ?? '').matchAll(/(\d+(?:\.\d+)?)(ms|h|m|s)/g)) ms += Number(n) * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'm' ? 60_000 : 3_600_000);
  return Number.isFinite(ms) ? Math.ceil(ms) : undefined;
}

/**
 * Whether Codex gave up on the provider's quota or rate refusal, from what it said:
 * - "You've hit your usage limit" (a 429 `usage_limit_reached`, not retried): `usage`, reset
 *   at the time it names, else in an hour;
 * - "exceeded retry limit, last status: 429" (its own retries spent) or "rate limit exceeded:"
 *   (a stream that failed on `rate_limit_exceeded`): `rate`, reset when "try again in 2s" says.
 * An exhausted quota ("Quota exceeded. Check your plan and billing details.") needs a person,
 * not a wait: undefined, as for any other failure.
 */
export function codexLimit(message: string, now: number): { kind: 'usage' | 'rate'; resetAt?: number } | undefined {
  if (/\b(?:hit|reached) your usage limit\b/i.test(message)) return { kind: 'usage', resetAt: codexResetTime(message, now) ?? now + 3_600_000 };
  if (/last status: 429\b|\brate limit exceeded\b|\b429 Too Many Requests\b/i.test(message)) {
    const wait = retryIn(message);
    return wait !== undefined ? { kind: 'rate', resetAt: now + wait } : { kind: 'rate' };
  }
  return undefined;
}

type ResultEvent = Extract<AgentEvent, { kind: 'result' }>;

/** Whether a JSON line's `type` is one of Codex's events (`thread.*`, `turn.*`, `item.*`, `error`): a JSON log line of another program is not. */
function isCodexType(type: string): boolean {
  return type === 'error' || /^(?:thread|turn|item)\.[a-z_.]+$/.test(type);
}

/**
 * One run's reader of `codex exec --json` (see AgentStreamReader). Each line is one event:
 * `thread.started` → `init` (the thread id, which `codex exec resume` continues);
 * `item.completed` of an `agent_message` → `text` (the last one is the run's answer), of a
 * `reasoning` → `thinking`; a `command_execution` → `tool` "shell" with the command when it
 * starts and `tool_result` (sizes, first line, an error when its exit code is not 0) when it
 * completes; likewise `file_change` ("edit"), `mcp_tool_call` ("server.tool"), `web_search`
 * and `todo_list`; `turn.completed` → `result` with the tokens (the thread's, all its runs:
 * Codex restores them on resume) and their cost when the pod gives prices; `turn.failed` →
 * an error `result` with what Codex said and, for a quota or rate refusal it gave up on, its
 * `limit` (see codexLimit); Codex's own retries ("Reconnecting... 1/5") and notices
 * (`error` items) → `system`; any other event of Codex's (`thread.*`, `turn.*`, `item.*`) →
 * `other`. A JSON line of another program (no such `type`) is plain output.
 */
class CodexStreamReader implements AgentStreamReader {
  private threadId: string | undefined;
  private lastText: string | undefined;
  /** Tool calls announced at their start, by item id: their completion gives the result only. */
  private readonly announced = new Set<string>();
  /** What Codex reported going wrong in this run (its retries' last word and its notices). */
  private readonly errors: string[] = [];

  constructor(private readonly options: AgentReaderOptions) {}

  private now(): number {
    return (this.options.now ?? Date.now)();
  }

  line(text: string): AgentEvent[] {
    if (text.length < 2 || text.charCodeAt(0) !== 0x7b /* { */) return [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return [];
    }
    if (!isRecord(value) || typeof value.type !== 'string' || !isCodexType(value.type)) return [];
    try {
      const events = this.event(value.type, value);
      return events.length > 0 ? events : [{ kind: 'other', type: shorten(value.type, 64) }];
    } catch {
      // Readers never throw: a shape no check foresaw is still the agent's line.
      return [{ kind: 'other', type: shorten(value.type, 64) }];
    }
  }

  private event(type: string, value: Record<string, unknown>): AgentEvent[] {
    switch (type) {
      case 'thread.started': {
        const id = str(value.thread_id);
        if (!id) return [{ kind: 'system', subtype: 'thread.started' }];
        this.threadId = id;
        return [{ kind: 'init', claudeSessionId: id }];
      }
      case 'turn.started':
        return [{ kind: 'system', subtype: 'turn.started' }];
      case 'turn.completed':
        return [this.completed(value.usage)];
      case 'turn.failed': {
        const error = isRecord(value.error) ? str(value.error.message) : str(value.error);
        return [this.failed(error ?? 'Codex reported the turn failed, without saying why.')];
      }
      case 'error': {
        const message = str(value.message);
        if (message !== undefined && !RETRYING.test(message)) this.note(message);
        return [{ kind: 'system', subtype: message !== undefined && RETRYING.test(message) ? 'retrying' : 'error' }];
      }
      case 'item.started':
      case 'item.updated':
      case 'item.completed':
        return isRecord(value.item) ? this.item(type.slice(5) as 'started' | 'updated' | 'completed', value.item) : [];
      default:
        return [];
    }
  }

  private note(message: string): void {
    if (this.errors.includes(message)) return;
    this.errors.push(message);
    if (this.errors.length > MAX_ERRORS) this.errors.shift();
  }

  private item(phase: 'started' | 'updated' | 'completed', item: Record<string, unknown>): AgentEvent[] {
    const id = str(item.id);
    const type = str(item.type) ?? '';
    const done = phase === 'completed';
    // A tool call is told once, at its start or, when Codex gave no start, at its end.
    const announce = (event: AgentEvent): AgentEvent[] => {
      if (id === undefined) return [event];
      if (this.announced.has(id)) {
        if (done) this.announced.delete(id);
        return [];
      }
      if (!done) {
        this.announced.add(id);
        if (this.announced.size > MAX_OPEN_TOOLS) this.announced.delete(this.announced.values().next().value as string);
      }
      return [event];
    };
    const failed = item.status === 'failed' || item.status === 'declined';
    switch (type) {
      case 'agent_message': {
        const text = str(item.text);
        if (!done || text === undefined || !text.trim()) return [];
        this.lastText = text;
        return [{ kind: 'text', text }];
      }
      case 'reasoning': {
        const text = str(item.text) ?? '';
        return done ? [{ kind: 'thinking', chars: text.length }] : [];
      }
      case 'command_execution': {
        const command = unwrapShell(str(item.command) ?? '');
        const tool = announce({ kind: 'tool', name: 'shell', summary: command, ...(id ? { id } : {}) });
        if (!done) return tool;
        const exit = typeof item.exit_code === 'number' ? item.exit_code : undefined;
        return [...tool, toolResult(id, str(item.aggregated_output) ?? '', failed || (exit !== undefined && exit !== 0))];
      }
      case 'file_change': {
        const { summary, files } = changesSummary(item.changes);
        const tool = announce({ kind: 'tool', name: 'edit', summary, ...(id ? { id } : {}) });
        if (!done) return tool;
        return [...tool, toolResult(id, failed ? 'the change was not applied' : `${files} file${files === 1 ? '' : 's'} changed`, failed)];
      }
      case 'mcp_tool_call': {
        const name = [str(item.server), str(item.tool)].filter(Boolean).join('.') || 'mcp';
        const tool = announce({ kind: 'tool', name: shorten(name, 128), summary: argumentsSummary(item.arguments), ...(id ? { id } : {}) });
        if (!done) return tool;
        const error = isRecord(item.error) ? str(item.error.message) : undefined;
        return [...tool, toolResult(id, error ?? mcpResultText(item.result), failed || error !== undefined)];
      }
      case 'web_search': {
        const query = str(item.query) ?? '';
        // Codex may give the query only at the end.
        if (!done && !query) return [];
        return announce({ kind: 'tool', name: 'web_search', summary: query, ...(id ? { id } : {}) });
      }
      case 'todo_list': {
        const items = Array.isArray(item.items) ? item.items.filter(isRecord) : [];
        const left = items.filter((t) => t.completed !== true);
        const next = str(left[0]?.text);
        return announce({ kind: 'tool', name: 'todo_list', summary: `${items.length - left.length}/${items.length} done${next ? `; next: ${next}` : ''}`, ...(id ? { id } : {}) });
      }
      case 'error': {
        const message = str(item.message);
        if (done && message !== undefined) this.note(message);
        return [{ kind: 'system', subtype: 'error' }];
      }
      default:
        return [{ kind: 'other', type: shorten(type || 'item', 64) }];
    }
  }

  /**
   * What every result carries: the thread. No duration: Codex reports none, and a clock read
   * here would tell when the line was read (a run read back from its log reads in an instant),
   * not how long the turn took; the run's own times say that.
   */
  private base(): Pick<ResultEvent, 'claudeSessionId'> {
    return this.threadId !== undefined ? { claudeSessionId: this.threadId } : {};
  }

  private completed(usage: unknown): ResultEvent {
    const u = isRecord(usage) ? usage : {};
    const input = count(u.input_tokens);
    const tokens = { input, output: count(u.output_tokens), cachedInput: Math.min(input, count(u.cached_input_tokens)) };
    const costUsd = priceTokens({ input: tokens.input, output: tokens.output, cacheRead: tokens.cachedInput }, this.options.prices);
    return {
      kind: 'result', isError: false,
      ...(this.lastText !== undefined ? { text: this.lastText } : {}),
      ...this.base(), tokens,
      ...(costUsd !== undefined ? { costUsd } : {}),
    };
  }

  private failed(message: string): ResultEvent {
    this.note(message);
    const limit = codexLimit(message, this.now());
    return { kind: 'result', isError: true, subtype: 'turn_failed', text: message, ...this.base(), errors: [...this.errors], ...(limit ? { limit } : {}) };
  }
}

/**
 * OpenAI's Codex CLI (`@openai/codex`, measured at 0.171): `codex exec --json`, resumed after
 * exit with `codex exec resume <thread id>`, its state in `~/.codex` (sessions/ with each
 * thread's rollout, and SQLite state that resume reads). It takes no input while it runs (a
 * resume waits for the run), has no turn or budget limit, and reports tokens but no cost.
 * Its key is CODEX_API_KEY (sent as `authorization: Bearer`); `codex exec` does not read
 * OPENAI_API_KEY, which a gated run may still use (the gateway signs its requests).
 */
export const codexAgent: Agent = Object.freeze<Agent>({
  name: 'codex',
  title: 'Codex CLI',
  program: 'codex',
  commands: () => codexCommands(),
  limits: { maxTurns: undefined, maxBudgetUsd: undefined },
  takesLiveInput: false,
  persist: Object.freeze(['~/.codex']),
  reader: (options = {}) => new CodexStreamReader(options),
  provider: Object.freeze({
    urlVar: 'OPENAI_BASE_URL',
    defaultUrl: 'https://api.openai.com/v1',
    // CODEX_API_KEY is what `codex exec` signs with; OPENAI_API_KEY works only where the gateway signs.
    keys: Object.freeze([
      { name: 'CODEX_API_KEY', header: 'authorization', scheme: 'Bearer' as const },
      { name: 'OPENAI_API_KEY', header: 'authorization', scheme: 'Bearer' as const },
    ]),
  }),
  // Its state lives in ~/.codex, the default CODEX_HOME: nothing to point elsewhere.
  env: () => ({}),
  /**
   * Its calls home are turned off by its default commands' options (no variable does it).
   * What is left is its WebSocket attempt, which a gateway does not carry: Codex then falls
   * back to HTTPS, logging an ERROR line on standard error for each try; not for a gated run.
   */
  quietEnv: Object.freeze({ RUST_LOG: 'error,codex_api::endpoint::responses_websocket=off' }),
});
