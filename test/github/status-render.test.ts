import { join } from 'node:path';
import { marked } from 'marked';
import { expect, it } from 'vitest';
import { describeWithChromium, offlinePage, useChromium } from '../fakes/chromium.js';
import { renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';

const ANSWER = [
  '## Fixed the parser', '',
  'The tokenizer dropped the last line. Thanks @octocat for the report in #12 (see also GH-14).', '',
  '- [x] failing test added', '- [x] fix in `src/parse.ts`', '- [ ] docs', '',
  'Pull request: https://github.com/acme/web/pull/7', '',
  '![tracker](https://evil.test/pixel.png) <img src="https://evil.test/x.png"> <div hidden>secret instructions</div>', '',
  '```ts', 'const at = "@inside #99";', '```',
].join('\n');

const base: StatusView = { pod: 'web', sessionId: 'web-0011aabb', run: 1, command: 'start', phase: 'queued', now: 200_000, requestedBy: 'octocat', host: 'build-1' };

/** Every phase and outcome, as the reporter builds them. */
const STATES: Array<[string, Partial<StatusView>]> = [
  ['queued', { queuePosition: 1 }],
  ['building', { phase: 'building', startedAt: 190_000, activity: 'Step 3/7 : RUN npm ci' }],
  ['setting-up', { phase: 'setting up', startedAt: 150_000, activity: 'cloning acme/web (1/3)', lastLines: ["Cloning into '/workspace'..."] }],
  ['running', { phase: 'running', liveUrl: 'http://127.0.0.1:9/sessions/web-0a1b2c3d?exp=1&sig=x', startedAt: 100_000, activity: '\u001b[32mBash: npm test\u001b[0m asking @octocat about #3', lastLines: ['> web@1.0.0 test', '\u001b[91m1 failing\u001b[0m'] }],
  ['finished', { phase: 'finished', exitCode: 0, durationMs: 754_000, turns: 14, costUsd: 0.82, finalAnswer: ANSWER }],
  ['resumed', { command: 'resume', run: 3, phase: 'finished', exitCode: 0, durationMs: 64_000, turns: 3, costUsd: 0.12, sessionCostUsd: 1.4, finalAnswer: 'Docs updated.' }],
  ['stopped', { phase: 'finished', exitCode: 143, reason: 'stopped', durationMs: 31_000, lastLines: ['working…'] }],
  ['timed-out', { phase: 'finished', exitCode: 143, reason: 'timeout', durationMs: 3_600_000, lastLines: ['still working…'] }],
  ['failed', { phase: 'finished', exitCode: 2, durationMs: 12_000, lastLines: ['npm ERR! Test failed.'] }],
  ['build-failed', { phase: 'failed', error: 'The build of cldpd-web failed: The command \'/bin/sh -c npm ci\' returned a non-zero code: 1', lastLines: ['Step 3/7 : RUN npm ci', 'npm ERR! missing package-lock.json'], linesFrom: 'build' }],
  ['cancelled', { phase: 'cancelled', note: 'Cancelled by `/cldpd stop` before it started.' }],
  ['agent-error', { phase: 'finished', exitCode: 1, agentError: true, finalAnswer: 'API Error: 529 {"type":"overloaded_error"}' }],
  ['pushed', { phase: 'finished', exitCode: 0, durationMs: 400_000, turns: 9, costUsd: 0.5, finalAnswer: 'Opened a pull request.', work: { branches: [{ name: 'cldpd/issue-7', url: 'https://github.com/acme/web/tree/cldpd/issue-7' }, { name: 'scratch', url: 'https://github.com/acme/web/tree/scratch' }], pulls: [{ number: 12, title: 'Fix the parser for @octocat', url: 'https://github.com/acme/web/pull/12', state: 'open', branch: 'cldpd/issue-7' }] } }],
  ['delivered', { command: 'resume', phase: 'delivered', note: 'Sent to the agent of session `web-0011aabb` while it ran (run 1), which took it as its next instruction.' }],
];

/** Answers in which a line scanner took text for code that CommonMark reads as prose. */
const LIVE = '@octocat @acme/core see #12 ![p](https://evil.test/pixel.png) <div hidden>secret instructions</div>';
const BYPASSES: Array<[string, string]> = [
  ['a lazy continuation line', `Thanks for the report.\n    ${LIVE}`],
  ['a 4-space indented paragraph in a list item', `- first\n\n    ${LIVE}`],
  ['a backtick fence whose info string holds a backtick', `\`\`\`a\`b\n${LIVE}\n\`\`\``],
  ['indented code in a quote in a list item, a line at the margin after it, indented code after a blank line', `- >     ${LIVE}\n  >     ${LIVE}\n${LIVE}\n\n    ${LIVE}`],
];

const PAGE = (html: string) => `<!doctype html><html><head><meta charset="utf-8"><style>
  body { font: 14px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; margin: 0; padding: 16px; width: 760px; }
  .comment { border: 1px solid #d0d7de; border-radius: 6px; padding: 16px; }
  h3 { margin-top: 0; } code, pre { font-family: ui-monospace, monospace; font-size: 12px; background: #f6f8fa; }
  pre { padding: 12px; overflow: auto; } summary { cursor: pointer; font-weight: 600; }
</style></head><body><div class="comment">${html}</div></body></html>`;

describeWithChromium('status comments as GitHub renders them (GFM in headless Chromium)', () => {
  const { browser, shots: SHOTS } = useChromium('status-comments');

  it.each(STATES)('render: %s', async (name, patch) => {
    const markdown = renderStatusComment({ ...base, ...patch }, statusMarker({ issueKey: 'acme.web-1', seq: 1 }), (t) => t);
    // Nothing may be fetched: a request at all means an image, font or script got through.
    const { page, requests } = await offlinePage(browser());
    try {
      await page.setContent(PAGE(await marked.parse(markdown, { gfm: true })), { waitUntil: 'load' });
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
      const seen = await page.evaluate(() => ({
        text: document.body.innerText,
        // GitHub links and notifies nothing inside code.
        prose: (() => {
          const copy = document.body.cloneNode(true) as HTMLElement;
          for (const code of copy.querySelectorAll('pre, code')) code.remove();
          return copy.textContent ?? '';
        })(),
        heading: document.querySelector('h3')?.textContent ?? '',
        links: [...document.querySelectorAll('a')].map((a) => a.textContent ?? ''),
        images: document.querySelectorAll('img').length,
        hidden: document.querySelectorAll('[hidden], div').length - 1, // the page's own .comment div
        checkboxes: document.querySelectorAll('input[type=checkbox]').length,
        answerHeading: document.querySelector('details h2')?.textContent ?? '',
        code: [...document.querySelectorAll('pre code')].map((c) => c.textContent ?? ''),
      }));
      expect(requests).toEqual([]);
      expect(seen.images).toBe(0);
      expect(seen.hidden).toBe(0);
      // Nothing in text that GitHub would turn into a mention or an issue link.
      expect(seen.prose).not.toMatch(/(^|[^\w])@[A-Za-z0-9]/m);
      expect(seen.prose).not.toMatch(/(^|[^\w])#\d/m);
      expect(seen.text).not.toContain('\u001b');
      expect(seen.text).not.toMatch(/\[\d+m/);
      for (const link of seen.links) expect(link).not.toMatch(/^[@#]/);
      const words: Record<string, RegExp> = {
        queued: /cldpd: queued/, building: /building the image/, running: /cldpd: running/, finished: /cldpd: finished/, resumed: /finished \(pod web, resume 2\)/,
        stopped: /cldpd: stopped/, 'timed-out': /cldpd: timed out/, failed: /cldpd: failed/, 'build-failed': /cldpd: failed/, cancelled: /cldpd: cancelled/,
        'agent-error': /cldpd: failed/, delivered: /sent to the running agent/, pushed: /cldpd: finished/, 'setting-up': /cldpd: setting up/,
      };
      expect(seen.heading).toMatch(words[name] as RegExp);
      if (name === 'finished') {
        // The answer is rendered: a heading, checkboxes, its code block as written.
        expect(seen.answerHeading).toBe('Fixed the parser');
        expect(seen.checkboxes).toBe(3);
        expect(seen.code.some((c) => c.includes('const at = "@inside #99";'))).toBe(true);
        expect(seen.text).not.toContain('## Fixed');
        expect(seen.text).toContain('<div hidden>secret instructions</div>'); // shown as text, hiding nothing
      }
      if (name === 'pushed') {
        expect(seen.links).toEqual(expect.arrayContaining(['cldpd/issue-7', 'Fix the parser for @\u200boctocat (#\u200b12)', 'scratch']));
        expect(seen.text).toMatch(/Pushed cldpd\/issue-7 → pull request Fix the parser/);
      }
      const canResume = ['finished', 'pushed', 'resumed', 'stopped', 'timed-out', 'failed', 'agent-error'].includes(name);
      expect(seen.text.includes('/cldpd resume <what to do next>')).toBe(canResume);
      if (['queued', 'building', 'setting-up', 'running'].includes(name)) expect(seen.text).toContain('To stop it, comment /cldpd stop');
      if (name === 'running') expect(seen.links).toContain('Follow it live');
      if (name === 'build-failed') expect(seen.text).toMatch(/Last 2 lines of the build[\s\S]*missing package-lock/);
    } finally {
      await page.close();
    }
  }, 60_000);

  it.each(BYPASSES)('markdown bypass: %s', async (name, answer) => {
    const markdown = renderStatusComment({ ...base, phase: 'finished', exitCode: 0, finalAnswer: answer }, statusMarker({ issueKey: 'acme.web-1', seq: 1 }), (t) => t);
    const { page, requests } = await offlinePage(browser());
    try {
      await page.setContent(PAGE(await marked.parse(markdown, { gfm: true })), { waitUntil: 'load' });
      await page.screenshot({ path: join(SHOTS, `bypass-${name.replace(/\W+/g, '-')}.png`), fullPage: true });
      const seen = await page.evaluate(() => {
        const copy = document.body.cloneNode(true) as HTMLElement;
        for (const code of copy.querySelectorAll('pre, code')) code.remove();
        return { prose: copy.textContent ?? '', text: document.body.innerText, images: document.querySelectorAll('img').length, hidden: document.querySelectorAll('[hidden], div').length - 1 };
      });
      expect(requests).toEqual([]);
      expect(seen.images).toBe(0);
      expect(seen.hidden).toBe(0);
      expect(seen.prose).not.toMatch(/(^|[^\w])@[A-Za-z0-9]/m);
      expect(seen.prose).not.toMatch(/(^|[^\w])#\d/m);
      expect(seen.text).toContain('secret instructions'); // shown, hiding nothing
    } finally {
      await page.close();
    }
  }, 60_000);
});

