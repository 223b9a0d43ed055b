import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import type { Page } from 'puppeteer-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { sessionLinkKey, sessionLinkSigner } from '../../src/web/session-link.js';
import { describeWithChromium, useChromium } from '../fakes/chromium.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, type CldpdProcess, appPrivateKey, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from './processes.js';

const SECRET = 'e2e-page-webhook-secret';
const OWNER = 'acme';
const INSTALLATION = 4343;
const INJECTED = 'tok-page-secret-9876';

/** GitHub's example `issues.labeled` payload, pointed at our repository (private if it is `secret`) and issue. */
function labeled(repo: string, issue: number, label: string): Record<string, unknown> {
  return webhookPayload('issues', 'labeled', { owner: OWNER, repo, installation: INSTALLATION, issue, body: 'Please look.', label, private: repo === 'secret' });
}

/** What the agent of the `live` pod does: talks, calls a tool, prints a secret, then waits for the test's gate before it prints the rest. */
const LIVE_SCRIPT = [
  `echo '{"type":"system","subtype":"init","session_id":"c0ffee00-0000-4000-8000-000000000001","model":"fake"}'`,
  `echo '{"type":"assistant","message":{"content":[{"type":"text","text":"I will **read the code** first. <script>document.title=1</script>"}]}}'`,
  `echo '{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls -la src"}}]}}'`,
  `echo '{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"total 8\\nfile-a\\nfile-b"}]}}'`,
  'echo "the token is $API_TOKEN"',
  'i=1; while [ $i -le 5 ]; do echo "before the gate $i"; i=$((i+1)); done',
  'while [ ! -e /gate/go ]; do sleep 0.1; done',
  'i=1; while [ $i -le 5 ]; do echo "after the gate $i"; i=$((i+1)); sleep 0.05; done',
  `echo '{"type":"result","subtype":"success","is_error":false,"result":"Done.","num_turns":2,"total_cost_usd":0.0125,"duration_ms":40}'`,
].join('\n');

/** Lines the `wide` pod prints, each of 5,000 characters: far more than one session's feed keeps. */
const WIDE_LINES = 4000;
const WIDE_SCRIPT = `l=$(head -c 4990 /dev/zero | tr '\\0' '<'); i=1; while [ $i -le ${WIDE_LINES} ]; do printf '%09d %s\\n' $i "$l"; i=$((i+1)); done`;

/** An agent whose final answer is only in its result: its last words are something else. */
const ANSWER_SCRIPT = [
  `echo '{"type":"system","subtype":"init","session_id":"c0ffee00-0000-4000-8000-000000000002","model":"fake"}'`,
  `echo '{"type":"assistant","message":{"content":[{"type":"text","text":"Looking at the tests."}]}}'`,
  `echo '{"type":"result","subtype":"success","is_error":false,"result":"The fix: **two lines** changed. <img src=x onerror=document.title=2> ![t](http://evil.example/t.png)","num_turns":3,"total_cost_usd":0.02,"duration_ms":40}'`,
].join('\n');

/** What one session's feed keeps by default (CLDPD_LIVE_MAX_MB, 4), and what one page shows of it. */
const FEED_BYTES = 4 * 1024 * 1024;
const PAGE_BYTES = 1024 * 1024;

