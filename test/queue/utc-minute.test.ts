import { describe, expect, it } from 'vitest';
import { utcMinute } from '../../src/queue/run-view.js';

describe('utcMinute', () => {
  it.each([
    [Date.parse('2026-11-23T08:55:59.999Z'), '2026-11-23 08:55'],
    [Date.parse('2026-12-31T23:59:00+01:00'), '2026-12-31 22:59'],
    [0, '1970-01-01 00:00'],
  ])('%d reads %s', (at, expected) => {
    expect(utcMinute(at)).toBe(expected);
  });
});
