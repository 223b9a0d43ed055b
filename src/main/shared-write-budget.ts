import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { bucketCapacity, tokenBudget, type BudgetObserver, type WriteBudget } from '../github/write-budget-policy.js';
import { redisBuckets } from '../queue/redis-write-buckets.js';

/** The deployment's GitHub write budget: one bucket per installation in the shared Redis; `observer` is told of writes it held back. */
export function sharedWriteBudget(redis: Redis, config: Config, logger: Logger, observer?: BudgetObserver): WriteBudget {
  const perMinute = config.githubWritesPerMinute;
  return tokenBudget(redisBuckets(redis, perMinute, bucketCapacity(perMinute)), (err) => logger.warn({ err }, 'the GitHub write budget is unavailable'), observer);
}
