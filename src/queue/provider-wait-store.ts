import type { Redis } from 'ioredis';
import { issueKeyName } from './issue-keys.js';
import { KEY_PREFIX } from './names.js';

/**
 * KEYS: the wait's marker, issue hash. ARGV: ttl seconds, the waiting command's seq. The seq
 * of the run that continues after a provider wait: one, however often it is asked, and
 * always after the command's own.
 */
const WAIT_SEQ = `
local seq = redis.call('GET', KEYS[1])
if seq then return tonumber(seq) end
seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
if seq <= tonumber(ARGV[2]) then
  seq = tonumber(ARGV[2]) + 1
  redis.call('HSET', KEYS[2], 'seq', seq)
end
redis.call('SET', KEYS[1], seq, 'EX', tonumber(ARGV[1]))
return seq`;

/**
 * KEYS: a credential's provider wait, the issues parked on it. ARGV: when the answered run
 * began. Removes a wait last recorded before then, and hands out the parked issues.
 */
const PROVIDER_ACCEPTED = `
local v = redis.call('GET', KEYS[1])
if v then
  local since = tonumber(string.match(v, ':(%d+)$') or '0')
  if since >= tonumber(ARGV[1]) then return {} end
  redis.call('DEL', KEYS[1])
end
local parked = redis.call('SMEMBERS', KEYS[2])
redis.call('DEL', KEYS[2])
return parked`;

/** KEYS: a credential's provider wait. ARGV: until when it refuses, now. Keeps the later end, and notes when it was last said. */
const PROVIDER_REFUSES = `
local v = redis.call('GET', KEYS[1])
local known = v and tonumber(string.match(v, '^(%d+)')) or 0
local untilAt = math.max(known, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], string.format('%d:%d', untilAt, tonumber(ARGV[2])), 'PX', untilAt - tonumber(ARGV[2]))
return untilAt`;

/**
 * The model provider's refusals per credential (`cldpd:provider-wait:<credential>`: until
 * when, and when it was said), the issues parked on each (`cldpd:provider-parked:…`), and the
 * one seq of the run that continues a command after its wait (`…:wait:<seq>`).
 */
export class ProviderWaitStore {
  constructor(private readonly redis: Redis) {}

  /**
   * The seq of the run that continues command `seq` of the issue after a provider wait: the
   * same however often it is asked (a retried job queues it once).
   */
  async waitSeq(issueKey: string, seq: number): Promise<number> {
    return Number(await this.redis.eval(WAIT_SEQ, 2, issueKeyName(issueKey, `wait:${seq}`), issueKeyName(issueKey), 30 * 86_400, seq));
  }

  /**
   * Records that the model provider refuses `credential` until `until` (ms), and when it said
   * so; a wait already recorded that lasts longer stays (a rate refusal never shortens a usage
   * limit's). A run the provider answers since clears it (providerAccepted).
   */
  async providerRefuses(credential: string, until: number): Promise<void> {
    if (until <= Date.now()) return;
    await this.redis.eval(PROVIDER_REFUSES, 1, `${KEY_PREFIX}:provider-wait:${credential}`, Math.round(until), Date.now());
  }

  /** Until when the model provider refuses `credential` (ms), if it does now. */
  async providerRefusesUntil(credential: string): Promise<number | undefined> {
    const until = Number(((await this.redis.get(`${KEY_PREFIX}:provider-wait:${credential}`)) ?? '0').split(':')[0]);
    return until > Date.now() ? until : undefined;
  }

  /** Notes that `issueKey`'s run waits for `credential`'s refusal to end (until `until`), so an answer of the provider wakes it. */
  async parkForProvider(credential: string, issueKey: string, until: number): Promise<void> {
    const key = `${KEY_PREFIX}:provider-parked:${credential}`;
    await this.redis.multi().sadd(key, issueKey).pexpireat(key, Math.round(until) + 3600_000).exec();
  }

  /**
   * The provider answered a run of `credential` that began at `at`: a refusal recorded before
   * then no longer holds. Returns the issues whose runs were held back by it, to wake now.
   */
  async providerAccepted(credential: string, at: number): Promise<string[]> {
    return (await this.redis.eval(PROVIDER_ACCEPTED, 2, `${KEY_PREFIX}:provider-wait:${credential}`, `${KEY_PREFIX}:provider-parked:${credential}`, at)) as string[];
  }
}
