import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/github/redact.js';
import { MAX_COMMENT_CHARS, parseStatusMarker, renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';

const marker = statusMarker({ issueKey: 'acme-web-1', seq: 3 });
const none = (t: string) => t;
const base: StatusView = { pod: 'web', sessionId: 'web-0011aabb', run: 1, command: 'start', phase: 'queued', now: 100_000 };

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
});

describe('createRedactor', () => {
  it.each([
    [['abcdef'], 'x abcdef y abcdef', 'x [redacted] y [redacted]'],
    [['abc'], 'abc stays: too short to hunt', 'abc stays: too short to hunt'],
    [['secret-long', 'secret'], 'secret-long secret', '[redacted] [redacted]'],
    [[], 'key sk-ant-api03-abcdefghijklmnopqrstuvwxyz', 'key [redacted]'],
    [[], 'AKIAABCDEFGHIJKLMNOP', '[redacted]'],
    [[], '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----', '[redacted]'],
  ])('%j in %j', (secrets, text, expected) => {
    expect(createRedactor(secrets)(text)).toBe(expected);
  });
});
