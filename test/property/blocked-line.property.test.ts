import fc from 'fast-check';
import { marked } from 'marked';
import { describe, expect, it } from 'vitest';
import { renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';
import { BlockedTally } from '../../src/queue/blocked-tally.js';

/** Pieces a hostile host name is made of: what Markdown, GitHub and terminals read as structure. */
const piece = fc.oneof(
  fc.constantFrom('@octocat', '@acme/core', '#12', 'acme/web#3', 'GH-7', '![x](http://e.test/p.png)', '[x](javascript:alert(1))', '<img src=x>', '<details>', '</details>',
    '<!--', '-->', 'www.evil.example', 'https://evil.example/x', '`', '``', '\\`', '\\', '*', '_', '|', '\n', '\r', '\u001b[31m', '\u202e', '\u200b', '\ud800', 'évil', ' ', ':'),
  fc.string({ maxLength: 8 }),
);
const hostile = fc.array(piece, { minLength: 1, maxLength: 12 }).map((p) => p.join(''));

const base: StatusView = { pod: 'web', sessionId: 'web-0011aabb', run: 1, command: 'start', phase: 'running', startedAt: 0, now: 1 };

describe('property: the line of refused hosts as GitHub renders it', () => {
  it('whatever the names, each is one code span, and outside code nothing links, mentions, loads or is HTML', () => {
    fc.assert(fc.property(fc.array(fc.tuple(hostile, fc.integer({ min: 1, max: 65535 }), fc.integer({ min: 1, max: 5 })), { minLength: 1, maxLength: 14 }), (refusals) => {
      const tally = new BlockedTally();
      for (const [host, port, times] of refusals) for (let n = 1; n <= times; n++) tally.add({ type: 'egress.blocked', at: 0, host, port, via: 'connect', count: n });
      const body = renderStatusComment({ ...base, blocked: tally.view(10) }, statusMarker({ issueKey: 'k', seq: 1 }), (t) => t);
      const line = body.split('\n').find((l) => l.startsWith('**Blocked:**')) as string;
      expect(line).toBeDefined();
      const shownHosts = Math.min(10, tally.view(10).hosts.length);
      const html = marked.parseInline(line, { gfm: true, async: false }) as string;
      // The host spans and the hint's three: no name ended its span or opened another.
      expect(html.match(/<code>/g)).toHaveLength(shownHosts + 3);
      const prose = html.replace(/<code>[\s\S]*?<\/code>/g, '');
      expect(prose).not.toMatch(/<(?!\/?(strong|em)>)/);
      const text = prose.replace(/<[^>]*>/g, '').replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n))).replace(/&quot;/g, '"').replace(/&amp;/g, '&');
      expect(text).not.toMatch(/(^|[^\w])@[A-Za-z0-9]|#\d|\bGH-\d|https?:|www\./i);
    }), { numRuns: 1000 });
  });
});
