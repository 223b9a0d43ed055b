import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './names.js';

/**
 * Takes a write from one installation's bucket on Redis's clock, not the callers': hosts
 * whose clocks disagree still share it fairly. Returns 0 when a write was taken, else the
 * ms until one is free. A bucket nobody used (or that expired) is full.
 */
const TAKE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'last')
local tokens = tonumber(b[1]) or capacity
local last = tonumber(b[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - last) * rate / 60000)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) * 60000 / rate) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'last', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity * 60000 / rate) + 60000)
return wait
`;

/** How long a budget call may wait for Redis before it counts as unreachable. */
const REDIS_TIMEOUT_MS = 2_000;

/**
 * Token buckets of GitHub writes, one per installation, kept in Redis so that every server
 * and worker of a deployment draws on the same one. Fits github's TakeOrWait: resolves with
 * 0 when a write was taken, else the ms until one is free; rejects when Redis does not
 * answer within 2 s (ioredis would otherwise queue the call until it reconnects).
 */
export function redisBuckets(redis: Redis, perMinute: number, capacity: number): (installationId: number) => Promise<number> {
  return async (installationId) => {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the write budget within ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS);
    });
    try {
      return Number(await Promise.race([redis.eval(TAKE, 1, `${KEY_PREFIX}:github-writes:${installationId}`, perMinute, capacity), timeout]));
    } finally {
      clearTimeout(timer);
    }
  };
}
