import type { Redis } from 'ioredis';
import { utcDay, type LimitHit, type Limits, type RepoLimits, type Usage } from './limits-policy.js';
import { KEY_PREFIX } from './names.js';

const MICRO = 1_000_000;
const DAY_TTL = 3 * 86_400;
/**
 * How long a session just admitted counts as active before its command is queued (which
 * ends it, see queued()): longer than an intake's retries may take, so a slow one keeps its place.
 */
const RESERVED_SECONDS = 3600;

/**
 * KEYS: repo day hash, person day hash, repo sessions set, person sessions set, admitted marker.
 * ARGV: the six limits (repo runs, spend µ$, sessions; person runs, spend µ$, sessions; -1: none),
 * issue key, login, key prefix, reserved-seconds, day ttl.
 *
 * A session counts while its issue has a command queued or running (the issue's `runs`
 * list), or for a short while after it was admitted (its first command not queued yet).
 * Sets are cleaned as they are read, and expire a few days after the last admission.
 * Admitting is idempotent per delivery (the marker); a readmission tracks the session again.
 */
const ADMIT = `
local prefix, issue, login = ARGV[9], ARGV[7], ARGV[8]
local setTtl = tonumber(ARGV[11])
local function track()
  redis.call('SADD', KEYS[3], issue)
  redis.call('SADD', KEYS[4], issue)
  redis.call('EXPIRE', KEYS[3], setTtl)
  redis.call('EXPIRE', KEYS[4], setTtl)
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  track()
  return {'ok'}
end
local function sessions(set, who)
  local n, here = 0, 0
  for _, member in ipairs(redis.call('SMEMBERS', set)) do
    local list = prefix .. ':issue:{' .. member .. '}:runs'
    local active = redis.call('EXISTS', prefix .. ':reserved:' .. member .. ':' .. who) == 1
    if not active and who == '' then active = redis.call('LLEN', list) > 0 end
    if not active and who ~= '' then
      for _, item in ipairs(redis.call('LRANGE', list, 0, -1)) do
        local ok, by = pcall(function() return string.lower(cjson.decode(item).requestedBy) end)
        if ok and by == who then active = true break end
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
  redis.call('SET', prefix .. ':reserved:' .. issue .. ':' .. c[3], '1', 'EX', tonumber(ARGV[10]))
end
track()
redis.call('SET', KEYS[5], '1', 'EX', tonumber(ARGV[11]))
return {'ok'}
`;

/**
 * KEYS: the run's marker, today's repo and person hashes, the day before's.
 * ARGV: what the run has spent so far (µ$), 1 when exact or 0 for an estimate, today, the day before, ttl.
 *
 * The marker holds what the run counts for (`usd`) and the day of its last increase (`day`);
 * a marker that is a plain string was left by a version that counted a run's cost once,
 * whole, when it ended: that run is counted already.
 */
const SPEND = `
if redis.call('TYPE', KEYS[1]).ok == 'string' then return 0 end
local had = tonumber(redis.call('HGET', KEYS[1], 'usd') or '0')
local want, ttl = tonumber(ARGV[1]), tonumber(ARGV[5])
if want == had or (ARGV[2] == '0' and want < had) then return 0 end
local delta = want - had
local repo, person, day = KEYS[2], KEYS[3], ARGV[3]
if delta < 0 and redis.call('HGET', KEYS[1], 'day') == ARGV[4] then repo, person, day = KEYS[4], KEYS[5], ARGV[4] end
for _, key in ipairs({repo, person}) do
  local by = delta
  local now = tonumber(redis.call('HGET', key, 'spend') or '0')
  if now + by < 0 then by = -now end
  redis.call('HINCRBY', key, 'spend', by)
  redis.call('EXPIRE', key, ttl)
end
redis.call('HSET', KEYS[1], 'usd', want, 'day', day)
redis.call('EXPIRE', KEYS[1], ttl)
return 1`;

/** What one run can count for at most, in US dollars: a bound on a figure the agent's output gives. */
const MAX_RUN_USD = 1_000_000;

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
  async queued(repo: string, issueKey: string, login: string): Promise<void> {
    const s = this.scopes(repo, login);
    await this.redis.multi()
      .sadd(`${KEY_PREFIX}:sessions:${s.repo}`, issueKey).sadd(`${KEY_PREFIX}:sessions:${s.person}`, issueKey)
      .del(`${KEY_PREFIX}:reserved:${issueKey}:`, `${KEY_PREFIX}:reserved:${issueKey}:${login.toLowerCase()}`)
      .exec();
  }

  /**
   * Records what run `runId` (one per issue and command) has spent so far, `usd` in all, on
   * the day it is spent, for its repository and the person who asked for it: a run counts
   * as it goes, so a run stopped or cut short counts what it spent, and one that is running
   * counts against the next admission. The same figure reported again counts once. An
   * estimate (`estimate: true`) only ever raises what the run counts for; an exact figure
   * (its agent's result) replaces it, lower or higher. A decrease comes off the day of the
   * run's last increase (today or the day before), never below nothing.
   */
  async spend(runId: string, repo: string, login: string, usd: number, options: { readonly estimate?: boolean } = {}): Promise<void> {
    if (!Number.isFinite(usd) || usd < 0) return;
    const now = this.now();
    const [today, before] = [utcDay(now), utcDay(now - 86_400_000)];
    const s = this.scopes(repo, login);
    // The marker and both sums in one step: a crash between them neither loses the cost nor counts it twice.
    await this.redis.eval(SPEND, 5, `${KEY_PREFIX}:spent:${runId}`, this.day(s.repo, today), this.day(s.person, today), this.day(s.repo, before), this.day(s.person, before),
      Math.round(Math.min(usd, MAX_RUN_USD) * MICRO), options.estimate ? 0 : 1, today, before, DAY_TTL);
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
        const list = `${KEY_PREFIX}:issue:{${member}}:runs`;
        if (who === '') {
          if ((await this.redis.llen(list)) > 0) sessions++;
          continue;
        }
        const items = await this.redis.lrange(list, 0, -1);
        if (items.some((item) => { try { return (JSON.parse(item) as { requestedBy?: string }).requestedBy?.toLowerCase() === who; } catch { return false; } })) sessions++;
      }
      return { runs: Number(runs ?? 0), spendUsd: Number(spend ?? 0) / MICRO, sessions };
    };
    return { repository: await read(s.repo, ''), person: await read(s.person, login.toLowerCase()) };
  }
}
