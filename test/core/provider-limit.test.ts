import { describe, expect, it } from 'vitest';
import { parseResetTime, providerLimit } from '../../src/core/index.js';
import { MAX_RATE_WAIT_MS, MAX_USAGE_WAIT_MS } from '../../src/core/provider-limit.js';

const now = Date.UTC(2026, 10, 23, 9, 30); // a Monday, 09:30 UTC
const result = (text: string, errors?: string[]) => ({ kind: 'result' as const, isError: true, subtype: 'success', text, ...(errors ? { errors } : {}) });

describe('providerLimit', () => {
  it.each<[string, string, { kind: 'usage' | 'rate'; resetAt: number } | undefined]>([
    ['the usage-limit result with its reset time', 'Claude AI usage limit reached|1795430000', { kind: 'usage', resetAt: 1795430000_000 }],
    ['the newer wording, a time in UTC', "You've hit your limit · resets 5pm (UTC)", { kind: 'usage', resetAt: Date.UTC(2026, 10, 23, 17) }],
    ['the newer wording, a time already past today: tomorrow', "You've hit your limit · resets 3:15am (UTC)", { kind: 'usage', resetAt: Date.UTC(2026, 10, 24, 3, 15) }],
    ['the newer wording, in a zone', "You've hit your limit · resets 11am (Europe/Berlin)", { kind: 'usage', resetAt: Date.UTC(2026, 10, 23, 10) }],
    ['the newer wording, a date', "You've hit your limit · resets Nov 25, 8am (UTC)", { kind: 'usage', resetAt: Date.UTC(2026, 10, 25, 8) }],
    ['the newer wording, a time it cannot read: an hour', "You've hit your limit · resets soon", { kind: 'usage', resetAt: now + 3_600_000 }],
    ['an API 429 the CLI gave up on', 'API Error: Request rejected (429) · Number of request tokens has exceeded your per-minute rate limit', { kind: 'rate', resetAt: now + 60_000 }],
    ['an API 529 (overloaded)', 'API Error: 529 Overloaded. This is a server-side issue, usually temporary', { kind: 'rate', resetAt: now + 60_000 }],
    ['another API error', 'API Error: 400 this request is refused', undefined],
    ['a session limit, in the words of newer CLIs', "You've hit your session limit · resets 8:30pm (UTC)", { kind: 'usage', resetAt: Date.UTC(2026, 10, 23, 20, 30) }],
    ['a weekly limit', "You've hit your weekly limit · resets Nov 25 at 7pm", { kind: 'usage', resetAt: Date.UTC(2026, 10, 25, 19) }],
    ['the CLI\'s bare rate-limit text', 'API Error: Rate limit reached', { kind: 'rate', resetAt: now + 60_000 }],
    ['a 400 whose message merely holds 529', 'API Error: 400 prompt is too long: 210 529 tokens', undefined],
    ['an ordinary failure that mentions a limit', 'The test suite hit the 5 minute limit of the CI job', undefined],
  ])('%s', (_name, text, expected) => {
    const found = providerLimit(result(text), now, 60_000);
    if (expected === undefined) expect(found).toBeUndefined();
    else expect(found).toMatchObject(expected);
  });

  it('a result that is not an error is never a limit, whatever it says', () => {
    expect(providerLimit({ kind: 'result', isError: false, text: 'Claude AI usage limit reached|1795430000' }, now, 60_000)).toBeUndefined();
  });

  it('finds the limit in the result\'s errors too', () => {
    expect(providerLimit(result('', ['Claude AI usage limit reached|1795430000']), now, 60_000)?.kind).toBe('usage');
  });

  it('reads reset times in their zone, the next such moment', () => {
    expect(parseResetTime('17:00', now)).toBe(Date.UTC(2026, 10, 23, 17));
    expect(parseResetTime('9am (America/New_York)', now)).toBe(Date.UTC(2026, 10, 23, 14));
    expect(parseResetTime('5pm (Not/AZone)', now)).toBeUndefined();
    expect(parseResetTime('42', now)).toBeUndefined();
  });
});

describe('parseResetTime across daylight saving time and a reset just passed', () => {
  it('takes the zone\'s offset on the day of the reset, not today\'s (Berlin moves to summer time on 29 March 2026)', () => {
    const evening = Date.parse('2026-03-28T20:00:00Z'); // 21:00 in Berlin, winter time
    expect(new Date(parseResetTime('5pm (Europe/Berlin)', evening) as number).toISOString()).toBe('2026-03-29T15:00:00.000Z');
    expect(new Date(parseResetTime('Mar 29, 5pm (Europe/Berlin)', evening) as number).toISOString()).toBe('2026-03-29T15:00:00.000Z');
    // Back to winter time on 25 October 2026.
    const autumn = Date.parse('2026-10-24T20:00:00Z');
    expect(new Date(parseResetTime('9am (Europe/Berlin)', autumn) as number).toISOString()).toBe('2026-10-25T08:00:00.000Z');
  });

  it('a reset a few minutes ago is now, not tomorrow; one half an hour ago is tomorrow\'s', () => {
    const justAfter = Date.parse('2026-06-10T15:04:00Z'); // 17:04 in Berlin
    expect(parseResetTime('5pm (Europe/Berlin)', justAfter)).toBe(justAfter);
    expect(parseResetTime('Jun 10, 5pm (Europe/Berlin)', justAfter)).toBe(justAfter);
    const later = Date.parse('2026-06-10T15:30:00Z');
    expect(new Date(parseResetTime('5pm (Europe/Berlin)', later) as number).toISOString()).toBe('2026-06-11T15:00:00.000Z');
  });

  it('rolls over the end of a month', () => {
    const lastEvening = Date.parse('2026-04-30T22:00:00Z');
    expect(new Date(parseResetTime('3:30am', lastEvening) as number).toISOString()).toBe('2026-05-01T03:30:00.000Z');
  });
});

