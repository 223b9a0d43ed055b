import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Session, SessionEvent } from '../../src/core/index.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import { allReporters } from '../../src/queue/reporters.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { SessionFeedStore } from '../../src/queue/session-feed.js';
import { FeedWriter, MAX_BLOCKED_ENTRIES } from '../../src/web/feed-writer.js';
import { createMetrics, type CldpdMetrics } from '../../src/web/metrics.js';
import { operationsRoutes } from '../../src/web/operations.js';
import { RunMetrics } from '../../src/web/run-metrics.js';
import { sessionLinkKey, sessionLinkSigner } from '../../src/web/session-link.js';
import { sessionRoutes, type SessionRoutes } from '../../src/web/session-routes.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { sampleValue } from '../web/scrape.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const SESSION = 'web-00aa00aa';
const SECRET = 'ghs_0123456789abcdefghijklmnopqrstuvwxyz';

/** A session whose container is refused `refusals` (host, port, count as the gateway counts) between its lines. */
function refusedSession(refusals: ReadonlyArray<readonly [string, number]>): Session {
  const at = Date.now();
  const terminal = { type: 'container.exited' as const, at, exitCode: 0, reason: 'exited' as const, durationMs: 1000 };
  const counts = new Map<string, number>();
  const events: SessionEvent[] = [
    { type: 'container.started', at, containerId: 'c', containerName: `cldpd-${SESSION}`, exec: false, run: 1 },
    { type: 'output', at, stream: 'stdout', line: 'installing' },
    ...refusals.map(([host, port]): SessionEvent => {
      const count = (counts.get(`${host}:${port}`) ?? 0) + 1;
      counts.set(`${host}:${port}`, count);
      return { type: 'egress.blocked', at, host, port, via: 'connect', count };
    }),
    { type: 'output', at, stream: 'stdout', line: 'done' },
    terminal,
  ];
  return {
    id: SESSION, run: 1, podName: 'web', agent: {},
    events: () => (async function* () {
      yield* events;
    })(),
    outcome: async () => terminal,
    wait: async () => 0,
    stop: async () => undefined,
  } as unknown as Session;
}

describeWithRedis('refusals of a run\'s egress gateway: its status comment, its live page and /metrics', () => {
  let redis: Redis;
  let store: SessionFeedStore;
  let metrics: CldpdMetrics;
  let server: Server;
  let routes: SessionRoutes;
  let base = '';
  const signer = sessionLinkSigner(sessionLinkKey('test key'), 'http://unused');
  const bodies: string[] = [];
  const comments = {
    create: async () => ({ id: 1, url: 'u' }),
    update: async (_issue: unknown, _id: number, body: string) => {
      bodies.push(body);
    },
    list: async () => [],
  } as unknown as CommentsApi;

  beforeAll(async () => {
    ({ redis } = await testRedis(26));
    store = new SessionFeedStore(redis, { maxEntries: 2000, keepSeconds: 3600 });
    metrics = createMetrics();
    routes = sessionRoutes({ store, links: signer, gate: async () => ({ allow: true, full: true }), logger: { warn: () => undefined }, pollMs: 50 });
    const operations = operationsRoutes({ metrics, ready: () => [] });
    server = createServer((req, res) => {
      if (routes.handle(req, res) || operations(req, res)) return;
      res.writeHead(404);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    routes?.close();
    server?.closeAllConnections();
    await new Promise<void>((resolve) => server?.close(() => resolve()));
    redis?.disconnect();
  });

  it('a run refused 5,000 times, hostile names among them, says so everywhere, bounded and inert', async () => {
    const hostile = ['[x](javascript:alert(1))', '@org/team', '<img src=x onerror=alert(1)>', `${SECRET}.evil.example`, 'a'.repeat(10_000)];
    const refusals: Array<readonly [string, number]> = [
      ['evil.example', 443], ['evil.example', 443], ['evil.example', 80], ['pypi.org', 8080],
      ...hostile.map((h) => [h, 443] as const),
      ...Array.from({ length: 5000 - 4 - hostile.length }, (_, i) => [`h${i}.flood.example`, 443] as const),
    ];
    const redact = (t: string) => t.replaceAll(SECRET, '[redacted]');
    const reporter = allReporters(
      new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 20, redactorFor: async () => redact, logger: pino({ level: 'silent' }) }),
      new FeedWriter({ store, redactorFor: async () => redact, hostId: 'h1', logger: pino({ level: 'silent' }), flushMs: 5 }),
      new RunMetrics(metrics),
    );
    const runner = new CommandRunner({
      dispatcher: { start: async () => refusedSession(refusals), resume: async () => refusedSession(refusals), recover: async () => ({ kind: 'none' }) as never, isBusy: async () => false },
      state: new MemoryStores(), reporter, logger: pino({ level: 'silent' }),
    });

    await runner.run(command('acme.web-1', 1));

    // The final comment: the most refused first, ten names at most, the rest counted; nothing live in it.
    const final = bodies.at(-1) ?? '';
    expect(final).toContain('cldpd: finished');
    const line = final.split('\n').find((l) => l.startsWith('**Blocked:**')) ?? '';
    expect(line).toMatch(/^\*\*Blocked:\*\* `evil\.example` ×3, /);
    expect(line).toContain(' and ');
    expect(line.length).toBeLessThan(1500);
    expect(line).not.toContain(SECRET);
    expect(line.replace(/`[^`]*`/g, '')).not.toMatch(/@\w|\]\(|<\w/);

    // The page: the run's first 200 refusals as text, the rest of the run still there.
    const page = await fetch(`${base}${new URL(signer.link(SESSION, Date.now() + 60_000)).pathname}${new URL(signer.link(SESSION, Date.now() + 60_000)).search}`);
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html.match(/class="e blocked"/g)).toHaveLength(MAX_BLOCKED_ENTRIES);
    expect(html).toContain('<code>evil.example:443</code> refused: a CONNECT tunnel to a host the pod\'s egress list does not allow (2 times so far).');
    expect(html).toContain('Later refusals of this run are not listed here');
    expect(html).toContain('done');
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain(SECRET);
    expect(html).not.toMatch(/"k":"blocked"/);

    // /metrics: every refusal, by pod, and no host in sight.
    const scraped = await (await fetch(`${base}/metrics`)).text();
    expect(sampleValue(scraped, 'cldpd_egress_blocked_total', { pod: 'web' })).toBe(5000);
    expect(scraped).not.toContain('flood.example');
  });
});
