import { Redis, type RedisOptions } from 'ioredis';
import type { Config, RedisSentinelConfig } from '../config.js';

/**
 * The Redis the deployment shares, as every process reaches it: `REDIS_URL` (one server), or
 * the sentinels of `REDIS_SENTINELS` (whichever server they say is the primary, now and after
 * a failover). The one place a connection to it is built: serve, worker, up and the operator's
 * commands all open theirs here, and BullMQ's own connections are copies of those.
 */
export interface SharedRedis {
  /** Where it is, for messages: the URL without its password, or the sentinels and the primary's name. */
  readonly where: string;
  /** The setting to fix when it does not answer. */
  readonly setting: string;
  /** A new connection with `options` on top of the shared ones. */
  open(options: RedisOptions): Redis;
  /**
   * Resolves once the sentinels name a primary; with REDIS_URL at once. Rejects with what is
   * wrong and what to do (no sentinel answers, none knows the primary's name). Resolves with
   * the sentinels that did not answer, for a warning.
   */
  check(timeoutMs?: number): Promise<{ silent: string[] }>;
}

/**
 * Reconnects (and sends the command again) on the errors of a server that is no longer the
 * primary: `READONLY` (a write reached a replica: a demoted primary, or a DNS name that still
 * points at the old one) and `UNBLOCKED` (a blocking command, BullMQ's wait for jobs, cut off
 * by the demotion). Neither ran the command, so sending it again is safe.
 */
export function reconnectOnFailover(err: Error): 2 | false {
  return /^(READONLY|UNBLOCKED)\b/.test(err.message) ? 2 : false;
}

const hidePassword = (url: string): string => url.replace(/\/\/[^@]*@/, '//***@');
const sentinelList = (s: RedisSentinelConfig): string => s.sentinels.map((x) => (x.host.includes(':') ? `[${x.host}]:${x.port}` : `${x.host}:${x.port}`)).join(',');

/** The shared Redis of `config`, or undefined when neither REDIS_URL nor REDIS_SENTINELS is set. */
export function sharedRedis(config: Pick<Config, 'redisUrl' | 'redisSentinel'>): SharedRedis | undefined {
  const sentinel = config.redisSentinel;
  if (sentinel) {
    return {
      where: `the primary "${sentinel.name}" of the sentinels ${sentinelList(sentinel)}`,
      setting: 'REDIS_SENTINELS',
      open: (options) => new Redis({
        sentinels: sentinel.sentinels.map((s) => ({ host: s.host, port: s.port })),
        name: sentinel.name,
        ...(sentinel.sentinelPassword ? { sentinelPassword: sentinel.sentinelPassword } : {}),
        ...(sentinel.password ? { password: sentinel.password } : {}),
        // Told by the sentinels of a new primary at once, rather than when the old one's
        // connection breaks: a primary cut off from the others may still be up.
        failoverDetector: true,
        // A sentinel's answer is a few bytes: one that takes long is as good as down.
        sentinelCommandTimeout: 3000,
        reconnectOnError: reconnectOnFailover,
        ...options,
      }),
      check: (timeoutMs) => checkSentinels(sentinel, timeoutMs),
    };
  }
  const url = config.redisUrl;
  if (!url) return undefined;
  return {
    where: hidePassword(url),
    setting: 'REDIS_URL',
    open: (options) => new Redis(url, { reconnectOnError: reconnectOnFailover, ...options }),
    check: async () => ({ silent: [] }),
  };
}

/**
 * Asks every sentinel where the primary is. Resolves (naming the silent ones) once one names
 * it; otherwise rejects saying which sentinels did not answer and which do not know the name.
 */
async function checkSentinels(sentinel: RedisSentinelConfig, timeoutMs = 5000): Promise<{ silent: string[] }> {
  const answers = await Promise.all(sentinel.sentinels.map(async (s) => {
    const at = `${s.host}:${s.port}`;
    const client = new Redis({
      host: s.host, port: s.port, ...(sentinel.sentinelPassword ? { password: sentinel.sentinelPassword } : {}),
      lazyConnect: true, enableReadyCheck: false, retryStrategy: () => null, maxRetriesPerRequest: 0,
      connectTimeout: timeoutMs, commandTimeout: timeoutMs, enableOfflineQueue: false,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      const primary = (await client.call('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', sentinel.name)) as [string, string] | null;
      if (primary) return { at, primary: `${primary[0]}:${primary[1]}` };
      const known = ((await client.call('SENTINEL', 'MASTERS')) as string[][]).map((fields) => fields[fields.indexOf('name') + 1]);
      return { at, unknown: known };
    } catch (err) {
      return { at, error: (err as Error).message };
    } finally {
      client.disconnect();
    }
  }));
  const silent = answers.flatMap((a) => ('error' in a ? [`${a.at} (${a.error})`] : []));
  if (answers.some((a) => 'primary' in a)) return { silent };
  const strangers = answers.flatMap((a) => ('unknown' in a ? [a] : []));
  if (strangers.length > 0) {
    const names = [...new Set(strangers.flatMap((a) => a.unknown ?? []))];
    throw new Error(`The sentinels ${strangers.map((a) => a.at).join(', ')} know no primary named "${sentinel.name}" (they know ${names.length > 0 ? names.map((n) => `"${n}"`).join(', ') : 'none'}). Set REDIS_SENTINEL_NAME to the name of their "sentinel monitor <name> …" line.`);
  }
  throw new Error(`No sentinel of REDIS_SENTINELS answers: ${silent.join('; ')}. Start them, or fix REDIS_SENTINELS (host:port of each sentinel, separated by commas; REDIS_SENTINEL_PASSWORD when they ask for a password).`);
}

/**
 * Whether the writes made so far on `redis` are on a replica too: Redis's WAIT for one
 * replica, up to `timeoutMs`. Behind Sentinel a write the primary took but no replica did is
 * lost when the primary dies, so what cldpd acknowledges to the outside (a webhook delivery,
 * which GitHub does not send again) waits for this first. Resolves false at once when the
 * primary has no replica connected (WAIT would hold the connection, and every command queued
 * behind it, for the whole timeout), and false when none confirmed in time.
 */
export async function onAReplica(redis: Redis, timeoutMs: number): Promise<boolean> {
  const role = (await redis.call('ROLE')) as [string, number, unknown[]?];
  if (role[0] !== 'master' || (role[2]?.length ?? 0) === 0) return false;
  return ((await redis.call('WAIT', '1', String(timeoutMs))) as number) >= 1;
}
