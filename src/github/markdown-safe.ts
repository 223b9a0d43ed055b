import MarkdownIt from 'markdown-it';
import { stripEscapes } from '../core/index.js';

/**
 * Making text from an agent or a container safe to show as GitHub Markdown in cldpd's own
 * comment: it must not notify people, link issues, load remote images or hide text in HTML,
 * whatever it says. Code (fenced blocks, indented or inline spans) is left as it is: GitHub
 * links and notifies nothing there.
 */

/** A zero-width space as an HTML entity: GitHub shows nothing, and links nothing across it. */
const BREAK = '&#8203;';


/** Prose outside code: mentions, references, images and HTML defused. */
function defuse(prose: string): string {
  return prose
    // Raw HTML could hide text or break the comment's own <details>.
    .replace(/<(?=[A-Za-z/!?])/g, '&lt;')
    // #123, owner/repo#123 and GH-123 link issues. (First: every break inserted below is an
    // entity with a # in it.)
    .replace(/#(?=\d)/g, `#${BREAK}`)
    .replace(/\b(GH)-(?=\d)/gi, `$1${BREAK}-`)
    // A URL of an issue or pull request references it too, and closes it after a closing
    // keyword ("Fixes https://…/issues/9"): a zero-width space before its number leaves it no
    // issue's. The character itself, not its entity: an autolink would end at the entity.
    .replace(/(\/(?:issues|pull|pulls)\/)(?=\d)/gi, '$1\u200b')
    // An image would be fetched from wherever the agent says: a break after the ! leaves a link.
    .replace(/!\[/g, `!${BREAK}[`)
    // @user and @org/team notify.
    .replace(/(^|[^\w])@(?=[A-Za-z0-9])/g, `$1@${BREAK}`);
}

/**
 * Applies `defuse` to the parts of a run of non-blank lines that are not inline code. Spans
 * are paired within a line; once a line leaves a run of backticks unpaired, that line and
 * the rest are defused whole: a span may run on over lines, and parsers differ on where a
 * paragraph starts (lazy lines in lists), so no pairing after it is certain.
 */
function defuseLine(text: string): string {
  let paired = true;
  return text.split('\n').map((line) => {
    const { spans, unpaired } = codeSpans(line);
    paired &&= !unpaired;
    if (!paired) return defuse(line);
    let result = '';
    let copied = 0;
    for (const [start, end] of spans) {
      result += defuse(line.slice(copied, start)) + line.slice(start, end);
      copied = end;
    }
    return result + defuse(line.slice(copied));
  }).join('\n');
}

/** Inline code spans of one line as [start, end), and whether a run of backticks was left unpaired: a run of backticks opens one that the next run of as many closes; a backslash escapes the character after it. */
function codeSpans(text: string): { spans: Array<[number, number]>; unpaired: boolean } {
  const spans: Array<[number, number]> = [];
  let unpaired = false;
  let at = 0;
  while (at < text.length) {
    if (text[at] === '\\') {
      at += 2;
      continue;
    }
    if (text[at] !== '`') {
      at++;
      continue;
    }
    const run = backticksAt(text, at);
    let close = text.indexOf('`', at + run);
    while (close !== -1 && backticksAt(text, close) !== run) close = text.indexOf('`', close + backticksAt(text, close));
    if (close === -1) {
      unpaired = true;
      at += run;
      continue;
    }
    spans.push([at, close + run]);
    at = close + run;
  }
  return { spans, unpaired };
}

/** The length of the run of backticks starting at `at`. */
function backticksAt(text: string, at: number): number {
  let end = at;
  while (text[end] === '`') end++;
  return end - at;
}

/**
 * Table cells a text may make at most before it is not parsed as Markdown. markdown-it fills
 * every row of a table up to its header's width and builds tokens for each cell: 20 KB of a
 * wide header and one-character rows cost over half a second to parse and 7 MB of HTML.
 */
export const MAX_TABLE_CELLS = 10_000;

/** What a GFM table's delimiter row (`|---|:--:|`, in a quote too) holds: with a dash and a pipe, nothing else. */
const DELIMITER_ROW = /^[ \t>:|-]*$/;

/**
 * The most cells the tables of `text` can make (rows filled in to the header's width
 * included): each delimiter row's columns times the lines up to the next blank one, since a
 * table may end sooner, never later. One pass over the text.
 */
export function tableCells(text: string): number {
  if (!text.includes('|')) return 0;
  const lines = text.split('\n');
  let cells = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] as string;
    if (!line.includes('|') || !line.includes('-') || !DELIMITER_ROW.test(line)) continue;
    const columns = line.split('|').length;
    let rows = 0;
    while (i + 1 < lines.length && (lines[i + 1] as string).trim() !== '') {
      i++;
      rows++;
    }
    cells += columns * (rows + 1);
  }
  return cells;
}

/** CommonMark with GitHub's tables; raw HTML read as HTML, as GitHub does. */
const parser = new MarkdownIt({ html: true });

type Tokens = ReturnType<MarkdownIt['parse']>;

/** What GitHub turns into a notification or an issue link in text. */
const LIVE_TEXT = /(^|[^\w])@[A-Za-z0-9]|#\d|\bGH-\d|\/(?:issues|pull|pulls)\/\d/i;

