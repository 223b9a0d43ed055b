import { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { bucketCapacity, tokenBudget } from '../../src/github/write-budget-policy.js';
import { redisBuckets } from '../../src/queue/redis-write-buckets.js';
import { spend } from '../fakes/budget.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('the GitHub write budget shared through Redis', () => {
  let redis: Redis;
  let other: Redis;

  beforeAll(async () => {
    let url: string;
    ({ redis, url } = await testRedis(10));
    other = new Redis(url);
  });

  afterAll(() => {
    redis.disconnect();
    other.disconnect();
  });

  it('is one budget for every process: two connections draw on the same bucket, per installation', async () => {
    // A slow refill (6 a minute) so that no write comes back while the test runs.
    const perMinute = 6;
    const server = tokenBudget(redisBuckets(redis, perMinute, bucketCapacity(perMinute)));
    const worker = tokenBudget(redisBuckets(other, perMinute, bucketCapacity(perMinute)));
    const installation = 1000 + Math.floor(Math.random() * 1e6);
    expect(await server.tryTake(installation)).toBe(true);
    expect(await worker.tryTake(installation)).toBe(true);
    expect(await spend(server, installation) + await spend(worker, installation)).toBe(bucketCapacity(perMinute) - 2);
    expect(await worker.tryTake(installation)).toBe(false);
    expect(await server.tryTake(installation + 1)).toBe(true);
  });

  it('waits for a write when the bucket is empty, then takes it', async () => {
    const perMinute = 600; // one every 100 ms
    const budget = tokenBudget(redisBuckets(redis, perMinute, 1));
    const installation = 2000 + Math.floor(Math.random() * 1e6);
    expect(await budget.tryTake(installation)).toBe(true);
    expect(await budget.tryTake(installation)).toBe(false);
    await budget.take(installation);
    expect(await budget.tryTake(installation)).toBe(false);
  });

  it('skips progress writes and lets writes that must land go ahead when Redis does not answer', async () => {
    const gone = new Redis('redis://127.0.0.1:1', { lazyConnect: true, maxRetriesPerRequest: null, retryStrategy: () => 200 });
    gone.on('error', () => undefined); // refused connections, expected here
    const errors: unknown[] = [];
    const budget = tokenBudget(redisBuckets(gone, 40, 20), (err) => errors.push(err));
    try {
      expect(await budget.tryTake(1)).toBe(false);
      await budget.take(1);
      expect(errors).toHaveLength(2);
      expect(String(errors[0])).toMatch(/did not answer the write budget/);
    } finally {
      gone.disconnect();
    }
  });
});
