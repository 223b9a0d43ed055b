import type { AgentEvent } from './events.js';

const MAX_SUMMARY = 200;

function clip(text: string, max = MAX_SUMMARY): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function num(v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

/** A short description of a tool call: its most telling argument. */
function toolSummary(input: unknown): string {
  if (!isRecord(input)) return '';
  for (const key of ['command', 'file_path', 'path', 'pattern', 'url', 'description', 'prompt']) {
    const value = input[key];
    if (typeof value === 'string') return clip(value);
  }
  return clip(JSON.stringify(input));
}

/**
 * Understands one line of Claude Code's `--output-format stream-json`. Returns the agent
 * events it carries (an assistant message may hold text and several tool calls), or an
 * empty list for lines that are not stream-json or not of interest. Never throws.
 */
export function parseStreamJsonLine(line: string): AgentEvent[] {
  if (line.length < 2 || line.charCodeAt(0) !== 0x7b /* { */) return [];
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    return [];
  }
  if (!isRecord(value)) return [];
  const type = value.type;
  if (type === 'system' && value.subtype === 'init') {
    const id = str(value.session_id);
    if (!id) return [];
    const model = str(value.model);
    return [model ? { kind: 'init', claudeSessionId: id, model } : { kind: 'init', claudeSessionId: id }];
  }
  if (type === 'assistant' && isRecord(value.message) && Array.isArray(value.message.content)) {
    const events: AgentEvent[] = [];
    for (const block of value.message.content) {
      if (!isRecord(block)) continue;
      if (block.type === 'text' && typeof block.text === 'string' && block.text.trim()) {
        events.push({ kind: 'text', text: block.text });
      } else if (block.type === 'tool_use' && typeof block.name === 'string') {
        events.push({ kind: 'tool', name: block.name, summary: toolSummary(block.input) });
      }
    }
    return events;
  }
  if (type === 'result') {
    const result: { -readonly [K in keyof Extract<AgentEvent, { kind: 'result' }>]: Extract<AgentEvent, { kind: 'result' }>[K] } = {
      kind: 'result',
      isError: value.is_error === true || (typeof value.subtype === 'string' && value.subtype !== 'success'),
    };
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
    return [result];
  }
  return [];
}
