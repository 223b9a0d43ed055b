import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SessionFeedStore, type FeedEntry } from '../../src/queue/session-feed.js';
import { sessionLinkKey, sessionLinkSigner } from '../../src/web/session-link.js';
import { sessionRoutes, type PageGate, type SessionRoutes } from '../../src/web/session-routes.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const line = (text: string): FeedEntry => ({ k: 'line', at: Date.now(), stream: 'stdout', text });
const identity = { sessionId: 's-0a1b2c3d', pod: 'p', owner: 'acme', repo: 'web', number: 3, issueUrl: 'https://github.com/acme/web/issues/3', installationId: 1, host: 'h1', phase: 'running', run: 1 };

/** Reads Server-Sent Events from `url` until `enough` says so (or the timeout), then hangs up. */
async function readEvents(url: string, headers: Record<string, string>, enough: (events: Array<{ id?: string; event: string; data: string }>) => boolean, timeoutMs = 10_000) {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  const events: Array<{ id?: string; event: string; data: string }> = [];
  try {
    const response = await fetch(url, { headers, signal: controller.signal });
    expect(response.status).toBe(200);
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      buffer += decoder.decode(chunk, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const fields = Object.fromEntries(block.split('\n').filter((l) => !l.startsWith(':') && l.includes(': ')).map((l) => [l.slice(0, l.indexOf(': ')), l.slice(l.indexOf(': ') + 2)]));
        if (fields.data !== undefined) events.push({ ...(fields.id ? { id: fields.id } : {}), event: fields.event ?? 'message', data: fields.data });
      }
      if (enough(events)) break;
    }
  } catch (err) {
    if (!controller.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  return events;
}

describeWithRedis('the session feed in Redis, and its page', () => {
  /** The bytes of every entry's JSON the stream of `sessionId` holds, as Redis has them. */
  const sumOfStream = async (sessionId: string) => (await redis.xrange(`cldpd:feed:${sessionId}`, '-', '+')).reduce((sum, [, fields]) => sum + Buffer.byteLength(fields[fields.indexOf('e') + 1] ?? ''), 0);
  let redis: Redis;
  let store: SessionFeedStore;
  let server: Server;
  let routes: SessionRoutes;
  let base = '';
  let gate: PageGate = async () => ({ allow: true, full: true });
  const signer = sessionLinkSigner(sessionLinkKey('test key'), 'http://unused');
  const path = (sessionId: string, expiresAt = Date.now() + 60_000) => new URL(signer.link(sessionId, expiresAt)).pathname + new URL(signer.link(sessionId, expiresAt)).search;

  beforeAll(async () => {
    ({ redis } = await testRedis(8));
    store = new SessionFeedStore(redis, { maxEntries: 100, keepSeconds: 3600 });
    routes = sessionRoutes({ store, links: signer, gate: (req, head) => gate(req, head), logger: { warn: () => undefined }, pollMs: 50 });
    server = createServer((req, res) => {
      if (!routes.handle(req, res)) {
        res.writeHead(404);
        res.end();
      }
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

  it('numbers entries across publishes, keeps the head, and expires both after the set time', async () => {
    await store.publish('n-00000001', [line('a'), line('b')], { ...identity, sessionId: 'n-00000001', costUsd: 0.5 });
    await store.publish('n-00000001', [line('c')], { phase: 'finished', costUsd: null });
    const entries = await store.entries('n-00000001');
    expect(entries.map((e) => [e.n, (e.entry as { text: string }).text])).toEqual([[1, 'a'], [2, 'b'], [3, 'c']]);
    const head = await store.head('n-00000001');
    expect(head).toMatchObject({ phase: 'finished', run: 1, number: 3, total: 3 });
    expect(head?.costUsd).toBeUndefined();
    for (const key of ['cldpd:feed:n-00000001', 'cldpd:feed:n-00000001:head']) {
      const ttl = await redis.ttl(key);
      expect(ttl).toBeGreaterThan(3500);
      expect(ttl).toBeLessThanOrEqual(3600);
    }
  });

  it('keeps the last maxEntries entries; the page says how many earlier ones are gone', async () => {
    const id = 't-00000002';
    for (let batch = 0; batch < 10; batch++) await store.publish(id, Array.from({ length: 100 }, (_, i) => line(`l${batch * 100 + i + 1}`)), { ...identity, sessionId: id });
    const kept = await store.entries(id);
    expect(kept.length).toBe(100);
    expect(kept.at(-1)?.n).toBe(1000);
    expect((await store.head(id))?.total).toBe(1000);
    const page = await (await fetch(base + path(id))).text();
    expect(page).toContain(`${(kept[0]?.n ?? 0) - 1} earlier entries are not shown here`);
    expect(page).toContain('l1000');
  });

  it('feed bytes: keeps the newest entries within maxBytes of JSON (the newest one always), counting a feed written before bytes were counted', async () => {
    const small = new SessionFeedStore(redis, { maxEntries: 1000, maxBytes: 50_000, keepSeconds: 3600 });
    const id = 'b-00000006';
    const wide = (i: number) => line(`${i} ${'<'.repeat(5000)}`);
    const json = (i: number) => Buffer.byteLength(JSON.stringify(wide(i)));
    // Written as before: entries without a byte count in the head.
    for (let i = 1; i <= 30; i++) await redis.xadd(`cldpd:feed:${id}`, '*', 'n', String(i), 'e', JSON.stringify(wide(i)));
    await redis.hset(`cldpd:feed:${id}:head`, { ...identity, sessionId: id, total: 30 });
    for (let i = 31; i <= 200; i += 10) await small.publish(id, Array.from({ length: 10 }, (_, k) => wide(i + k)), {});
    const kept = await small.entries(id);
    const bytes = kept.reduce((sum, e) => sum + Buffer.byteLength(JSON.stringify(e.entry)), 0);
    expect(kept.at(-1)?.n).toBe(200);
    expect(kept.map((e) => e.n)).toEqual(Array.from({ length: kept.length }, (_, i) => 201 - kept.length + i));
    expect(bytes).toBeLessThanOrEqual(50_000);
    expect(bytes + json(200)).toBeGreaterThan(50_000);
    expect((await small.head(id))?.bytes).toBe(await sumOfStream(id));
    // One entry larger than the whole bound is still kept, alone.
    await small.publish(id, [line('x'.repeat(60_000))], {});
    expect((await small.entries(id)).map((e) => e.n)).toEqual([201]);
    expect((await small.head(id))?.bytes).toBe(await sumOfStream(id));
  });

  it.each([
    ['a tampered signature', (p: string) => p.replace(/sig=(.)/, (_m, c: string) => `sig=${c === 'A' ? 'B' : 'A'}`)],
    ['another session\'s link', (p: string) => p.replace('/sessions/n-00000001', '/sessions/t-00000002')],
    ['no signature', (p: string) => p.replace(/&sig=.*$/, '')],
  ])('%s gets 404, on the page and on its live tail', async (_name, tamper) => {
    const good = path('n-00000001');
    expect((await fetch(base + good)).status).toBe(200);
    const bad = tamper(good);
    expect((await fetch(base + bad)).status).toBe(404);
    expect((await fetch(base + bad.replace('?', '/events?'))).status).toBe(404);
  });

  it('a session whose only run was cancelled before it began still has a page: queued, run 0, its note', async () => {
    const id = 'c-00000005';
    const { phase: _p, run: _r, ...bare } = identity;
    await store.publish(id, [{ k: 'end', at: Date.now(), outcome: 'cancelled', note: 'Cancelled by /cldpd stop before it started.' }], { ...bare, sessionId: id });
    const response = await fetch(base + path(id));
    expect(response.status).toBe(200);
    const html = await response.text();
    expect(html).toContain('Cancelled by /cldpd stop before it started.');
    expect(html).toMatch(/data-fact="phase"><span class="phase queued">queued/);
  });

  it('an expired link gets 404, and so does a session the feed no longer holds', async () => {
    expect((await fetch(base + path('n-00000001', Date.now() - 1000))).status).toBe(404);
    expect((await fetch(base + path('gone-00000003'))).status).toBe(404);
  });

  it('the gate decides after the link: a sign-in redirect is passed on', async () => {
    gate = async () => ({ allow: false, status: 302, location: '/auth/github?return=x' });
    try {
      const response = await fetch(base + path('n-00000001'), { redirect: 'manual' });
      expect(response.status).toBe(302);
      expect(response.headers.get('location')).toBe('/auth/github?return=x');
    } finally {
      gate = async () => ({ allow: true, full: true });
    }
  });

  it('a path that is not a URL ("//", "//a b") is left alone, not a crash', async () => {
    for (const raw of ['//', '///x', '//a b']) {
      const status = await new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: Number(new URL(base).port), path: raw.replace(' ', '%20').replace('%20', ' '), method: 'GET' }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      }).catch(() => 400);
      expect([400, 404]).toContain(status);
    }
    expect((await fetch(base + path('n-00000001'))).status).toBe(200); // still serving
  });

  it('a browser that leaves while its live tail is being admitted leaves nothing behind', async () => {
    let slow: () => void = () => undefined;
    gate = () => new Promise((resolve) => (slow = () => resolve({ allow: true, full: true })));
    try {
      const controller = new AbortController();
      const pending = fetch(base + path('n-00000001').replace('?', '/events?'), { signal: controller.signal }).catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
      controller.abort();
      await pending;
      await new Promise((r) => setTimeout(r, 50));
      slow();
      await new Promise((r) => setTimeout(r, 100));
      expect(routes.followers).toBe(0);
    } finally {
      gate = async () => ({ allow: true, full: true });
    }
  });

  it('a live tail the gate refuses (sign-in needed) gets 204, never a redirect to sign in', async () => {
    gate = async () => ({ allow: false, status: 302, location: '/auth/github?return=x' });
    try {
      const response = await fetch(base + path('n-00000001').replace('?', '/events?'), { redirect: 'manual' });
      expect(response.status).toBe(204);
    } finally {
      gate = async () => ({ allow: true, full: true });
    }
  });

  it('on a page open to anyone with the link, a tool\'s output and the instructions are shown by size only', async () => {
    const id = 'r-00000006';
    await store.publish(id, [{ k: 'result', at: Date.now(), isError: false, lines: 3, chars: 40, firstLine: 'PASSWORD=hunter2' }, { k: 'message', at: Date.now(), text: 'internal template words' }], { ...identity, sessionId: id });
    gate = async () => ({ allow: true, full: false });
    try {
      const html = await (await fetch(base + path(id))).text();
      expect(html).toContain('3 lines, 40 characters');
      expect(html).not.toContain('hunter2');
      expect(html).not.toContain('internal template words');
    } finally {
      gate = async () => ({ allow: true, full: true });
    }
    const html = await (await fetch(base + path(id))).text();
    expect(html).toContain('PASSWORD=hunter2');
  });

  it('the live tail hands on new entries; a reconnect with Last-Event-ID loses none and repeats none', async () => {
    const id = 'live-00000004';
    await store.publish(id, [line('before')], { ...identity, sessionId: id });
    const events = `${base}${path(id).replace('?', '/events?')}&after=${encodeURIComponent(`${(await store.entries(id))[0]?.id}/1`)}`;
    const publishing = (async () => {
      for (let i = 1; i <= 60; i++) {
        await store.publish(id, [line(`live ${i}`)], {});
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const first = await readEvents(events, {}, (got) => got.filter((e) => e.event === 'entry').length >= 20);
    const entries1 = first.filter((e) => e.event === 'entry');
    const last = entries1.at(-1)?.id as string;
    await publishing;
    const second = await readEvents(events, { 'last-event-id': last }, (got) => got.some((e) => e.event === 'entry' && JSON.parse(e.data).n === 61));
    const ns = [...entries1, ...second.filter((e) => e.event === 'entry')].map((e) => JSON.parse(e.data).n as number);
    expect(ns).toEqual(Array.from({ length: 60 }, (_, i) => i + 2));
    expect(first[0]?.event).toBe('head');
    expect(JSON.parse(second.filter((e) => e.event === 'entry').at(-1)?.data ?? '{}').html).toContain('live 60');
  });
});
