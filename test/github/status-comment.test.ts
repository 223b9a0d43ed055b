import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { isWellFormed } from '../../src/core/text.js';
import { createRedactor } from '../../src/core/redact.js';
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
    ['links: a running run links its live page', { phase: 'running', startedAt: 0, liveUrl: 'https://c.example/sessions/web-0011aabb?exp=1&sig=a_b-c' }, ['**[Follow it live](https://c.example/sessions/web-0011aabb?exp=1&sig=a_b-c)**'], ['session page']],
    ['links: a finished run links the transcript', { phase: 'finished', exitCode: 0, liveUrl: 'https://c.example/sessions/web-0011aabb?exp=1&sig=x' }, ["The session's transcript: [session page](https://c.example/sessions/web-0011aabb?exp=1&sig=x)."], ['Follow it live']],
    ['limits: a run stopped at the turn limit says so, and how to go on', { phase: 'finished', exitCode: 1, turns: 5, agentError: true, limit: 'turns' }, ['cldpd: stopped at its limit', "the pod's turn limit (`maxTurns` in its pod.json) after 5 turns", '`/cldpd resume <what to do next>`'], ['failed', 'the agent reported an error']],
    ['limits: a run stopped at the spending limit says so', { phase: 'finished', exitCode: 1, costUsd: 0.5234, agentError: true, limit: 'budget' }, ['cldpd: stopped at its limit', "the pod's spending limit for a run (`maxBudgetUsd` in its pod.json), having spent $0.52"], ['failed']],
    ['provider: a run waiting for the usage limit says until when, and is not a failure', { phase: 'waiting', waitingFor: { resumeAt: Date.UTC(2026, 10, 23, 17), kind: 'usage', wait: 1, of: 5 } }, ["cldpd: waiting for the model provider's limit", 'The model provider refused for its usage limit; this run continues by itself at 2026-11-23 17:00 UTC (wait 1 of 5), not counted as a failure.', 'To stop it, comment `/cldpd stop`.'], ['failed', 'resume <']],
    ['provider: a run waiting because another run hit the limit says so', { phase: 'waiting', waitingFor: { resumeAt: Date.UTC(2026, 10, 23, 17), kind: 'usage', because: 'shared' } }, ["Another run using the same model credential hit the provider's limit; this run continues by itself at 2026-11-23 17:00 UTC, not counted"], ['wait 1']],
    ['links: a queued run has no page yet', { phase: 'queued', liveUrl: 'https://c.example/sessions/web-0011aabb?exp=1&sig=x' }, [], ['c.example']],
    ['building', { phase: 'building', startedAt: 95_000, activity: 'Step 2/5 : RUN npm ci' }, ['building the image', '5s so far', 'Latest: Step 2/5 : RUN npm ci'], []],
    ['running', { phase: 'running', startedAt: 0, activity: 'Bash: npm test', lastLines: ['a', 'b'] }, ['running', '1m 40s so far', 'Latest: Bash: npm test', 'Last 2 lines of output'], ['resume <']],
    [
      'finished',
      { phase: 'finished', exitCode: 0, durationMs: 3_723_000, costUsd: 1.234, turns: 12, finalAnswer: 'All tests pass.' },
      ['cldpd: finished', 'exit code 0', 'took 1h 2m', '12 turns', '$1.23', '<details open><summary>Final answer</summary>', 'All tests pass.', '`/cldpd resume <what to do next>`'],
      [],
    ],
    ['tokens: an agent that reports tokens shows them, cached ones apart', { phase: 'finished', exitCode: 0, tokens: { input: 12345, output: 456, cachedInput: 3000 }, finalAnswer: 'Done.' }, ['12,345 tokens in (3,000 cached), 456 out', 'Done.'], ['$']],
    ['tokens: a later run whose tokens are the conversation\'s says so', { phase: 'finished', run: 3, exitCode: 0, tokens: { input: 4700, output: 90, cachedInput: 0, conversation: true } }, ['4,700 tokens in, 90 out in the whole conversation'], []],
    ['tokens: with a cost too, both', { phase: 'finished', exitCode: 0, costUsd: 0.02, tokens: { input: 10, output: 2, cachedInput: 0 } }, ['$0.02', '10 tokens in, 2 out'], ['cached']],
    ['finished non-zero is failed', { phase: 'finished', exitCode: 2, lastLines: ['boom'] }, ['cldpd: failed', 'exit code 2', 'Last line of output', 'boom', '/cldpd resume <what to do next>'], ['1 lines']],
    ['states: a timeout is "timed out", not failed', { phase: 'finished', exitCode: 143, reason: 'timeout' }, ['cldpd: timed out', 'stopped by the timeout', '/cldpd resume <what'], ['failed', 'exit code 143', '\u274C']],
    ['states: a stop is "stopped", not failed', { phase: 'finished', exitCode: 143, reason: 'stopped' }, ['cldpd: stopped', 'stopped on request', '/cldpd resume <what'], ['failed', 'exit code 143', '\u274C']],
    ['states: a build failure offers no resume, but starting again', { phase: 'failed', error: 'The build of x failed: step 3', lastLines: ['Step 3/5 : RUN false', 'returned a non-zero code: 1'], linesFrom: 'build' }, ['cldpd: failed', '**Error:** The build of x failed: step 3', 'Last 2 lines of the build', 'Nothing ran. To try again', 'remove the label `cldpd:web` and add it again'], ['/cldpd resume']],
    ['states: a cancelled start is no error and offers starting again', { phase: 'cancelled', note: 'Cancelled by `/cldpd stop` before it started.' }, ['cldpd: cancelled', 'Cancelled by `/cldpd stop` before it started.', 'To start again, remove the label'], ['**Error:**', '/cldpd resume']],
    ['states: running says how to stop it, and where the whole log is', { phase: 'running', startedAt: 0, host: 'gpu-1' }, ['To stop it, comment `/cldpd stop`.', 'host `gpu-1`', '`cldpd logs web-0011aabb` on host `gpu-1`'], []],
    ['states: who asked, without notifying them', { phase: 'queued', requestedBy: 'octocat' }, ['requested by @&#8203;octocat'], ['by @octocat']],
    ['states: an agent error is not a final answer', { phase: 'finished', exitCode: 1, finalAnswer: 'API Error: 529 overloaded', agentError: true }, ["<summary>The agent's error</summary>", 'the agent reported an error'], ['Final answer']],
    ['a resume', { command: 'resume', run: 3, phase: 'running', startedAt: 0 }, ['pod `web`, resume 2'], ['#2']],
    [
      'work: the branches pushed and their pull requests, linked',
      { phase: 'finished', exitCode: 0, work: { branches: [{ name: 'cldpd/issue-1', url: 'https://github.com/acme/web/tree/cldpd/issue-1' }, { name: 'wip', url: 'https://github.com/acme/web/tree/wip' }], pulls: [{ number: 12, title: 'Fix @octocat [bug]', url: 'https://github.com/acme/web/pull/12', state: 'open', branch: 'cldpd/issue-1' }] } },
      ['Pushed [cldpd/issue-1](https://github.com/acme/web/tree/cldpd/issue-1) → pull request [Fix @&#8203;octocat \\[bug\\] (#&#8203;12)](https://github.com/acme/web/pull/12)', 'Pushed [wip](https://github.com/acme/web/tree/wip) (no pull request)'],
      ['No changes pushed', '@octocat'],
    ],
    ['work: a branch whose name holds parentheses keeps its link whole', { phase: 'finished', exitCode: 0, work: { branches: [{ name: 'cldpd/issue-1-(x)', url: 'https://github.com/acme/web/tree/cldpd/issue-1-(x)' }], pulls: [] } }, ['(https://github.com/acme/web/tree/cldpd/issue-1-%28x%29)'], ['issue-1-(x))']],
    ['work: a run with a token that pushed nothing says so', { phase: 'finished', exitCode: 0, work: { watched: 'cldpd/issue-1', branches: [], pulls: [] } }, ['No changes pushed to `cldpd/issue-1`.'], ['Pushed']],
    ['setting up: the step under way and its place', { phase: 'setting up', startedAt: 90_000, activity: 'npm ci (2/3)' }, ['cldpd: setting up (pod `web`)', 'Latest: npm ci (2/3)', '10s so far', 'To stop it, comment `/cldpd stop`.'], ['/cldpd resume']],
    ['work: none shown without a token', { phase: 'finished', exitCode: 0 }, [], ['No changes pushed', 'Pushed']],
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
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, lastLines: ['before', '```', 'injected', '```', 'after'] }, marker, none);
    expect(body).toContain('````\nbefore');
  });

  it('markdown: the final answer is rendered, not fenced; mentions, references, images and HTML in it are defused, code is not', () => {
    const answer = [
      '## Done', '', '- [x] fixed the **parser**', '- opened https://github.com/acme/web/pull/7', '',
      'Thanks @octocat and @acme/core; see #12, acme/web#13 and GH-14. Mail a@b.test.',
      '![tracker](https://evil.test/pixel.png) <img src="https://evil.test/x.png"> <details>hidden</details>',
      '', '```', '@inside #99 <b>', '```', 'and `@inline #5`',
    ].join('\n');
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: answer }, marker, none);
    expect(body).toContain('<details open><summary>Final answer</summary>\n\n## Done\n\n- [x] fixed the **parser**');
    expect(body).not.toMatch(/^```+\n## Done/m);
    for (const live of ['@octocat', '@acme/core', '#12', '#13', 'GH-14', '![', '<img', '<details>hidden']) expect(body).not.toContain(` ${live}`);
    expect(body).toContain('@&#8203;octocat');
    expect(body).toContain('#&#8203;12');
    expect(body).toContain('GH&#8203;-14');
    expect(body).toContain('a@b.test'); // not a mention
    expect(body).toContain('!&#8203;[tracker](https://evil.test/pixel.png)');
    expect(body).toContain('&lt;img');
    expect(body).toContain('```\n@inside #99 <b>\n```'); // code as written
    expect(body).toContain('`@inline #5`');
    expect(body).toContain('https://github.com/acme/web/pull/\u200b7'); // no reference, no closing keyword's target
  });

  it('markdown: Latest and Error neither notify nor link, and escape codes are gone', () => {
    const body = renderStatusComment({ ...base, phase: 'running', startedAt: 0, activity: '\u001b[91mping @octocat about #3\u001b[0m', error: 'see @someone #4' }, marker, none);
    expect(body).toContain('Latest: ping @&#8203;octocat about #&#8203;3');
    expect(body).toContain('**Error:** see @&#8203;someone #&#8203;4');
    expect(body).not.toContain('\u001b');
    expect(body).not.toContain('[91m');
    const output = renderStatusComment({ ...base, phase: 'finished', exitCode: 1, lastLines: ['\u001b[31mred\u001b[0m plain'] }, marker, none);
    expect(output).toContain('red plain');
    expect(output).not.toContain('[31m');
  });

  it('markdown: a long answer keeps its end, cut at a line, with its code fence reopened', () => {
    const answer = ['# Start', '```', ...Array.from({ length: 8000 }, (_, i) => `code line ${i} ${'z'.repeat(10)}`), '```', 'The end.'].join('\n');
    const body = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: answer }, marker, none);
    expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
    expect(body).toContain('earlier characters cut');
    expect(body).toContain('The end.');
    expect(body).not.toContain('# Start');
    expect(body).toMatch(/characters cut\._\n\n```\ncode line \d+ z{10}\n/);
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
