import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { isWellFormed } from '../../src/core/text.js';
import { createRedactor } from '../../src/github/redact.js';
import { MAX_COMMENT_CHARS, parseStatusMarker, renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';
import { FakeGitHub } from '../fakes/fake-github.js';

const marker = statusMarker({ issueKey: 'acme-web-1', seq: 3 });
const none = (t: string) => t;
const base: StatusView = { pod: 'web', sessionId: 'web-0011aabb', run: 1, command: 'start', phase: 'queued', now: 100_000 };
const EMOJI = '\u{1F600}';
const PATTERN = `${EMOJI} a ${EMOJI}${EMOJI}\u00e9 `; // 11 code units, pairs at odd and even offsets
/** Emoji-heavy text of about `units` code units, its pairs shifted by `lead` from both ends. */
const emojiText = (lead: number, units: number): string => `${'x'.repeat(lead)}${PATTERN.repeat(Math.ceil(units / PATTERN.length))}${'y'.repeat(lead)}`;

describe('renderStatusComment', () => {
  it.each<[string, Partial<StatusView>, string[], string[]]>([
    ['queued with a position', { phase: 'queued', queuePosition: 2 }, ['cldpd: queued (pod `web`)', '2 ahead in the queue'], ['resume <']],
    ['queued next', { phase: 'queued', queuePosition: 0 }, ['next in the queue'], []],
    ['building', { phase: 'building', startedAt: 95_000, activity: 'Step 2/5 : RUN npm ci' }, ['building the image', '5s so far', 'Latest: Step 2/5 : RUN npm ci'], []],
    ['running', { phase: 'running', startedAt: 0, activity: 'Bash: npm test', lastLines: ['a', 'b'] }, ['running', '1m 40s so far', 'Latest: Bash: npm test', 'Last 2 lines of output'], ['resume <']],
    [
      'finished',
      { phase: 'finished', exitCode: 0, durationMs: 3_723_000, costUsd: 1.234, turns: 12, finalAnswer: 'All tests pass.' },
      ['cldpd: finished', 'exit code 0', 'took 1h 2m', '12 turns', '$1.23', '<details open><summary>Final answer</summary>', 'All tests pass.', '`/cldpd resume <what to do next>`'],
      [],
    ],
    ['finished non-zero is failed', { phase: 'finished', exitCode: 2, lastLines: ['boom'] }, ['cldpd: failed', 'exit code 2', 'Last 1 lines of output', 'boom'], []],
    ['timeout', { phase: 'finished', exitCode: 143, reason: 'timeout' }, ['stopped by the timeout'], []],
    ['error', { phase: 'failed', error: 'The build of x failed: step 3' }, ['cldpd: failed', '**Error:** The build of x failed: step 3'], []],
    ['cancelled', { phase: 'cancelled' }, ['cldpd: cancelled'], []],
    ['a resume', { command: 'resume', run: 3, phase: 'running', startedAt: 0 }, ['pod `web`, resume #2'], []],
  ])('%s', (_, patch, includes, excludes) => {
    const body = renderStatusComment({ ...base, ...patch }, marker, none);
    expect(body.startsWith(marker)).toBe(true);
    for (const text of includes) expect(body).toContain(text);
    for (const text of excludes) expect(body).not.toContain(text);
  });

  it('stays under the limit with huge output, keeping its end', () => {
    const lines = Array.from({ length: 2000 }, (_, i) => `${i} ${'x'.repeat(200)}`);
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 1, lastLines: lines }, marker, none);
    expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(body).toContain(`1999 ${'x'.repeat(200)}`);
    expect(body).toContain('earlier characters cut');
  });

  it('stays under the limit with one 1 MB line', () => {
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: 'y'.repeat(1024 * 1024) }, marker, none);
    expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
  });

  it('redacts secrets from output, answers, activity and errors', () => {
    const redact = createRedactor(['hunter2-secret-value']);
    const body = renderStatusComment(
      { ...base, phase: 'failed', error: 'auth failed for hunter2-secret-value', finalAnswer: 'token ghp_abcdefghijklmnopqrstuvwxyz0123456789 and hunter2-secret-value' },
      marker,
      redact,
    );
    expect(body).not.toContain('hunter2-secret-value');
    expect(body).not.toContain('ghp_abcdefghijklmnopqrstuvwxyz0123456789');
    expect(body).toContain('[redacted]');
  });

  it('fences output that itself contains code fences', () => {
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: 'before\n```\ninjected\n```\nafter' }, marker, none);
    expect(body).toContain('````\nbefore');
  });

  it('round-trips its marker', () => {
    expect(parseStatusMarker(renderStatusComment(base, marker, none))).toEqual({ issueKey: 'acme-web-1', seq: 3 });
    expect(parseStatusMarker('hello')).toBeUndefined();
  });

  /** The status comment while the agent runs one Bash command, built the way the status reporter builds it. */
  const whileRunning = (command: string, redact: (text: string) => string): string => {
    const [tool] = parseStreamJsonLine(JSON.stringify({ type: 'assistant', message: { content: [{ type: 'tool_use', name: 'Bash', input: { command } }] } }));
    if (tool?.kind !== 'tool') throw new Error('not a tool call');
    return renderStatusComment({ ...base, phase: 'running', startedAt: 0, activity: `${tool.name}: ${tool.summary}` }, marker, redact);
  };

  it('secrets in part: no 8 characters of a 48-character secret at the end of a long Bash command reach the comment', () => {
    const secret = 'Vq9zR2mXk7Lp4Wt8Yb3Nc6Hd1Jf5Gs0Ae2Uo9Ii4Ey7Tr3Ql';
    expect(secret).toHaveLength(48);
    const redact = createRedactor([secret]);
    const filler = 'cd /repo && npm ci && npm test -- --reporter=dot ; curl -s https://example.test/hook?t= '.repeat(8);
    // The command ends with the secret; every length up to 548 puts it across each place a clip could fall.
    for (let length = secret.length + 1; length <= 500 + secret.length; length++) {
      const body = whileRunning(`${filler.slice(0, length - secret.length)}${secret}`, redact);
      for (let at = 0; at + 8 <= secret.length; at++) expect(body, `command of ${length} characters`).not.toContain(secret.slice(at, at + 8));
    }
  });

  it('secrets in part: a secret holding a newline, a tab and a quote is hidden in the latest tool call', () => {
    const secret = 'first-line\n\t"second" line-2';
    const body = whileRunning(`echo start && printf '%s' '${secret}' > /tmp/key && echo done`, createRedactor([secret]));
    expect(body).toContain('Latest: Bash: echo start && printf \'%s\' \'[redacted]\' > /tmp/key && echo done');
    for (const piece of ['first-line', 'second', 'line-2']) expect(body).not.toContain(piece);
  });

  it('unicode: emoji-heavy activity, output, answer and error are cut between characters at every offset', () => {
    for (let lead = 0; lead < PATTERN.length; lead++) {
      const views: Array<Partial<StatusView>> = [
        { phase: 'running', startedAt: 0, activity: emojiText(lead, 900), lastLines: Array.from({ length: 20 }, (_, i) => emojiText(lead + i, 4000)) },
        { phase: 'finished', exitCode: 0, finalAnswer: emojiText(lead, 70_000) },
        { phase: 'finished', exitCode: 1, lastLines: [emojiText(lead, 61_000)] },
        { phase: 'failed', error: emojiText(lead, 3000), note: emojiText(lead, 3000) },
        { pod: emojiText(lead, 70_000), phase: 'finished', exitCode: 0, finalAnswer: emojiText(lead, 100) },
      ];
      for (const view of views) {
        const body = renderStatusComment({ ...base, ...view }, marker, none);
        expect(isWellFormed(body), `lead ${lead}, ${view.phase}`).toBe(true);
        expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
      }
    }
  });

  it('unicode: a lone surrogate the agent sent becomes U+FFFD, not a comment GitHub refuses', () => {
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: 'half \uD83D of an emoji' }, marker, none);
    expect(isWellFormed(body)).toBe(true);
    expect(body).toContain('half \uFFFD of an emoji');
  });
});

