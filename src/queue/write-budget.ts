import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './names.js';

/**
 * The token bucket of one installation's GitHub writes, kept in Redis so that every server
 * and worker of a deployment draws on one budget. Redis's clock, not the callers': hosts
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

/** How long a budget call may wait for Redis before the write goes ahead without it. */
const REDIS_TIMEOUT_MS = 2_000;

/**
 * The WriteBudget shared by all processes through Redis (it fits github's WriteBudget).
 * When Redis does not answer, progress edits are skipped and writes that must land go
 * ahead: the budget protects GitHub's limits, it must never keep an outcome off an issue.
 */
export class RedisWriteBudget {
  constructor(
    private readonly redis: Redis,
    private readonly perMinute: number,
    private readonly capacity: number,
    private readonly onError: (err: unknown) => void = () => undefined,
  ) {}

  private async takeOrWait(installationId: number): Promise<number> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer the write budget within ${REDIS_TIMEOUT_MS} ms`)), REDIS_TIMEOUT_MS);
    });
    try {
      return Number(await Promise.race([this.redis.eval(TAKE, 1, `${KEY_PREFIX}:github-writes:${installationId}`, this.perMinute, this.capacity), timeout]));
    } finally {
      clearTimeout(timer);
    }
  }

  async tryTake(installationId: number): Promise<boolean> {
    try {
      return (await this.takeOrWait(installationId)) === 0;
    } catch (err) {
      this.onError(err);
      return false;
    }
  }

  async take(installationId: number): Promise<void> {
    for (;;) {
      let wait: number;
      try {
        wait = await this.takeOrWait(installationId);
      } catch (err) {
        this.onError(err);
        return;
      }
      if (wait === 0) return;
      await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 10)));
    }
  }
}
