/**
 * Characters that change what a reader sees without showing themselves: zero-width and
 * joiner characters, bidi embeddings/overrides/isolates, the BOM, soft hyphen, Mongolian
 * vowel separator, invisible math operators, Unicode tag characters, and C0/C1 controls
 * other than tab and newline.
 */
const INVISIBLE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F\u00AD\u061C\u115F\u1160\u17B4\u17B5\u180E\u200B-\u200F\u202A-\u202E\u2060-\u2064\u2066-\u206F\u3164\uFEFF\uFFA0\uFFF9-\uFFFB]|\uDB40[\uDC00-\uDC7F]/g;

const HTML_COMMENT = /<!--[\s\S]*?(?:-->|$)/g;

/**
 * Link reference definitions (`[label]: url "title"`, the url or the title possibly on
 * the next line) render as nothing. Footnotes (`[^1]: text`) render, so they stay.
 */
const DEFINITION = /^ {0,3}\[(?!\^)(?:[^[\]\\\n]|\\.)+\]:[ \t]*(?:\n[ \t]*)?\S[^\n]*(?:\n[ \t]*(?:"[^\n]*"|'[^\n]*'|\([^\n]*\))[ \t]*(?=\n|$))?/gm;

/** The text without the characters `INVISIBLE` names: one linear pass. */
export function withoutInvisible(text: string): string {
  return text.replace(INVISIBLE, '');
}

export const HIDDEN_MARKUP_REFUSED = '[removed: this text hides content in markup that re-forms each time it is removed]';

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
export function sanitizeUntrusted(text: string): string {
  const visible = text
    .replace(/\r\n?/g, '\n')
    .replace(/[\u2028\u2029]/g, ' ');
  return tidy(replaceImages(removeHiddenMarkup(withoutInvisible(visible)).replace(DEFINITION, '')));
}

/** Trailing blanks of each line go, runs of blank lines become one, blank lines at the ends go. */
function tidy(text: string): string {
  return text
    .split('\n')
    .map(trimLineEnd)
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    // Blank lines at the ends go; the first line's indentation stays (it can make code).
    .replace(/^\n+/, '')
    .trimEnd();
}

/** A line without its trailing spaces and tabs (a loop: `/[ \t]+$/` retries at every blank of a long run). */
function trimLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === ' ' || line[end - 1] === '\t')) end--;
  return end === line.length ? line : line.slice(0, end);
}

function removeHiddenMarkup(text: string): string {
  let current = text;
  for (let round = 0; round < MAX_REMOVAL_ROUNDS; round++) {
    const next = removeHiddenElements(current.replace(HTML_COMMENT, ''));
    if (next === current) return replaceImgTags(current);
    current = next;
  }
  // Markup built to re-form after every removal has no honest reading: keep none of it.
  return HIDDEN_MARKUP_REFUSED;
}

/**
 * `<img ...>` becomes `[image]`. The match runs to the end of the text when no `>` follows
 * (and is then kept as it is), so a long run of unclosed `<img` is read once, not once each.
 */
function replaceImgTags(text: string): string {
  return text.replace(/<img\b[^>]*(?:>|$)/gi, (tag) => tag.endsWith('>') ? '[image]' : tag);
}

