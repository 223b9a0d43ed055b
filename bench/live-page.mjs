// 8. The live session page: how long a line the container prints takes to appear in a
// browser following the page, and what one session's feed holds in Redis.
// The worker's data path in this process (Dispatcher → FeedWriter → Redis), the page's
// routes on a local HTTP server (FeedFollower → Server-Sent Events), headless Chromium.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import puppeteer from 'puppeteer-core';
import { Dispatcher, DockerRunner, SessionStore } from '../dist/core/index.js';
import { FeedWriter } from '../dist/web/feed-writer.js';
import { SessionFeedStore } from '../dist/queue/session-feed.js';
import { sessionLinkKey, sessionLinkSigner } from '../dist/web/session-link.js';
import { sessionRoutes } from '../dist/web/session-routes.js';
import { benchHome, busyboxPod, percentile, stats } from './lib.mjs';

const REDIS_URL = `${(process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/14`;
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => { try { readFileSync(p); return true; } catch { return false; } });

/** ms since the epoch at which the kernel's uptime (what the container reads from /proc/uptime) was 0. */
function uptimeOrigin() {
  const samples = [];
  for (let i = 0; i < 200; i++) samples.push(Date.now() - Number(readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * 1000);
  // /proc/uptime has 10 ms steps: the largest origin is the one read just after a step.
  return Math.max(...samples);
}

async function latency({ lines, perSecond, redis }) {
  const home = benchHome();
  // Each line carries the kernel's uptime as the container read it just before printing.
  // usleep less the loop's own ~1.4 ms here, so the rate is close to perSecond (the report gives the rate measured).
  const script = `i=1; while [ $i -le ${lines} ]; do read up rest < /proc/uptime; echo "L $i $up"; i=$((i+1)); usleep ${Math.round(1e6 / perSecond) - 1400}; done`;
  busyboxPod(home, 'bench-live', { command: ['sh', '-c', script], network: 'none' });
  const dispatcher = new Dispatcher({ runner: new DockerRunner(new Docker()), pods: { podsDir: join(home, 'pods'), homeDir: home }, store: new SessionStore(join(home, 'sessions')), hostId: 'bench', hostEnv: {} });
  const store = new SessionFeedStore(redis, { maxEntries: 20_000, keepSeconds: 3600 });
  const signer = sessionLinkSigner(sessionLinkKey('bench'), 'http://127.0.0.1');
  const routes = sessionRoutes({ store, links: signer, gate: async () => ({ allow: true }), logger: { warn: () => undefined } });
  const server = createServer((req, res) => routes.handle(req, res) || (res.writeHead(404), res.end()));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${server.address().port}`;
  const feed = new FeedWriter({ store, redactorFor: async () => (t) => t, hostId: 'bench', logger: pino({ level: 'silent' }) });
  const browser = await puppeteer.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'] });
  try {
    const sessionId = `bench-live-${Date.now().toString(16).slice(-8)}`;
    const command = { seq: 1, kind: 'start', issueKey: 'b', issue: { installationId: 1, owner: 'bench', repo: 'r', number: 1, url: 'https://github.com/bench/r/issues/1' }, pod: 'bench-live', sessionId, prompt: 'x', statusCommentId: 1, requestedBy: 'bench', enqueuedAt: Date.now() };
    const report = feed.forRun(command);
    // The page exists before the container starts: open it, then start the run.
    await store.publish(sessionId, [], { sessionId, pod: 'bench-live', owner: 'bench', repo: 'r', number: 1, issueUrl: command.issue.url, installationId: 1, host: 'bench', phase: 'queued', run: 0 });
    const page = await browser.newPage();
    await page.goto(`${base}${new URL(signer.link(sessionId, Date.now() + 3600_000)).pathname}${new URL(signer.link(sessionId, Date.now() + 3600_000)).search}`);
    await page.waitForFunction(() => document.getElementById('live')?.textContent === 'following live', { timeout: 10_000 });
    await page.evaluate(() => {
      window.arrivals = [];
      new MutationObserver((records) => {
        const now = Date.now();
        for (const r of records) for (const node of r.addedNodes) if (node.textContent) window.arrivals.push([node.textContent, now]);
      }).observe(document.getElementById('log'), { childList: true });
    });
    const session = await dispatcher.start('bench-live', { issueUrl: command.issue.url, prompt: 'x' }, { sessionId });
    for await (const event of session.events()) report.event(event, session.agent);
    await report.finish({ kind: 'exited', sessionId, terminal: await session.outcome(), agent: session.agent });
    await page.waitForFunction((n) => document.body.innerText.includes(`L ${n} `), { timeout: 30_000 }, lines);
    const origin = uptimeOrigin();
    const arrivals = await page.evaluate(() => window.arrivals);
    const delays = [];
    let first;
    let last;
    for (const [text, at] of arrivals) {
      const m = /L (\d+) (\d+\.\d+)/.exec(text);
      if (!m) continue;
      const printed = origin + Number(m[2]) * 1000;
      first ??= printed;
      last = printed;
      delays.push(at - printed);
    }
    await page.close();
    const rate = (delays.length - 1) / ((last - first) / 1000);
    return { lines: delays.length, rate, p50: percentile(delays, 50), p99: percentile(delays, 99), max: Math.max(...delays), min: Math.min(...delays) };
  } finally {
    await browser.close();
    routes.close();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** Redis memory of one session's feed of `events` entries shaped like a Claude Code run's (bounded by entries, not by bytes). */
async function memory({ events, redis }) {
  const store = new SessionFeedStore(redis, { maxEntries: 20_000, keepSeconds: 3600 });
  const sessionId = 'bench-mem-00000001';
  const at = Date.now();
  const entry = (i) => {
    switch (i % 10) {
      case 0: return { k: 'tool', at: at + i, name: 'Bash', summary: `npm test -- --grep "case ${i}"` };
      case 1: return { k: 'result', at: at + i, isError: false, lines: 40, chars: 2300, firstLine: `> cldpd@0.1.0 test case ${i}` };
      case 2: return { k: 'text', at: at + i, text: `Looking at \`src/file-${i}.ts\`: the function returns early when the list is empty, which is why the test fails. I will change it.` };
      default: return { k: 'line', at: at + i, stream: 'stdout', text: `  ✓ test/case-${i}.test.ts > does what it says (${i % 97} ms)` };
    }
  };
  await redis.del(`cldpd:feed:${sessionId}`, `cldpd:feed:${sessionId}:head`);
  for (let i = 0; i < events; i += 500) await store.publish(sessionId, Array.from({ length: Math.min(500, events - i) }, (_, k) => entry(i + k)), i === 0 ? { sessionId, pod: 'p', owner: 'o', repo: 'r', number: 1, issueUrl: 'https://github.com/o/r/issues/1', installationId: 1, host: 'h', phase: 'running', run: 1 } : {});
  const stream = Number(await redis.call('MEMORY', 'USAGE', `cldpd:feed:${sessionId}`, 'SAMPLES', '0'));
  const head = Number(await redis.call('MEMORY', 'USAGE', `cldpd:feed:${sessionId}:head`, 'SAMPLES', '0'));
  const json = (await store.entries(sessionId)).reduce((sum, e) => sum + JSON.stringify(e.entry).length, 0);
  await redis.del(`cldpd:feed:${sessionId}`, `cldpd:feed:${sessionId}:head`);
  return { events, streamBytes: stream, headBytes: head, jsonBytes: json };
}

