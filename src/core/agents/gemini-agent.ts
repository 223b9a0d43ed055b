import type { AgentEvent } from '../events.js';
import { parseResetTime } from '../provider-limit.js';
import { shorten } from '../text.js';
import { priceTokens, type Agent, type AgentReaderOptions, type AgentStreamReader } from './agent.js';

/**
 * Options every Gemini run takes: stream-json out; every tool call approved (the container is
 * the sandbox); the workspace trusted, without which the CLI turns `--yolo` back into asking,
 * which a run without a terminal cannot answer.
 */
const RUN: readonly string[] = Object.freeze(['gemini', '--output-format', 'stream-json', '--yolo', '--skip-trust']);

/** The stream-json line types of Gemini CLI 0.61 (`--output-format stream-json`). */
const LINE_TYPES = new Set(['init', 'message', 'tool_use', 'tool_result', 'error', 'result']);

/** A tool result's first line, for a person's terminal. */
const MAX_FIRST_LINE = 120;

/**
 * The most of one assistant message kept while its pieces arrive: past it the pieces so far
 * are told as a message of their own, so a stream whose message never ends holds no more.
 */
const MAX_PENDING_CHARS = 1024 * 1024;

/** The most of an error line's or a result's error text kept for the result's `errors`. */
const MAX_ERROR_CHARS = 4000;

/** The most error lines a run's result carries (the first ones; a looping CLI could print many). */
const MAX_ERRORS = 20;

/** Each tool's telling argument, by the CLI's tool name; others: the first of TELLING present. */
const TOOL_ARGUMENT: Readonly<Record<string, string>> = Object.freeze({
  run_shell_command: 'command',
  read_file: 'file_path',
  write_file: 'file_path',
  replace: 'file_path',
  list_directory: 'dir_path',
  glob: 'pattern',
  grep_search: 'pattern',
  google_web_search: 'query',
  web_fetch: 'prompt',
  activate_skill: 'name',
  invoke_agent: 'agent_name',
  update_topic: 'title',
  enter_plan_mode: 'reason',
});

/** Arguments that tell what a tool call is about, in order of preference: never a file's content. */
const TELLING = ['command', 'file_path', 'dir_path', 'path', 'pattern', 'query', 'url', 'prompt', 'name', 'description'];

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A count of the CLI's stats: a whole number of 0 or more, else undefined. */
function count(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? Math.floor(Math.min(v, MAX_COUNT)) : undefined;
}

/** The most a count of tokens or time is taken to be (the stream is the container's output). */
const MAX_COUNT = 1e12;

/** An ISO timestamp in ms, or undefined. */
function time(v: unknown): number | undefined {
  if (typeof v !== 'string' || v.length > 40) return undefined;
  const t = Date.parse(v);
  return Number.isFinite(t) ? t : undefined;
}

/**
 * What a tool call is about: its telling argument (the command, the path, the pattern…),
 * else its first short string argument. Kept whole: redaction must see every secret value
 * entire, so shortening for display is the renderer's job.
 */
function toolSummary(name: string, parameters: unknown): string {
  if (!isRecord(parameters)) return '';
  const own = TOOL_ARGUMENT[name];
  for (const key of own ? [own, ...TELLING] : TELLING) {
    const value = parameters[key];
    if (typeof value === 'string' && value.trim()) return value;
  }
  if (name === 'read_background_output' && typeof parameters.pid === 'number') return `pid ${parameters.pid}`;
  return '';
}

/** What a tool result holds, by size and first line: its output, or its error's message. */
function toolResult(value: Record<string, unknown>): AgentEvent {
  const error = isRecord(value.error) ? value.error : undefined;
  const isError = value.status === 'error' || error !== undefined;
  const text = str(value.output) ?? (error ? str(error.message) ?? '' : '');
  const first = text.split('\n', 200).find((l) => l.trim()) ?? '';
  const id = str(value.tool_id);
  return {
    kind: 'tool_result',
    ...(id ? { toolUseId: id } : {}),
    isError,
    chars: text.length,
    lines: text ? text.split('\n').length : 0,
    firstLine: shorten(first.replace(/\s+/g, ' ').trim(), MAX_FIRST_LINE),
  };
}

/** How long "Please retry in 31.5s" / "Suggested retry after 250ms" says to wait, in ms: the longest named. */
function retryDelayMs(text: string): number | undefined {
  let most: number | undefined;
  for (const m of text.matchAll(/(?:retry in|retry after)\s+([0-9]{1,9}(?:\.[0-9]{1,6})?)\s*(ms|s)\b/gi)) {
    const ms = Number(m[1]) * (m[2]?.toLowerCase() === 'ms' ? 1 : 1000);
    if (Number.isFinite(ms)) most = Math.max(most ?? 0, ms);
  }
  return most;
}

