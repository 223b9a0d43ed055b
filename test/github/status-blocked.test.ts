import MarkdownIt from 'markdown-it';
import pino from 'pino';
import { describe, expect, it, vi } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { createRedactor } from '../../src/core/redact.js';
import { BLOCKED_SHOWN, MAX_COMMENT_CHARS, renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import { BlockedTally } from '../../src/queue/blocked-tally.js';
import type { RunCommand } from '../../src/queue/contract.js';

const marker = statusMarker({ issueKey: 'acme-web-1', seq: 3 });
const none = (t: string) => t;
const base: StatusView = { pod: 'web', sessionId: 'web-0011aabb', run: 1, command: 'start', phase: 'running', startedAt: 0, now: 100_000 };

/** GitHub-like rendering: autolinks on (www. and bare URLs link), HTML allowed as GitHub allows some. */
const github = new MarkdownIt({ html: true, linkify: true });

const blocked = (host: string, port = 443, count = 1): Extract<SessionEvent, { type: 'egress.blocked' }> => ({ type: 'egress.blocked', at: 1, host, port, via: 'connect', count });

function viewOf(events: ReadonlyArray<Extract<SessionEvent, { type: 'egress.blocked' }>>, limit = BLOCKED_SHOWN): StatusView['blocked'] {
  const tally = new BlockedTally();
  for (const e of events) tally.add(e);
  return tally.view(limit);
}

/** The comment's line of refused hosts. */
function blockedLine(body: string): string {
  const line = body.split('\n').find((l) => l.startsWith('**Blocked:**'));
  if (!line) throw new Error(`no blocked line in:\n${body}`);
  return line;
}

describe('the status comment\'s line of refused hosts', () => {
  it('names each host with its refusals, most refused first, a host\'s ports 80 and 443 together and other ports apart, and says how to allow one', () => {
    const view = viewOf([blocked('evil.example', 443, 1), blocked('evil.example', 443, 2), blocked('evil.example', 80, 1), blocked('pypi.org', 8080, 1)]);
    const line = blockedLine(renderStatusComment({ ...base, blocked: view }, marker, none));
    expect(line).toBe('**Blocked:** `evil.example` ×3, `pypi.org:8080` ×1 — to allow one, add it to the pod\'s pod.json `"egress"` (and to `.github/cldpd.yml` `egress` if that narrows this pod).');
  });

  it('is in the final edit too, and absent while nothing was refused', () => {
    const view = viewOf([blocked('evil.example')]);
    expect(renderStatusComment({ ...base, phase: 'finished', exitCode: 0, blocked: view }, marker, none)).toContain('**Blocked:** `evil.example` ×1');
    expect(renderStatusComment({ ...base, phase: 'failed', error: 'boom', blocked: view }, marker, none)).toContain('**Blocked:** `evil.example` ×1');
    expect(renderStatusComment(base, marker, none)).not.toContain('Blocked');
    expect(renderStatusComment({ ...base, blocked: viewOf([]) }, marker, none)).not.toContain('Blocked');
  });

  it('shows at most ten hosts and counts the rest: 5,000 hosts make a line of bounded size', () => {
    // Each host refused 1 to 7 times, its events counting up as the gateway's do.
    const events = Array.from({ length: 5000 }, (_, i) => Array.from({ length: 1 + (i % 7) }, (_, n) => blocked(`h${String(i).padStart(4, '0')}.evil.example`, 443, n + 1))).flat();
    const line = blockedLine(renderStatusComment({ ...base, blocked: viewOf(events) }, marker, none));
    expect(line.match(/`h\d{4}\.evil\.example` ×\d/g)).toHaveLength(BLOCKED_SHOWN);
    // 1,000 pairs are remembered: the 4,000 beyond them are counted, never named.
    expect(line).toContain(`and ${5000 - BLOCKED_SHOWN} more`);
    expect(line).toContain('×7'); // the most refused first
    expect(line.length).toBeLessThan(1000);
  });

  it.each([
    ['a Markdown link to javascript:', '[x](javascript:alert(1))'],
    ['a mention of a team', '@org/team'],
    ['a mention and a reference', '@octocat #12 acme/web#13'],
    ['backticks that would end the code span', 'a`b``c```d'],
    ['an autolink', 'www.evil.example/steal?x=1'],
    ['a URL', 'https://evil.example/x'],
    ['raw HTML', '<img src=https://evil.example/p.png><details open>'],
    ['an image', '![p](https://evil.example/p.png)'],
    ['a line break and a heading', 'ok\n# Heading\n- list'],
    ['terminal escapes and bidi overrides', '\u001b[31mred\u202eevil\u0000'],
    ['a lone surrogate', 'a\ud800b'],
  ])('a hostile name (%s) is shown as inline code that links, mentions and formats nothing', (_, host) => {
    const body = renderStatusComment({ ...base, blocked: viewOf([blocked(host, 443, 2), blocked('fine.example')]) }, marker, none);
    const line = blockedLine(body);
    const html = github.renderInline(line);
    expect(html).not.toMatch(/<a\b|<img\b|<details\b|<h1|<li/);
    // One code span per host, and the three of the hint: nothing else became code or left it.
    expect(html.match(/<code>/g)).toHaveLength(5);
    expect(line).toMatch(/^\*\*Blocked:\*\* `[\x21-\x5f\x61-\x7e]+` ×2, `fine\.example` ×1 — /);
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u202e\ud800]/);
    // GitHub links mentions and references only outside code.
    const outside = line.replace(/`[^`]*`/g, '');
    expect(outside).not.toMatch(/@\w|#\d|\]\(|<\w/);
  });

  it('a name of 10 KB is cut to a hundred characters', () => {
    const host = `${'a'.repeat(10_000)}.evil.example`;
    const line = blockedLine(renderStatusComment({ ...base, blocked: viewOf([blocked(host)]) }, marker, none));
    expect(line).toContain(`\`${'a'.repeat(99)}...\` ×1`);
    expect(line.length).toBeLessThan(400);
  });

  it('a name is redacted before it is cut: a secret spelled into a host name does not reach the comment', () => {
    const secret = 'sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789';
    const redact = createRedactor([secret]);
    const line = blockedLine(renderStatusComment({ ...base, blocked: viewOf([blocked(`${secret}.evil.example`)]) }, marker, redact));
    expect(line).not.toContain('abcdefghijklmnop');
  });

  it('the comment stays within GitHub\'s size with the line and the longest output', () => {
    const events = Array.from({ length: 50 }, (_, i) => blocked(`${i}${'x'.repeat(10_000)}`));
    const body = renderStatusComment({ ...base, blocked: viewOf(events), lastLines: ['y'.repeat(100_000)] }, marker, none);
    expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(blockedLine(body)).toContain('and 40 more');
  });
});

