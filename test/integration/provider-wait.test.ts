import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { IssueState } from '../../src/queue/issue-state.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('a credential\'s provider wait in Redis', () => {
  let redis: Redis;
  let state: IssueState;
  beforeAll(async () => {
    redis = (await testRedis(1)).redis;
    state = new IssueState(redis);
  });
  afterAll(() => redis.disconnect());

  it('a later refusal that says an earlier reset never shortens the wait; a run the provider answered since clears it', async () => {
    const now = Date.now();
    await state.providerRefuses('cred-a', now + 3600_000);
    await state.providerRefuses('cred-a', now + 60_000); // a rate refusal: the usage limit's reset stays
    expect(await state.providerRefusesUntil('cred-a')).toBe(now + 3600_000);
    // A run that was answered before the refusal was recorded says nothing about it.
    await state.providerAccepted('cred-a', now - 1000);
    expect(await state.providerRefusesUntil('cred-a')).toBe(now + 3600_000);
    await new Promise((r) => setTimeout(r, 5));
    await state.providerAccepted('cred-a', Date.now());
    expect(await state.providerRefusesUntil('cred-a')).toBeUndefined();
    // Another credential's wait is its own.
    await state.providerRefuses('cred-b', Date.now() + 60_000);
    await state.providerAccepted('cred-a', Date.now());
    expect(await state.providerRefusesUntil('cred-b')).toBeGreaterThan(Date.now());
  });

  it('reads a wait recorded by the previous version (a bare time)', async () => {
    await redis.set('cldpd:provider-wait:cred-c', String(Date.now() + 60_000), 'PX', 60_000);
    expect(await state.providerRefusesUntil('cred-c')).toBeGreaterThan(Date.now());
    await state.providerAccepted('cred-c', Date.now());
    expect(await state.providerRefusesUntil('cred-c')).toBeUndefined();
  });
});
