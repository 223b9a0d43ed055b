import { describe, expect, it } from 'vitest';
import { VOLUME_HEADER, formatAge, formatBytes, volumeRows } from '../../src/cli/volumes-view.js';
import type { VolumeRow } from '../../src/core/index.js';

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [999, '999 B'],
    [1000, '1.0 kB'],
    [4096, '4.1 kB'],
    [4000, '4.0 kB'],
    [12_345_678, '12.3 MB'],
    [999_949, '999.9 kB'],
    [999_950, '1.0 MB'],
    [1_500_000_000, '1.5 GB'],
    [2e12, '2.0 TB'],
    [3e18, '3000.0 PB'],
    [undefined, '-'],
    [-1, '-'],
    [Number.NaN, '-'],
  ])('%s bytes → %s', (bytes, shown) => {
    expect(formatBytes(bytes)).toBe(shown);
  });
});

describe('formatAge', () => {
  const now = Date.UTC(2025, 0, 10, 12, 0, 0);
  it.each([
    [now, 'just now'],
    [now - 999, 'just now'],
    [now + 500, 'just now'],
    [now - 1000, '1s ago'],
    [now - 59_999, '59s ago'],
    [now - 60_000, '1m ago'],
    [now - 3 * 60_000 - 59_000, '3m ago'],
    [now - 3_599_999, '59m ago'],
    [now - 2 * 3_600_000, '2h ago'],
    [now - 23 * 3_600_000 - 59 * 60_000, '23h ago'],
    [now - 86_400_000, '1d ago'],
    [now - 5 * 86_400_000 - 3_600_000, '5d ago'],
    [now - 400 * 86_400_000, '400d ago'],
    [now + 5000, 'in 5s'],
    [now + 3 * 60_000, 'in 3m'],
    [now + 2 * 86_400_000, 'in 2d'],
    [undefined, '-'],
    [Number.NaN, '-'],
  ])('%s → %s', (at, shown) => {
    expect(formatAge(at, now)).toBe(shown);
  });
});

describe('volumeRows', () => {
  const now = Date.UTC(2025, 0, 10, 12, 0, 0);
  const row = (over: Partial<VolumeRow>): VolumeRow => ({
    name: 'cldpd-web-1a2b3c4d-0badcafe', pod: 'web', issueUrl: undefined, sessionId: 'web-1a2b3c4d', sessions: ['web-1a2b3c4d'],
    path: '/work', sizeBytes: 4000, createdAt: now - 3 * 60_000, inUse: false, ...over,
  });

  it.each([
    ['a session volume', row({}), ['cldpd-web-1a2b3c4d-0badcafe', 'web', 'web-1a2b3c4d', '/work', '4.0 kB', '3m ago', 'no']],
    ['an issue volume in use', row({ issueUrl: 'https://github.com/acme/web/issues/5', inUse: true, sizeBytes: 0 }), ['cldpd-web-1a2b3c4d-0badcafe', 'web', 'https://github.com/acme/web/issues/5', '/work', '0 B', '3m ago', 'yes']],
    ['a volume of unknown size and age', row({ sizeBytes: undefined, createdAt: undefined }), ['cldpd-web-1a2b3c4d-0badcafe', 'web', 'web-1a2b3c4d', '/work', '-', '-', 'no']],
  ])('%s', (_, volume, cells) => {
    expect(volumeRows([volume], now)).toEqual([[...VOLUME_HEADER], cells]);
  });

  it('is the header alone for no volumes, and keeps the rows in order', () => {
    expect(volumeRows([], now)).toEqual([['VOLUME', 'POD', 'ISSUE / SESSION', 'PATH', 'SIZE', 'CREATED', 'IN USE']]);
    expect(volumeRows([row({ name: 'b' }), row({ name: 'a' })], now).slice(1).map((r) => r[0])).toEqual(['b', 'a']);
  });
});
