import type { Redis } from 'ioredis';
import { placeOf, repoOfIssueKey, type FairEntry, type FairServed } from './fair-order.js';
import { issueKeyName } from './issue-keys.js';
import { KEY_PREFIX } from './names.js';

/** The pool of issues with no host yet (any worker's slot may take them); the others are named by their host (whose ids never hold a "~"). */
export const SHARED_POOL = '~shared';

/**
 * How many slots back a repository's or person's turn is remembered: one not served within
 * this many slots counts as never served (it goes first). Bounds the pool's memory.
 */
const HORIZON = 10_000;

function poolKey(pool: string, part: string): string {
  return `${KEY_PREFIX}:fair:${pool}:${part}`;
}

/** The keys of a pool, in the order the scripts take them. */
function poolKeys(pool: string): string[] {
  return ['queue', 'who', 'due', 'repos', 'people', 'clock', 'arrivals', 'taken'].map((part) => poolKey(pool, part));
}

/**
 * KEYS: poolKeys. ARGV: issue, repo, person, due (ms).
 * Adds the issue to the pool, or moves its due time earlier if it waits already. Returns
 * {arrival, moved}: its place of arrival (new or kept), and 1 when an entry that waited
 * already became due earlier.
 */
const REGISTER = `
local due = tonumber(ARGV[4])
local arrival = redis.call('ZSCORE', KEYS[1], ARGV[1])
if arrival then
  local was = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0') or 0
  if due < was then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
    return {arrival, 1}
  end
  return {arrival, 0}
end
arrival = redis.call('INCR', KEYS[7])
redis.call('ZADD', KEYS[1], arrival, ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2] .. '\\n' .. ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[4])
return {tostring(arrival), 0}`;

/**
 * KEYS: poolKeys. ARGV: the slot's job id, now (ms), the issue lock key's prefix and suffix,
 * the horizon, the issue runs key's suffix (after the same prefix). The issue this slot drains: the one it was given before (a job picked up again
 * after its worker died), else the fair next among the due issues whose drain is not running
 * elsewhere (see pickNext), taken off the pool. {'busy'} when the only due issues are being
 * drained elsewhere (the turn is kept for them: their drainer may die), {'at', due} when none
 * is due yet (the turn is kept for the earliest), false when none waits.
 */
const PICK = `
local before = redis.call('HGET', KEYS[8], ARGV[1])
if before then return before end
local now = tonumber(ARGV[2])
local items = redis.call('ZRANGE', KEYS[1], '0', '-1', 'WITHSCORES')
local entries, busy, earliest = {}, false, nil
for i = 1, #items, 2 do
  local issue, arrival = items[i], tonumber(items[i + 1])
  local due = tonumber(redis.call('HGET', KEYS[3], issue) or '0') or 0
  local locked = due <= now and redis.call('EXISTS', ARGV[3] .. issue .. ARGV[4]) == 1
  if locked then busy = true end
  if due > now and (earliest == nil or due < earliest) then earliest = due end
  -- Nothing queued for it (its drain took it all): a stale entry, maybe of a turn lost in a
  -- crash between its registration and its job; dropped, so it spends no turn of another's.
  local stale = due <= now and not locked and redis.call('LLEN', ARGV[3] .. issue .. ARGV[6]) == 0
  if stale then
    redis.call('ZREM', KEYS[1], issue)
    redis.call('HDEL', KEYS[2], issue)
    redis.call('HDEL', KEYS[3], issue)
  end
  if due <= now and not locked and not stale then
    local who = redis.call('HGET', KEYS[2], issue) or '\\n'
    local cut = string.find(who, '\\n', 1, true) or (#who + 1)
    table.insert(entries, { issue = issue, arrival = arrival, repo = string.sub(who, 1, cut - 1), person = string.sub(who, cut + 1) })
  end
end
if #entries == 0 then
  if busy then return {'busy'} end
  if earliest then return {'at', tostring(earliest)} end
  return false
end
local function least(list, groupOf, servedKey, prefix)
  local oldest, order = {}, {}
  for _, e in ipairs(list) do
    local g = groupOf(e)
    if oldest[g] == nil then table.insert(order, g); oldest[g] = e.arrival
    elseif e.arrival < oldest[g] then oldest[g] = e.arrival end
  end
  local best, bestServed
  for _, g in ipairs(order) do
    local served = tonumber(redis.call('ZSCORE', servedKey, prefix .. g) or '0') or 0
    if best == nil or served < bestServed or (served == bestServed and oldest[g] < oldest[best]) then best, bestServed = g, served end
  end
  return best
end
local repo = least(entries, function(e) return e.repo end, KEYS[4], '')
local ofRepo = {}
for _, e in ipairs(entries) do if e.repo == repo then table.insert(ofRepo, e) end end
local person = least(ofRepo, function(e) return e.person end, KEYS[5], repo .. '\\n')
local pick
for _, e in ipairs(ofRepo) do
  if e.person == person and (pick == nil or e.arrival < pick.arrival) then pick = e end
end
local clock = redis.call('INCR', KEYS[6])
redis.call('ZADD', KEYS[4], clock, repo)
redis.call('ZADD', KEYS[5], clock, repo .. '\\n' .. person)
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. (clock - tonumber(ARGV[5])))
redis.call('ZREMRANGEBYSCORE', KEYS[5], '-inf', '(' .. (clock - tonumber(ARGV[5])))
redis.call('ZREM', KEYS[1], pick.issue)
redis.call('HDEL', KEYS[2], pick.issue)
redis.call('HDEL', KEYS[3], pick.issue)
redis.call('HSET', KEYS[8], ARGV[1], pick.issue)
return pick.issue`;

