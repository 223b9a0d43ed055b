import type { Redis } from 'ioredis';
import { PULL_ISSUES_KEY, SESSION_ISSUES_KEY, issueKeyName, retiredKeyName } from './issue-keys.js';

/** What Redis knows of an issue: its session, the host that owns it, its command counter. */
export interface IssueRecord {
  /** Highest command number handed out. */
  readonly seq: number;
  /** Commands up to this number were cancelled by `/cldpd stop`. */
  readonly stoppedSeq: number;
  readonly sessionId: string | undefined;
  readonly pod: string | undefined;
  /** The worker host that owns the issue's session (and its volumes). */
  readonly hostId: string | undefined;
  /** Markdown link to the latest status comment, for `/cldpd status`. */
  readonly lastStatusUrl: string | undefined;
  /** One line on the latest run, for `/cldpd status`. */
  readonly lastState: string | undefined;
  /** The session's pull request where its latest run was asked for, when it was (the conversation goes on there). */
  readonly continuesOn: string | undefined;
  /** The seq of the command being run (0 when none): a retried job with this seq re-attaches. */
  readonly running: number;
  /** The command being run, as JSON, for adoption after a restart. */
  readonly runningCommand: string | undefined;
  /** When the issue was closed, while it is (its sessions are removed after the retention period). */
  readonly closedAt: number | undefined;
  /** Set when an operator forgot the host the issue's session was on (`cldpd hosts forget`): that host, the session, and when. */
  readonly forgotten: { readonly hostId: string; readonly sessionId: string | undefined; readonly at: number } | undefined;
}

/** The marker a retired issue leaves: see IssueRecords.retire. */
export interface RetiredIssue {
  readonly seq: number;
  readonly closedAt: number;
  /** When the keys went. */
  readonly at: number;
  readonly sessionId?: string;
}

/** KEYS: issue hash. ARGV: when it was closed. Sets closedAt unless a reopen came after. */
const CLOSED = `
local reopened = tonumber(redis.call('HGET', KEYS[1], 'reopenedAt') or '0')
if reopened >= tonumber(ARGV[1]) then return 0 end
local closed = tonumber(redis.call('HGET', KEYS[1], 'closedAt') or '0')
if closed < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'closedAt', ARGV[1]) end
return 1`;

/** KEYS: issue hash. ARGV: when it was reopened. */
const REOPENED = `
local reopened = tonumber(redis.call('HGET', KEYS[1], 'reopenedAt') or '0')
if reopened < tonumber(ARGV[1]) then redis.call('HSET', KEYS[1], 'reopenedAt', ARGV[1]) end
local closed = tonumber(redis.call('HGET', KEYS[1], 'closedAt') or '0')
if closed > 0 and closed <= tonumber(ARGV[1]) then redis.call('HDEL', KEYS[1], 'closedAt') end
return 1`;

/**
 * KEYS: issue hash, runs list, the retired marker, then the issue's other keys. ARGV: the
 * closedAt and seq the removal was decided on, the marker's ttl seconds, the marker's JSON.
 * Removes the issue's keys only while it is still closed since then, with no command added,
 * queued or running; leaves the marker (its last command number, the close and the session
 * it retired), so its next command numbers follow the old ones and an interrupted removal
 * finishes. -1 when it kept them.
 */
const RETIRE = `
if redis.call('HGET', KEYS[1], 'closedAt') ~= ARGV[1] then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') ~= tonumber(ARGV[2]) then return -1 end
if tonumber(redis.call('HGET', KEYS[1], 'running') or '0') ~= 0 then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 then return -1 end
local removed = 0
for i = 1, #KEYS do
  if i ~= 3 then removed = removed + redis.call('DEL', KEYS[i]) end
end
redis.call('SET', KEYS[3], ARGV[4], 'EX', tonumber(ARGV[3]))
return removed`;

/** KEYS: issue hash, retired marker. The next command number; after a retirement, one past the issue's last. */
const NEXT_SEQ = `
if redis.call('HEXISTS', KEYS[1], 'seq') == 0 then
  local marker = redis.call('GET', KEYS[2])
  local retired = marker and tonumber(cjson.decode(marker).seq) or 0
  if retired > 0 then redis.call('HSET', KEYS[1], 'seq', retired) end
end
return redis.call('HINCRBY', KEYS[1], 'seq', 1)`;

/** How long the marker of a retired issue lasts: longer than any job named by its command numbers (failed ones are kept 7 days). */
const RETIRED_MARKER_SECONDS = 8 * 86_400;

/** Gives up the issue's claim on `sessionId` (see IssueRecords.claimSession); another issue's claim stays. */
async function releaseSession(redis: Redis, sessionId: string, issueKey: string): Promise<void> {
  await redis.eval("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0", 1, SESSION_ISSUES_KEY, sessionId, issueKey);
}

/** Gives up the issue's entries in `cldpd:pull-issues` (its pull requests `fields`); another issue's entry stays. */
async function releasePulls(redis: Redis, fields: readonly string[], issueKey: string): Promise<void> {
  for (const field of fields) {
    await redis.eval("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0", 1, PULL_ISSUES_KEY, field, issueKey);
  }
}

/**
 * An issue's record in Redis (`cldpd:issue:{key}`, a hash): its session and pod, its command
 * numbers and stops, its close, and the marker it leaves when it is retired (`cldpd:retired:{key}`),
 * which the next command number reads; and the session ids the queue gave out
 * (`cldpd:session-issues`), each held by one issue until that issue is retired.
 */
export class IssueRecords {
  constructor(private readonly redis: Redis) {}

