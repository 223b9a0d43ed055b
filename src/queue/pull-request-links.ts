import type { Redis } from 'ioredis';
import { PULL_ISSUES_KEY, issueKeyName } from './issue-keys.js';
import { KEY_PREFIX } from './names.js';

/** A pull request, by its repository and number. */
export interface PullRef {
  readonly owner: string;
  readonly repo: string;
  readonly number: number;
}

/** What cldpd recorded of a session's pull request. */
export interface PullLink extends PullRef {
  readonly url: string;
  /** The branch it is from. */
  readonly head: string;
  /** The branch it merges into. */
  readonly base: string;
  /** The last commit a run of the session pushed to its head; a check on another commit is not the agent's. */
  readonly agentSha?: string;
  /** Whether cldpd opened it (a person or the agent did otherwise). */
  readonly opened?: boolean;
  /** The session's issue, in the pull request's repository (its number may differ from the one in the issue's key after a transfer). */
  readonly issue?: { readonly number: number; readonly url: string };
  /** When it was last recorded. */
  readonly at: number;
}


/**
 * KEYS: the issue's check-fix hash. ARGV: pull field, sha, max, claimant, the agent's last
 * commit (fixes are stopped while the `:stopped` field holds it) → {1, fix number} | {0, why}.
 */
const CLAIM_FIX = `
local held = redis.call('HGET', KEYS[1], ARGV[1] .. '@' .. ARGV[2])
if held then
  local claimant, fix = string.match(held, '^(.*) (%d+)$')
  if claimant == ARGV[4] then return {1, fix} end
  return {0, 'taken'}
end
if redis.call('HGET', KEYS[1], ARGV[1] .. ':stopped') == ARGV[5] then return {0, 'stopped'} end
local count = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':count') or '0')
if count >= tonumber(ARGV[3]) then return {0, 'spent'} end
redis.call('HSET', KEYS[1], ARGV[1] .. '@' .. ARGV[2], ARGV[4] .. ' ' .. (count + 1), ARGV[1] .. ':count', count + 1)
return {1, tostring(count + 1)}
`;

function field(pull: PullRef): string {
  return `${pull.owner}/${pull.repo}#${pull.number}`.toLowerCase();
}

/**
 * The pull requests of issues' sessions (`cldpd:pull-issues`, and each issue's `…:pulls`
 * hash): which issue a pull request belongs to, so commands and reviews on it reach that
 * issue's session, and the head its agent pushed last. Both go when the issue is retired
 * (IssueRecords.retire); a global entry whose issue hash lacks it reads as no link.
 */
export class PullRequestLinks {
  constructor(private readonly redis: Redis) {}

  /** Records `link` as a pull request of issue `issueKey`'s session; a later call updates it (an `agentSha` left out is kept). */
  async linkPull(issueKey: string, link: PullLink): Promise<void> {
    const own = issueKeyName(issueKey, 'pulls');
    const before = await this.pullOf(issueKey, link);
    const merged: PullLink = { ...before, ...link, ...(link.agentSha ?? before?.agentSha ? { agentSha: link.agentSha ?? before?.agentSha } : {}), ...(link.opened || before?.opened ? { opened: true } : {}) };
    await this.redis.multi().hset(PULL_ISSUES_KEY, field(link), issueKey).hset(own, field(link), JSON.stringify(merged)).exec();
  }

  /** The issue whose session `pull` is, when cldpd recorded it (and the issue was not retired since). */
  async issueOfPull(pull: PullRef): Promise<string | undefined> {
    const issueKey = await this.redis.hget(PULL_ISSUES_KEY, field(pull));
    if (!issueKey) return undefined;
    return (await this.redis.hexists(issueKeyName(issueKey, 'pulls'), field(pull))) === 1 ? issueKey : undefined;
  }

  /** What was recorded of `pull` for issue `issueKey`. */
  async pullOf(issueKey: string, pull: PullRef): Promise<PullLink | undefined> {
    const raw = await this.redis.hget(issueKeyName(issueKey, 'pulls'), field(pull));
    return raw ? parseLink(raw) : undefined;
  }

  /**
   * Claims the automatic fix of failing checks on commit `sha` of `pull` for `claimant` (a
   * delivery): at most `max` fixes per pull request, one per commit, none after a person's push
   * (stopCheckFixes). The same claimant claiming again (a retried intake) gets its claim back.
   * Says which fix this is, or why there is none.
   */
  async claimCheckFix(issueKey: string, pull: PullRef, sha: string, max: number, claimant: string): Promise<{ readonly fix: number } | { readonly refused: 'taken' | 'spent' | 'stopped' }> {
    const [claimed, value] = (await this.redis.eval(CLAIM_FIX, 1, issueKeyName(issueKey, 'checkfix'), field(pull), sha, max, claimant, sha)) as [number, string];
    return claimed === 1 ? { fix: Number(value) } : { refused: value as 'taken' | 'spent' | 'stopped' };
  }

  /**
   * Stops the automatic fixes of `pull`'s failing checks (a person pushed to its branch) while
   * `agentSha` is the agent's last commit there: they go on once a run of the session pushes
   * another (the person asked for it).
   */
  async stopCheckFixes(issueKey: string, pull: PullRef, agentSha: string): Promise<void> {
    await this.redis.hset(issueKeyName(issueKey, 'checkfix'), `${field(pull)}:stopped`, agentSha);
  }

  /** Whether the automatic fixes of `pull` are stopped while `agentSha` is the agent's last commit (see stopCheckFixes). */
  async checkFixesStopped(issueKey: string, pull: PullRef, agentSha: string): Promise<boolean> {
    return (await this.redis.hget(issueKeyName(issueKey, 'checkfix'), `${field(pull)}:stopped`)) === agentSha;
  }

  /** Every pull request recorded for issue `issueKey`, newest first. */
  async pullsOf(issueKey: string): Promise<PullLink[]> {
    const all = await this.redis.hvals(issueKeyName(issueKey, 'pulls'));
    return all.map(parseLink).filter((l): l is PullLink => l !== undefined).sort((a, b) => b.at - a.at);
  }
}

function parseLink(raw: string): PullLink | undefined {
  try {
    const link = JSON.parse(raw) as PullLink;
    return typeof link.number === 'number' && typeof link.owner === 'string' && typeof link.repo === 'string' ? link : undefined;
  } catch {
    return undefined;
  }
}