/** Everything a pool's order is computed from, read at once. */
export interface FairSnapshot {
  readonly entries: FairEntry[];
  readonly served: FairServed;
}

/**
 * The issues waiting for a run slot, per pool (the shared one, and each host's own), and
 * which one each slot drains: fair share across repositories, then people (see fair-order).
 * Each drain job added to a run queue is a slot's turn: it drains the pool's fair next
 * issue, not necessarily its own, so the order of the jobs does not matter, only their count.
 */
export class FairPool {
  constructor(private readonly redis: Redis) {}

  /**
   * Says the issue waits in `pool` for a slot, from `due` (ms; 0: at once) on; its place counts
   * from its first registration. Resolves with that registration's arrival number (the same
   * while it waits: one turn is added per arrival) and whether a waiting entry became due
   * earlier (it needs a turn of its own for that time).
   */
  async waitForSlot(pool: string, issueKey: string, person: string, due = 0): Promise<{ arrival: number; earlier: boolean }> {
    const [arrival, moved] = (await this.redis.eval(REGISTER, 8, ...poolKeys(pool), issueKey, repoOfIssueKey(issueKey), person, String(Math.max(0, Math.round(due))))) as [string, number];
    return { arrival: Number(arrival), earlier: Number(moved) === 1 };
  }

  /**
   * The issue the slot of job `jobId` drains: the one it was given before, if it was picked up
   * again; else the pool's fair next, now taken off the pool. Otherwise why none: `busy` when
   * every issue due is being drained elsewhere now (look again later: this turn is theirs
   * should that drainer die), a time (ms) when none is due before it (the turn is theirs
   * then), undefined when none waits.
   */
  async takeSlot(pool: string, jobId: string, now = Date.now()): Promise<string | { busy: true } | { at: number } | undefined> {
    const [lockHead, lockTail] = issueKeyName('\u0000', 'lock').split('\u0000') as [string, string];
    const runsTail = issueKeyName('\u0000', 'runs').split('\u0000')[1] as string;
    const reply = (await this.redis.eval(PICK, 8, ...poolKeys(pool), jobId, String(now), lockHead, lockTail, String(HORIZON), runsTail)) as string | [string, string?] | null;
    if (reply === null) return undefined;
    if (typeof reply === 'string') return reply;
    return reply[0] === 'busy' ? { busy: true } : { at: Number(reply[1]) };
  }

  /** Forgets which issue the slot of job `jobId` drained: its job is over. */
  async slotDone(pool: string, jobId: string): Promise<void> {
    await this.redis.hdel(poolKey(pool, 'taken'), jobId);
  }

  /** The issues waiting in `pool` (marked busy while their drain runs) and the turns already given. */
  async poolSnapshot(pool: string): Promise<FairSnapshot> {
    const [[, items], [, who], [, due], [, repos], [, people]] = (await this.redis.multi()
      .zrange(poolKey(pool, 'queue'), '0', '-1', 'WITHSCORES')
      .hgetall(poolKey(pool, 'who'))
      .hgetall(poolKey(pool, 'due'))
      .zrange(poolKey(pool, 'repos'), '0', '-1', 'WITHSCORES')
      .zrange(poolKey(pool, 'people'), '0', '-1', 'WITHSCORES')
      .exec()) as Array<[Error | null, unknown]> as [[null, string[]], [null, Record<string, string>], [null, Record<string, string>], [null, string[]], [null, string[]]];
    const entries: FairEntry[] = [];
    for (let i = 0; i < items.length; i += 2) {
      const issueKey = items[i] as string;
      const text = who[issueKey] ?? '\n';
      const cut = text.indexOf('\n');
      const [repo, person] = cut < 0 ? [text, ''] : [text.slice(0, cut), text.slice(cut + 1)];
      entries.push({ issueKey, repo, person, arrival: Number(items[i + 1]), due: Number(due[issueKey] ?? 0) });
    }
    const locks = entries.length > 0 ? await this.redis.pipeline(entries.map((e) => ['exists', issueKeyName(e.issueKey, 'lock')])).exec() : [];
    return { entries: entries.map((e, i) => (locks?.[i]?.[1] === 1 ? { ...e, busy: true } : e)), served: { repos: scores(repos), people: scores(people) } };
  }

  /**
   * How many waiting issues get a slot in `pool` before `issueKey` (0: it is next), as if it
   * waited now (by `person` when it does not wait yet); undefined when it is not due yet or
   * further back than 500.
   */
  async placeInPool(pool: string, issueKey: string, person: string, now = Date.now()): Promise<number | undefined> {
    const { entries, served } = await this.poolSnapshot(pool);
    return placeOf(issueKey, entries, served, now, { person });
  }

  /** Whether the issue still waits in `pool` for a slot (no slot has taken it since). */
  async waitsInPool(pool: string, issueKey: string): Promise<boolean> {
    return (await this.redis.zscore(poolKey(pool, 'queue'), issueKey)) !== null;
  }

  /**
   * Empties pool `pool`: its host is forgotten (its turns are never taken again). Its count of
   * arrivals stays: turns are named by it, and BullMQ keeps a finished job's name for a day,
   * so a host of the same name coming back must not reuse one.
   */
  async dropPool(pool: string): Promise<void> {
    await this.redis.del(...poolKeys(pool).filter((key) => !key.endsWith(':arrivals')));
  }
}

function scores(flat: readonly string[]): Map<string, number> {
  const map = new Map<string, number>();
  for (let i = 0; i < flat.length; i += 2) map.set(flat[i] as string, Number(flat[i + 1]));
  return map;
}
