/**
 * The UTC minute of `at` (ms), as `2026-11-23 08:55`: a moment as people read it on an issue
 * and on its session page, followed by "UTC" (to the minute, whoever reads it and wherever
 * cldpd runs).
 */
export function utcMinute(at: number): string {
  return new Date(at).toISOString().slice(0, 16).replace('T', ' ');
}
