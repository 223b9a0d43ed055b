/**
 * Terminal styling: colour and dim text for a person at a terminal, plain text for a pipe, a
 * file, or anyone who set `NO_COLOR`. Decided once per stream, from the environment given
 * (the composition root passes `process.env`).
 */

/** The styles cldpd uses; each returns `text` unchanged when colour is off. */
export interface Style {
  readonly enabled: boolean;
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

/**
 * Whether a stream gets colour, by the conventions `gh`, `docker` and most CLIs share:
 * `NO_COLOR` (any non-empty value, no-color.org) turns it off, `FORCE_COLOR` (other than
 * `0`/`false`) turns it on, otherwise colour only on a TTY whose `TERM` is not `dumb`.
 */
export function colorEnabled(env: Readonly<Record<string, string | undefined>>, isTTY: boolean): boolean {
  if (env.NO_COLOR) return false;
  const force = env.FORCE_COLOR;
  if (force !== undefined && force !== '') return force !== '0' && force !== 'false';
  return isTTY && env.TERM !== 'dumb';
}

function sgr(open: number, close: number): (text: string) => string {
  // Re-open after any close inside (a dim line holding a bold word stays dim after it).
  return (text) => `\u001b[${open}m${text.split(`\u001b[${close}m`).join(`\u001b[${close}m\u001b[${open}m`)}\u001b[${close}m`;
}

const identity = (text: string): string => text;

/** A {@link Style} that colours when `enabled`, and is the identity otherwise. */
export function createStyle(enabled: boolean): Style {
  if (!enabled) return { enabled, bold: identity, dim: identity, red: identity, green: identity, yellow: identity, cyan: identity };
  return { enabled, bold: sgr(1, 22), dim: sgr(2, 22), red: sgr(31, 39), green: sgr(32, 39), yellow: sgr(33, 39), cyan: sgr(36, 39) };
}
