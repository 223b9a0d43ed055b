import type { AgentEvent } from './events.js';

/** A model provider's refusal for quota or rate that a run ended on: when to try again, and why. */
export interface ProviderLimit {
  /** When the provider said the limit resets (ms since the epoch); for a rate or overload refusal, `now` plus the retry delay. */
  readonly resetAt: number;
  /** `usage`: the account's usage limit (its reset time known, or guessed when the text could not be read); `rate`: a 429 or 529 of the API. */
  readonly kind: 'usage' | 'rate';
  /** What the agent said, for the history of the waits. */
  readonly said: string;
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
  /** The moment the zone's clocks show this day at hour:minute, with the offset of that moment. */
  const at = (year: number, month: number, day: number): number => {
    const guess = Date.UTC(year, month, day, hour, minute) - offset;
    return Date.UTC(year, month, day, hour, minute) - (zoneOffset(zone, guess) ?? offset);
  };
  const month = m[1] ? MONTHS.indexOf(m[1].toLowerCase()) : -1;
  const year = local.getUTCFullYear();
  if (month >= 0) {
    const candidate = at(year, month, Number(m[2]));
    if (candidate > now) return candidate;
    return now - candidate <= JUST_PASSED_MS ? now : at(year + 1, month, Number(m[2]));
  }
  let day = local.getUTCDate();
  let candidate = at(year, local.getUTCMonth(), day);
  if (candidate <= now && now - candidate <= JUST_PASSED_MS) return now;
  while (candidate <= now) candidate = at(year, local.getUTCMonth(), ++day); // Date.UTC rolls the month over
  return candidate;
}

/**
 * Whether a run ended on the model provider's quota or rate refusal, from Claude Code's
 * final result: its usage-limit results (`Claude AI usage limit reached|<unix seconds>`;
 * "You've hit your limit · resets <time>") or an API error 429 / 529 it gave up on. `retryMs`
 * is how long a rate refusal waits; a usage limit whose reset cannot be read waits an hour.
 */
export function providerLimit(result: Extract<AgentEvent, { kind: 'result' }> | undefined, now: number, retryMs: number): ProviderLimit | undefined {
  if (!result?.isError) return undefined;
  const said = [result.text ?? '', ...(result.errors ?? [])].join('\n').trim();
  const stamped = /Claude AI usage limit reached\|(\d{9,11})/.exec(said);
  if (stamped) return { kind: 'usage', resetAt: Math.max(now, Number(stamped[1]) * 1000), said };
  const worded = /(?:you(?:'|’)ve|you have) (?:hit|reached) your (?:[\w-]+ )?limit\b[^\n]*?\bresets?\s+([^\n·]+)/i.exec(said) ?? /usage limit reached[^\n]*?\bresets?\s+([^\n·]+)/i.exec(said);
  if (worded) return { kind: 'usage', resetAt: parseResetTime(worded[1] ?? '', now) ?? now + 3_600_000, said };
  if (/API Error:\s*(?:[A-Za-z ]*\()?(?:429|529)\b|API Error: Rate limit reached|"type":\s*"(?:rate_limit_error|overloaded_error)"/.test(said)) return { kind: 'rate', resetAt: now + retryMs, said };
  return undefined;
}
