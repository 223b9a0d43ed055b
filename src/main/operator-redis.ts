import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { ConfigError, type Config } from '../config.js';
import { sharedRedis } from './redis-connection.js';

/**
 * The Redis the deployment shares, for an operator's command (`cldpd hosts`, `cldpd gc`):
 * REDIS_URL or REDIS_SENTINELS (see sharedRedis), or the one `cldpd up` runs for this machine. Connected, or rejects naming where
 * it looked: one try, so the command says at once that Redis does not answer.
 */
export async function operatorRedis(config: Config): Promise<{ redis: Redis; where: string }> {
  const options = { maxRetriesPerRequest: 1, connectTimeout: 5000, commandTimeout: 30_000, lazyConnect: true, retryStrategy: () => null } as const;
  let redis: Redis;
  let where: string;
  const shared = sharedRedis(config);
  if (shared) {
    await shared.check();
    redis = shared.open({ ...options, sentinelRetryStrategy: () => null });
    where = shared.where;
  } else {
    const socket = join(config.home, 'redis', 'redis.sock');
    if (!existsSync(socket)) throw new ConfigError(`REDIS_URL is not set, and no "cldpd up" runs here (no ${socket}). Set REDIS_URL (or REDIS_SENTINELS) to the Redis the workers share.`);
    redis = new Redis({ path: socket, ...options });
    where = socket;
  }
  redis.on('error', () => undefined); // said by the caller, once
  try {
    await redis.connect();
  } catch (err) {
    redis.disconnect();
    throw new Error(`Redis at ${where} does not answer (${(err as Error).message}). Start it, or fix ${shared?.setting ?? 'REDIS_URL'}.`);
  }
  return { redis, where };
}
