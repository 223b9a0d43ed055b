import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/config.js';

const DAY = 86_400_000;

/** The ConfigError `env` gives; fails the test when loadConfig accepts it. */
function configErrorOf(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ HOME: '/h', ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)}`);
}

describe('loadConfig: CLDPD_RETENTION_DAYS', () => {
  it('is 14 days, in ms, unless set (empty counts as unset)', () => {
    expect(loadConfig({ HOME: '/h' }).retentionMs).toBe(14 * DAY);
    expect(loadConfig({ HOME: '/h', CLDPD_RETENTION_DAYS: '' }).retentionMs).toBe(14 * DAY);
  });

  it.each([
    ['1', DAY],
    ['30', 30 * DAY],
    ['0.5', DAY / 2],
    ['1.25', 1.25 * DAY],
    ['0.00005', 0.00005 * DAY], // 4.32 s, as the end-to-end test uses
  ])('reads %j as %d ms', (days, ms) => {
    expect(loadConfig({ HOME: '/h', CLDPD_RETENTION_DAYS: days }).retentionMs).toBeCloseTo(ms, 6);
  });

  it.each(['0', '-0', '-3', '-0.5', 'abc', '14d', '2 weeks', 'NaN', 'Infinity', '-Infinity', ' ', '1,5'])('reports %j as a problem naming the variable, its value and the default', (days) => {
    expect(configErrorOf({ CLDPD_RETENTION_DAYS: days }).message).toContain(`CLDPD_RETENTION_DAYS is "${days}"; it must be a number greater than 0 and at most 36500 (default 14).`);
  });

  it('reports it together with the other problems', () => {
    const message = configErrorOf({ CLDPD_RETENTION_DAYS: '0', CLDPD_CONCURRENCY: 'two' }).message;
    expect(message).toContain('CLDPD_RETENTION_DAYS is "0"');
    expect(message).toContain('CLDPD_CONCURRENCY is "two"');
  });
});

describe('retention and log bounds stay within what can be scheduled and stored', () => {
  it('refuses a retention of more than 100 years, which no date could hold, naming the bound', () => {
    expect(() => loadConfig({ CLDPD_RETENTION_DAYS: '99999999' })).toThrow(/CLDPD_RETENTION_DAYS is "99999999"; it must be a number greater than 0 and at most 36500/);
    expect(loadConfig({ CLDPD_RETENTION_DAYS: '36500' }).retentionMs).toBe(36_500 * 86_400_000);
  });

  it('CLDPD_RUN_LOG_MAX_MB: 100 MiB by default, fractions allowed, nonsense refused', () => {
    expect(loadConfig({}).runLogMaxBytes).toBe(100 * 1024 * 1024);
    expect(loadConfig({ CLDPD_RUN_LOG_MAX_MB: '0.5' }).runLogMaxBytes).toBe(512 * 1024);
    for (const bad of ['0', '-1', 'lots', '1e3', '0x10']) expect(() => loadConfig({ CLDPD_RUN_LOG_MAX_MB: bad })).toThrow(/CLDPD_RUN_LOG_MAX_MB/);
  });
});