/**
 * Whether a result's error is the Gemini API's refusal for quota or rate that the CLI gave up
 * on: its daily quota (which resets at midnight Pacific time, as Google's quotas do), or a
 * 429 / RESOURCE_EXHAUSTED / capacity refusal or a 503 overload, with the retry delay it named
 * when it named one.
 */
export function geminiLimit(message: string, now: number): { kind: 'usage' | 'rate'; resetAt?: number } | undefined {
  const text = message.slice(0, MAX_ERROR_CHARS);
  if (/exhausted your daily quota|PerDay|daily (?:quota|limit)/i.test(text)) {
    const midnight = parseResetTime('12:00am (America/Los_Angeles)', now);
    return { kind: 'usage', ...(midnight !== undefined ? { resetAt: midnight } : {}) };
  }
  const refused = /exceeded your current quota|Quota exceeded for (?:metric|quota)|RESOURCE_EXHAUSTED|\b429\b|Too Many Requests|rate limit exceeded|exhausted your capacity|capacity exceeded|MODEL_CAPACITY_EXHAUSTED/i.test(text);
  // The API's overload (503 UNAVAILABLE), which the CLI retried too before it gave up: waited on as a rate refusal; only in the API's own words.
  const overloaded = /API Error/i.test(text) && /\b503\b|\bUNAVAILABLE\b|\boverloaded\b/i.test(text);
  if (!refused && !overloaded) return undefined;
  const delay = retryDelayMs(text);
  return { kind: 'rate', ...(delay !== undefined ? { resetAt: now + delay } : {}) };
}

type Result = { -readonly [K in keyof Extract<AgentEvent, { kind: 'result' }>]: Extract<AgentEvent, { kind: 'result' }>[K] };

/**
 * Gemini CLI's `--output-format stream-json`, one run's lines in order: `init` (the session
 * id, the model), `message` (the user's prompt echoed; the assistant's words in `delta`
 * pieces), `tool_use`, `tool_result`, `error` (a warning or error said mid-run) and `result`
 * (status, error, token stats; no answer and no turn count).
 *
 * The assistant's pieces are joined and told as one `text` when the message is over: at the
 * next line that is not one of its pieces, or past MAX_PENDING_CHARS. The result carries the
 * last message as the answer, the turns counted (one per model response), the tokens
 * (`input` with the cached ones), a cost when the pod gives prices, `runOnly` (the CLI counts
 * per process), the error lines said before it, and `limit` when the API refused for quota
 * or rate and the CLI gave up. A line of the CLI's JSON yields at least one event; any other
 * line none. Never throws.
 */
export class GeminiStreamReader implements AgentStreamReader {
  private pending: string[] = [];
  private pendingChars = 0;
  private lastText: string | undefined;
  private turns = 0;
  /** Whether the model is answering (a response's pieces or tool calls seen since the last tool result). */
  private responding = false;
  private startedAt: number | undefined;
  private sessionId: string | undefined;
  private errors: string[] = [];

  constructor(private readonly options: AgentReaderOptions = {}) {}

