import type { VolumeRow } from '../core/index.js';

/** The header of the `cldpd volumes` table, the first row {@link volumeRows} gives. */
export const VOLUME_HEADER: readonly string[] = Object.freeze(['VOLUME', 'POD', 'ISSUE / SESSION', 'PATH', 'SIZE', 'CREATED', 'IN USE']);

const UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB'] as const;

/**
 * Pure: a byte count as people read it, in decimal units as Docker prints them: `0 B`,
 * `999 B`, `4.0 kB`, `12.3 MB`. A value that would round up to 1000 of one unit is shown in
 * the next (`1.0 MB`, never `1000.0 kB`). `-` when the size is unknown (or not a size).
 */
export function formatBytes(bytes: number | undefined): string {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return '-';
  if (bytes < 1000) return `${Math.floor(bytes)} B`;
  let value = bytes;
  let unit = 0;
  while (unit < UNITS.length - 1 && Number(value.toFixed(1)) >= 1000) {
    value /= 1000;
    unit++;
  }
  return `${value.toFixed(1)} ${UNITS[unit]}`;
}

/** Seconds, minutes, hours and days, largest first, for {@link formatAge}. */
const SPANS = [
  { ms: 86_400_000, unit: 'd' },
  { ms: 3_600_000, unit: 'h' },
  { ms: 60_000, unit: 'm' },
  { ms: 1000, unit: 's' },
] as const;

/**
 * Pure: how long ago `at` (epoch ms) was at `now`, in its largest whole unit: `12s ago`,
 * `3m ago`, `2h ago`, `5d ago`. Under a second either way is `just now`; a time in the
 * future (a remote engine's clock ahead of this one) reads `in 3m`. `-` when unknown.
 */
export function formatAge(at: number | undefined, now: number): string {
  if (at === undefined || !Number.isFinite(at) || !Number.isFinite(now)) return '-';
  const diff = now - at;
  const span = Math.abs(diff);
  if (span < 1000) return 'just now';
  const { ms, unit } = SPANS.find((s) => span >= s.ms) ?? SPANS[3];
  const count = `${Math.floor(span / ms)}${unit}`;
  return diff > 0 ? `${count} ago` : `in ${count}`;
}

/**
 * Pure: the `cldpd volumes` table as cells, header first (see {@link VOLUME_HEADER}): the
 * issue URL of a volume an issue's sessions share, else the session it belongs to; its size
 * (`-` when the engine does not report it); its age at `now`; `yes` when a running
 * container mounts it.
 */
export function volumeRows(rows: readonly VolumeRow[], now: number): string[][] {
  return [
    [...VOLUME_HEADER],
    ...rows.map((v) => [
      v.name,
      v.pod,
      v.issueUrl ?? v.sessionId,
      v.path,
      formatBytes(v.sizeBytes),
      formatAge(v.createdAt, now),
      v.inUse ? 'yes' : 'no',
    ]),
  ];
}