export async function benchLivePage({ lines = 1000, perSecond = 50, runs = 3 } = {}) {
  if (!CHROMIUM) throw new Error('chromium is missing: scripts/setup.sh installs it');
  const redis = new Redis(REDIS_URL);
  try {
    await redis.flushdb();
    const results = [];
    for (let i = 0; i < runs; i++) results.push(await latency({ lines, perSecond, redis }));
    const mem = await memory({ events: 10_000, redis });
    const wide = await benchWideFeed();
    return { runs: results, p50: stats(results.map((r) => r.p50)), p99: stats(results.map((r) => r.p99)), memory: mem, wide };
  } finally {
    redis.disconnect();
  }
}

/**
 * One session of `lines` output lines of `width` characters, as the worker publishes them
 * (redactEntry's cut, batches of 500): its Redis memory (MEMORY USAGE of stream and head),
 * then one page view of it through the page's routes: the HTML's bytes, the time it took and
 * this process's RSS before and after.
 */
export async function benchWideFeed({ lines = 25_000, width = 5000, char = '<' } = {}) {
  const { redactEntry } = await import('../dist/web/feed-writer.js');
  const redis = new Redis(REDIS_URL);
  const config = { maxEntries: 20_000, keepSeconds: 3600 };
  const store = new SessionFeedStore(redis, config);
  const signer = sessionLinkSigner(sessionLinkKey('bench'), 'http://127.0.0.1');
  const routes = sessionRoutes({ store, links: signer, gate: async () => ({ allow: true, full: true }), logger: { warn: () => undefined } });
  const server = createServer((req, res) => routes.handle(req, res) || (res.writeHead(404), res.end()));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const sessionId = 'bench-wide-00000001';
  try {
    await redis.del(`cldpd:feed:${sessionId}`, `cldpd:feed:${sessionId}:head`);
    const at = Date.now();
    const text = char.repeat(width);
    for (let i = 0; i < lines; i += 500) {
      const batch = Array.from({ length: Math.min(500, lines - i) }, (_, k) => redactEntry({ k: 'line', at: at + i + k, stream: 'stdout', text: `${i + k} ${text}`.slice(0, width) }, (t) => t));
      await store.publish(sessionId, batch, i === 0 ? { sessionId, pod: 'p', owner: 'o', repo: 'r', number: 1, issueUrl: 'https://github.com/o/r/issues/1', installationId: 1, host: 'h', phase: 'running', run: 1 } : {});
    }
    const streamBytes = Number(await redis.call('MEMORY', 'USAGE', `cldpd:feed:${sessionId}`, 'SAMPLES', '0'));
    const headBytes = Number(await redis.call('MEMORY', 'USAGE', `cldpd:feed:${sessionId}:head`, 'SAMPLES', '0'));
    const kept = Number(await redis.xlen(`cldpd:feed:${sessionId}`));
    const url = new URL(signer.link(sessionId, Date.now() + 3600_000));
    global.gc?.();
    const rssBefore = process.memoryUsage().rss;
    const t0 = performance.now();
    const response = await fetch(`http://127.0.0.1:${server.address().port}${url.pathname}${url.search}`);
    const html = Buffer.from(await response.arrayBuffer());
    const pageMs = performance.now() - t0;
    const rssAfter = process.memoryUsage().rss;
    return { lines, width, char, kept, streamBytes, headBytes, htmlBytes: html.length, pageMs, rssBefore, rssAfter };
  } finally {
    await redis.del(`cldpd:feed:${sessionId}`, `cldpd:feed:${sessionId}:head`);
    routes.close();
    await new Promise((resolve) => server.close(resolve));
    redis.disconnect();
  }
}

if (process.argv[1]?.endsWith('live-page.mjs') && process.argv[2] === 'wide') console.log(JSON.stringify(await benchWideFeed({ char: process.argv[3] ?? '<' })));