  line(text: string): AgentEvent[] {
    if (text.length < 2 || text.charCodeAt(0) !== 0x7b /* { */) return [];
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      return [];
    }
    if (!isRecord(value) || typeof value.type !== 'string') return [];
    const type = value.type;
    if (!LINE_TYPES.has(type) && typeof value.timestamp !== 'string') return [];
    try {
      const events = this.read(type, value);
      return events.length > 0 ? events : [{ kind: 'other', type: shorten(type, 40) }];
    } catch {
      return [{ kind: 'other', type: shorten(type, 40) }];
    }
  }

  private read(type: string, value: Record<string, unknown>): AgentEvent[] {
    if (type === 'message' && value.role === 'assistant' && value.delta === true) {
      const content = str(value.content) ?? '';
      this.respond();
      // An empty piece adds nothing, and is not kept (a stream of them would hold memory).
      if (content === '') return [{ kind: 'other', type: 'message' }];
      this.pending.push(content);
      this.pendingChars += content.length;
      if (this.pendingChars >= MAX_PENDING_CHARS) return this.flush();
      return [{ kind: 'other', type: 'message' }];
    }
    const events = this.flush();
    switch (type) {
      case 'init': {
        const id = str(value.session_id);
        this.startedAt ??= time(value.timestamp);
        if (!id) break;
        this.sessionId = id;
        const model = str(value.model);
        events.push(model ? { kind: 'init', claudeSessionId: id, model } : { kind: 'init', claudeSessionId: id });
        break;
      }
      case 'message': {
        const content = str(value.content);
        if (content === undefined) break;
        if (value.role === 'assistant') {
          this.respond();
          if (content.trim()) {
            this.lastText = content;
            events.push({ kind: 'text', text: content });
          }
        } else if (value.role === 'user') {
          events.push({ kind: 'message', text: content, replay: true });
        }
        break;
      }
      case 'tool_use': {
        const name = str(value.tool_name);
        if (!name) break;
        this.respond();
        const id = str(value.tool_id);
        events.push({ kind: 'tool', name: shorten(name, 128), summary: toolSummary(name, value.parameters), ...(id ? { id: shorten(id, 256) } : {}) });
        break;
      }
      case 'tool_result':
        this.responding = false;
        events.push(toolResult(value));
        break;
      case 'error': {
        const message = str(value.message);
        const severity = str(value.severity) === 'warning' ? 'warning' : 'error';
        if (message?.trim() && this.errors.length < MAX_ERRORS) this.errors.push(shorten(message.trim(), MAX_ERROR_CHARS));
        events.push({ kind: 'system', subtype: severity });
        break;
      }
      case 'result':
        events.push(this.result(value));
        break;
      default:
        break;
    }
    return events;
  }

  /** A model response begins at its first piece or tool call after the prompt or a tool result. */
  private respond(): void {
    if (this.responding) return;
    this.responding = true;
    this.turns += 1;
  }

  /** The assistant message being pieced together, told whole; nothing when there is none. */
  private flush(): AgentEvent[] {
    if (this.pending.length === 0) return [];
    const text = this.pending.join('');
    this.pending = [];
    this.pendingChars = 0;
    if (!text.trim()) return [];
    this.lastText = text;
    return [{ kind: 'text', text }];
  }

  private result(value: Record<string, unknown>): AgentEvent {
    const error = isRecord(value.error) ? value.error : undefined;
    const status = str(value.status);
    const result: Result = { kind: 'result', isError: status !== 'success' || error !== undefined, runOnly: true, turns: this.turns };
    if (this.lastText !== undefined) result.text = this.lastText;
    if (this.sessionId !== undefined) result.claudeSessionId = this.sessionId;
    const errorType = error ? str(error.type) : undefined;
    const errorMessage = error ? str(error.message) : undefined;
    if (result.isError) {
      result.subtype = errorType === 'FatalTurnLimitedError' ? 'error_max_turns' : shorten(errorType ?? status ?? 'error', 80);
    }
    const errors = [...this.errors, ...(errorMessage?.trim() ? [shorten(errorMessage.trim(), MAX_ERROR_CHARS)] : [])];
    if (errors.length > 0) result.errors = errors;
    const stats = isRecord(value.stats) ? value.stats : undefined;
    if (stats) {
      const input = count(stats.input_tokens);
      const output = count(stats.output_tokens);
      if (input !== undefined && output !== undefined) {
        const cachedInput = Math.min(count(stats.cached) ?? 0, input);
        result.tokens = { input, output, cachedInput };
        const cost = priceTokens({ input, output, cacheRead: cachedInput }, this.options.prices);
        if (cost !== undefined) result.costUsd = cost;
      }
      const duration = count(stats.duration_ms);
      if (duration !== undefined && duration > 0) result.durationMs = duration;
    }
    if (result.durationMs === undefined) {
      const end = time(value.timestamp);
      if (end !== undefined && this.startedAt !== undefined && end >= this.startedAt) result.durationMs = end - this.startedAt;
    }
    if (result.isError && errorMessage && result.subtype !== 'error_max_turns') {
      const limit = geminiLimit(errorMessage, (this.options.now ?? Date.now)());
      // Refused before any answer, the CLI rolls this run's prompt back out of its session: the run is repeated, not continued.
      if (limit) result.limit = this.turns === 0 ? { ...limit, repeat: true } : limit;
    }
    // The next run of this process (there is none in print mode) would count afresh.
    this.errors = [];
    this.responding = false;
    return result;
  }
}

/** Where cldpd writes the CLI's system defaults in each container (GEMINI_CLI_SYSTEM_DEFAULTS_PATH). */
export const GEMINI_DEFAULTS_PATH = '/etc/cldpd/gemini-system-defaults.json';

