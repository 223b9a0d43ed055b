import { describe, expect, it } from 'vitest';
import type { FeedEntry, FeedHead, StoredEntry } from '../../src/queue/session-feed.js';
import { renderEntry, renderHeader, renderMarkdown, renderSessionPage, renderTakeover } from '../../src/web/session-page.js';

const head: FeedHead = {
  sessionId: 'hello-0a1b2c3d', pod: 'hello', owner: 'acme', repo: 'web', number: 7, issueUrl: 'https://github.com/acme/web/issues/7',
  installationId: 1, host: 'h1', phase: 'running', run: 1, startedAt: 1_000, runStartedAt: 1_000, total: 3,
};
const stored = (n: number, entry: FeedEntry): StoredEntry => ({ id: `${1000 + n}-0`, n, entry });

describe('the session page', () => {
  it.each([
    ['raw HTML is shown as text', '<script>alert(1)</script><img src=x onerror=alert(2)>', /&lt;script&gt;/, /<script|<img/],
    ['a javascript: link is not a link', '[click](javascript:alert(1))', /click/, /href="javascript/],
    ['an image is a link, never loaded', '![logo](https://evil.example/x.png)', /\[image: logo\]/, /<img/],
    ['a data: link is not a link', '[x](data:text/html,<script>alert(1)</script>)', /x/, /href="data:/],
    ['links get rel=noopener noreferrer', '[docs](https://example.com)', /rel="noopener noreferrer nofollow"/, /target=/],
    ['Markdown renders', '**bold** and `code`', /<strong>bold<\/strong> and <code>code<\/code>/, /\*\*/],
  ])('%s', (_name, markdown, present, absent) => {
    const html = renderMarkdown(markdown);
    expect(html).toMatch(present);
    expect(html).not.toMatch(absent);
  });

  it.each<[string, FeedEntry, RegExp]>([
    ['a tool call with its argument', { k: 'tool', at: 0, name: 'Bash', summary: 'npm test <x>' }, /<b>Bash<\/b> <code>npm test &#60;x&#62;<\/code>/],
    ['a tool result, collapsed', { k: 'result', at: 0, isError: false, lines: 42, chars: 900, firstLine: 'ok' }, /<details><summary>↳ result: 42 lines, 900 characters<\/summary><code>ok<\/code><\/details>/],
    ['an output line, escaped', { k: 'line', at: 0, stream: 'stderr', text: '<b>x</b>' }, /class="e line stderr".*<code>&#60;b&#62;x&#60;\/b&#62;<\/code>/],
    ['a setup step', { k: 'step', at: 0, step: 1, of: 2, name: 'npm ci' }, /setup 1\/2<\/span> npm ci/],
    ['a run ending', { k: 'end', at: 0, outcome: 'finished', exitCode: 0, durationMs: 65_000, costUsd: 0.0123, turns: 3 }, /finished · exit code 0 · 1 min 5 s · \$0\.0123 · 3 turns/],
    ['a failure with its reason', { k: 'end', at: 0, outcome: 'failed', note: 'BuildFailed: <oops>' }, /<p>BuildFailed: &#60;oops&#62;<\/p>/],
  ])('renders %s', (_name, entry, expected) => {
    expect(renderEntry(stored(1, entry), true)).toMatch(expected);
  });

  it('without `full` (a page open to anyone with the link), a tool result and an instruction show their size only', () => {
    expect(renderEntry(stored(1, { k: 'result', at: 0, isError: false, lines: 2, chars: 30, firstLine: 'TOKEN=abc' }))).not.toContain('TOKEN=abc');
    expect(renderEntry(stored(1, { k: 'message', at: 0, text: 'the template says' }))).toMatch(/taken \(17 characters; its words are on the issue\)/);
  });

  it('an entry this version cannot show (from a newer worker) says so, and the rest of the page renders', () => {
    const odd = { id: '1-0', n: 1, entry: { k: 'hologram', at: Number.NaN } } as unknown as StoredEntry;
    expect(renderEntry(odd)).toContain('cannot show');
  });

  it('the header says what, where and how far; a running duration counts on in the browser', () => {
    const html = renderHeader({ ...head, costUsd: 0.5, turns: 4 }, 61_000);
    for (const text of ['hello', 'acme/web#7', 'h1', 'running', '1 min 0 s', '$0.5000', '4']) expect(html).toContain(text);
    expect(html).toContain('data-since="1000"');
    expect(renderHeader({ ...head, endedAt: 31_000 }, 99_000)).not.toContain('data-since');
  });

  it('the page starts its live tail after the last entry it shows, and says when earlier entries were trimmed', () => {
    const html = renderSessionPage({ head, entries: [stored(5, { k: 'line', at: 0, stream: 'stdout', text: 'five' }), stored(6, { k: 'line', at: 0, stream: 'stdout', text: 'six' })], eventsUrl: '/sessions/hello-0a1b2c3d/events?exp=1&sig=a', now: 2_000, full: true });
    expect(html).toContain('data-after="1006-0/6"');
    expect(html).toMatch(/4 earlier entries are not shown here/);
    expect(html).toContain('<script src="/assets/session.js" defer></script>');
    expect(html).not.toMatch(/<script>/);
  });
  it('page answer: the end of a run shows the final answer as safe Markdown, or the agent\'s error', () => {
    const html = renderEntry(stored(9, { k: 'end', at: 0, outcome: 'finished', exitCode: 0, answer: 'All **done**. <img src=x onerror=alert(1)> ![t](https://evil.example/t.png) [x](javascript:alert(1))' }));
    expect(html).toMatch(/finished · exit code 0<\/h3><details open class="answer"><summary>Final answer<\/summary><div class="md"><p>All <strong>done<\/strong>\. &lt;img/);
    expect(html).not.toMatch(/<img|<script|href="javascript/);
    expect(html).toContain('[image: t]');
    expect(renderEntry(stored(9, { k: 'end', at: 0, outcome: 'finished', answer: 'It broke.', answerIsError: true }))).toContain('<summary>The agent\'s error</summary>');
    expect(renderEntry(stored(9, { k: 'end', at: 0, outcome: 'finished' }))).not.toContain('answer');
  });

  it('feed bytes: the page shows the newest entries within its bytes, and says how many earlier ones it leaves out and where all of them are', () => {
    const entries = Array.from({ length: 300 }, (_, i) => stored(i + 101, { k: 'line', at: 0, stream: 'stdout', text: `${i + 101} ${'<'.repeat(2000)}` }));
    const html = renderSessionPage({ head, entries, eventsUrl: '/e', now: 0, full: true, maxBytes: 100_000 });
    const shown = [...html.matchAll(/data-n="(\d+)"><time>/g)].map((m) => Number(m[1]));
    expect(shown.at(-1)).toBe(400);
    expect(shown).toEqual(Array.from({ length: shown.length }, (_, i) => 401 - shown.length + i));
    const body = html.slice(html.indexOf('<main'));
    expect(Buffer.byteLength(body)).toBeLessThanOrEqual(100_000 + 1000);
    expect(Buffer.byteLength(body)).toBeGreaterThan(90_000);
    expect(html).toContain(`… ${(shown[0] as number) - 1} earlier entries are not shown here (the page keeps the newest); the whole log is on the worker host (<code>cldpd logs</code>)`);
    // The newest entry is shown, however large.
    expect(renderSessionPage({ head, entries, eventsUrl: '/e', now: 0, full: true, maxBytes: 10 })).toContain('data-n="400"');
  });
});

describe('a text whose tables would fill in cells', () => {
  // A wide header row and many one-character rows: markdown-it fills in every missing cell.
  const table = (columns: number, rows: number) => `|${'a|'.repeat(columns)}\n|${'-|'.repeat(columns)}\n${'x\n'.repeat(rows)}\n`;
  let text = '';
  while (text.length + table(100, 660).length <= 20_000) text += table(100, 660);

  it('cell fill: renders within a few times its own size, as plain text', () => {
    const html = renderMarkdown(text);
    expect(Buffer.byteLength(html)).toBeLessThan(10 * text.length);
    expect(html).toContain('x\nx\n');
  });

  it('cell fill: a page with one such entry stays within its bound', () => {
    const entry: StoredEntry = { n: 1, id: '1-0', entry: { k: 'text', at: 0, text } };
    const page = renderEntry(entry);
    expect(Buffer.byteLength(page)).toBeLessThan(10 * text.length);
  });

  it('an ordinary table still renders as a table', () => {
    const html = renderMarkdown('| a | b |\n|---|---|\n| 1 | 2 |\n| 3 |\n');
    expect(html).toContain('<table>');
    expect((html.match(/<td>/g) ?? []).length).toBe(4);
  });
});

describe('tables in a quote', () => {
  it('cell fill: a quoted table that would fill in cells renders as plain text too', () => {
    const table = `> |${'a|'.repeat(100)}\n> |${'-|'.repeat(100)}\n${'> x\n'.repeat(400)}\n`;
    const text = table.repeat(Math.floor(20_000 / table.length));
    expect(Buffer.byteLength(renderMarkdown(text))).toBeLessThan(10 * text.length);
  });

  it('attach: the page shows both commands (attach on its host, export), with the host to attach on; what the worker published is escaped', () => {
    const html = renderSessionPage({ head, entries: [], eventsUrl: '/e', now: 0, full: false });
    expect(html).toContain('On host <code>h1</code>: <code>cldpd attach hello-0a1b2c3d</code>');
    expect(html).toContain('<code>cldpd export hello-0a1b2c3d --out &lt;dir&gt;</code>');
    expect(html).toContain('<code>cldpd/issue-7</code>');
    const odd = renderTakeover({ sessionId: 'x"><script>', host: '<b>h</b>', number: 7 });
    expect(odd).not.toMatch(/<script>|<b>/);
  });
});
