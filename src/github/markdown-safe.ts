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
    // An image would be fetched from wherever the agent says: a break after the ! leaves a link.
    .replace(/!\[/g, `!${BREAK}[`)
    // @user and @org/team notify.
    .replace(/(^|[^\w`])@(?=[A-Za-z0-9])/g, `$1@${BREAK}`);
}

/** Applies `defuse` to the parts of one line that are not inline code. */
function defuseLine(line: string): string {
  let result = '';
  let rest = line;
  for (;;) {
    const open = /`+/.exec(rest);
    if (!open) return result + defuse(rest);
    const after = rest.slice(open.index + open[0].length);
    // An inline code span ends at the next run of exactly as many backticks.
    const close = new RegExp(`(?<!\`)${open[0]}(?!\`)`).exec(after);
    if (!close) return result + defuse(rest);
    result += defuse(rest.slice(0, open.index)) + open[0] + after.slice(0, close.index + close[0].length);
    rest = after.slice(close.index + close[0].length);
  }
}

/**
 * Markdown from an agent, made safe to render in a comment: outside code, `@mentions`,
 * `#123`/`GH-123` references, images and raw HTML are defused (as Dependabot and Renovate
 * do); code blocks and spans are kept as written. Escape codes are removed everywhere.
 */
export function safeMarkdown(markdown: string): string {
  const lines = stripEscapes(markdown).split('\n');
  let fence: string | undefined;
  return lines.map((line) => {
    const marker = /^ {0,3}(`{3,}|~{3,})/.exec(line)?.[1];
    if (fence) {
      if (marker && marker[0] === fence[0] && marker.length >= fence.length && line.trim() === marker) fence = undefined;
      return line;
    }
    if (marker) {
      fence = marker;
      return line;
    }
    if (/^( {4}|\t)/.test(line)) return line; // indented code
    return defuseLine(line);
  }).join('\n');
}

/** One line of agent or container text for a sentence of the comment: escapes removed, mentions and references defused. */
export function safeInline(text: string): string {
  return defuseLine(stripEscapes(text));
}

/**
 * The end of a Markdown text within `max` characters, cut at a line and reopening a code
 * fence the cut fell inside, so what is kept renders as it would have whole.
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
  return { text: fence ? `${fence}\n${kept}` : kept, cut: start };
}
