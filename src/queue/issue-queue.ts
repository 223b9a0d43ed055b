import type { Redis } from 'ioredis';
import type { RunCommand } from './contract.js';
import { deliveryClaimKeyName, issueKeyName } from './issue-keys.js';
import type { QueueSnapshot } from './queue-position.js';

/** KEYS: runs list, positions hash, issue hash. ARGV: the command's JSON, its seq. */
const DONE = `
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[3], 'running') == ARGV[2] then redis.call('HSET', KEYS[3], 'running', '0', 'runningCommand', '') end
return 1`;

const RELEASE_IF_EMPTY = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Appends a command unless this seq is already queued or was handled (at-least-once intake). */
const APPEND = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], 2592000)
redis.call('RPUSH', KEYS[1], ARGV[2])
return redis.call('LLEN', KEYS[1])`;

/**
 * Each issue's queue of run commands (`…:runs`, a list; `…:seen`, the seqs ever queued),
 * drained by one worker at a time under the issue's lock (`…:lock`), and the queue position
 * each waiting command's status comment shows (`…:positions`).
 */
export class IssueQueue {
  constructor(private readonly redis: Redis) {}

  /**
   * Queues a command for the issue; idempotent per seq. Resolves with the issue's queue
   * length after the append, or 0 when this seq was queued before.
   */
  async append(command: RunCommand): Promise<number> {
    const result = await this.redis.eval(APPEND, 2, issueKeyName(command.issueKey, 'runs'), issueKeyName(command.issueKey, 'seen'), String(command.seq), JSON.stringify(command));
    return Number(result);
  }

  /** The command at the head of the issue's queue, if any. */
  async head(issueKey: string): Promise<RunCommand | undefined> {
    const text = await this.redis.lindex(issueKeyName(issueKey, 'runs'), 0);
    return text ? (JSON.parse(text) as RunCommand) : undefined;
  }

  /** Commands waiting for the issue, the running one included. */
  pending(issueKey: string): Promise<number> {
    return this.redis.llen(issueKeyName(issueKey, 'runs'));
  }

  /** The commands queued for the issue, the running one included, oldest first. */
  async commands(issueKey: string): Promise<RunCommand[]> {
    return (await this.redis.lrange(issueKeyName(issueKey, 'runs'), 0, -1)).map((text) => JSON.parse(text) as RunCommand);
  }

  /** Removes a handled command from the head of the queue. */
  async done(command: RunCommand): Promise<void> {
    // One step with "nothing runs": a crash between a run's final comment and this leaves
    // the command both queued and on record as running, so the next drainer recovers it
    // (its end is in the log: the final is written again, nothing runs twice). Only this
    // command's own record is cleared: another's (a host released meanwhile) is left alone.
    await this.redis.eval(DONE, 3, issueKeyName(command.issueKey, 'runs'), issueKeyName(command.issueKey, 'positions'), issueKeyName(command.issueKey), JSON.stringify(command), String(command.seq));
  }

  /** Everything the queue positions of the issue's commands are computed from, read at once. */
  async queueSnapshot(issueKey: string): Promise<QueueSnapshot<RunCommand>> {
    const [[, texts], [, fields], [, shown]] = (await this.redis.multi()
      .lrange(issueKeyName(issueKey, 'runs'), 0, -1)
      .hmget(issueKeyName(issueKey), 'running', 'stoppedSeq')
      .hgetall(issueKeyName(issueKey, 'positions'))
      .exec()) as [[Error | null, string[]], [Error | null, Array<string | null>], [Error | null, Record<string, string>]];
    const commands = texts.map((text) => JSON.parse(text) as RunCommand);
    const resumes = commands.filter((c) => c.kind === 'resume');
    const claims = resumes.length > 0 ? await this.redis.mget(resumes.map((c) => deliveryClaimKeyName(issueKey, c.seq))) : [];
    const deliveries = new Map<number, 'pending' | 'delivered'>();
    resumes.forEach((c, i) => {
      const claim = claims[i];
      if (claim === 'pending' || claim === 'delivered') deliveries.set(c.seq, claim);
    });
    return {
      commands,
      running: Number(fields[0] ?? 0),
      stoppedSeq: Number(fields[1] ?? 0),
      deliveries,
      shown: new Map(Object.entries(shown).map(([seq, position]) => [Number(seq), Number(position)])),
    };
  }

  /** Records the queue position command `seq`'s status comment shows (kept 30 days at most; dropped when the command is done). */
  async showPosition(issueKey: string, seq: number, position: number): Promise<void> {
    const key = issueKeyName(issueKey, 'positions');
    await this.redis.multi().hset(key, String(seq), String(position)).expire(key, 30 * 24 * 3600).exec();
  }

  /**
   * Whether `command` still waits behind another of its issue's commands: queued and not
   * first, not running, not cancelled by a stop, and not being delivered into (or taken by)
   * the running agent. Checked right before its status comment is rendered as queued.
   */
  async waiting(command: RunCommand): Promise<boolean> {
    const [[, index], [, fields], [, claim]] = (await this.redis.multi()
      .lpos(issueKeyName(command.issueKey, 'runs'), JSON.stringify(command))
      .hmget(issueKeyName(command.issueKey), 'running', 'stoppedSeq')
      .get(deliveryClaimKeyName(command.issueKey, command.seq))
      .exec()) as [[Error | null, number | null], [Error | null, Array<string | null>], [Error | null, string | null]];
    return typeof index === 'number' && index > 0 && Number(fields[0] ?? 0) !== command.seq && command.seq > Number(fields[1] ?? 0)
      && claim !== 'pending' && claim !== 'delivered';
  }

  /** Takes the issue's drain lock for `ttlMs`; false when another live drainer has it. */
  async lock(issueKey: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(issueKeyName(issueKey, 'lock'), token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Whether a drainer holds the issue's lock now (its runs are being taken one after the other). */
  async draining(issueKey: string): Promise<boolean> {
    return (await this.redis.exists(issueKeyName(issueKey, 'lock'))) === 1;
  }

  /** Extends the lock; false when it was lost. */
  async renew(issueKey: string, token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, issueKeyName(issueKey, 'lock'), token, String(ttlMs))) === 1;
  }

  /**
   * Releases the lock only if the queue is empty, atomically, so a command appended at the
   * last moment is never stranded: false means "more to do, keep draining".
   */
  async releaseIfEmpty(issueKey: string, token: string): Promise<boolean> {
    return Number(await this.redis.eval(RELEASE_IF_EMPTY, 2, issueKeyName(issueKey, 'lock'), issueKeyName(issueKey, 'runs'), token)) !== 0;
  }

  /** Releases the lock unconditionally (when this drainer hands the issue to another host). */
  async release(issueKey: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, issueKeyName(issueKey, 'lock'), token);
  }
}
