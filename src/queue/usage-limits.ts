import type { Redis } from 'ioredis';
import * as z from 'zod/mini';
import { KEY_PREFIX } from './names.js';

/** Limits of one scope (a repository, or one person in it); an absent one does not apply. */
export interface Limits {
  /** Runs (starts and resumes) asked for per UTC day. */
  readonly runsPerDay?: number;
  /** What the runs that ended in a UTC day may have cost together, in US dollars. */
  readonly spendPerDayUsd?: number;
  /** Sessions with a run queued or running at once. */
  readonly sessionsAtOnce?: number;
}

/** A repository's limits: for all its runs together, and for each person's. */
export interface RepoLimits {
  readonly repository: Limits;
  readonly perPerson: Limits;
}

/** No limits at all. */
export const NO_LIMITS: RepoLimits = Object.freeze({ repository: Object.freeze({}), perPerson: Object.freeze({}) });

const count = z.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.minimum(0, 'must be 0 or more'));
const scopeSchema = z.strictObject({
  runsPerDay: z.optional(count),
  spendPerDayUsd: z.optional(z.number().check(z.minimum(0, 'must be 0 or more (US dollars)'))),
  sessionsAtOnce: z.optional(count),
});

/** The `limits` setting, in `.github/cldpd.yml` and in `CLDPD_LIMITS`: `repository` and `perPerson`, each with any of the three limits. */
export const limitsSchema = z.strictObject({ repository: z.optional(scopeSchema), perPerson: z.optional(scopeSchema) });

/** Checks a parsed `limits` value; throws an Error naming each field that is wrong, prefixed by `where`. */
export function parseLimits(raw: unknown, where: string): Partial<RepoLimits> {
  const result = limitsSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const at = [where, ...i.path.map(String)].join('.');
    if (i.code === 'unrecognized_keys') return `${at}: unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: ${i.path.length === 0 ? 'repository, perPerson' : 'runsPerDay, spendPerDayUsd, sessionsAtOnce'})`;
    if (i.code === 'invalid_type') return `${at} must be ${i.path.length <= 1 ? 'a mapping like "runsPerDay: 20"' : 'a number'}`;
    return `${at} ${i.message}`;
  });
  throw new Error(problems.join('; '));
}

/** `over` laid on `base`, limit by limit: a repository's own settings over the installation's defaults. */
export function mergeLimits(base: RepoLimits, over: Partial<RepoLimits> | undefined): RepoLimits {
  return Object.freeze({
    repository: Object.freeze({ ...base.repository, ...over?.repository }),
    perPerson: Object.freeze({ ...base.perPerson, ...over?.perPerson }),
  });
}

/** Today's figures of one scope. */
export interface Usage {
  readonly runs: number;
  readonly spendUsd: number;
  readonly sessions: number;
}

/** Which limit refused a run, with its figures. */
export interface LimitHit {
  readonly scope: 'repository' | 'person';
  readonly limit: keyof Limits;
  readonly value: number;
  readonly used: number;
}

/** The UTC day of `at` as `YYYY-MM-DD`: days, and so daily limits, turn at 00:00 UTC. */
export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** When the UTC day of `at` ends (ms since the epoch). */
export function dayEnds(at: number): number {
  const d = new Date(at);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}

const MICRO = 1_000_000;
const DAY_TTL = 3 * 86_400;
/** How long a session just admitted counts as active before its first command is queued. */
const RESERVED_SECONDS = 120;

/**
 * KEYS: repo day hash, person day hash, repo sessions set, person sessions set, admitted marker.
 * ARGV: the six limits (repo runs, spend µ$, sessions; person runs, spend µ$, sessions; -1: none),
 * issue key, login, key prefix, reserved-seconds, day ttl.
 *
 * A session counts while its issue has a command queued or running (the issue's `runs`
 * list), or for a short while after it was admitted (its first command not queued yet).
 * Sets are cleaned as they are read. Admitting is idempotent per delivery (the marker).
 */
const ADMIT = `
local prefix, issue, login = ARGV[9], ARGV[7], ARGV[8]
if redis.call('EXISTS', KEYS[5]) == 1 then return {'ok'} end
local function sessions(set, who)
  local n, here = 0, 0
  for _, member in ipairs(redis.call('SMEMBERS', set)) do
    local items = redis.call('LRANGE', prefix .. ':issue:{' .. member .. '}:runs', 0, -1)
    local active = redis.call('EXISTS', prefix .. ':reserved:' .. member .. ':' .. who) == 1
    if not active then
      for _, item in ipairs(items) do
        if who == '' then active = true break end
        local ok, command = pcall(cjson.decode, item)
        if ok and type(command.requestedBy) == 'string' and string.lower(command.requestedBy) == who then active = true break end
      end
    end
    if active then
      n = n + 1
      if member == issue then here = 1 end
    else
      redis.call('SREM', set, member)
    end
  end
  return n, here
end
local checks = {
  {KEYS[1], KEYS[3], '', 'repository', 1},
  {KEYS[2], KEYS[4], login, 'person', 4},
}
for _, c in ipairs(checks) do
  local runs = tonumber(redis.call('HGET', c[1], 'runs') or '0')
  local spend = tonumber(redis.call('HGET', c[1], 'spend') or '0')
  local runsLimit, spendLimit, sessionsLimit = tonumber(ARGV[c[5]]), tonumber(ARGV[c[5] + 1]), tonumber(ARGV[c[5] + 2])
  if runsLimit >= 0 and runs >= runsLimit then return {'runsPerDay', c[4], tostring(runsLimit), tostring(runs)} end
  if spendLimit >= 0 and spend >= spendLimit then return {'spendPerDayUsd', c[4], tostring(spendLimit), tostring(spend)} end
  if sessionsLimit >= 0 then
    local n, here = sessions(c[2], c[3])
    if here == 0 and n >= sessionsLimit then return {'sessionsAtOnce', c[4], tostring(sessionsLimit), tostring(n)} end
  end
end
for _, c in ipairs(checks) do
  redis.call('HINCRBY', c[1], 'runs', 1)
  redis.call('EXPIRE', c[1], tonumber(ARGV[11]))
  redis.call('SADD', c[2], issue)
  redis.call('SET', prefix .. ':reserved:' .. issue .. ':' .. c[3], '1', 'EX', tonumber(ARGV[10]))
end
redis.call('SET', KEYS[5], '1', 'EX', tonumber(ARGV[11]))
return {'ok'}
`;

