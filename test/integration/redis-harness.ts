import { Redis } from 'ioredis';
import { describe } from 'vitest';

/** The Redis the tests use: CLDPD_TEST_REDIS_URL, default the local server .ci/run starts. */
export const TEST_REDIS_URL = process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function probe(): Promise<string | undefined> {
  const redis = new Redis(TEST_REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => undefined);
  try {
    await redis.connect();
    await redis.ping();
    return undefined;
  } catch (err) {
    return `Redis not reachable at ${TEST_REDIS_URL} (${(err as Error).message})`;
  } finally {
    redis.disconnect();
  }
}

const unavailable = await probe();
if (unavailable && process.env.CI === 'true') {
  throw new Error(`${unavailable}. CI runs these tests against a real Redis: .ci/run starts one.`);
}
if (unavailable) console.warn(`\n[integration] SKIPPED: ${unavailable}. Start redis-server (bash .ci/run does) to run them.\n`);

/** `describe` that runs only where Redis answers (always in CI, where its absence fails the run). */
export const describeWithRedis = unavailable ? describe.skip : describe;

/**
 * A Redis connection on database `db`, emptied first: each test file uses its own database
 * so BullMQ queues of parallel files never meet.
 */
export async function testRedis(db: number): Promise<{ redis: Redis; url: string }> {
  const url = `${TEST_REDIS_URL.replace(/\/\d*$/, '')}/${db}`;
  const redis = new Redis(url, { maxRetriesPerRequest: null });
  await redis.select(db).catch((err: Error) => {
    redis.disconnect();
    throw new Error(`Redis at ${TEST_REDIS_URL} has no database ${db} (${err.message}): the test files use 48; start one with redis-server --databases 48 (bash .ci/run does) and point CLDPD_TEST_REDIS_URL at it.`);
  });
  await redis.flushdb();
  return { redis, url };
}
