import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { until } from '../integration/harness.js';
import { freePort } from './processes.js';

/** The master name the test's sentinels monitor the primary under. */
export const PRIMARY_NAME = 'cldpd-test';

/** One redis-server (a data node, or a sentinel) started by a test, its output in a log file. */
export class RedisProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<void>;

  constructor(readonly port: number, args: string[], logFile: string) {
    const log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.pipe(log);
    this.child.stderr?.pipe(log);
    this.exited = new Promise((resolve) => this.child.once('exit', () => resolve()));
  }

  /** A connection to it that gives up at once while it is down (for the test's own questions). */
  client(): Redis {
    const redis = new Redis({ host: '127.0.0.1', port: this.port, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 2000 });
    redis.on('error', () => undefined);
    return redis;
  }

  /** Runs `command` on it over a connection of its own; rejects when it does not answer. */
  async ask(...command: string[]): Promise<unknown> {
    const redis = this.client();
    try {
      await redis.connect();
      return await redis.call(command[0] as string, ...command.slice(1));
    } finally {
      redis.disconnect();
    }
  }

  /** Resolves once it answers PING; fails after `timeoutMs`. */
  async answering(timeoutMs = 15_000): Promise<void> {
    await until(`redis-server on port ${this.port}`, async () => (await this.ask('PING').catch(() => '')) === 'PONG', timeoutMs);
  }

  /** Stops it with `signal` (SIGKILL: it dies mid-write, as a crashed server does) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    await this.exited;
  }
}

/** A primary, a replica and three sentinels on free ports, data under `dir`: what a Sentinel deployment of cldpd runs on. */
export class SentinelSet {
  primary!: RedisProcess;
  replica!: RedisProcess;
  readonly sentinels: RedisProcess[] = [];
  /**
   * A data node's arguments: on `port`, data in `dir`. Replicas authenticate as user `repl`,
   * so a test can cut one off (that user turned off on the primary) while clients go on.
   */
  static dataNodeArgs(port: number, dir: string): string[] {
    return ['--port', String(port), '--dir', dir, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction',
      '--user', 'repl', 'on', '>repl-secret', '+@all', '~*', '--masteruser', 'repl', '--masterauth', 'repl-secret'];
  }

  constructor(private readonly dir: string) {}

  /** `REDIS_SENTINELS` for them. */
  get setting(): string {
    return this.sentinels.map((s) => `127.0.0.1:${s.port}`).join(',');
  }

  /**
   * Starts them and resolves once every sentinel knows the replica and the two other
   * sentinels and says the quorum is reachable: only then can a failover happen.
   */
  async start(): Promise<this> {
    if (spawnSync('redis-server', ['--version']).error) {
      throw new Error('redis-server is not installed: run "apt-get install -y redis-server" (.ci/run installs it); the Sentinel failover suite starts its own primary, replica and sentinels.');
    }
    const [p1, p2] = [await freePort(), await freePort()];
    for (const name of ['primary', 'replica', 's1', 's2', 's3']) await mkdir(join(this.dir, name), { recursive: true });
    this.primary = new RedisProcess(p1, SentinelSet.dataNodeArgs(p1, join(this.dir, 'primary')), join(this.dir, 'primary.log'));
    this.replica = new RedisProcess(p2, [...SentinelSet.dataNodeArgs(p2, join(this.dir, 'replica')), '--replicaof', '127.0.0.1', String(p1)], join(this.dir, 'replica.log'));
    await this.primary.answering();
    await this.replica.answering();
    await until('the replica to replicate from the primary', async () => {
      const role = (await this.replica.ask('ROLE').catch(() => [])) as unknown[];
      return role[0] === 'slave' && role[3] === 'connected';
    }, 15_000);
    for (const name of ['s1', 's2', 's3']) {
      const port = await freePort();
      const conf = join(this.dir, name, 'sentinel.conf');
      // Short timeouts: a primary that does not answer for 2 s is down, a failover is retried after 4 s.
      await writeFile(conf, [
        `port ${port}`, 'bind 127.0.0.1', `dir ${join(this.dir, name)}`,
        `sentinel monitor ${PRIMARY_NAME} 127.0.0.1 ${p1} 2`,
        `sentinel down-after-milliseconds ${PRIMARY_NAME} 2000`,
        `sentinel failover-timeout ${PRIMARY_NAME} 4000`,
        `sentinel parallel-syncs ${PRIMARY_NAME} 1`, '',
      ].join('\n'));
      this.sentinels.push(new RedisProcess(port, [conf, '--sentinel'], join(this.dir, `${name}.log`)));
    }
    for (const s of this.sentinels) await s.answering();
    await until('three sentinels that know the replica and each other', async () => {
      for (const s of this.sentinels) {
        const replicas = (await s.ask('SENTINEL', 'REPLICAS', PRIMARY_NAME).catch(() => [])) as unknown[];
        const others = (await s.ask('SENTINEL', 'SENTINELS', PRIMARY_NAME).catch(() => [])) as unknown[];
        const quorum = await s.ask('SENTINEL', 'CKQUORUM', PRIMARY_NAME).catch(() => '');
        if (replicas.length !== 1 || others.length !== 2 || !String(quorum).startsWith('OK')) return false;
      }
      return true;
    }, 30_000);
    return this;
  }

  /** Where the sentinels say the primary is now: the port every sentinel names, or undefined while they differ. */
  async primaryPort(): Promise<number | undefined> {
    const named = await Promise.all(this.sentinels.map(async (s) => ((await s.ask('SENTINEL', 'GET-MASTER-ADDR-BY-NAME', PRIMARY_NAME).catch(() => null)) as [string, string] | null)?.[1]));
    return named.every((p) => p !== undefined && p === named[0]) ? Number(named[0]) : undefined;
  }

  /** Stops everything still running (SIGKILL: nothing of theirs is kept). */
  async stop(): Promise<void> {
    await Promise.all([...this.sentinels, this.primary, this.replica].filter(Boolean).map((p) => p.stop('SIGKILL')));
  }
}
