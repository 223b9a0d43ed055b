/**
 * The sanitiser as it was written first, round by round with whole-text regular expressions
 * (quadratic on some inputs): the reference the linear one must agree with, on small inputs.
 */
/**
 * Characters that change what a reader sees without showing themselves: zero-width and
 * joiner characters, bidi embeddings/overrides/isolates, the BOM, soft hyphen, Mongolian
 * vowel separator, invisible math operators, Unicode tag characters, and C0/C1 controls
 * other than tab and newline.
 */
const INVISIBLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDC7F]/g;

const HTML_COMMENT = /<!--[\s\S]*?(?:-->|$)/g;

/** Elements a reader of the rendered issue never sees. */
const HIDDEN_ELEMENT = /<([a-z][a-z0-9]*)\b[^>]*?(?:\shidden\b|style\s*=\s*["'][^"']*(?:display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0)[^"']*["'])[^>]*>[\s\S]*?<\/\1\s*>/gi;

/**
 * Link reference definitions (`[label]: url "title"`, the url or the title possibly on
 * the next line) render as nothing. Footnotes (`[^1]: text`) render, so they stay.
 */
const DEFINITION = /^ {0,3}\[(?!\^)(?:[^[\]\\\n]|\\.)+\]:[ \t]*(?:\n[ \t]*)?\S[^\n]*(?:\n[ \t]*(?:"[^\n]*"|'[^\n]*'|\([^\n]*\))[ \t]*(?=\n|$))?/gm;

import { HIDDEN_MARKUP_REFUSED } from '../../src/github/sanitize.js';

/** Removing one hidden piece can join the text around it into another; this many rounds, then give up safely. */
const MAX_REMOVAL_ROUNDS = 8;

/**
 * Removes the carriers of hidden instructions from user-written Markdown before it reaches
 * an agent: HTML comments (also unterminated ones), hidden HTML elements, image alt text
 * (Markdown, with nested brackets, and `<img>`), link reference definitions, invisible and
 * bidirectional-control characters. Unicode line and paragraph separators become spaces:
 * Markdown does not break lines at them, so neither may the command parser. What a person
 * sees on GitHub is kept. Applying it twice changes nothing more.
 */
export function sanitizeReference(text: string): string {
  const visible = text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2028\u2029]/g, ' ')
    .replace(INVISIBLE, '');
  return replaceImages(removeHiddenMarkup(visible).replace(DEFINITION, ''))
    .replace(/[ \t]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    // Blank lines at the ends go; the first line's indentation stays (it can make code).
    .replace(/^(?:[ \t]*\n)+/, '')
    .trimEnd();
}

function removeHiddenMarkup(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_REMOVAL_ROUNDS; round++) {
    const next = current.replace(HTML_COMMENT, '').replace(HIDDEN_ELEMENT, '');
    if (next === current) return current.replace(/<img\b[^>]*>/gi, '[image]');
    current = next;
  }
  // Markup built to re-form after every removal has no honest reading: keep none of it.
  return HIDDEN_MARKUP_REFUSED;
}

/**
 * Replaces every Markdown image (`![alt](url "title")`, `![alt][ref]`) with `[image: url]`
 * or `[image]`. Alt text may hold balanced brackets, as CommonMark allows. A `!` left right
 * before a replacement is escaped so that the two cannot form a new image; so is the
 * replacement's own bracket where it could join its neighbours.
 */
function replaceImages(text: string): string {
  const closing = matchingBrackets(text);
  let out = '';
  let copiedTo = 0;
  for (let at = text.indexOf('!['); at !== -1; at = text.indexOf('![', at + 1)) {
    if (at < copiedTo || isEscaped(text, at)) continue;
    const image = imageAt(text, at, closing);
    if (!image) continue;
    out += text.slice(copiedTo, at);
    if (out.endsWith('!') && !isEscaped(out, out.length - 1)) out = `${out.slice(0, -1)}\\!`;
    // After a `]` it could read as a reference (`![alt][image]`): an escaped bracket cannot.
    const open = out.endsWith(']') && !isEscaped(out, out.length - 1) ? '\\[' : '[';
    out += image.url ? `${open}image: ${image.url}]` : `${open}image]`;
    // Before a `:` it could read as a link reference definition, which renders as nothing.
    if (text[image.end] === ':') out += '\\';
    copiedTo = image.end;
  }
  return out + text.slice(copiedTo);
}

function imageAt(text: string, at: number, closing: Map<number, number>): { end: number; url?: string } | undefined {
  const altEnd = closing.get(at + 1);
  if (altEnd === undefined) return undefined;
  const next = altEnd + 1;
  const targetEnd = closing.get(next);
  if (targetEnd === undefined) return undefined;
  if (text[next] === '[') return { end: targetEnd + 1 };
  const target = text.slice(next + 1, targetEnd).trim();
  const url = target.startsWith('<') ? target.slice(1, target.indexOf('>')) : target.split(/\s/, 1)[0];
  return { end: targetEnd + 1, url: url && /^[^\s[\]()<>"'`!]+$/.test(url) ? url : undefined };
}

/** Positions of each `[` and `(` paired with their closing partner; backslash escapes respected. */
function matchingBrackets(text: string): Map<number, number> {
  const pairs = new Map<number, number>();
  const squares: number[] = [];
  const rounds: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (char === '\\') i++;
    else if (char === '[') squares.push(i);
    else if (char === '(') rounds.push(i);
    else if (char === ']' && squares.length > 0) pairs.set(squares.pop()!, i);
    else if (char === ')' && rounds.length > 0) pairs.set(rounds.pop()!, i);
  }
  return pairs;
}

/** True when the character at `at` is preceded by an odd number of backslashes. */
function isEscaped(text: string, at: number): boolean {
  let slashes = 0;
  while (at - slashes - 1 >= 0 && text[at - slashes - 1] === '\\') slashes++;
  return slashes % 2 === 1;
}
