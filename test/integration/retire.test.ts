import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { Dispatcher, HostInventory, SessionStore, type SessionEvent } from '../../src/core/index.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { retireIssue, type RetireDeps } from '../../src/queue/retire.js';
import { SessionFeedStore } from '../../src/queue/session-feed.js';
import { FakeRunner, out } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const URL_OF = (n: number) => `https://github.com/acme/web/issues/${n}`;
const KEY_OF = (n: number) => `acme.web-${n}`;
const DAY = 86_400_000;

describeWithRedis('retiring a closed issue: what keeps it, against a real Redis', () => {
  let redis: Redis;
  let state: IssueStores;
  let runner: FakeRunner;
  let store: SessionStore;
  let dispatcher: Dispatcher;
  let feed: SessionFeedStore;
  let deps: RetireDeps;

  beforeAll(async () => {
    redis = (await testRedis(15)).redis;
  });
  afterAll(() => redis.disconnect());

  beforeEach(async () => {
    await redis.flushdb();
    const root = await tempDir();
    const pods = { podsDir: join(root, 'pods'), homeDir: root };
    await writePod(pods.podsDir, 'web', { 'pod.json': { persist: ['/work'] } });
    runner = new FakeRunner({ id: 'sha256:img', user: 'agent', env: { HOME: '/home/agent' }, workingDir: '/', labels: {} });
    store = new SessionStore(join(root, 'sessions'));
    dispatcher = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {} });
    state = issueStores(redis);
    feed = new SessionFeedStore(redis, { maxEntries: 100, keepSeconds: 3600 });
    deps = { state, inventory: new HostInventory({ runner, store, hostId: 'host-a' }), hostId: 'host-a', feed };
  });

  /** A finished session of issue `n` on host-a, its record in Redis, and a feed entry; the issue closed at `closedAt`. */
  async function finishedIssue(n: number, closedAt: number, chunks = [out('done\n')]): Promise<string> {
    runner.scripts.push({ chunks, exitCode: 0 });
    const session = await dispatcher.start('web', { issueUrl: URL_OF(n) });
    for await (const _ of session.events() as AsyncIterable<SessionEvent>);
    const seq = await state.nextSeq(KEY_OF(n));
    await state.set(KEY_OF(n), { sessionId: session.id, pod: 'web', hostId: 'host-a' });
    expect(seq).toBe(1);
    await feed.publish(session.id, [{ k: 'line', at: 1, stream: 'stdout', text: 'done' }], { sessionId: session.id, pod: 'web', owner: 'acme', repo: 'web', number: n, issueUrl: URL_OF(n), installationId: 1, host: 'host-a', phase: 'finished', run: 1 });
    expect(await state.closed(KEY_OF(n), closedAt)).toBe(true);
    return session.id;
  }

  it('session id: the claim an issue has on its session id (no other issue may take it) goes when the issue is retired, and only that issue\'s', async () => {
    const closedAt = Date.now() + 5;
    const id = await finishedIssue(4, closedAt);
    expect(await state.claimSession(id, KEY_OF(4))).toBe(true);
    expect(await state.claimSession(id, KEY_OF(4))).toBe(true); // a retried intake: still the issue's
    expect(await state.claimSession(id, KEY_OF(5))).toBe(false); // another issue: refused
    expect(await state.claimSession('web-00000000000000ff', KEY_OF(5))).toBe(true);
    await new Promise((r) => setTimeout(r, 10));
    expect(await retireIssue(deps, KEY_OF(4), URL_OF(4), { closedAt, retentionMs: 0 })).toMatchObject({ kind: 'removed' });
    expect(await redis.hgetall('cldpd:session-issues')).toEqual({ 'web-00000000000000ff': KEY_OF(5) });
  });

  it('removes the sessions, feed and keys of an issue closed long enough, leaving a marker so its next command numbers go on', async () => {
    // Closed just after its session's last use; the (here zero) period has passed.
    const closedAt = Date.now() + 5;
    const id = await finishedIssue(1, closedAt);
    await new Promise((r) => setTimeout(r, 10));
    const outcome = await retireIssue(deps, KEY_OF(1), URL_OF(1), { closedAt, retentionMs: 0 });
    expect(outcome).toMatchObject({ kind: 'removed', removed: [{ sessionId: id }], feeds: [id] });
    expect(await store.list()).toEqual([]);
    expect(await redis.keys('cldpd:issue:*')).toEqual([]);
    expect(await redis.keys(`cldpd:feed:${id}*`)).toEqual([]);
    // Job ids are named by command numbers: a new label after the removal must not reuse one.
    expect(await state.nextSeq(KEY_OF(1))).toBe(2);
  });

  it('keeps everything of an issue whose session was used after the close, until the period has passed since that use', async () => {
    const closedAt = Date.now() - 2 * DAY;
    const id = await finishedIssue(2, closedAt);
    const outcome = await retireIssue(deps, KEY_OF(2), URL_OF(2), { closedAt, retentionMs: DAY });
    expect(outcome).toMatchObject({ kind: 'kept', later: false, reason: expect.stringContaining('used after the close') });
    if (outcome.kind !== 'kept') return;
    expect(outcome.at).toBeGreaterThan(Date.now() + DAY - 60_000);
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
    expect(await redis.exists(`cldpd:issue:{${KEY_OF(2)}}`)).toBe(1);
  });

  it('keeps everything while a drain holds the issue, and when a command was added while the sessions were being removed', async () => {
    const closedAt = Date.now() - 2 * DAY;
    await finishedIssue(3, closedAt);
    expect(await state.lock(KEY_OF(3), 'a-drain', 60_000)).toBe(true);
    expect(await retireIssue(deps, KEY_OF(3), URL_OF(3), { closedBefore: Date.now() })).toMatchObject({ kind: 'kept', later: true });
    expect(await state.release(KEY_OF(3), 'a-drain')).toBeUndefined();

    // A label lands between the last checks and the keys' removal: the keys stay, with its command, and no session is touched.
    const racing: RetireDeps = { ...deps, onGitHub: async () => {
      await state.nextSeq(KEY_OF(3));
      return { state: 'closed' as const, closedAt: undefined };
    } };
    expect(await retireIssue(racing, KEY_OF(3), URL_OF(3), { closedBefore: Date.now() })).toMatchObject({ kind: 'kept', later: true, reason: 'its issue was asked for a run meanwhile' });
    expect(await store.list()).toHaveLength(1);
    expect(await redis.hget(`cldpd:issue:{${KEY_OF(3)}}`, 'seq')).toBe('2');
  });

  it('keeps everything when GitHub says the issue is open again (its reopen never arrived), and records the reopen', async () => {
    const closedAt = Date.now() - 2 * DAY;
    const id = await finishedIssue(4, closedAt);
    await redis.hset(`cldpd:issue:{${KEY_OF(4)}}`, 'closedAt', String(closedAt)); // as it was
    const outcome = await retireIssue({ ...deps, onGitHub: async () => ({ state: 'open' as const }) }, KEY_OF(4), URL_OF(4), { closedBefore: Date.now() });
    expect(outcome).toMatchObject({ kind: 'kept', reason: 'GitHub says its issue is open again' });
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
    expect((await state.get(KEY_OF(4))).closedAt).toBeUndefined();
    // GitHub not answering keeps everything too; the caller looks again later.
    await new Promise((r) => setTimeout(r, 5));
    expect(await state.closed(KEY_OF(4), Date.now())).toBe(true);
    await expect(retireIssue({ ...deps, onGitHub: async () => { throw new Error('GitHub is down'); } }, KEY_OF(4), URL_OF(4), { closedBefore: Date.now() + 1000 })).rejects.toThrow('GitHub is down');
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
  });

  it('GitHub not showing the issue keeps it (for gc); GitHub saying it was closed again later moves the period to that close', async () => {
    const closedAt = Date.now() + 300;
    const id = await finishedIssue(7, closedAt);
    await new Promise((r) => setTimeout(r, 10));
    expect(await retireIssue({ ...deps, onGitHub: async () => ({ state: 'unknown' as const }) }, KEY_OF(7), URL_OF(7), { closedAt, retentionMs: 0 })).toMatchObject({ kind: 'kept', later: false, reason: expect.stringContaining('cldpd gc') });
    await new Promise((r) => setTimeout(r, 300));
    const again = closedAt + 60_000;
    const outcome = await retireIssue({ ...deps, onGitHub: async () => ({ state: 'closed' as const, closedAt: again }) }, KEY_OF(7), URL_OF(7), { closedAt, retentionMs: DAY });
    expect(outcome).toMatchObject({ kind: 'kept', at: again + DAY, closedAt: again });
    expect((await state.get(KEY_OF(7))).closedAt).toBe(again);
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
  });

  it('a removal that could not finish with the sessions (one still running) finishes when looked at again, from the marker its keys left', async () => {
    const closedAt = Date.now() + 300;
    const id = await finishedIssue(8, closedAt, [out('{"type":"system","subtype":"init","session_id":"claude-8"}\n'), out('done\n')]);
    await new Promise((r) => setTimeout(r, 300));
    // A container of the session runs again (a terminal's `cldpd resume`, say).
    runner.scripts.push({ chunks: [out('again\n')], exitCode: 0, hold: true });
    const again = await dispatcher.resume(id, 'x');
    const reading = (async () => { for await (const _ of again.events() as AsyncIterable<SessionEvent>); })();
    while (!again.containerId) await new Promise((r) => setTimeout(r, 5));
    await redis.hset(`cldpd:issue:{${KEY_OF(8)}}`, 'closedAt', String(closedAt)); // the resume's record came after the close; keep the close as it was
    const first = await retireIssue(deps, KEY_OF(8), URL_OF(8), { closedAt, retentionMs: 0 });
    expect(first).toMatchObject({ kind: 'kept', later: true, reason: expect.stringContaining('its keys are removed') });
    expect(await redis.exists(`cldpd:issue:{${KEY_OF(8)}}`)).toBe(0);
    await again.stop();
    await reading;
    const second = await retireIssue(deps, KEY_OF(8), URL_OF(8), { closedAt, retentionMs: 0 });
    expect(second).toMatchObject({ kind: 'removed', removed: [{ sessionId: id }] });
    expect(await store.list()).toEqual([]);
  });

  it('never touches an open issue, nor an issue Redis does not know', async () => {
    const id = await finishedIssue(5, Date.now() - 2 * DAY);
    await state.reopened(KEY_OF(5), Date.now());
    expect(await retireIssue(deps, KEY_OF(5), URL_OF(5), { closedBefore: Date.now() })).toMatchObject({ kind: 'kept', reason: 'its issue is open' });
    expect(await retireIssue(deps, KEY_OF(6), URL_OF(6), { closedBefore: Date.now() })).toMatchObject({ kind: 'kept', reason: expect.stringContaining('no record') });
    expect((await store.list()).map((r) => r.id)).toEqual([id]);
  });
});