/**
 * Spending and run limits, counted in Redis so every server and worker of a deployment
 * shares them: runs and spend per UTC day, and sessions at once, for a repository and for
 * each person in it. A run is admitted (or refused, naming the limit) in one atomic step,
 * so two triggers racing for the last allowed run get one run.
 */
export class UsageLimits {
  constructor(private readonly redis: Redis, private readonly now: () => number = Date.now) {}

  private day(scope: string, day: string): string {
    return `${KEY_PREFIX}:usage:${day}:${scope}`;
  }

  private scopes(repo: string, login: string): { repo: string; person: string } {
    const r = repo.toLowerCase();
    return { repo: `r:${r}`, person: `u:${r}:${login.toLowerCase()}` };
  }

  /**
   * Admits one run that `login` asked for on issue `issueKey` of `repo` (`owner/name`), once
   * per `admissionId` (a retried intake is admitted again without counting twice): counts it
   * and its session, or returns the limit it would go over.
   */
  async admit(admissionId: string, repo: string, issueKey: string, login: string, limits: RepoLimits): Promise<LimitHit | undefined> {
    const day = utcDay(this.now());
    const s = this.scopes(repo, login);
    const n = (v: number | undefined, scale = 1): string => (v === undefined ? '-1' : String(Math.round(v * scale)));
    const reply = (await this.redis.eval(ADMIT, 5,
      this.day(s.repo, day), this.day(s.person, day), `${KEY_PREFIX}:sessions:${s.repo}`, `${KEY_PREFIX}:sessions:${s.person}`, `${KEY_PREFIX}:admitted:${admissionId}`,
      n(limits.repository.runsPerDay), n(limits.repository.spendPerDayUsd, MICRO), n(limits.repository.sessionsAtOnce),
      n(limits.perPerson.runsPerDay), n(limits.perPerson.spendPerDayUsd, MICRO), n(limits.perPerson.sessionsAtOnce),
      issueKey, login.toLowerCase(), KEY_PREFIX, RESERVED_SECONDS, DAY_TTL)) as string[];
    if (reply[0] === 'ok') return undefined;
    const limit = reply[0] as keyof Limits;
    const scale = limit === 'spendPerDayUsd' ? MICRO : 1;
    return { limit, scope: reply[1] === 'person' ? 'person' : 'repository', value: Number(reply[2]) / scale, used: Number(reply[3]) / scale };
  }

  /** Ends the grace of an admitted run's session once its command is queued: from then on its queue says whether it is active. */
  async queued(issueKey: string, login: string): Promise<void> {
    await this.redis.del(`${KEY_PREFIX}:reserved:${issueKey}:`, `${KEY_PREFIX}:reserved:${issueKey}:${login.toLowerCase()}`);
  }

  /**
   * Adds what a run cost to the day it ended, for its repository and the person who asked
   * for it; once per `runId`, however often a run's end is reported.
   */
  async spend(runId: string, repo: string, login: string, usd: number): Promise<void> {
    if (!(usd > 0)) return;
    const day = utcDay(this.now());
    const s = this.scopes(repo, login);
    const first = await this.redis.set(`${KEY_PREFIX}:spent:${runId}`, '1', 'EX', DAY_TTL, 'NX');
    if (first !== 'OK') return;
    const micro = Math.round(usd * MICRO);
    await this.redis.multi()
      .hincrby(this.day(s.repo, day), 'spend', micro).expire(this.day(s.repo, day), DAY_TTL)
      .hincrby(this.day(s.person, day), 'spend', micro).expire(this.day(s.person, day), DAY_TTL)
      .exec();
  }

  /** Today's figures for the repository and for `login` in it. */
  async today(repo: string, login: string): Promise<{ repository: Usage; person: Usage }> {
    const day = utcDay(this.now());
    const s = this.scopes(repo, login);
    const read = async (scope: string, who: string): Promise<Usage> => {
      const [runs, spend] = await this.redis.hmget(this.day(scope, day), 'runs', 'spend');
      // Counted as admitting counts them (a dry admission with no limits would write); read the set as it stands.
      const members = await this.redis.smembers(`${KEY_PREFIX}:sessions:${scope}`);
      let sessions = 0;
      for (const member of members) {
        const items = await this.redis.lrange(`${KEY_PREFIX}:issue:{${member}}:runs`, 0, -1);
        if (items.some((item) => who === '' || (JSON.parse(item) as { requestedBy?: string }).requestedBy?.toLowerCase() === who)) sessions++;
      }
      return { runs: Number(runs ?? 0), spendUsd: Number(spend ?? 0) / MICRO, sessions };
    };
    return { repository: await read(s.repo, ''), person: await read(s.person, login.toLowerCase()) };
  }
}
