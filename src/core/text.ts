/**
 * Shortening text for people without breaking a character. Lengths are counted the way
 * JavaScript and GitHub's limits count them (UTF-16 code units), but a cut never falls
 * between the two halves of a surrogate pair (an emoji, a CJK extension character): half of
 * one is not well-formed Unicode, and GitHub refuses a comment that holds it.
 */

function isHighSurrogate(unit: number): boolean {
  return unit >= 0xd800 && unit <= 0xdbff;
}

function isLowSurrogate(unit: number): boolean {
  return unit >= 0xdc00 && unit <= 0xdfff;
}

/**
 * The longest start of `text` of at most `max` code units that ends between two
 * characters. `text` itself when it fits; one unit shorter than `max` when `max` would
 * split a pair.
 */
export function keepStart(text: string, max: number): string {
  if (text.length <= max) return text;
  let end = Math.max(0, Math.floor(max));
  if (end > 0 && isHighSurrogate(text.charCodeAt(end - 1)) && isLowSurrogate(text.charCodeAt(end))) end--;
  return text.slice(0, end);
}

/**
 * The longest end of `text` of at most `max` code units that starts between two
 * characters. `text` itself when it fits; one unit shorter than `max` when `max` would
 * split a pair.
 */
export function keepEnd(text: string, max: number): string {
  if (text.length <= max) return text;
  let start = text.length - Math.max(0, Math.floor(max));
  if (start < text.length && isLowSurrogate(text.charCodeAt(start)) && isHighSurrogate(text.charCodeAt(start - 1))) start++;
  return text.slice(start);
}

/**
 * `text` itself when it has at most `max` code units; otherwise its start and `…`, together
 * at most `max` code units, cut between two characters.
 */
export function shorten(text: string, max: number): string {
  if (text.length <= max) return text;
  return max < 1 ? '' : `${keepStart(text, max - 1)}…`;
}

/** The ES2024 string methods Node 20 has and the ES2022 library types do not declare. */
interface WellFormedString {
  isWellFormed(): boolean;
  toWellFormed(): string;
}

/** True when `text` holds no lone surrogate, so it can be encoded as UTF-8 as it is. */
export function isWellFormed(text: string): boolean {
  return (text as unknown as WellFormedString).isWellFormed();
}

/** `text` with every lone surrogate replaced by U+FFFD; its length does not change. */
export function toWellFormed(text: string): string {
  return (text as unknown as WellFormedString).toWellFormed();
}

// eslint-disable-next-line no-control-regex
const ESCAPES = /\u001b\[[0-?]*[ -/]*[@-~]|\u001b\][^\u0007\u001b]*(?:\u0007|\u001b\\)|\u001b[@-Z\\-_]|[\u0000-\u0008\u000b-\u001f\u007f]/g;

/** `text` without terminal escape codes (`[91m`, cursor moves, OSC titles) and control characters; newlines and tabs stay. */
export function stripEscapes(text: string): string {
  return text.replace(ESCAPES, '');
}

/** The edit distance between `a` and `b`: insertions, deletions, substitutions and swaps of neighbours. */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const row = d[i] as number[];
      const above = d[i - 1] as number[];
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min((above[j] as number) + 1, (row[j - 1] as number) + 1, (above[j - 1] as number) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) row[j] = Math.min(row[j] as number, ((d[i - 2] as number[])[j - 2] as number) + 1);
    }
  }
  return (d[a.length] as number[])[b.length] as number;
}

/**
 * The candidate `word` was most likely meant to be, for a "did you mean" hint: one that
 * starts with it (`--al` → `--all`), else the nearest within a third of its length (at
 * least one edit: `strat` → `start`). Undefined when nothing is close or `word` is one of
 * them.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  if (candidates.includes(word) || word.length === 0) return undefined;
  const lower = word.toLowerCase();
  const prefixed = candidates.filter((c) => c.toLowerCase().startsWith(lower));
  if (prefixed.length === 1) return prefixed[0];
  const limit = Math.max(1, Math.floor(word.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const c of candidates) {
    const distance = editDistance(lower, c.toLowerCase());
    if (distance < bestDistance) [best, bestDistance] = [c, distance];
  }
  return best;
}
