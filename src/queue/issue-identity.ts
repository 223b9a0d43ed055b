import type { Redis } from 'ioredis';
import { issueKeyOf, type IssueRef } from './contract.js';
import { issueKeyName } from './issue-keys.js';
import type { IssueRecords } from './issue-record.js';
import { KEY_PREFIX } from './names.js';

/**
 * Which key an issue's state is kept under: its own (`owner.repo-n`), the one it was
 * transferred from (`cldpd:alias:{key}`), or its key from before keys took that form; and the
 * repository its session began in (`cldpd:origin:{key}`).
 */
export class IssueIdentity {
  constructor(private readonly redis: Redis, private readonly records: Pick<IssueRecords, 'get'>) {}

  /**
   * The key an issue's state is kept under: its own; the one of the place it was transferred
   * from; or, for an issue cldpd worked on before keys became `owner.repo-n`, its old
   * `owner-repo-n` key when the record there is provably this issue's (its status comment's
   * URL is on this issue), which is then remembered as an alias.
   */
  async keyFor(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>): Promise<string> {
    const key = issueKeyOf(issue);
    const aliased = await this.alias(key);
    if (aliased) return aliased;
    const legacy = `${issue.owner}-${issue.repo}-${issue.number}`.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
    if (legacy === key || (await this.redis.exists(issueKeyName(key))) === 1) return key;
    const old = await this.records.get(legacy);
    const path = `/${issue.owner}/${issue.repo}/issues/${issue.number}`.toLowerCase();
    const mine = (old.lastStatusUrl ?? '').toLowerCase().split('#')[0]?.endsWith(path) === true;
    if (!old.sessionId || !mine) return key;
    await this.alias(key, legacy);
    return legacy;
  }

  /**
   * The key an issue's state is kept under when it was transferred from elsewhere; with
   * `target`, records that `issueKey` is reached at `target` (kept a year).
   */
  async alias(issueKey: string, target?: string): Promise<string | undefined> {
    const name = `${KEY_PREFIX}:alias:${issueKey}`;
    if (target !== undefined) {
      if (target !== issueKey) await this.redis.set(name, target, 'EX', 366 * 24 * 3600);
      return target;
    }
    return (await this.redis.get(name)) ?? undefined;
  }

  /**
   * The repository an issue's session was started in, when the issue was transferred here
   * from it (first one of a chain); with `from`, records it.
   */
  async transferredFrom(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>, from?: { owner: string; repo: string }): Promise<{ owner: string; repo: string } | undefined> {
    const name = `${KEY_PREFIX}:origin:${issueKeyOf(issue)}`;
    if (from) {
      await this.redis.set(name, JSON.stringify({ owner: from.owner, repo: from.repo }), 'EX', 366 * 24 * 3600);
      return from;
    }
    const value = await this.redis.get(name);
    return value ? (JSON.parse(value) as { owner: string; repo: string }) : undefined;
  }
}
