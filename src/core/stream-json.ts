import type { AgentEvent } from './events.js';
import type { TokenUsage } from './model-prices.js';
import { shorten } from './text.js';

/** A tool result's first line, for a person's terminal. */
const MAX_FIRST_LINE = 120;

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/**
 * What a tool call is about: its most telling argument, else its whole input as JSON. Kept
 * whole, whitespace and all: redaction must see every secret value entire, so shortening
 * for display is the renderer's job, after redaction (the line splitter bounds the line).
 */
function toolSummary(input: unknown): string {
  if (!isRecord(input)) return '';
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'description', 'prompt']) {
    const value = input[key];
    if (typeof value === 'string') return value;
  }
  return JSON.stringify(input);
}

/** The text of a tool result's content: a string, or text parts. */
function resultText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content.map((part) => (isRecord(part) && typeof part.text === 'string' ? part.text : isRecord(part) && part.type === 'image' ? '[image]' : '')).join('\n');
}

function toolResult(block: Record<string, unknown>): AgentEvent {
  const text = resultText(block.content);
  const first = text.split('\n').find((l) => l.trim()) ?? '';
  const id = str(block.tool_use_id);
  return {
    kind: 'tool_result',
    ...(id ? { toolUseId: id } : {}),
    isError: block.is_error === true,
    chars: text.length,
    lines: text ? text.split('\n').length : 0,
    firstLine: shorten(first.replace(/\s+/g, ' ').trim(), MAX_FIRST_LINE),
  };
}

function userEvents(value: Record<string, unknown>): AgentEvent[] {
  const message = value.message;
  const replay = value.isReplay === true;
  if (!isRecord(message)) return [{ kind: 'other', type: 'user' }];
  if (typeof message.content === 'string') return [{ kind: 'message', text: message.content, replay }];
  if (!Array.isArray(message.content)) return [{ kind: 'other', type: 'user' }];
  const events: AgentEvent[] = [];
  for (const block of message.content) {
    if (!isRecord(block)) continue;
    if (block.type === 'tool_result') events.push(toolResult(block));
    else if (block.type === 'text' && typeof block.text === 'string') events.push({ kind: 'message', text: block.text, replay });
  }
  return events.length > 0 ? events : [{ kind: 'other', type: 'user' }];
}

/** A token count of the API's `usage`: a whole number of 0 or more, else 0. */
function tokens(v: unknown): number {
  const n = num(v);
  return n !== undefined && n > 0 ? Math.floor(n) : 0;
}

/** The tokens an assistant message's `usage` reports; undefined when it has none. */
function tokenUsage(usage: unknown): TokenUsage | undefined {
  if (!isRecord(usage)) return undefined;
  const written = tokens(usage.cache_creation_input_tokens);
  const split = isRecord(usage.cache_creation) ? usage.cache_creation : {};
  const hour = Math.min(written, tokens(split.ephemeral_1h_input_tokens));
  const server = isRecord(usage.server_tool_use) ? usage.server_tool_use : {};
  return {
    input: tokens(usage.input_tokens),
    output: tokens(usage.output_tokens),
    cacheWrite5m: written - hour,
    cacheWrite1h: hour,
    cacheRead: tokens(usage.cache_read_input_tokens),
    webSearches: tokens(server.web_search_requests),
    usOnly: usage.inference_geo === 'us',
  };
}

function assistantEvents(message: unknown): AgentEvent[] {
  if (!isRecord(message) || !Array.isArray(message.content)) return [{ kind: 'other', type: 'assistant' }];
  const events: AgentEvent[] = [];
  let chars = 0;
  for (const block of message.content) {
    if (!isRecord(block)) continue;
    if (block.type === 'text' && typeof block.text === 'string' && block.text.trim()) {
      events.push({ kind: 'text', text: block.text });
      chars += block.text.length;
    } else if (block.type === 'thinking' || block.type === 'redacted_thinking') {
      const thinking = typeof block.thinking === 'string' ? block.thinking.length : 0;
      events.push({ kind: 'thinking', chars: thinking });
      chars += thinking + (typeof block.data === 'string' ? block.data.length : 0);
    } else if (block.type === 'tool_use' && typeof block.name === 'string') {
      const id = str(block.id);
      events.push({ kind: 'tool', name: block.name, summary: toolSummary(block.input), ...(id ? { id } : {}) });
      chars += block.name.length + (JSON.stringify(block.input ?? null)?.length ?? 0);
    }
  }
  const usage = tokenUsage(message.usage);
  if (usage) {
    const messageId = str(message.id);
    const model = str(message.model);
    events.push({ kind: 'usage', ...(messageId ? { messageId } : {}), ...(model ? { model } : {}), tokens: usage, contentChars: chars });
  }
  return events.length > 0 ? events : [{ kind: 'other', type: 'assistant' }];
}

function resultEvent(value: Record<string, unknown>): AgentEvent {
  const subtype = str(value.subtype);
  const result: { -readonly [K in keyof Extract<AgentEvent, { kind: 'result' }>]: Extract<AgentEvent, { kind: 'result' }>[K] } = {
    kind: 'result',
    isError: value.is_error === true || (subtype !== undefined && subtype !== 'success'),
  };
  if (subtype !== undefined) result.subtype = subtype;
  const text = str(value.result);
  if (text !== undefined) result.text = text;
  const cost = num(value.total_cost_usd) ?? num(value.cost_usd);
  if (cost !== undefined) result.costUsd = cost;
  const turns = num(value.num_turns);
  if (turns !== undefined) result.turns = turns;
  const duration = num(value.duration_ms);
  if (duration !== undefined) result.durationMs = duration;
  const id = str(value.session_id);
  if (id !== undefined) result.claudeSessionId = id;
  if (Array.isArray(value.errors)) {
    const errors = value.errors.map((e) => (typeof e === 'string' ? e : isRecord(e) && typeof e.message === 'string' ? e.message : '')).filter(Boolean);
    if (errors.length > 0) result.errors = errors;
  }
  return result;
}

/**
 * Understands one line of Claude Code's `--output-format stream-json`. Returns the agent
 * events it carries (an assistant message may hold text and several tool calls), or an
 * empty list for lines that are not stream-json. A line is stream-json when it is a JSON
 * object whose `type` is one of Claude Code's message types, or any object with a string
 * `type` and the CLI's `session_id`/`uuid`; every such line yields at least one event, so
 * none of them is ever taken for plain output. Never throws.
 */
export function parseStreamJsonLine(line: string): AgentEvent[] {
  if (line.length < 2 || line.charCodeAt(0) !== 0x7b /* { */) return [];
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isRecord(value) || typeof value.type !== 'string') return [];
  const type = value.type;
  switch (type) {
    case 'system': {
      const subtype = str(value.subtype) ?? '';
      if (subtype === 'init') {
        const id = str(value.session_id);
        if (!id) return [{ kind: 'system', subtype }];
        const model = str(value.model);
        return [model ? { kind: 'init', claudeSessionId: id, model } : { kind: 'init', claudeSessionId: id }];
      }
      return [{ kind: 'system', subtype }];
    }
    case 'assistant':
      return assistantEvents(value.message);
    case 'user':
      return userEvents(value);
    case 'result':
      return [resultEvent(value)];
    default:
      return typeof value.session_id === 'string' || typeof value.uuid === 'string' || type === 'stream_event' || type.startsWith('control_')
        ? [{ kind: 'other', type }]
        : [];
  }
}
