import type { AgentEvent } from './events.js';

/** A model provider's refusal for quota or rate that a run ended on: when to try again, and why. */
export interface ProviderLimit {
  /** When the provider said the limit resets (ms since the epoch); for a rate or overload refusal, `now` plus the retry delay. */
  readonly resetAt: number;
  /** `usage`: the account's usage limit (its reset time known, or guessed when the text could not be read); `rate`: a 429 or 529 of the API. */
  readonly kind: 'usage' | 'rate';
  /** What the agent said, for the history of the waits. */
  readonly said: string;
  /** The run must be repeated as it was, not continued: its agent dropped its prompt (see AgentEvent result `limit`). */
  readonly repeat?: true;
}

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** The offset of time zone `zone` from UTC at `at`, in ms; undefined for a zone Node does not know. */
function zoneOffset(zone: string, at: number): number | undefined {
  try {
    const parts = Object.fromEntries(new Intl.DateTimeFormat('en-US', { timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' })
      .formatToParts(new Date(at)).map((p) => [p.type, Number(p.value)]));
    return Date.UTC(parts.year as number, (parts.month as number) - 1, parts.day as number, parts.hour as number, parts.minute as number, parts.second as number) - Math.floor(at / 1000) * 1000;
  } catch {
    return undefined;
  }
}

/** A reset this recent is taken as now rather than the next day's: the provider's clock and ours differ, and its words lag. */
const JUST_PASSED_MS = 10 * 60_000;

/**
 * Reads the reset time of "You've hit your limit · resets 5pm (Europe/Berlin)" (also "3:30am",
 * "Jan 24, 5pm", "17:00"; UTC without a zone): the next such moment after `now`, in the
 * zone's offset on that day (daylight saving time included); `now` for one that passed in
 * the last few minutes. Undefined when the words cannot be read.
 */
export function parseResetTime(text: string, now: number): number | undefined {
  const m = /(?:([A-Za-z]{3})[a-z]*\s+(\d{1,2}),?\s+(?:at\s+)?)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?\s*(?:\(([^)]+)\))?/i.exec(text);
  if (!m) return undefined;
  let hour = Number(m[3]);
  const minute = Number(m[4] ?? 0);
  const meridiem = m[5]?.toLowerCase();
  if (!meridiem && m[4] === undefined) return undefined; // a bare number is not a time
  if (meridiem) hour = (hour % 12) + (meridiem === 'pm' ? 12 : 0);
  if (hour > 23 || minute > 59) return undefined;
  const zone = m[6]?.trim() || 'UTC';
  const offset = zoneOffset(zone, now);
  if (offset === undefined) return undefined;
  const local = new Date(now + offset); // the wall clock of the zone, read as UTC
  /**
   * The moments the zone's clocks show this day at hour:minute, each with the offset of that
   * moment: two on the night the clocks go back, one (after the jump) on the night they go
   * forward past it.
   */
  const moments = (year: number, month: number, day: number): number[] => {
    const wall = Date.UTC(year, month, day, hour, minute);
    const offsets = [...new Set([zoneOffset(zone, wall - 43_200_000), zoneOffset(zone, wall + 43_200_000)].filter((o): o is number => o !== undefined))];
    const found = offsets.map((o) => wall - o).filter((t) => zoneOffset(zone, t) === wall - t).sort((x, y) => x - y);
    return found.length > 0 ? found : [wall - (offsets[0] ?? offset)];
  };
  /** The first such moment after now on this day, or the last one before it. */
  const pick = (times: number[]): { next?: number; last?: number } => ({ next: times.find((t) => t > now), last: times.filter((t) => t <= now).at(-1) });
  const month = m[1] ? MONTHS.indexOf(m[1].toLowerCase()) : -1;
  const year = local.getUTCFullYear();
  if (month >= 0) {
    const { next, last } = pick(moments(year, month, Number(m[2])));
    if (next !== undefined) return next;
    if (last !== undefined && now - last <= JUST_PASSED_MS) return now;
    return moments(year + 1, month, Number(m[2]))[0];
  }
  let day = local.getUTCDate();
  const today = pick(moments(year, local.getUTCMonth(), day));
  if (today.next !== undefined) return today.next;
  if (today.last !== undefined && now - today.last <= JUST_PASSED_MS) return now;
  for (;;) {
    const { next } = pick(moments(year, local.getUTCMonth(), ++day)); // Date.UTC rolls the month over
    if (next !== undefined) return next;
  }
}

/**
 * Whether a run ended on the model provider's quota or rate refusal: the `limit` its agent's
 * reader found in the result, or, from Claude Code's final result, its usage-limit results (`Claude AI usage limit reached|<unix seconds>`;
 * "You've hit your limit · resets <time>") or an API error 429 / 529 it gave up on. `retryMs`
 * is how long a rate refusal waits; a usage limit whose reset cannot be read waits an hour.
 * A reset is never later than MAX_RATE_WAIT_MS or MAX_USAGE_WAIT_MS from `now`.
 */
export function providerLimit(result: Extract<AgentEvent, { kind: 'result' }> | undefined, now: number, retryMs: number): ProviderLimit | undefined {
  const limit = readLimit(result, now, retryMs);
  if (!limit) return undefined;
  // The words are the container's output, and a wait holds back every run of the credential: bounded.
  // cldpd's own retry delay (doubled per wait) is the operator's, never cut.
  const longest = now + Math.max(limit.kind === 'rate' ? MAX_RATE_WAIT_MS : MAX_USAGE_WAIT_MS, retryMs);
  const resetAt = Number.isFinite(limit.resetAt) ? Math.min(limit.resetAt, longest) : now + retryMs;
  return { ...limit, resetAt };
}

/** The longest a rate refusal is waited out (an hour), whatever the agent said. */
export const MAX_RATE_WAIT_MS = 3_600_000;

/** The longest a usage limit is waited out (eight days: a week, the longest window a provider's plan resets on, and a margin for clocks and daylight saving), whatever the agent said. */
export const MAX_USAGE_WAIT_MS = 8 * 24 * 3_600_000;

function readLimit(result: Extract<AgentEvent, { kind: 'result' }> | undefined, now: number, retryMs: number): ProviderLimit | undefined {
  if (!result?.isError) return undefined;
  const said = [result.text ?? '', ...(result.errors ?? [])].join('\n').trim();
  // Another agent's reader said it already (see AgentEvent result `limit`); a reset that passed waits the retry delay.
  if (result.limit) {
    const at = result.limit.resetAt;
    return { kind: result.limit.kind, resetAt: at !== undefined && at > now ? at : now + retryMs, said, ...(result.limit.repeat ? { repeat: true as const } : {}) };
  }
  const stamped = /Claude AI usage limit reached\|(\d{9,11})/.exec(said);
  // A reset that has passed (clocks differ) is retried after the rate refusal's delay, never at once.
  const ahead = (at: number) => (at > now ? at : now + retryMs);
  if (stamped) return { kind: 'usage', resetAt: ahead(Number(stamped[1]) * 1000), said };
  const worded = /(?:you(?:'|’)ve|you have) (?:hit|reached) your (?:[\w-]+ )?limit\b[^\n]*?\bresets?\s+([^\n·]+)/i.exec(said) ?? /usage limit reached[^\n]*?\bresets?\s+([^\n·]+)/i.exec(said);
  if (worded) return { kind: 'usage', resetAt: ahead(parseResetTime(worded[1] ?? '', now) ?? now + 3_600_000), said };
  if (/API Error:\s*(?:[A-Za-z ]*\()?(?:429|529)\b|API Error: Rate limit reached|"type":\s*"(?:rate_limit_error|overloaded_error)"/.test(said)) return { kind: 'rate', resetAt: now + retryMs, said };
  return undefined;
}