  /** The issue's record (all fields empty for an issue never seen). */
  async get(issueKey: string): Promise<IssueRecord> {
    const h = await this.redis.hgetall(issueKeyName(issueKey));
    return {
      seq: Number(h.seq ?? 0),
      stoppedSeq: Number(h.stoppedSeq ?? 0),
      sessionId: h.sessionId || undefined,
      pod: h.pod || undefined,
      hostId: h.hostId || undefined,
      lastStatusUrl: h.lastStatusUrl || undefined,
      lastState: h.lastState || undefined,
      continuesOn: h.continuesOn || undefined,
      running: Number(h.running ?? 0),
      runningCommand: h.runningCommand || undefined,
      closedAt: h.closedAt ? Number(h.closedAt) : undefined,
      forgotten: h.forgottenHost ? { hostId: h.forgottenHost, sessionId: h.forgottenSession || undefined, at: Number(h.forgottenAt ?? 0) } : undefined,
    };
  }

  /** Sets fields of the issue's record. */
  async set(issueKey: string, fields: Partial<Record<'sessionId' | 'pod' | 'hostId' | 'lastStatusUrl' | 'lastState' | 'continuesOn' | 'running' | 'runningCommand', string>>): Promise<void> {
    const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (entries.length > 0) await this.redis.hset(issueKeyName(issueKey), Object.fromEntries(entries));
  }

  /** Whether command `seq` of the issue was cancelled by `/cldpd stop` (see markStopped). */
  async isStopped(issueKey: string, seq: number): Promise<boolean> {
    return seq <= Number((await this.redis.hget(issueKeyName(issueKey), 'stoppedSeq')) ?? 0);
  }

  /** Hands out the next command number of the issue. */
  async nextSeq(issueKey: string): Promise<number> {
    return Number(await this.redis.eval(NEXT_SEQ, 2, issueKeyName(issueKey), retiredKeyName(issueKey)));
  }

  /** Cancels every command up to `seq` that has not started. */
  async markStopped(issueKey: string, seq: number): Promise<void> {
    await this.redis.hset(issueKeyName(issueKey), 'stoppedSeq', String(seq));
  }

  /**
   * Records that the issue was closed at `at`, unless it was reopened later (deliveries may
   * come out of order). True when it is closed now, since `at`.
   */
  async closed(issueKey: string, at: number): Promise<boolean> {
    return Number(await this.redis.eval(CLOSED, 1, issueKeyName(issueKey), at)) === 1;
  }

  /** Records that the issue was reopened at `at`: a close before that no longer holds. */
  async reopened(issueKey: string, at: number): Promise<void> {
    await this.redis.eval(REOPENED, 1, issueKeyName(issueKey), at);
  }

  /** Clears the note that the issue's session was on a forgotten host (a new session has begun). */
  async clearForgotten(issueKey: string): Promise<void> {
    await this.redis.hdel(issueKeyName(issueKey), 'forgottenHost', 'forgottenSession', 'forgottenAt');
  }

  /**
   * Claims session id `sessionId` for the issue, atomically (HSETNX on one hash of every
   * session id the queue gave out): true when it is now the issue's or was already (a retried
   * intake), false when another issue holds it, whose feed, record, log and stop target it
   * would otherwise share. The claim goes when the issue is retired.
   */
  async claimSession(sessionId: string, issueKey: string): Promise<boolean> {
    const key = SESSION_ISSUES_KEY;
    if ((await this.redis.hsetnx(key, sessionId, issueKey)) === 1) return true;
    return (await this.redis.hget(key, sessionId)) === issueKey;
  }

  /** The keys of the issue's own: its record, queue and markers (what it was aliased from is not among them). */
  async keysOf(issueKey: string): Promise<string[]> {
    const found: string[] = [];
    const base = issueKeyName(issueKey);
    const match = `${base}*`.replace(/[*?[\]\\]/g, (c, i: number) => (i === base.length ? c : `\\${c}`));
    for await (const keys of this.redis.scanStream({ match, count: 500 }) as AsyncIterable<string[]>) {
      found.push(...keys.filter((k) => k === base || k.startsWith(`${base}:`)));
    }
    return [...new Set(found)];
  }

  /**
   * Removes every key of the issue's own (see keysOf) in one step, only while the issue is
   * still as the removal was decided on (`closedAt`, `seq`) with nothing queued or running.
   * Says how many keys went; undefined when it kept them (a command came meanwhile).
   */
  async retire(issueKey: string, expect: { readonly closedAt: number; readonly seq: number; readonly sessionId: string | undefined }): Promise<number | undefined> {
    const base = issueKeyName(issueKey);
    const runs = issueKeyName(issueKey, 'runs');
    const others = (await this.keysOf(issueKey)).filter((k) => k !== base && k !== runs);
    const pulls = await this.redis.hkeys(issueKeyName(issueKey, 'pulls'));
    const marker: RetiredIssue = { seq: expect.seq, closedAt: expect.closedAt, at: Date.now(), ...(expect.sessionId ? { sessionId: expect.sessionId } : {}) };
    const removed = Number(await this.redis.eval(RETIRE, 3 + others.length, base, runs, retiredKeyName(issueKey), ...others, String(expect.closedAt), expect.seq, RETIRED_MARKER_SECONDS, JSON.stringify(marker)));
    if (removed >= 0 && expect.sessionId) await releaseSession(this.redis, expect.sessionId, issueKey);
    if (removed >= 0) await releasePulls(this.redis, pulls, issueKey);
    return removed < 0 ? undefined : removed;
  }

  /** What a retirement of the issue left (for 8 days): its last command number, the close it was for and its session. */
  async retired(issueKey: string): Promise<RetiredIssue | undefined> {
    const raw = await this.redis.get(retiredKeyName(issueKey));
    try {
      return raw ? (JSON.parse(raw) as RetiredIssue) : undefined;
    } catch {
      return undefined;
    }
  }
}