describe('the status reporter shows refusals as they come', () => {
  const command: RunCommand = {
    seq: 1, kind: 'start', issueKey: 'acme.web-7', pod: 'web', sessionId: 'web-0a1b2c3d', prompt: 'Fix it.', statusCommentId: 77, requestedBy: 'alice', enqueuedAt: 0,
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: 7, url: 'https://github.com/acme/web/issues/7' },
  };
  const bodies: string[] = [];
  const comments = {
    create: async () => ({ id: 1, url: 'u' }),
    update: async (_issue: unknown, _id: number, body: string) => {
      bodies.push(body);
    },
    list: async () => [],
  } as unknown as CommentsApi;

  it('a progress edit lists the hosts refused so far, the final edit all of them; a repeated event counts once', async () => {
    const run = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 5, redactorFor: async () => none, logger: pino({ level: 'silent' }) }).forRun(command);
    run.event({ type: 'container.started', at: 1, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    run.event(blocked('evil.example', 443, 1), {});
    run.event(blocked('evil.example', 443, 2), {});
    run.event(blocked('evil.example', 443, 2), {});
    await expect.poll(() => bodies.at(-1) ?? '', { timeout: 5000 }).toContain('**Blocked:** `evil.example` ×2 —');
    run.event(blocked('pypi.org', 8080, 1), {});
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at: 2, exitCode: 0, reason: 'exited', durationMs: 1 } });
    const final = bodies.at(-1) ?? '';
    expect(final).toContain('cldpd: finished');
    expect(final).toContain('**Blocked:** `evil.example` ×2, `pypi.org:8080` ×1');
  });

  it('a flood of refusals costs a count each: the hosts are sorted only when the comment is written', async () => {
    bodies.length = 0;
    const view = vi.spyOn(BlockedTally.prototype, 'view');
    try {
      const run = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 60_000, redactorFor: async () => none, logger: pino({ level: 'silent' }) }).forRun(command);
      run.event({ type: 'container.started', at: 1, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
      for (let i = 0; i < 100_000; i++) run.event(blocked(`h${i % 2000}.evil.example`, 443, Math.floor(i / 2000) + 1), {});
      await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at: 2, exitCode: 0, reason: 'exited', durationMs: 1 } });
      expect(view.mock.calls.length).toBeLessThanOrEqual(bodies.length);
      expect(bodies.at(-1)).toContain('×50');
      expect(bodies.at(-1)).toContain(`and ${2000 - BLOCKED_SHOWN} more`);
    } finally {
      view.mockRestore();
    }
  });
});
