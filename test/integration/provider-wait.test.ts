import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('a credential\'s provider wait in Redis', () => {
  let redis: Redis;
  let state: IssueStores;
  beforeAll(async () => {
    redis = (await testRedis(1)).redis;
    state = issueStores(redis);
  });
  afterAll(() => redis.disconnect());

  it('a later refusal that says an earlier reset never shortens the wait; a run that began after the refusal and was answered clears it and wakes the issues it held', async () => {
    const now = Date.now();
    await state.providerRefuses('cred-a', now + 3600_000);
    await state.parkForProvider('cred-a', 'acme.web-1', now + 3600_000);
    await state.parkForProvider('cred-a', 'acme.web-2', now + 3600_000);
    await state.providerRefuses('cred-a', now + 60_000); // a rate refusal: the usage limit's reset stays
    expect(await state.providerRefusesUntil('cred-a')).toBe(now + 3600_000);
    // A run that began before the refusal was (last) recorded says nothing about it, however it ended.
    expect(await state.providerAccepted('cred-a', now - 1000)).toEqual([]);
    expect(await state.providerRefusesUntil('cred-a')).toBe(now + 3600_000);
    await new Promise((r) => setTimeout(r, 5));
    expect((await state.providerAccepted('cred-a', Date.now())).sort()).toEqual(['acme.web-1', 'acme.web-2']);
    expect(await state.providerRefusesUntil('cred-a')).toBeUndefined();
    expect(await state.providerAccepted('cred-a', Date.now())).toEqual([]);
    // Another credential's wait is its own.
    await state.providerRefuses('cred-b', Date.now() + 60_000);
    await state.providerAccepted('cred-a', Date.now());
    expect(await state.providerRefusesUntil('cred-b')).toBeGreaterThan(Date.now());
  });

  it('a newer refusal moves the time it was said forward, even when it says an earlier reset', async () => {
    const first = Date.now();
    await state.providerRefuses('cred-d', first + 3600_000);
    await new Promise((r) => setTimeout(r, 10));
    const runStart = Date.now();
    await new Promise((r) => setTimeout(r, 10));
    await state.providerRefuses('cred-d', Date.now() + 60_000);
    // A run that began between the two refusals was answered before the second: the wait stays.
    expect(await state.providerAccepted('cred-d', runStart)).toEqual([]);
    expect(await state.providerRefusesUntil('cred-d')).toBe(first + 3600_000);
  });

  it('reads a wait recorded by the previous version (a bare time)', async () => {
    await redis.set('cldpd:provider-wait:cred-c', String(Date.now() + 60_000), 'PX', 60_000);
    expect(await state.providerRefusesUntil('cred-c')).toBeGreaterThan(Date.now());
    await state.providerAccepted('cred-c', Date.now());
    expect(await state.providerRefusesUntil('cred-c')).toBeUndefined();
  });
});