const TAG_NAME = /[a-z][a-z0-9]*(?![a-z0-9_])/iy;
const HIDDEN_ATTRIBUTE = /\shidden\b/gi;
const STYLE_START = /style\s*=\s*["']/gi;
const INVISIBLE_STYLE = /display\s*:\s*none|visibility\s*:\s*hidden|font-size\s*:\s*0/i;
const CLOSING_TAG = /<\/([a-z][a-z0-9]*)\s*>/gi;

/** Where an attribute that hides its element starts, and where it ends. */
interface HidingAttribute { readonly at: number; readonly end: number; readonly hidden: boolean }

/**
 * Removes elements a reader never sees: an opening tag whose attributes (before its first
 * `>`) hold `hidden` or a `style` of `display: none`, `visibility: hidden` or `font-size: 0`,
 * with everything up to the first closing tag of the same name after it. The leftmost such
 * element goes first and the search goes on after it; an opening tag without a closing one
 * is kept. Each candidate attribute and closing tag is found once, in one pass over the
 * text, and each `<` looks them up: no start re-reads the text after it.
 */
function removeHiddenElements(text: string): string {
  if (!text.includes('<')) return text;
  const attributes = hidingAttributes(text);
  const closings = closingTags(text);
  let out = '';
  let copiedTo = 0;
  // The first `>` after a tag's name, looked up again only once a name ends past it.
  let gt: number | undefined;
  for (let at = text.indexOf('<'); at !== -1; at = text.indexOf('<', at + 1)) {
    TAG_NAME.lastIndex = at + 1;
    const name = TAG_NAME.exec(text)?.[0];
    if (!name) continue;
    const nameEnd = at + 1 + name.length;
    if (gt === undefined || gt < nameEnd) gt = text.indexOf('>', nameEnd);
    if (gt === -1) break; // no tag can end anywhere after this
    const element = hiddenElementAt(text, nameEnd, gt, name, attributes, closings);
    if (element === undefined) continue;
    out += text.slice(copiedTo, at);
    copiedTo = element;
    at = element - 1;
  }
  return copiedTo === 0 ? text : out + text.slice(copiedTo);
}

/** The end of the hidden element whose name ends at `nameEnd` and whose opening tag's first `>` is at `gt`, or undefined. */
function hiddenElementAt(text: string, nameEnd: number, gt: number, name: string, attributes: HidingAttribute[], closings: Map<string, number[][]>): number | undefined {
  const closes = closings.get(name.toLowerCase());
  if (!closes) return undefined;
  const first = firstAtOrAfter(attributes, nameEnd, (a) => a.at);
  const attribute = attributes[first];
  if (!attribute || attribute.at >= gt) return undefined;
  // A hidden attribute ends the tag at the first `>`; a style value may hold a `>`, and the tag ends at the first one after it.
  const tagEnd = attribute.hidden ? gt : text.indexOf('>', attribute.end);
  const closed = tagEnd === -1 ? undefined : closingAfter(closes, tagEnd);
  if (closed !== undefined || attribute.hidden || tagEnd === gt) return closed;
  // The style ran past `>` and found no closing tag: a `hidden` after it, before `gt`, ends the tag sooner.
  for (let i = first + 1; i < attributes.length && (attributes[i] as HidingAttribute).at < gt; i++) {
    if ((attributes[i] as HidingAttribute).hidden) return closingAfter(closes, gt);
  }
  return undefined;
}

/** The end of the first closing tag that starts at or after `from`. */
function closingAfter(closes: number[][], from: number): number | undefined {
  return closes[firstAtOrAfter(closes, from, (c) => c[0] as number)]?.[1];
}

/** Every `hidden` attribute and every style that hides, in order of position. */
function hidingAttributes(text: string): HidingAttribute[] {
  const found: HidingAttribute[] = [];
  for (const match of text.matchAll(HIDDEN_ATTRIBUTE)) found.push({ at: match.index, end: match.index + match[0].length, hidden: true });
  for (const match of text.matchAll(STYLE_START)) {
    const valueStart = match.index + match[0].length;
    const quote = /["']/g;
    quote.lastIndex = valueStart;
    const valueEnd = quote.exec(text)?.index;
    if (valueEnd !== undefined && INVISIBLE_STYLE.test(text.slice(valueStart, valueEnd))) found.push({ at: match.index, end: valueEnd + 1, hidden: false });
  }
  return found.sort((a, b) => a.at - b.at);
}

/** Closing tags by lowercase name: [start, end] pairs in order of position. */
function closingTags(text: string): Map<string, number[][]> {
  const byName = new Map<string, number[][]>();
  for (const match of text.matchAll(CLOSING_TAG)) {
    const name = (match[1] as string).toLowerCase();
    const list = byName.get(name) ?? [];
    list.push([match.index, match.index + match[0].length]);
    byName.set(name, list);
  }
  return byName;
}

/** The index of the first item whose key is at least `from` (binary search over items in key order). */
function firstAtOrAfter<T>(items: readonly T[], from: number, key: (item: T) => number): number {
  let low = 0;
  let high = items.length;
  while (low < high) {
    const mid = (low + high) >> 1;
    if (key(items[mid] as T) < from) low = mid + 1;
    else high = mid;
  }
  return low;
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
