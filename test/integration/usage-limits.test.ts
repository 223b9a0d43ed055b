import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { NO_LIMITS, type RepoLimits } from '../../src/queue/limits-policy.js';
import { UsageLimits } from '../../src/queue/usage-counters.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const limits = (repository: RepoLimits['repository'], perPerson: RepoLimits['perPerson'] = {}): RepoLimits => ({ repository, perPerson });
/** An issue with a command queued or running, as the issue's record and queue keep it. */
const queue = (redis: Redis, issueKey: string, requestedBy: string) => redis.rpush(`cldpd:issue:{${issueKey}}:runs`, JSON.stringify({ seq: 1, issueKey, requestedBy }));

describeWithRedis('daily limits, counted in Redis', () => {
  let redis: Redis;
  let now = Date.UTC(2026, 10, 23, 12);
  let usage: UsageLimits;

  beforeAll(async () => {
    ({ redis } = await testRedis(6));
  });
  beforeEach(async () => {
    await redis.flushdb();
    now = Date.UTC(2026, 10, 23, 12);
    usage = new UsageLimits(redis, () => now);
  });
  afterAll(() => redis?.disconnect());

  it('race: twenty triggers for the last allowed run of the day get one run', async () => {
    const racers = new UsageLimits(redis.duplicate(), () => now);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? usage : racers).admit(`d${i}`, 'acme/web', `acme.web-${i}`, `p${i}`, limits({ runsPerDay: 1 }))));
    expect(answers.filter((a) => a === undefined)).toHaveLength(1);
    expect(answers.filter((a) => a !== undefined).every((a) => a?.limit === 'runsPerDay' && a.scope === 'repository' && a.value === 1 && a.used === 1)).toBe(true);
    expect((await usage.today('acme/web', 'p0')).repository.runs).toBe(1);
  });

  it('a retried intake is admitted again without counting twice; a new day starts from nothing', async () => {
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', limits({ runsPerDay: 1 }))).toBeUndefined();
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', limits({ runsPerDay: 1 }))).toBeUndefined();
    expect(await usage.admit('d2', 'acme/web', 'acme.web-1', 'alice', limits({ runsPerDay: 1 }))).toMatchObject({ limit: 'runsPerDay', used: 1 });
    now += 12 * 3600_000; // 00:00 UTC has passed
    expect(await usage.admit('d3', 'acme/web', 'acme.web-1', 'alice', limits({ runsPerDay: 1 }))).toBeUndefined();
  });

  it('spend: each run\'s cost counts once for its day; past the limit the next trigger is refused, naming the figures', async () => {
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.6);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.6); // its end reported again after a crash
    await usage.spend('acme.web-2#1', 'acme/web', 'Bob', 0.45);
    expect(await usage.today('acme/web', 'ALICE')).toMatchObject({ repository: { spendUsd: 1.05 }, person: { spendUsd: 0.6 } });
    expect(await usage.admit('d1', 'acme/web', 'acme.web-3', 'carol', limits({ spendPerDayUsd: 1 }))).toEqual({ scope: 'repository', limit: 'spendPerDayUsd', value: 1, used: 1.05 });
    expect(await usage.admit('d2', 'acme/web', 'acme.web-3', 'carol', limits({}, { spendPerDayUsd: 0.5 }))).toBeUndefined();
    expect(await usage.admit('d3', 'acme/web', 'acme.web-3', 'alice', limits({}, { spendPerDayUsd: 0.5 }))).toMatchObject({ scope: 'person', limit: 'spendPerDayUsd', used: 0.6 });
    expect(await usage.admit('d4', 'acme/other', 'acme.other-1', 'alice', limits({ spendPerDayUsd: 1 }, { spendPerDayUsd: 0.5 }))).toBeUndefined(); // another repository's day
  });

  it('stopped spend: a run counts as it goes; an estimate only raises it, the exact figure replaces it, never adding to it', async () => {
    const spent = async () => (await usage.today('acme/web', 'alice')).person.spendUsd;
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.2, { estimate: true });
    expect(await spent()).toBe(0.2);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.35, { estimate: true });
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.3, { estimate: true }); // read back from a cut log: lower, ignored
    expect(await spent()).toBe(0.35);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.25); // the result: below the estimate, and it counts
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.25); // its end reported again
    expect(await usage.today('acme/web', 'alice')).toMatchObject({ repository: { spendUsd: 0.25 }, person: { spendUsd: 0.25 } });
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.4, { estimate: true }); // more work after the result
    expect(await spent()).toBe(0.4);
  });

  it('stopped spend: a run over midnight counts each day what was spent in it; a correction comes off the day it was counted in', async () => {
    now = Date.UTC(2026, 10, 23, 23, 50);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.5, { estimate: true });
    now = Date.UTC(2026, 10, 24, 0, 10);
    expect((await usage.today('acme/web', 'alice')).person.spendUsd).toBe(0);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.3); // the result: less than counted yesterday
    expect(Number(await redis.hget('cldpd:usage:2026-11-23:u:acme/web:alice', 'spend'))).toBe(300_000);
    expect((await usage.today('acme/web', 'alice')).person.spendUsd).toBe(0);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.45, { estimate: true });
    expect((await usage.today('acme/web', 'alice')).person.spendUsd).toBe(0.15);
  });

  it('stopped spend: a run whose cost was counted whole when it ended (before counting as it goes) is not counted again', async () => {
    await redis.set('cldpd:spent:acme.web-1#1', '1', 'EX', 60);
    await usage.spend('acme.web-1#1', 'acme/web', 'alice', 0.6);
    expect((await usage.today('acme/web', 'alice')).person.spendUsd).toBe(0);
  });

  it('sessions at once count issues with a run queued or running; one that ended frees its place; more runs of one issue are one session', async () => {
    const one = limits({ sessionsAtOnce: 1 });
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', one)).toBeUndefined();
    await queue(redis, 'acme.web-1', 'alice');
    expect(await usage.admit('d2', 'acme/web', 'acme.web-2', 'bob', one)).toEqual({ scope: 'repository', limit: 'sessionsAtOnce', value: 1, used: 1 });
    expect(await usage.admit('d3', 'acme/web', 'acme.web-1', 'bob', one)).toBeUndefined(); // a resume of the running session
    expect((await usage.today('acme/web', 'bob')).repository.sessions).toBe(1);
    // Its run ended and nothing is queued: the place is free (once the admission's grace is over).
    await redis.del('cldpd:issue:{acme.web-1}:runs', 'cldpd:reserved:acme.web-1:', 'cldpd:reserved:acme.web-1:alice', 'cldpd:reserved:acme.web-1:bob');
    expect(await usage.admit('d4', 'acme/web', 'acme.web-2', 'bob', one)).toBeUndefined();
  });

  it('sessions at once: an intake retried after its session was cleaned out counts it again, so a third session is refused', async () => {
    const two = limits({ sessionsAtOnce: 2 });
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', two)).toBeUndefined();
    // Its intake is slow (retries): its grace is over before its command is queued, and another admission cleans it out.
    await redis.del('cldpd:reserved:acme.web-1:', 'cldpd:reserved:acme.web-1:alice');
    expect(await usage.admit('d2', 'acme/web', 'acme.web-2', 'bob', two)).toBeUndefined();
    await usage.queued('acme/web', 'acme.web-2', 'bob');
    await queue(redis, 'acme.web-2', 'bob');
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', two)).toBeUndefined(); // the retry
    await usage.queued('acme/web', 'acme.web-1', 'alice');
    await queue(redis, 'acme.web-1', 'alice');
    expect(await usage.admit('d3', 'acme/web', 'acme.web-3', 'carol', two)).toEqual({ scope: 'repository', limit: 'sessionsAtOnce', value: 2, used: 2 });
  });

  it('sessions at once per person count only that person\'s', async () => {
    const one = limits({}, { sessionsAtOnce: 1 });
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', one)).toBeUndefined();
    await queue(redis, 'acme.web-1', 'Alice');
    expect(await usage.admit('d2', 'acme/web', 'acme.web-2', 'bob', one)).toBeUndefined();
    expect(await usage.admit('d3', 'acme/web', 'acme.web-3', 'alice', one)).toEqual({ scope: 'person', limit: 'sessionsAtOnce', value: 1, used: 1 });
  });

  it('without limits, runs are still counted for /cldpd status', async () => {
    expect(await usage.admit('d1', 'acme/web', 'acme.web-1', 'alice', NO_LIMITS)).toBeUndefined();
    expect((await usage.today('acme/web', 'alice')).person.runs).toBe(1);
  });
});
