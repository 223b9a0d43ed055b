import type { Redis } from 'ioredis';
import { issueKeyName } from './issue-keys.js';
import { KEY_PREFIX } from './names.js';

/**
 * What the intake step remembers so a retried or replayed delivery does what it did once:
 * deliveries handled (`cldpd:handled:…`) and replied to (`cldpd:replied:…`), the seq each was
 * given (`cldpd:delivery:…`), each command's status comment (`…:status:<seq>`), and the
 * allowance of refusals (`…:refused:<login>`, `cldpd:refusals:…`).
 */
export class IntakeLedger {
  constructor(private readonly redis: Redis) {}

  /**
   * Whether delivery `key` (the hash of its signed body) was handled; with `mark`, records
   * that it was, for 8 days: longer than the 7 days after which its event is too old to act
   * on (MAX_EVENT_AGE_MS), so a replay meets one or the other.
   */
  async handled(key: string, mark = false): Promise<boolean> {
    const name = `${KEY_PREFIX}:handled:${key}`;
    if (mark) {
      await this.redis.set(name, '1', 'EX', 8 * 24 * 3600);
      return true;
    }
    return (await this.redis.exists(name)) === 1;
  }

  /** Whether a reply to delivery `id` was posted; with `mark`, records that it was. */
  async replied(id: string, mark = false): Promise<boolean> {
    const key = `${KEY_PREFIX}:replied:${id}`;
    if (mark) {
      await this.redis.set(key, '1', 'EX', 7 * 24 * 3600);
      return true;
    }
    return (await this.redis.exists(key)) === 1;
  }

  /**
   * Claims `what` (such as a review, which two deliveries may bring) for delivery `deliveryId`
   * for 8 days: true for the first delivery to ask and for it again (a retried intake), false
   * for any other.
   */
  async claimFor(what: string, deliveryId: string): Promise<boolean> {
    const key = `${KEY_PREFIX}:claim:${what}`;
    if ((await this.redis.set(key, deliveryId, 'EX', 8 * 24 * 3600, 'NX')) === 'OK') return true;
    return (await this.redis.get(key)) === deliveryId;
  }

  /** The seq a delivery was given, so a retried intake reuses it; sets it when `seq` is given. */
  async deliverySeq(deliveryId: string, seq?: number): Promise<number | undefined> {
    const key = `${KEY_PREFIX}:delivery:${deliveryId}`;
    if (seq !== undefined) {
      const set = await this.redis.set(key, String(seq), 'EX', 7 * 24 * 3600, 'NX');
      if (set === 'OK') return seq;
    }
    const value = await this.redis.get(key);
    return value ? Number(value) : undefined;
  }

  /** Remembers the status comment of a command, so a retried intake edits it instead of posting again. */
  async statusComment(issueKey: string, seq: number, commentId?: number): Promise<number | undefined> {
    const key = `${issueKeyName(issueKey, 'status')}:${seq}`;
    if (commentId !== undefined) {
      await this.redis.set(key, String(commentId), 'EX', 30 * 24 * 3600);
      return commentId;
    }
    const value = await this.redis.get(key);
    return value ? Number(value) : undefined;
  }

  /**
   * Whether a refusal to `login` on the issue may be posted: not when one was posted to
   * them on this issue within `quietSeconds`, nor past `perHour` refusals of the
   * installation this hour. Counts the refusal when it may; the same delivery asking again
   * (a retried intake) is answered as the first time.
   */
  async allowRefusal(deliveryId: string, installationId: number, issueKey: string, login: string, limits: { quietSeconds: number; perHour: number }): Promise<boolean> {
    const person = `${issueKeyName(issueKey, 'refused')}:${login.toLowerCase()}`;
    const decided = await this.redis.get(person);
    // A retried intake of the same delivery gets the answer it got the first time.
    if (decided) return decided === `${deliveryId} yes`;
    const hour = `${KEY_PREFIX}:refusals:${installationId}:${Math.floor(Date.now() / 3600_000)}`;
    const [[, count]] = (await this.redis.multi().incr(hour).expire(hour, 3700).exec()) as [[Error | null, number]];
    const yes = count <= limits.perHour;
    const answer = `${deliveryId} ${yes ? 'yes' : 'no'}`;
    // A "no" for want of allowance lasts only until the hour's allowance is new again.
    const seconds = yes ? limits.quietSeconds : 3600 - (Math.floor(Date.now() / 1000) % 3600);
    if ((await this.redis.set(person, answer, 'EX', seconds, 'NX')) === 'OK') return yes;
    return (await this.redis.get(person)) === `${deliveryId} yes`;
  }
}