describeWithDocker('the live session page', () => {
  describeWithRedis('a real server and a worker in another process, real Docker and Redis, the fake GitHub', () => {
    describeWithChromium('in Chromium', () => {
      const { browser, shots } = useChromium('session-page');
      const world = new TestWorld();
      const github = new FakeGitHub();
      const privateKey = appPrivateKey();
      let redis: Redis;
      let port: number;
      let base: string;
      let gate: string;
      let server: CldpdProcess;
      let worker: CldpdProcess;

      const statusOf = (repo: string, n: number) => github.commentsOn(`${OWNER}/${repo}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'));
      const linkIn = (body: string | undefined, text: string) => new RegExp(`\\[${text}\\]\\((http[^)\\s]+)\\)`).exec(body ?? '')?.[1];
      const bodyText = (page: Page) => page.evaluate(() => document.body.innerText);

      beforeAll(async () => {
        if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
        await world.init();
        gate = join(world.home, 'gate');
        await mkdir(gate, { recursive: true });
        await world.pod('live', { command: ['sh', '-c', LIVE_SCRIPT], env: { API_TOKEN: INJECTED }, mounts: [{ source: gate, target: '/gate', readOnly: true }] });
        await world.pod('quick', { command: ['sh', '-c', 'echo "private work done"'] });
        await world.pod('wide', { command: ['sh', '-c', WIDE_SCRIPT] });
        await world.pod('answer', { command: ['sh', '-c', ANSWER_SCRIPT] });
        await github.start();
        github.roles.set('alice', 'write');
        github.visibility.set(`${OWNER}/widgets`, 'public');
        github.visibility.set(`${OWNER}/secret`, 'private');
        const db = await testRedis(7);
        redis = db.redis;
        port = await freePort();
        base = `http://127.0.0.1:${port}`;
        const env = processEnv({
          world, github, port, redisUrl: db.url, secret: SECRET, privateKey,
          extra: {
            CLDPD_PUBLIC_URL: base, GITHUB_CLIENT_ID: github.oauthClient.id, GITHUB_CLIENT_SECRET: github.oauthClient.secret,
            // The fake GitHub is reached as GitHub Enterprise Server, where every page would ask for sign-in.
            CLDPD_LIVE_SIGN_IN: 'private',
            CLDPD_METRICS_PORT: '0',
          },
        });
        ({ server, worker } = await startServerAndWorker(env, { logDir: world.home, port }));
      });

      afterAll(async () => {
        await writeFile(join(gate, 'go'), '').catch(() => undefined);
        await stopSuite({ worker, server, github, redis, world });
      });

      it('opened from the status comment mid-run: the history, then new lines as the container prints them, then the final state; no injected secret', async () => {
        expect(await deliver(port, 'issues', labeled('widgets', 1, 'cldpd:live'), { id: 'page-1', secret: SECRET })).toBe(200);
        await until('the status comment links the live page', () => linkIn(statusOf('widgets', 1)?.body, 'Follow it live') !== undefined, 60_000);
        const link = linkIn(statusOf('widgets', 1)?.body, 'Follow it live') as string;
        expect(link.startsWith(`${base}/sessions/live-`)).toBe(true);
        // The worker has published everything up to the gate.
        await until('the history up to the gate', async () => (await (await fetch(link)).text()).includes('before the gate 5'), 30_000);

        const page = await browser().newPage();
        const elsewhere: string[] = [];
        page.on('request', (request) => {
          if (!request.url().startsWith(base)) elsewhere.push(request.url());
        });
        const response = await page.goto(link, { waitUntil: 'domcontentloaded' });
        expect(response?.status()).toBe(200);
        const history = await bodyText(page);
        for (const text of ['before the gate 1', 'before the gate 5', 'ls -la src', 'widgets#1', 'running']) expect(history).toContain(text);
        expect(history).not.toContain('after the gate');
        expect(await page.$eval('.e.text strong', (el) => el.textContent)).toBe('read the code');
        expect(history).toContain('<script>document.title=1</script>'); // shown as text, never run
        await page.waitForFunction(() => document.getElementById('live')?.textContent === 'following live', { timeout: 10_000 });

        await writeFile(join(gate, 'go'), '');
        await page.waitForFunction(() => document.body.innerText.includes('after the gate 5'), { timeout: 30_000 });
        await page.waitForFunction(() => document.querySelector('.e.end.finished') !== null && document.querySelector('[data-fact="phase"]')?.textContent === 'finished', { timeout: 30_000 });
        const final = await bodyText(page);
        expect(final).toMatch(/finished · exit code 0/);
        expect(final).toContain('$0.0125');
        // Every line once, in order, though it came in live.
        const after = final.split('\n').filter((l) => l.includes('after the gate'));
        expect(after.map((l) => l.replace(/^.*(after the gate \d).*$/, '$1'))).toEqual([1, 2, 3, 4, 5].map((i) => `after the gate ${i}`));
        expect(final).not.toContain(INJECTED);
        expect(final).toContain('the token is [redacted]');
        expect(await page.title()).not.toBe('1');
        expect(elsewhere).toEqual([]);
        await page.screenshot({ path: join(shots, 'session-page.png'), fullPage: true });

        // The final comment links the whole transcript; opened afresh, it is complete.
        await until('the final comment', () => /cldpd: finished/.test(statusOf('widgets', 1)?.body ?? ''), 30_000);
        const transcript = linkIn(statusOf('widgets', 1)?.body, 'session page') as string;
        expect(transcript).toBeDefined();
        const again = await page.goto(transcript, { waitUntil: 'domcontentloaded' });
        expect(again?.status()).toBe(200);
        const complete = await bodyText(page);
        for (const text of ['before the gate 1', 'after the gate 5', 'finished · exit code 0']) expect(complete).toContain(text);
        expect(complete).not.toContain(INJECTED);
        await page.close();
      });

      it('page answer: a run whose final answer is only in its result ends the page with it, as safe Markdown, as the status comment does', async () => {
        expect(await deliver(port, 'issues', labeled('widgets', 3, 'cldpd:answer'), { id: 'page-3', secret: SECRET })).toBe(200);
        await until('the final comment', () => /cldpd: finished/.test(statusOf('widgets', 3)?.body ?? ''), 60_000);
        expect(statusOf('widgets', 3)?.body).toContain('**two lines**');
        const page = await browser().newPage();
        expect((await page.goto(linkIn(statusOf('widgets', 3)?.body, 'session page') as string, { waitUntil: 'domcontentloaded' }))?.status()).toBe(200);
        expect(await page.$eval('.e.end .answer summary', (el) => el.textContent)).toBe('Final answer');
        expect(await page.$eval('.e.end .answer strong', (el) => el.textContent)).toBe('two lines');
        expect(await page.$$('.e.end .answer img')).toEqual([]);
        const text = await bodyText(page);
        expect(text).toContain('Looking at the tests.');
        expect(text).toContain('<img src=x onerror=document.title=2>'); // shown as text, never an element
        expect(text).toContain('[image: t]');
        expect(await page.title()).not.toBe('2');
        // The builder's bookkeeping waits for "build details".
        const shownDetails = () => page.$$eval('.e.build.detail', (els) => els.filter((el) => getComputedStyle(el).display !== 'none').length);
        expect(await page.$$eval('.e.build.detail', (els) => els.length)).toBeGreaterThan(0);
        expect(await shownDetails()).toBe(0);
        await page.click('label[for=details]');
        expect(await shownDetails()).toBeGreaterThan(0);
        await page.click('label[for=details]');
        await page.screenshot({ path: join(shots, 'session-page-answer.png'), fullPage: true });
        await page.close();
      });

      it('feed bytes: a session of thousands of 5,000-character lines holds at most the feed\'s bytes in Redis, and its page at most the page\'s', async () => {
        expect(await deliver(port, 'issues', labeled('widgets', 4, 'cldpd:wide'), { id: 'page-4', secret: SECRET })).toBe(200);
        await until('the final comment', () => /cldpd: finished/.test(statusOf('widgets', 4)?.body ?? ''), 120_000);
        const link = linkIn(statusOf('widgets', 4)?.body, 'session page') as string;
        const sessionId = new URL(link).pathname.split('/')[2] as string;
        const stream = `cldpd:feed:${sessionId}`;
        await until('the last line in the feed', async () => (await redis.xrevrange(stream, '+', '-', 'COUNT', 2)).some(([, f]) => (f[f.indexOf('e') + 1] ?? '').includes(`${String(WIDE_LINES).padStart(9, '0')} <`)), 30_000);
        const kept = await redis.xrange(stream, '-', '+');
        const json = kept.reduce((sum, [, f]) => sum + Buffer.byteLength(f[f.indexOf('e') + 1] ?? ''), 0);
        const memory = Number(await redis.call('MEMORY', 'USAGE', stream, 'SAMPLES', '0'));
        expect(json).toBeLessThanOrEqual(FEED_BYTES);
        expect(json).toBeGreaterThan(FEED_BYTES - 10_000); // the newest, up to the bound
        expect(memory).toBeLessThanOrEqual(1.5 * FEED_BYTES); // Redis's own bookkeeping on top
        expect(Number(await redis.hget(`${stream}:head`, 'bytes'))).toBe(json);

        const response = await fetch(link);
        expect(response.status).toBe(200);
        const html = Buffer.from(await response.arrayBuffer()).toString('utf8');
        expect(Buffer.byteLength(html)).toBeLessThanOrEqual(PAGE_BYTES + 16 * 1024);
        expect(html).toContain(`${String(WIDE_LINES).padStart(9, '0')} &#60;&#60;`);
        const left = /… (\d+) earlier entries are not shown here \(the page keeps the newest\); the whole log is on the worker host \(<code>cldpd logs<\/code>\)/.exec(html);
        expect(Number(left?.[1])).toBeGreaterThan(WIDE_LINES - kept.length);
      });

      it('a tampered, unsigned, expired or other-session link gets 404', async () => {
        const link = linkIn(statusOf('widgets', 1)?.body, 'session page') as string;
        const url = new URL(link);
        const sessionId = url.pathname.split('/')[2] as string;
        const sig = url.searchParams.get('sig') as string;
        const signer = sessionLinkSigner(sessionLinkKey(privateKey), base);
        const variants = {
          tampered: link.replace(`sig=${sig}`, `sig=${sig[0] === 'A' ? 'B' : 'A'}${sig.slice(1)}`),
          unsigned: link.replace(/&sig=[^&]*/, ''),
          'a later expiry': link.replace(/exp=(\d+)/, (_m, exp: string) => `exp=${Number(exp) + 60}`),
          expired: signer.link(sessionId, Date.now() - 1000),
          'another session': link.replace(sessionId, sessionId.replace(/.$/, (c) => (c === '0' ? '1' : '0'))),
          'signed with another key': sessionLinkSigner(sessionLinkKey('not the app key'), base).link(sessionId, Date.now() + 60_000),
        };
        const page = await browser().newPage();
        for (const [name, variant] of Object.entries(variants)) {
          const response = await page.goto(variant, { waitUntil: 'domcontentloaded' });
          expect({ name, status: response?.status() }).toEqual({ name, status: 404 });
          expect(await bodyText(page)).not.toContain('before the gate');
        }
        expect((await page.goto(signer.link(sessionId, Date.now() + 60_000)))?.status()).toBe(200); // the same key, fresh: it opens
        await page.close();
      });

      it('a private repository\'s page needs GitHub sign-in, and opens only for someone who can read it', async () => {
        expect(await deliver(port, 'issues', labeled('secret', 2, 'cldpd:quick'), { id: 'page-2', secret: SECRET })).toBe(200);
        await until('the private run\'s final comment', () => /cldpd: finished/.test(statusOf('secret', 2)?.body ?? ''), 60_000);
        const link = linkIn(statusOf('secret', 2)?.body, 'session page') as string;

        const reader = await browser().createBrowserContext();
        const page = await reader.newPage();
        github.signInAs = 'alice';
        const opened = await page.goto(link, { waitUntil: 'domcontentloaded' });
        expect(opened?.status()).toBe(200);
        expect(page.url()).toBe(link); // back on the page after GitHub's sign-in
        expect(await bodyText(page)).toContain('private work done');
        expect(github.requests.some((r) => r.path === '/login/oauth/access_token')).toBe(true);
        // Asked of GitHub with the app's installation, not with the person's token (which is not kept).
        expect(github.requests.some((r) => r.path === `/repos/${OWNER}/secret/collaborators/alice/permission`)).toBe(true);
        await reader.close();

        const stranger = await browser().createBrowserContext();
        const other = await stranger.newPage();
        github.signInAs = 'mallory';
        const refused = await other.goto(link, { waitUntil: 'domcontentloaded' });
        expect(refused?.status()).toBe(404);
        expect(await bodyText(other)).not.toContain('private work done');
        // Without following GitHub's sign-in at all, the page only sends the browser there.
        const direct = await fetch(link, { redirect: 'manual' });
        expect(direct.status).toBe(302);
        expect(direct.headers.get('location')).toMatch(/^\/auth\/github\?return=/);
        await stranger.close();
      });
    });
  });
});