/**
 * True when the text, parsed as CommonMark, holds no raw HTML, no image and, outside code,
 * no text that would mention someone or link an issue (entities and escapes read as what
 * they show).
 */
export function isSafeMarkdown(markdown: string): boolean {
  // Not parsed at all when its tables could cost seconds (see MAX_TABLE_CELLS): not known safe.
  if (tableCells(markdown) > MAX_TABLE_CELLS) return false;
  return safeTokens(parser.parse(markdown, {}));
}

function safeTokens(tokens: Tokens): boolean {
  // Text runs on across text tokens and line breaks: `@` and a name may be split between them.
  let text = '';
  for (const token of tokens) {
    if (token.type === 'html_block' || token.type === 'html_inline' || token.type === 'image') return false;
    if (token.type === 'text' || token.type === 'text_special' || token.type === 'softbreak' || token.type === 'hardbreak') {
      text += token.type.endsWith('break') ? '\n' : token.content;
      continue;
    }
    if (LIVE_TEXT.test(text)) return false;
    text = '';
    if (token.children && !safeTokens(token.children)) return false;
  }
  return !LIVE_TEXT.test(text);
}

/** Text shown as written, in a code block: its fence is longer than any run of backticks in it. */
function asCode(text: string): string {
  const fence = '`'.repeat(Math.max(2, ...(text.match(/`+/g) ?? []).map((run) => run.length)) + 1);
  return `${fence}\n${text}\n${fence}`;
}

/**
 * Markdown from an agent, made safe to render in a comment: outside code, `@mentions`,
 * `#123`/`GH-123` references, images and raw HTML are defused (as Dependabot and Renovate
 * do); fenced code blocks and code spans are kept as written (indented code is defused like
 * text: parsers disagree on where it ends). Which lines are code is what a CommonMark
 * parser says, so lazy continuation lines, indentation inside list items and fences that
 * are not fences read as GitHub reads them. The result is parsed again: one with anything
 * live left in it (entities, say) is shown whole as a code block instead, and so is a text
 * whose tables could make over {@link MAX_TABLE_CELLS} cells. Escape codes are removed everywhere.
 */
export function safeMarkdown(markdown: string): string {
  const text = stripEscapes(markdown);
  if (tableCells(text) > MAX_TABLE_CELLS) return asCode(text);
  const lines = text.split('\n');
  const code = new Array<boolean>(lines.length).fill(false);
  for (const token of parser.parse(text, {})) {
    // Indented code is defused like text: where it ends, in lists and quotes, after a line of
    // text or a blank line, parsers differ (what one keeps as code another renders as a
    // paragraph), and a mention in code only shows its defusing.
    if (token.type !== 'fence' || !token.map) continue;
    const last = lines[token.map[1] - 1]?.trim() ?? '';
    const closed = token.map[1] - token.map[0] > 1 && last.length >= token.markup.length && [...last].every((c) => c === token.markup[0]);
    // A fence the answer leaves open may be read as closing an earlier one (parsers differ in
    // lists): its lines are defused, and it is closed so that it takes in nothing after the answer.
    if (token.type === 'fence' && !closed) {
      code[token.map[0]] = true;
      lines[lines.length - 1] += `\n${token.markup}`;
      continue;
    }
    // Inside a list or quote, a line that starts at the margin with text is no line of the
    // fence as every reader sees it (CommonMark continues no code lazily; parsers differ): it is defused.
    for (let line = token.map[0]; line < token.map[1]; line++) {
      code[line] = !(token.level > 0 && /^[^\s>]/.test(lines[line] ?? ''));
    }
  }
  // A code span may run over lines of a paragraph: text is defused a run of non-blank lines at a time.
  const parts: string[] = [];
  for (let i = 0; i < lines.length;) {
    let end = i + 1;
    if (!code[i] && lines[i]?.trim()) while (end < lines.length && !code[end] && lines[end]?.trim()) end++;
    const part = lines.slice(i, end).join('\n');
    parts.push(code[i] ? part : defuseLine(part));
    i = end;
  }
  const defused = parts.join('\n');
  return isSafeMarkdown(defused) ? defused : asCode(text);
}

/** One line of agent or container text for a sentence of the comment: escapes removed, mentions and references defused. */
export function safeInline(text: string): string {
  return defuseLine(stripEscapes(text));
}

/**
 * The end of a Markdown text within `max` characters, cut at a line and reopening a code
 * fence the cut fell inside, so what is kept renders as it would have whole. Cut from a
 * text `safeMarkdown` made, it stays safe: a cut that leaves something live (a line that
 * was code in a list item, now read as text) shows what is kept as a code block.
 */
export function keepMarkdownEnd(markdown: string, max: number): { text: string; cut: number } {
  if (markdown.length <= max) return { text: markdown, cut: 0 };
  let start = markdown.length - max;
  const newline = markdown.indexOf('\n', start);
  start = newline === -1 ? markdown.length : newline + 1;
  let fence: string | undefined;
  for (const line of markdown.slice(0, start).split('\n')) {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence && marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
    else if (!fence && marker) fence = marker;
  }
  const kept = markdown.slice(start);
  const text = fence ? `${fence}\n${kept}` : kept;
  return { text: isSafeMarkdown(text) ? text : asCode(kept), cut: start };
}