/**
 * The CLI's system defaults, the lowest of its settings (the image's system settings, the
 * user's and a repository's `.gemini/settings.json` override them), as Gemini CLI 0.61 showed
 * they are needed in a pod:
 * - with a key in GEMINI_API_KEY, that key's sign-in: with GOOGLE_GEMINI_BASE_URL set (a gated
 *   run's gateway) and no sign-in chosen, the CLI picks one it then refuses ("Invalid auth
 *   method selected.", exit 41);
 * - no usage statistics: sent to play.googleapis.com otherwise, which a gated run's gateway
 *   refuses on every run (no variable turns them off); no update checks;
 * - the pod's `maxTurns` as `model.maxSessionTurns` (a run that reaches it ends with exit
 *   code 53; the CLI has no option for it). A repository's own settings could raise it: the
 *   pod's `timeoutSeconds` bounds a run whatever they say.
 */
export function geminiDefaults(podEnv: Readonly<Record<string, string>>, maxTurns: number | undefined): string {
  return `${JSON.stringify({
    ...(podEnv.GEMINI_API_KEY ? { security: { auth: { selectedType: 'gemini-api-key' } } } : {}),
    privacy: { usageStatisticsEnabled: false },
    general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
    ...(maxTurns !== undefined ? { model: { maxSessionTurns: maxTurns } } : {}),
  }, null, 2)}\n`;
}

/**
 * Google's Gemini CLI (`@google/gemini-cli`) in headless mode: `gemini --prompt=<prompt>
 * --output-format stream-json` (the prompt as one argument after `=`, never read as an
 * option, whatever it begins with), resumed after exit with `--resume <session id>` (the
 * session is kept in `~/.gemini/tmp/<workdir's name>/chats`, so a resume needs the same
 * workdir and the persisted `~/.gemini`). Its stream is read by {@link GeminiStreamReader}.
 *
 * Its turn limit is `model.maxSessionTurns` in its settings only (a run that reaches it ends
 * with exit code 53): pod.json's `maxTurns` reaches it through the system defaults cldpd
 * writes (see geminiDefaults). It has no spending limit: `maxBudgetUsd` is refused for it.
 */
export const geminiAgent: Agent = Object.freeze<Agent>({
  name: 'gemini',
  title: 'Gemini CLI',
  program: 'gemini',
  commands: () => ({ command: [...RUN, '--prompt={prompt}'], resumeCommand: [...RUN, '--resume', '{agentSessionId}', '--prompt={prompt}'] }),
  limits: { maxTurns: { via: 'setting', name: 'model.maxSessionTurns', env: 'GEMINI_CLI_SYSTEM_DEFAULTS_PATH' }, maxBudgetUsd: undefined },
  takesLiveInput: false,
  persist: Object.freeze(['~/.gemini']),
  reader: (options) => new GeminiStreamReader(options),
  provider: Object.freeze({
    urlVar: 'GOOGLE_GEMINI_BASE_URL',
    defaultUrl: 'https://generativelanguage.googleapis.com',
    keys: Object.freeze([{ name: 'GEMINI_API_KEY', header: 'x-goog-api-key' }]),
  }),
  /**
   * The CLI starts itself again as a child process (to raise Node's heap limit) and its first
   * process ignores SIGTERM: a stop would wait out the whole grace period and end in SIGKILL.
   * GEMINI_CLI_NO_RELAUNCH keeps it one process, which a SIGTERM ends at once.
   */
  env({ podEnv }): Record<string, string> {
    return {
      ...(podEnv.GEMINI_CLI_NO_RELAUNCH !== undefined ? {} : { GEMINI_CLI_NO_RELAUNCH: 'true' }),
      // Set, so a repository's .env (which the CLI loads into what is unset, in a workspace it
      // trusts) cannot send the key elsewhere: with a key, the provider's own endpoint.
      ...(podEnv.GEMINI_API_KEY && podEnv.GOOGLE_GEMINI_BASE_URL === undefined ? { GOOGLE_GEMINI_BASE_URL: 'https://generativelanguage.googleapis.com' } : {}),
      // The defaults cldpd writes (see files), under every settings file of the image, the user's and the repository's.
      ...(podEnv.GEMINI_CLI_SYSTEM_DEFAULTS_PATH !== undefined ? {} : { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: GEMINI_DEFAULTS_PATH }),
    };
  },
  files: ({ podEnv, limits }) => (podEnv.GEMINI_CLI_SYSTEM_DEFAULTS_PATH !== undefined ? [] : [{ path: GEMINI_DEFAULTS_PATH, content: geminiDefaults(podEnv, limits.maxTurns) }]),
  // OpenTelemetry off whatever a settings file says. Its usage statistics (to
  // play.googleapis.com) have no variable: the image's settings turn them off (see examples/pods/gemini).
  quietEnv: Object.freeze({ GEMINI_TELEMETRY_ENABLED: 'false' }),
});
