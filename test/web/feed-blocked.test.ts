import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import type { RunCommand } from '../../src/queue/contract.js';
import type { FeedEntry, StoredEntry } from '../../src/queue/session-feed.js';
import { FeedWriter, MAX_BLOCKED_ENTRIES, feedEntries, redactEntry } from '../../src/web/feed-writer.js';
import { escapeHtml, renderEntry } from '../../src/web/session-page.js';

const command: RunCommand = {
  seq: 1, kind: 'start', issueKey: 'acme-web-1', pod: 'web', sessionId: 'web-00aa00aa', prompt: 'p', statusCommentId: 77, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 5, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
};
const blocked = (host: string, count = 1, port = 443, via: 'connect' | 'http' | 'tls' = 'connect'): SessionEvent => ({ type: 'egress.blocked', at: 1, host, port, via, count });
const stored = (entry: FeedEntry, n = 1): StoredEntry => ({ id: `${n}-0`, n, entry });

class MemoryFeed {
  entries: FeedEntry[] = [];
  async publish(_session: string, entries: readonly FeedEntry[]) {
    this.entries.push(...entries);
    return this.entries.length;
  }
}

describe('a refusal of the egress gateway on the live page', () => {
  it('each refusal is an entry with the host, its port, how it was asked and the count so far', () => {
    expect(feedEntries(blocked('evil.example', 3, 8080, 'http'), command)).toEqual([{ k: 'blocked', at: 1, host: 'evil.example', port: 8080, via: 'http', count: 3 }]);
  });

  it('shows as a line of text saying what was refused and why, never as JSON', () => {
    const html = renderEntry(stored({ k: 'blocked', at: 0, host: 'evil.example', port: 443, via: 'connect', count: 3 }));
    expect(html).toContain('class="e blocked"');
    expect(html).toContain('<span class="mark">blocked</span> <code>evil.example:443</code> refused: a CONNECT tunnel to a host the pod\'s egress list does not allow (3 times so far).');
    expect(html).not.toMatch(/[{}"]k"|"host"/);
    expect(renderEntry(stored({ k: 'blocked', at: 0, host: 'a.example', port: 80, via: 'tls', count: 1 }))).toContain('a TLS name to a host');
  });

  it.each([
    ['markup', '<script>alert(1)</script><img src=x onerror=alert(1)>'],
    ['a quote that would end an attribute', '" onmouseover="alert(1)'],
    ['a Markdown link', '[x](javascript:alert(1))'],
  ])('a hostile host name (%s) is escaped as text', (_, host) => {
    const html = renderEntry(stored({ k: 'blocked', at: 0, host, port: 443, via: 'connect', count: 1 }));
    expect(html).not.toMatch(/<script|<img|onmouseover="|href=/);
    expect(html).toContain(`<code>${escapeHtml(host)}:443</code>`);
  });

  it('a feed entry whose fields are not what the worker writes (from a newer or a tampered feed) still shows as text', () => {
    const odd = { k: 'blocked', at: 0, host: { toString: () => '<b>x</b>' }, port: '<i>', via: '<u>', count: 'many' } as unknown as FeedEntry;
    const html = renderEntry(stored(odd));
    expect(html).not.toMatch(/<b>|<i>|<u>/);
    expect(html).toContain('a connection to a host');
  });

  it('the name is redacted, stripped of escapes and cut to 300 characters before it is published', () => {
    const entry = redactEntry({ k: 'blocked', at: 1, host: `\u001b[31mhunter2-secret.${'a'.repeat(10_000)}.evil.example`, port: 443, via: 'connect', count: 1 }, (t) => t.replaceAll('hunter2-secret', '[redacted]'));
    expect(entry.k === 'blocked' && entry.host.startsWith('[redacted].aaa')).toBe(true);
    expect(JSON.stringify(entry)).not.toContain('\u001b');
    expect(entry.k === 'blocked' && entry.host.length).toBeLessThan(340);
  });

  it(`a run lists at most ${MAX_BLOCKED_ENTRIES} refusals, the last marked, so a container that knocks without end keeps the rest of its run on the page`, async () => {
    const feed = new MemoryFeed();
    const run = new FeedWriter({ store: feed, redactorFor: async () => (t) => t, hostId: 'h1', logger: pino({ level: 'silent' }), flushMs: 5 }).forRun(command);
    run.event({ type: 'container.started', at: 1, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    for (let i = 1; i <= 5000; i++) run.event(blocked(`h${i}.evil.example`), {});
    run.event({ type: 'output', at: 2, stream: 'stdout', line: 'still working' }, {});
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at: 3, exitCode: 0, reason: 'exited', durationMs: 2 } });
    const refusals = feed.entries.filter((e) => e.k === 'blocked');
    expect(refusals).toHaveLength(MAX_BLOCKED_ENTRIES);
    expect(refusals.at(-1)).toMatchObject({ host: `h${MAX_BLOCKED_ENTRIES}.evil.example`, last: true });
    expect(refusals.filter((e) => e.k === 'blocked' && e.last)).toHaveLength(1);
    expect(feed.entries.some((e) => e.k === 'line' && e.text === 'still working')).toBe(true);
    expect(renderEntry(stored(refusals.at(-1) as FeedEntry))).toContain('Later refusals of this run are not listed here');
  });
});
