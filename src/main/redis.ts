import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';

/** A Redis connection for BullMQ (no per-request retry limit, as its workers need), plus what closes it. */
export interface RedisHandle {
  readonly redis: Redis;
  close(): Promise<void>;
}

async function ping(redis: Redis, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await redis.ping();
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * Connects to `REDIS_URL`, or — for the single-machine default — starts and supervises a
 * redis-server of its own: data under `<home>/redis` with AOF on, `noeviction`, reached
 * over a Unix socket so no port can clash. Closing stops what it started.
 */
export async function openRedis(config: Config, logger: Logger, options: { ownServer: boolean }): Promise<RedisHandle> {
  if (config.redisUrl || !options.ownServer) {
    const url = config.redisUrl;
    if (!url) throw new Error('REDIS_URL is not set: point it at the Redis server the workers share (redis://host:6379).');
    const redis = new Redis(url, { maxRetriesPerRequest: null });
    redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
    await ping(redis, 15_000).catch((err: unknown) => {
      redis.disconnect();
      throw new Error(`Redis at ${url.replace(/\/\/[^@]*@/, '//***@')} does not answer (${(err as Error).message}). Start it, or fix REDIS_URL.`);
    });
    return { redis, close: async () => void (await redis.quit().catch(() => redis.disconnect())) };
  }
  const dir = join(config.home, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, 'redis.sock');
  await shutDownLeftover(socket, logger);
  const child: ChildProcess = spawn('redis-server', [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir,
    '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  child.once('error', (err) => logger.error({ err }, 'redis-server could not be started'));
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()).slice(-2000));
  const redis = new Redis({ path: socket, maxRetriesPerRequest: null, lazyConnect: true });
  redis.on('error', () => undefined);
  try {
    await Promise.race([
      ping(redis, 15_000),
      exited.then((code) => {
        throw new Error(`redis-server exited (${code}) ${stderr.trim()}`);
      }),
    ]);
  } catch (err) {
    child.kill();
    redis.disconnect();
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT/.test(String(err));
    throw new Error(missing
      ? 'redis-server is not installed: run scripts/setup.sh (or install it), or set REDIS_URL to a Redis server.'
      : `cldpd could not start its own redis-server: ${(err as Error).message}`);
  }
  logger.info({ socket }, 'started redis-server (AOF on, noeviction)');
  return {
    redis,
    close: async () => {
      await Promise.race([redis.quit(), new Promise((r) => setTimeout(r, 2000))]).catch(() => undefined);
      redis.disconnect();
      child.kill('SIGTERM');
      // redis-server defers SIGTERM while it loads a large AOF: do not wait for it forever.
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}

/**
 * A redis-server answering on our socket was left by a cldpd that was killed (SIGKILL gives
 * it no chance to stop its child): shut it down cleanly (AOF flushed) before starting our
 * own, so two servers never write one data directory.
 */
async function shutDownLeftover(socket: string, logger: Logger): Promise<void> {
  if (!existsSync(socket)) return;
  const leftover = new Redis({ path: socket, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  leftover.on('error', () => undefined);
  try {
    await leftover.connect();
    await leftover.ping();
  } catch {
    leftover.disconnect();
    return; // a stale socket file: redis-server replaces it
  }
  logger.warn({ socket }, 'a redis-server left by an earlier cldpd that did not shut down is still running; stopping it');
  await leftover.call('SHUTDOWN').catch(() => undefined); // the connection closes as it exits
  leftover.disconnect();
  for (let i = 0; i < 100 && existsSync(socket); i++) await new Promise((r) => setTimeout(r, 100));
}
