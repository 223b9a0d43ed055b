import type { Redis } from 'ioredis';
import { issueKeyName } from './issue-keys.js';

/** How long a run's branch heads are kept: longer than any job of the run may be retried (failed jobs are kept 7 days). */
const RUN_HEADS_SECONDS = 8 * 86_400;

/**
 * The heads of a run's branches before it had a token (`cldpd:issue:{key}:heads:<seq>`, a
 * JSON object of branch → commit): what the run pushed is what differs from them after it, so
 * a job picked up again after its worker died (the run followed again, or found finished)
 * still compares with the heads from before the run, not with what the run pushed itself.
 * Removed with the issue's other keys when it is retired.
 */
export class RunHeads {
  constructor(private readonly redis: Redis) {}

  /**
   * Keeps `heads` as those before run `seq` of the issue, unless some were kept already (a
   * retried job): resolves with the ones kept, first come.
   */
  async keepHeadsBefore(issueKey: string, seq: number, heads: ReadonlyMap<string, string>): Promise<Map<string, string>> {
    const key = issueKeyName(issueKey, `heads:${seq}`);
    const set = await this.redis.set(key, JSON.stringify(Object.fromEntries(heads)), 'EX', RUN_HEADS_SECONDS, 'NX');
    if (set === 'OK') return new Map(heads);
    return (await this.headsBefore(issueKey, seq)) ?? new Map(heads);
  }

  /** The heads kept before run `seq` of the issue; undefined when none were (or they are unreadable). */
  async headsBefore(issueKey: string, seq: number): Promise<Map<string, string> | undefined> {
    const raw = await this.redis.get(issueKeyName(issueKey, `heads:${seq}`));
    if (!raw) return undefined;
    try {
      const parsed = JSON.parse(raw) as Record<string, unknown>;
      return new Map(Object.entries(parsed).filter((e): e is [string, string] => typeof e[1] === 'string'));
    } catch {
      return undefined;
    }
  }
}
