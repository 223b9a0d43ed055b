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