describe('parseResetTime on the nights the clocks change', () => {
  it('a doubled hour (clocks go back): the first 2:30 still to come, then the second', () => {
    // Berlin, 25 October 2026: 02:00–03:00 happens twice, first in summer time (00:00–01:00 UTC), then in winter time (01:00–02:00 UTC).
    const between = Date.parse('2026-10-25T00:45:00Z'); // 02:45 summer time: the first 02:30 has passed, the second is to come
    expect(new Date(parseResetTime('2:30am (Europe/Berlin)', between) as number).toISOString()).toBe('2026-10-25T01:30:00.000Z');
    const before = Date.parse('2026-10-24T23:00:00Z');
    expect(new Date(parseResetTime('2:30am (Europe/Berlin)', before) as number).toISOString()).toBe('2026-10-25T00:30:00.000Z');
  });

  it('a skipped hour (clocks go forward): 2:30 that never shows is read as the moment after the jump', () => {
    const evening = Date.parse('2026-03-28T22:00:00Z');
    expect(new Date(parseResetTime('2:30am (Europe/Berlin)', evening) as number).toISOString()).toBe('2026-03-29T01:30:00.000Z');
  });

  it('a half-hour zone', () => {
    const now = Date.parse('2026-06-10T00:00:00Z');
    expect(new Date(parseResetTime('9am (Asia/Kolkata)', now) as number).toISOString()).toBe('2026-06-10T03:30:00.000Z');
  });
});

describe('providerLimit: a reset that has passed', () => {
  it('is retried after the rate delay, never at once (the provider may keep saying it while our clock is past it)', () => {
    const now = Date.parse('2026-06-10T15:04:00Z');
    const result = (text: string) => ({ kind: 'result' as const, isError: true, text });
    expect(providerLimit(result(`Claude AI usage limit reached|${Math.floor(now / 1000) - 30}`), now, 60_000)?.resetAt).toBe(now + 60_000);
    expect(providerLimit(result("You've hit your limit · resets 5pm (Europe/Berlin)"), now, 60_000)?.resetAt).toBe(now + 60_000);
    expect(providerLimit(result(`Claude AI usage limit reached|${Math.floor(now / 1000) + 30}`), now, 60_000)?.resetAt).toBe(now + 30_000);
  });
});

describe('providerLimit: what another agent\'s reader found', () => {
  const now = Date.UTC(2026, 0, 10, 12);
  it('takes the reader\'s kind and reset; a reset that passed, or none, waits the retry delay', () => {
    expect(providerLimit({ kind: 'result', isError: true, text: 'quota', limit: { kind: 'usage', resetAt: now + 60_000 } }, now, 5000)).toMatchObject({ kind: 'usage', resetAt: now + 60_000 });
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'rate', resetAt: now - 1 } }, now, 5000)).toMatchObject({ kind: 'rate', resetAt: now + 5000 });
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'rate' } }, now, 5000)).toMatchObject({ kind: 'rate', resetAt: now + 5000 });
    // A result that is no error never waits, whatever it carries.
    expect(providerLimit({ kind: 'result', isError: false, limit: { kind: 'rate' } }, now, 5000)).toBeUndefined();
  });
});

describe('providerLimit: bounded, whatever the words say', () => {
  const now = Date.UTC(2026, 11, 6, 12);
  it('a reset far away is waited for a week at most (usage) or an hour (rate); one that is no number waits the retry delay', () => {
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'usage', resetAt: Date.UTC(2099, 11, 9) } }, now, 5000)?.resetAt).toBe(now + MAX_USAGE_WAIT_MS);
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'rate', resetAt: now + 99_999_999 * 3_600_000 } }, now, 5000)?.resetAt).toBe(now + MAX_RATE_WAIT_MS);
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'rate', resetAt: Number.POSITIVE_INFINITY } }, now, 5000)?.resetAt).toBe(now + 5000);
    expect(providerLimit({ kind: 'result', isError: true, limit: { kind: 'usage', resetAt: Number.NaN } }, now, 5000)?.resetAt).toBe(now + 5000);
    // Claude Code's own stamp too.
    expect(providerLimit({ kind: 'result', isError: true, text: 'Claude AI usage limit reached|99999999999' }, now, 5000)?.resetAt).toBe(now + MAX_USAGE_WAIT_MS);
  });
});
