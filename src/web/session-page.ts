import MarkdownIt from 'markdown-it';
import { MAX_TABLE_CELLS, tableCells } from '../github/markdown-safe.js';
import type { FeedEntry, FeedHead, StoredEntry } from '../queue/session-feed.js';

/**
 * The agent's Markdown, made safe: raw HTML is shown as text, links may only be http(s) or
 * mailto (markdown-it's own check refuses javascript:, vbscript:, file: and data:), and an
 * image becomes a link to it, so the page never loads anything from elsewhere (the page's
 * Content-Security-Policy refuses that too).
 */
const markdown = new MarkdownIt({ html: false, linkify: false, breaks: false });
markdown.renderer.rules.image = (tokens, idx) => {
  const token = tokens[idx];
  const src = token?.attrGet('src') ?? '';
  const alt = token?.content || 'image';
  return `<a href="${/^https?:/i.test(src) ? escapeHtml(src) : '#'}" rel="noopener noreferrer nofollow">[image: ${escapeHtml(alt)}]</a>`;
};
const defaultLinkOpen = markdown.renderer.rules.link_open ?? ((tokens, idx, options, _env, self) => self.renderToken(tokens, idx, options));
markdown.renderer.rules.link_open = (tokens, idx, options, env, self) => {
  const href = tokens[idx]?.attrGet('href') ?? '';
  if (!/^(https?:|mailto:|#)/i.test(href)) tokens[idx]?.attrSet('href', '#');
  tokens[idx]?.attrSet('rel', 'noopener noreferrer nofollow');
  return defaultLinkOpen(tokens, idx, options, env, self);
};

/** Text as HTML text or a double-quoted attribute value. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * Renders the agent's Markdown as safe HTML (see above). A text whose tables could make over
 * {@link MAX_TABLE_CELLS} cells is shown as it is written, in a `<pre>`: its HTML stays
 * within a few times its size, whatever it holds.
 */
export function renderMarkdown(text: string): string {
  if (tableCells(text) > MAX_TABLE_CELLS) return `<pre>${escapeHtml(text)}</pre>`;
  return markdown.render(text);
}

function clock(at: number): string {
  return Number.isFinite(at) && Math.abs(at) < 8.64e15 ? new Date(at).toISOString().slice(11, 19) : '';
}

function seconds(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

function usd(value: number): string {
  return `$${value.toFixed(value < 1 ? 4 : 2)}`;
}

/**
 * What an entry may show: `full` for people GitHub said can read the (private) repository;
 * without it (a public repository's page, open to anyone with the link) a tool's output
 * and the instructions the agent took are shown by size only, as a status comment would.
 */
function entryBody(entry: FeedEntry, full: boolean): string | undefined {
  switch (entry.k) {
    case 'run':
      return `<h2>Run ${entry.run} · ${entry.command === 'start' ? 'start' : 'resume'}${entry.by ? ` · asked by @${escapeHtml(entry.by)}` : ''}</h2>`;
    case 'build':
      return `<span class="mark">build</span> <code>${escapeHtml(entry.text)}</code>`;
    case 'step':
      return `<span class="mark">setup ${entry.step}/${entry.of}</span> ${escapeHtml(entry.name)}`;
    case 'text':
      return `<div class="md">${renderMarkdown(entry.text)}</div>`;
    case 'tool':
      return `<span class="mark">tool</span> <b>${escapeHtml(entry.name)}</b>${entry.summary ? ` <code>${escapeHtml(entry.summary)}</code>` : ''}`;
    case 'result': {
      const size = `${entry.isError ? '✗ error' : '↳ result'}: ${entry.lines} line${entry.lines === 1 ? '' : 's'}, ${entry.chars} characters`;
      return full ? `<details><summary>${size}</summary><code>${escapeHtml(entry.firstLine)}</code></details>` : `<span class="dim">${size}</span>`;
    }
    case 'message':
      return full
        ? `<details><summary><span class="mark">instruction</span> ${escapeHtml(entry.text.split('\n', 1)[0]?.slice(0, 160) ?? '')}</summary><pre>${escapeHtml(entry.text)}</pre></details>`
        : `<span class="mark">instruction</span> <span class="dim">taken (${entry.text.length} characters; its words are on the issue)</span>`;
    case 'line':
      return `<code>${escapeHtml(entry.text)}</code>`;
    case 'blocked': {
      // Numbers and the way it asked are the worker's, but the feed is data: shown as text, never trusted as markup.
      const port = Number(entry.port);
      const count = Number(entry.count);
      const via = entry.via === 'connect' ? 'a CONNECT tunnel' : entry.via === 'http' ? 'a plain HTTP request' : entry.via === 'tls' ? 'a TLS name' : 'a connection';
      const times = Number.isInteger(count) && count > 1 ? ` (${count} times so far)` : '';
      const last = entry.last ? ' <span class="dim">Later refusals of this run are not listed here; its status comment counts them all.</span>' : '';
      return `<span class="mark">blocked</span> <code>${escapeHtml(String(entry.host))}${Number.isInteger(port) ? `:${port}` : ''}</code> refused: ${via} to a host the pod's egress list does not allow${times}.${last}`;
    }
    case 'end': {
      const parts: string[] = [entry.outcome];
      if (entry.exitCode !== undefined) parts.push(`exit code ${entry.exitCode}`);
      if (entry.reason && entry.reason !== 'exited') parts.push(entry.reason === 'timeout' ? 'timed out' : 'stopped');
      if (entry.durationMs !== undefined) parts.push(seconds(entry.durationMs));
      if (entry.costUsd !== undefined) parts.push(usd(entry.costUsd));
      if (entry.turns !== undefined) parts.push(`${entry.turns} turns`);
      const answer = typeof entry.answer === 'string' && entry.answer
        ? `<details open class="answer"><summary>${entry.answerIsError ? 'The agent\'s error' : 'Final answer'}</summary><div class="md">${renderMarkdown(entry.answer)}</div></details>`
        : '';
      return `<h3>${escapeHtml(parts.join(' · '))}</h3>${entry.note ? `<p>${escapeHtml(entry.note)}</p>` : ''}${answer}`;
    }
  }
}

/**
 * One entry of the transcript as an HTML fragment: what the page shows and what its live
 * tail appends. An entry this server cannot show (from a newer worker) says so instead.
 */
export function renderEntry(stored: StoredEntry, full = false): string {
  const { entry } = stored;
  let body: string | undefined;
  try {
    body = entryBody(entry, full);
  } catch {
    body = undefined;
  }
  if (typeof body !== 'string') body = '<span class="dim">(an entry this version of cldpd cannot show)</span>';
  const kind = entry.k === 'line' ? `line ${entry.stream}${entry.step !== undefined ? ' step' : ''}`
    : entry.k === 'end' ? `end ${entry.outcome}`
    : entry.k === 'build' && buildDetail(entry.text) ? 'build detail'
    : entry.k;
  return `<div class="e ${escapeHtml(String(kind))}" id="e${stored.n}" data-n="${stored.n}"><time>${clock(entry.at)}</time><div class="b">${body}</div></div>`;
}

/**
 * A build line only a person debugging the build wants: the builder's bookkeeping and
 * cldpd's own label steps. Hidden until "build details" is ticked, as `cldpd start` shows
 * one line per step.
 */
function buildDetail(text: string): boolean {
  if (/^Step \d+\/\d+ : /.test(text)) return text.includes('LABEL dev.cldpd.');
  return !/^(building image |image .* ready$)/.test(text);
}

/**
 * A note in place of entries the page does not show: trimmed from the feed (it keeps the
 * newest, bounded in entries and bytes), left out of a page that shows the newest only, or
 * published while a live tail was away.
 */
export function renderGap(from: number, to: number): string {
  const count = to - from + 1;
  return `<div class="e gap">… ${count} earlier entr${count === 1 ? 'y is' : 'ies are'} not shown here (the page keeps the newest); the whole log is on the worker host (<code>cldpd logs</code>).</div>`;
}

/** The header: pod, issue, host, phase, run, started, duration, cost and turns so far. */
export function renderHeader(head: FeedHead, now: number): string {
  const ended = head.endedAt !== undefined;
  const from = head.runStartedAt ?? head.startedAt;
  const facts: Array<[string, string]> = [
    ['pod', escapeHtml(head.pod)],
    ['issue', `<a href="${escapeHtml(head.issueUrl)}" rel="noopener noreferrer">${escapeHtml(`${head.owner}/${head.repo}#${head.number}`)}</a>`],
    ['host', escapeHtml(head.host)],
    ['phase', `<span class="phase ${escapeHtml(head.phase.replace(/\s/g, '-'))}">${escapeHtml(head.phase)}</span>`],
    ['run', String(head.run)],
  ];
  if (head.startedAt !== undefined) facts.push(['started', `${new Date(head.startedAt).toISOString().replace('T', ' ').slice(0, 19)} UTC`]);
  if (from !== undefined) {
    const took = (ended ? (head.endedAt as number) : now) - from;
    facts.push(['duration', `<span${ended ? '' : ` data-since="${from}"`}>${seconds(Math.max(0, took))}</span>`]);
  }
  if (head.costUsd !== undefined) facts.push(['cost', usd(head.costUsd)]);
  if (head.turns !== undefined) facts.push(['turns', String(head.turns)]);
  return `<dl>${facts.map(([k, v]) => `<div><dt>${k}</dt><dd data-fact="${k}">${v}</dd></div>`).join('')}</dl>`;
}

/**
 * How a person takes the session over, for those who may see it: `cldpd attach` on the
 * worker's host (Claude Code's own terminal on the conversation, once no run goes) and
 * `cldpd export` (the transcript, the branch and the commands to go on elsewhere).
 */
export function renderTakeover(head: Pick<FeedHead, 'sessionId' | 'host' | 'number'>): string {
  const id = escapeHtml(head.sessionId);
  return `<details class="takeover"><summary>Take over</summary><p>On host <code>${escapeHtml(head.host)}</code>: <code>cldpd attach ${id}</code> opens Claude Code's own terminal on this conversation (while no run goes; the queue waits until you leave).</p>`
    + `<p>To go on elsewhere: <code>cldpd export ${id} --out &lt;dir&gt;</code> on that host writes the conversation's transcript, the branch <code>cldpd/issue-${Number(head.number)}</code> and the commands to run (<code>--portable</code>: all in &lt;dir&gt;, to carry to your machine).</p></details>`;
}

/** Everything the full page needs. */
export interface SessionPageView {
  readonly head: FeedHead;
  readonly entries: readonly StoredEntry[];
  /** Where the page's script follows the live tail: the events URL, signed like the page's. */
  readonly eventsUrl: string;
  readonly now: number;
  /** Whether tool output and instructions are shown in words (see entryBody). */
  readonly full: boolean;
  /** At most this many of the newest entries are shown; default all. */
  readonly maxEntries?: number;
  /** At most this many bytes of the entries' HTML (the newest entry is always shown); default no bound. */
  readonly maxBytes?: number;
}

/**
 * The whole session page, server-rendered: the header and the newest entries of the
 * transcript so far (within `maxEntries` and `maxBytes`), after a note saying how many
 * earlier ones it leaves out. Its script (`/assets/session.js`) follows the live tail from
 * the last entry shown, so a person who opens it mid-run sees the history, then new entries as they come.
 */
export function renderSessionPage(view: SessionPageView): string {
  const { head, entries } = view;
  const last = entries.at(-1);
  const maxEntries = view.maxEntries ?? Number.POSITIVE_INFINITY;
  const maxBytes = view.maxBytes ?? Number.POSITIVE_INFINITY;
  const shown: string[] = [];
  let bytes = 0;
  let first: StoredEntry | undefined;
  for (let i = entries.length - 1; i >= 0 && shown.length < maxEntries; i--) {
    const stored = entries[i] as StoredEntry;
    const html = renderEntry(stored, view.full);
    const size = Buffer.byteLength(html);
    if (shown.length > 0 && bytes + size > maxBytes) break;
    shown.push(html);
    bytes += size;
    first = stored;
  }
  const parts: string[] = [];
  if (first && first.n > 1) parts.push(renderGap(1, first.n - 1));
  parts.push(...shown.reverse());
  if (entries.length === 0) parts.push('<div class="e empty">Nothing yet.</div>');
  const title = `${head.pod} · ${head.owner}/${head.repo}#${head.number}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escapeHtml(title)} · cldpd</title>
<link rel="stylesheet" href="/assets/session.css">
<script src="/assets/session.js" defer></script>
</head>
<body>
<input type="checkbox" id="details" hidden>
<header><h1>${escapeHtml(head.sessionId)}</h1><div id="head">${renderHeader(head, view.now)}</div><p class="bar"><span id="live" class="live"></span><label for="details">build details</label></p>${renderTakeover(head)}</header>
<main id="log" data-events="${escapeHtml(view.eventsUrl)}" data-after="${escapeHtml(last ? `${last.id}/${last.n}` : '0-0/0')}" data-n="${last?.n ?? 0}">
${parts.join('\n')}
</main>
</body>
</html>
`;
}

/** A small page for a refusal that is not a 404 (a private repository, sign-in needed or failed). */
export function renderNotice(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)} · cldpd</title><link rel="stylesheet" href="/assets/session.css"></head>
<body><header><h1>${escapeHtml(title)}</h1></header><main><p>${body}</p></main></body></html>
`;
}
