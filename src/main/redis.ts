import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import { within } from '../core/within.js';
import { sharedRedis } from './redis-connection.js';

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
 * Resolves once Redis answers a PING. Rejects at once, naming the connection's state, while
 * the connection is down: ioredis would otherwise hold the PING until it is back.
 */
export async function redisAnswers(redis: Redis): Promise<void> {
  if (redis.status !== 'ready') throw new Error(`connection is ${redis.status}`);
  await redis.ping();
}

/**
 * Connects to the shared Redis (`REDIS_URL`, or through the sentinels of `REDIS_SENTINELS`:
 * see sharedRedis), or — for the single-machine default — starts and supervises a
 * redis-server of its own: data under `<home>/redis` with AOF on, `noeviction`, reached
 * over a Unix socket so no port can clash. Closing stops what it started.
 */
export async function openRedis(config: Config, logger: Logger, options: { ownServer: boolean }): Promise<RedisHandle> {
  const shared = sharedRedis(config);
  if (shared || !options.ownServer) {
    if (!shared) throw new Error('REDIS_URL is not set: point it at the Redis server the workers share (redis://host:6379), or set REDIS_SENTINELS and REDIS_SENTINEL_NAME.');
    const { silent } = await shared.check();
    if (silent.length > 0) logger.warn({ silent }, 'some sentinels of REDIS_SENTINELS do not answer: a failover needs a majority of them; start them, or fix REDIS_SENTINELS');
    const redis = shared.open({ maxRetriesPerRequest: null });
    redis.on('error', (err) => logger.warn({ err: err.message }, 'redis connection error'));
    redis.on('sentinelError', (err: Error) => logger.warn({ err: err.message }, 'a sentinel of REDIS_SENTINELS does not answer'));
    await ping(redis, 15_000).catch((err: unknown) => {
      redis.disconnect();
      throw new Error(`Redis at ${shared.where} does not answer (${(err as Error).message}). Start it, or fix ${shared.setting}.`);
    });
    // A replica refuses every write, and the reconnect on READONLY would only find it again.
    // (A provider that renamed ROLE away is taken at its word.)
    const role = (await redis.call('ROLE').catch(() => ['unknown'])) as [string, string?, number?];
    if (role[0] === 'slave') {
      redis.disconnect();
      throw new Error(`Redis at ${shared.where} is a replica (of ${role[1]}:${role[2]}), which takes no writes. Point REDIS_URL at the primary, or set REDIS_SENTINELS to follow whichever server is the primary.`);
    }
    return { redis, close: async () => void (await redis.quit().catch(() => redis.disconnect())) };
  }
  const dir = join(config.home, 'redis');
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const socket = join(dir, 'redis.sock');
  await claimRedisDir(dir, logger);
  const child: ChildProcess = spawn('redis-server', [
    '--port', '0', '--unixsocket', socket, '--unixsocketperm', '700', '--dir', dir, '--pidfile', join(dir, 'redis.pid'),
    '--appendonly', 'yes', '--maxmemory-policy', 'noeviction', '--save', '',
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let closing = false;
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  void exited.then((code) => {
    if (closing) return;
    // Without its Redis this process can do nothing: say so and shut down rather than wait.
    logger.error({ code, stderr: stderr.trim().slice(-500) }, 'cldpd\'s own redis-server exited; shutting down');
    process.kill(process.pid, 'SIGTERM');
  });
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
    closing = true;
    child.kill();
    redis.disconnect();
    await rm(join(dir, OWNER_FILE), { force: true });
    const missing = (err as NodeJS.ErrnoException).code === 'ENOENT' || /ENOENT/.test(String(err));
    throw new Error(missing
      ? 'redis-server is not installed: run scripts/setup.sh (or install it), or set REDIS_URL to a Redis server.'
      : `cldpd could not start its own redis-server: ${(err as Error).message}`);
  }
  logger.info({ socket }, 'started redis-server (AOF on, noeviction)');
  return {
    redis,
    close: async () => {
      closing = true;
      await within(2000, redis.quit()).catch(() => undefined);
      redis.disconnect();
      child.kill('SIGTERM');
      // redis-server defers SIGTERM while it loads a large AOF: do not wait for it forever.
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
      await rm(join(dir, OWNER_FILE), { force: true });
    },
  };
}

/** The file in cldpd's Redis folder naming the cldpd process that runs that Redis. */
const OWNER_FILE = 'cldpd.pid';

/** The command line of a live process, or undefined when there is none with that pid (or it is a zombie). */
function commandLine(pid: number): string | undefined {
  try {
    if (/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))) return undefined;
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ');
  } catch {
    if (existsSync('/proc/self/stat')) return undefined;
    try {
      process.kill(pid, 0);
      return ''; // alive, command line unknown (not Linux)
    } catch {
      return undefined;
    }
  }
}

function pidIn(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Makes the Redis folder this process's. Another live cldpd running its Redis there is an
 * error (two would share one queue under one host id). A redis-server left by a cldpd that
 * was killed (SIGKILL gives it no chance to stop its child) is stopped first — SIGTERM, which
 * it honours even while loading its AOF, then SIGKILL — so two servers never write one folder.
 */
async function claimRedisDir(dir: string, logger: Logger): Promise<void> {
  const owner = pidIn(join(dir, OWNER_FILE));
  if (owner !== undefined && owner !== process.pid) {
    const cmd = commandLine(owner);
    if (cmd !== undefined && (cmd === '' || /cldpd(\.js)? up\b/.test(cmd))) {
      throw new Error(`Another cldpd (pid ${owner}) runs its own Redis in ${dir}. Stop it first, or give this one its own CLDPD_HOME.`);
    }
  }
  const leftover = pidIn(join(dir, 'redis.pid'));
  if (leftover !== undefined && /redis-server/.test(commandLine(leftover) ?? '')) {
    logger.warn({ pid: leftover }, 'a redis-server left by an earlier cldpd that did not shut down is still running; stopping it');
    process.kill(leftover, 'SIGTERM');
    for (let i = 0; commandLine(leftover) !== undefined; i++) {
      if (i === 100) process.kill(leftover, 'SIGKILL');
      if (i > 150) throw new Error(`The redis-server left in ${dir} (pid ${leftover}) does not stop. Stop it, then start cldpd again.`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await writeFile(join(dir, OWNER_FILE), `${process.pid}\n`, { mode: 0o600 });
}