describe('unicode: the fake GitHub and the status comment', () => {
  const github = new FakeGitHub();
  beforeAll(async () => {
    await github.start();
  });
  afterAll(async () => {
    await github.close();
  });

  const send = async (method: 'POST' | 'PATCH', path: string, body: string): Promise<number> => {
    const response = await fetch(`http://${github.host}/api/v3${path}`, { method, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ body }) });
    return response.status;
  };

  it('unicode: the fake refuses half an emoji with 422, as GitHub does, and records it', async () => {
    const before = github.rejected.length;
    expect(await send('POST', '/repos/acme/web/issues/1/comments', 'half \uD83D')).toBe(422);
    expect(await send('PATCH', '/repos/acme/web/issues/comments/1', '\uDE00 half')).toBe(422);
    expect(github.rejected.slice(before).map((r) => [r.method, r.status])).toEqual([['POST', 422], ['PATCH', 422]]);
    expect(github.commentsOn('acme/web#1')).toEqual([]);
  });

  it('unicode: every status comment cut inside emoji is taken by the fake', async () => {
    const before = github.rejected.length;
    expect(await send('POST', '/repos/acme/web/issues/2/comments', 'queued')).toBe(201);
    const id = github.commentsOn('acme/web#2')[0]?.id;
    for (let lead = 0; lead < PATTERN.length; lead++) {
      const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: emojiText(lead, 70_000) }, marker, none);
      expect(await send('PATCH', `/repos/acme/web/issues/comments/${id}`, body)).toBe(200);
    }
    expect(github.rejected.slice(before)).toEqual([]);
  });
});
