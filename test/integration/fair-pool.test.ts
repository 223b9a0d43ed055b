import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { fairOrder } from '../../src/queue/fair-order.js';
import { FairPool } from '../../src/queue/fair-pool.js';
import { issueKeyName } from '../../src/queue/issue-keys.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('the fair pool in Redis', () => {
  let redis: Redis;
  let pool: FairPool;

  beforeAll(async () => {
    ({ redis } = await testRedis(39));
    pool = new FairPool(redis);
  });
  beforeEach(async () => {
    await redis.flushdb();
  });
  afterAll(() => redis?.disconnect());

  /** Registers the issue in the pool as Producer.drain does, after a run of it was queued. */
  async function queued(poolName: string, issueKey: string, person: string, due?: number) {
    await redis.rpush(issueKeyName(issueKey, 'runs'), '{}');
    return pool.waitForSlot(poolName, issueKey, person, due);
  }

  it('an entry whose issue has nothing queued (its turn lost in a crash before its job was added) is dropped, and spends no turn meant for another issue', async () => {
    await pool.waitForSlot('any', 'a.x-1', 'ann'); // registered, its run already drained by another turn
    await queued('any', 'b.y-1', 'bob');
    expect(await pool.takeSlot('any', 'j1')).toBe('b.y-1');
    expect((await pool.poolSnapshot('any')).entries).toEqual([]);
  });

  it('gives slots in the order the pure rule computes, across random bursts and turns already given', async () => {
    const arrivals = fc.array(fc.record({ repo: fc.constantFrom('a.x', 'b.y', 'c.z'), person: fc.constantFrom('ann', 'bob', 'cat') }), { minLength: 1, maxLength: 25 });
    await fc.assert(fc.asyncProperty(arrivals, arrivals, async (first, second) => {
      await redis.flushdb();
      let n = 0;
      const add = async (batch: typeof first) => {
        for (const e of batch) await queued('any', `${e.repo}-${++n}`, e.person);
      };
      await add(first);
      // A few slots given, then more arrive: the pool's memory of turns shapes what follows.
      for (let i = 0; i < Math.min(3, first.length); i++) await pool.takeSlot('any', `early-${i}`);
      await add(second);
      const { entries, served } = await pool.poolSnapshot('any');
      const expected = fairOrder(entries, served, Date.now()).map((e) => e.issueKey);
      const given: string[] = [];
      for (let i = 0; ; i++) {
        const issue = await pool.takeSlot('any', `turn-${i}`);
        if (typeof issue !== 'string') break;
        given.push(issue);
      }
      expect(given).toEqual(expected);
    }), { numRuns: 25 });
  });

  it('a turn picked up again after its worker died drains the issue it was given, not another', async () => {
    await queued('any', 'a.x-1', 'ann');
    await queued('any', 'b.y-1', 'bob');
    const first = await pool.takeSlot('any', 'job-1');
    expect(await pool.takeSlot('any', 'job-1')).toBe(first);
    expect(await pool.takeSlot('any', 'job-2')).not.toBe(first);
    await pool.slotDone('any', 'job-1');
    expect(await pool.takeSlot('any', 'job-1')).toBeUndefined();
  });

  it('an issue whose drain runs elsewhere (its lock held) is passed over, and taken once free', async () => {
    await queued('any', 'a.x-1', 'ann');
    await redis.set(issueKeyName('a.x-1', 'lock'), 'other-drainer', 'PX', 60_000);
    // The turn is kept (busy), not spent: should that drainer die, this turn runs the issue.
    expect(await pool.takeSlot('any', 'job-1')).toEqual({ busy: true });
    await redis.del(issueKeyName('a.x-1', 'lock'));
    expect(await pool.takeSlot('any', 'job-2')).toBe('a.x-1');
  });

  it('an issue registered twice waits once, at its first place, and the earlier due time wins', async () => {
    const later = Date.now() + 60_000;
    await queued('any', 'a.x-1', 'ann', later);
    await queued('any', 'b.y-1', 'bob');
    await queued('any', 'a.x-1', 'ann');
    const { entries } = await pool.poolSnapshot('any');
    expect(entries.map((e) => [e.issueKey, e.due])).toEqual([['a.x-1', 0], ['b.y-1', 0]]);
    expect(await pool.takeSlot('any', 'j1')).toBe('a.x-1');
    expect(await pool.takeSlot('any', 'j2')).toBe('b.y-1');
    expect(await pool.takeSlot('any', 'j3')).toBeUndefined();
  });

  it('a run held for its provider waits in the pool until its time', async () => {
    const now = Date.now();
    await queued('any', 'a.x-1', 'ann', now + 10_000);
    // The turn is kept for it, told when.
    expect(await pool.takeSlot('any', 'j1', now)).toEqual({ at: now + 10_000 });
    expect(await pool.takeSlot('any', 'j2', now + 10_000)).toBe('a.x-1');
  });

  it('registration is one arrival while it waits: a retried registration gets the same number (one turn), a new one after it was taken a new number', async () => {
    const first = await queued('any', 'a.x-1', 'ann');
    expect(await queued('any', 'a.x-1', 'ann')).toEqual(first);
    expect(await pool.takeSlot('any', 'j1')).toBe('a.x-1');
    const again = await queued('any', 'a.x-1', 'ann');
    expect(again.arrival).toBeGreaterThan(first.arrival);
    // Waiting for a later time, then due at once: it needs a turn for now.
    await queued('any', 'b.y-1', 'bob', Date.now() + 60_000);
    expect((await queued('any', 'b.y-1', 'bob', 0)).earlier).toBe(true);
  });

  it('a run queued with no delay is due on any worker\'s clock, however far behind', async () => {
    await queued('any', 'a.x-1', 'ann', 0);
    expect(await pool.takeSlot('any', 'j1', 1)).toBe('a.x-1');
  });

  it('a forgotten host\'s pool is emptied, but its arrivals keep counting: a turn of a host of the same name coming back never reuses a name', async () => {
    const first = await queued('host-x', 'a.x-1', 'ann');
    await pool.dropPool('host-x');
    expect((await pool.poolSnapshot('host-x')).entries).toEqual([]);
    expect((await queued('host-x', 'a.x-1', 'ann')).arrival).toBeGreaterThan(first.arrival);
  });

  it('hostile names: a login or issue key with newlines, braces or Lua patterns is kept as it is', async () => {
    await queued('any', 'a.x%-1', 'ann\n}{%s');
    await queued('any', 'b.y-1', '');
    const { entries } = await pool.poolSnapshot('any');
    expect(entries.map((e) => e.issueKey).sort()).toEqual(['a.x%-1', 'b.y-1']);
    expect(new Set([await pool.takeSlot('any', 'j1'), await pool.takeSlot('any', 'j2')])).toEqual(new Set(['a.x%-1', 'b.y-1']));
  });
});
