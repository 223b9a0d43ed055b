import type { Redis } from 'ioredis';
import { deliveryClaimKeyName } from './issue-keys.js';

/** The drain's claim on a resume: run it, unless a live delivery claimed it first. */
const DRAIN_CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then redis.call('SET', KEYS[1], 'run', 'EX', 2592000) return 'run' end
return v`;

/** Extends a delivery claim while it is still pending. */
const RENEW_PENDING = `
if redis.call('GET', KEYS[1]) == 'pending' then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0`;

/**
 * Who has each queued resume (`…:deliver:<seq>` = pending | delivered | run): a delivery into
 * the running agent, or the drain. Either one takes it, never both, never neither.
 */
export class DeliveryClaims {
  constructor(private readonly redis: Redis) {}

  /**
   * Claims resume `seq` for delivery into the running agent, for `ttlMs` (a delivery that
   * dies half-way gives the command back to the drain then). False when the drain took it
   * or another delivery holds it. Keys: `…:deliver:<seq>` = pending | delivered | run.
   */
  async claimDelivery(issueKey: string, seq: number, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(deliveryClaimKeyName(issueKey, seq), 'pending', 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Keeps a pending delivery claim of resume `seq` for another `ttlMs`. */
  async renewDelivery(issueKey: string, seq: number, ttlMs: number): Promise<void> {
    await this.redis.eval(RENEW_PENDING, 1, deliveryClaimKeyName(issueKey, seq), String(ttlMs));
  }

  /** Where resume `seq` stands: `pending`, `delivered`, `run` (the drain's), or undefined (nobody's yet). */
  async deliveryState(issueKey: string, seq: number): Promise<string | undefined> {
    return (await this.redis.get(deliveryClaimKeyName(issueKey, seq))) ?? undefined;
  }

  /** Records that resume `seq` went into the running agent: the drain skips it. */
  async markDelivered(issueKey: string, seq: number): Promise<void> {
    await this.redis.set(deliveryClaimKeyName(issueKey, seq), 'delivered', 'EX', 30 * 24 * 3600);
  }

  /** Gives resume `seq` back to the drain after a delivery that did not happen. */
  async unclaimDelivery(issueKey: string, seq: number): Promise<void> {
    await this.redis.del(deliveryClaimKeyName(issueKey, seq));
  }

  /**
   * The drain's turn at resume `seq`: `run` (it is the drain's now), `delivered` (it went
   * into the running agent: skip it), or `pending` (a delivery is under way: ask again).
   */
  async drainClaim(issueKey: string, seq: number): Promise<'run' | 'delivered' | 'pending'> {
    const value = String(await this.redis.eval(DRAIN_CLAIM, 1, deliveryClaimKeyName(issueKey, seq)));
    return value === 'delivered' || value === 'pending' ? value : 'run';
  }
}
