import type { Redis } from 'ioredis';
import { issueKeyOf, type IssueRef, type RunCommand } from './contract.js';
import { KEY_PREFIX } from './names.js';
import type { QueueSnapshot } from './queue-position.js';

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
  /** The seq of the command being run (0 when none): a retried job with this seq re-attaches. */
  readonly running: number;
  /** The command being run, as JSON, for adoption after a restart. */
  readonly runningCommand: string | undefined;
  /** When the issue was closed, while it is (its sessions are removed after the retention period). */
  readonly closedAt: number | undefined;
  /** Set when an operator forgot the host the issue's session was on (`cldpd hosts forget`): that host, the session, and when. */
  readonly forgotten: { readonly hostId: string; readonly sessionId: string | undefined; readonly at: number } | undefined;
}

/** The marker a retired issue leaves: see IssueState.retire. */
export interface RetiredIssue {
  readonly seq: number;
  readonly closedAt: number;
  /** When the keys went. */
  readonly at: number;
  readonly sessionId?: string;
}

/** A worker host as Redis knows it. */
export interface HostRecord {
  readonly hostId: string;
  /** When its worker last said it runs (ms); undefined for a host known only from its issues. */
  readonly lastSeen: number | undefined;
  /** Whether that was within its heartbeat's lifetime. */
  readonly alive: boolean;
  /** Issues whose sessions live there, and how many of them have a run going. */
  readonly issues: readonly string[];
  readonly running: number;
}

/** What forgetting a host did to one of its issues. */
export interface ReleasedIssue {
  readonly issueKey: string;
  /** The session that was on the host. */
  readonly sessionId: string | undefined;
  /** Runs handed to the host's released list (see releasedRuns): the running one and the queued resumes. */
  readonly released: number;
  /** Queued starts left queued: new sessions, for a live host to take. */
  readonly kept: number;
}

/**
 * KEYS: issue hash, runs list, positions hash, the host's alive key, the host's released
 * commands (a list), the forgotten sessions (a set). ARGV: host, now.
 *
 * Releases the issue from `host` if it still owns it and the host is still gone: its
 * running command and queued resumes go to the released list (to be reported on the issue,
 * then dropped); a queued start stays queued (it is a new session, for any host); the
 * session that was on the host is remembered as forgotten (its container, should the host
 * come back, is stopped). Returns {'ok', session, released, kept}, {'alive'}, or false.
 */
const FORGET = `
if redis.call('EXISTS', KEYS[4]) == 1 then return {'alive'} end
if redis.call('HGET', KEYS[1], 'hostId') ~= ARGV[1] then return false end
local running = redis.call('HGET', KEYS[1], 'runningCommand') or ''
local runningSeq = tonumber(redis.call('HGET', KEYS[1], 'running') or '0') or 0
local released, kept, session = {}, {}, ''
if running ~= '' then
  table.insert(released, running)
  local ok, c = pcall(cjson.decode, running)
  if ok and type(c.sessionId) == 'string' then session = c.sessionId end
end
for _, item in ipairs(redis.call('LRANGE', KEYS[2], 0, -1)) do
  local ok, c = pcall(cjson.decode, item)
  if not ok then
    table.insert(released, item)
  elseif c.seq ~= runningSeq then
    if c.kind == 'start' then
      table.insert(kept, item)
    else
      table.insert(released, item)
      if session == '' and type(c.sessionId) == 'string' then session = c.sessionId end
    end
  end
end
if session == '' and #kept == 0 then session = redis.call('HGET', KEYS[1], 'sessionId') or '' end
if session ~= '' then redis.call('SADD', KEYS[6], session) end
redis.call('HSET', KEYS[1], 'forgottenHost', ARGV[1], 'forgottenSession', session, 'forgottenAt', ARGV[2], 'running', '0', 'runningCommand', '')
redis.call('HDEL', KEYS[1], 'hostId')
if #kept == 0 then redis.call('HDEL', KEYS[1], 'sessionId') end
redis.call('DEL', KEYS[2], KEYS[3])
for _, item in ipairs(kept) do redis.call('RPUSH', KEYS[2], item) end
for _, item in ipairs(released) do redis.call('RPUSH', KEYS[5], item) end
return {'ok', session, tostring(#released), tostring(#kept)}`;

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

/** KEYS: runs list, positions hash, issue hash. ARGV: the command's JSON, its seq. */
const DONE = `
redis.call('LREM', KEYS[1], 1, ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[2])
if redis.call('HGET', KEYS[3], 'running') == ARGV[2] then redis.call('HSET', KEYS[3], 'running', '0', 'runningCommand', '') end
return 1`;

const RELEASE_IF_EMPTY = `
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
if redis.call('LLEN', KEYS[2]) > 0 then return 0 end
redis.call('DEL', KEYS[1])
return 1`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;

/** Appends a command unless this seq is already queued or was handled (at-least-once intake). */
const APPEND = `
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return 0 end
redis.call('SADD', KEYS[2], ARGV[1])
redis.call('EXPIRE', KEYS[2], 2592000)
redis.call('RPUSH', KEYS[1], ARGV[2])
return redis.call('LLEN', KEYS[1])`;

/** The drain's claim on a resume: run it, unless a live delivery claimed it first. */
const DRAIN_CLAIM = `
local v = redis.call('GET', KEYS[1])
if not v then redis.call('SET', KEYS[1], 'run', 'EX', 2592000) return 'run' end
return v`;

/** Moves an issue to another host, if the host it belongs to is still the one given. */
const REBIND = `
if redis.call('HGET', KEYS[1], 'hostId') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hostId', ARGV[2])
return 1`;

/** Extends a delivery claim while it is still pending. */
const RENEW_PENDING = `
if redis.call('GET', KEYS[1]) == 'pending' then return redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return 0`;

/**
 * The per-issue state in Redis: the issue → session map, the host that owns it, and the
 * issue's queue of run commands, drained by one worker at a time under a lock.
 * Keys: `cldpd:issue:{key}` (hash), `…:runs` (list), `…:seen` (set of queued seqs), `…:lock`,
 * `…:positions` (hash: seq → the queue position its status comment shows).
 */
export class IssueState {
  constructor(private readonly redis: Redis) {}

  private key(issueKey: string, part?: string): string {
    return `${KEY_PREFIX}:issue:{${issueKey}}${part ? `:${part}` : ''}`;
  }

  /** The issue's record (all fields empty for an issue never seen). */
  async get(issueKey: string): Promise<IssueRecord> {
    const h = await this.redis.hgetall(this.key(issueKey));
    return {
      seq: Number(h.seq ?? 0),
      stoppedSeq: Number(h.stoppedSeq ?? 0),
      sessionId: h.sessionId || undefined,
      pod: h.pod || undefined,
      hostId: h.hostId || undefined,
      lastStatusUrl: h.lastStatusUrl || undefined,
      lastState: h.lastState || undefined,
      running: Number(h.running ?? 0),
      runningCommand: h.runningCommand || undefined,
      closedAt: h.closedAt ? Number(h.closedAt) : undefined,
      forgotten: h.forgottenHost ? { hostId: h.forgottenHost, sessionId: h.forgottenSession || undefined, at: Number(h.forgottenAt ?? 0) } : undefined,
    };
  }

  /**
   * Records that the issue was closed at `at`, unless it was reopened later (deliveries may
   * come out of order). True when it is closed now, since `at`.
   */
  async closed(issueKey: string, at: number): Promise<boolean> {
    return Number(await this.redis.eval(CLOSED, 1, this.key(issueKey), at)) === 1;
  }

  /** Records that the issue was reopened at `at`: a close before that no longer holds. */
  async reopened(issueKey: string, at: number): Promise<void> {
    await this.redis.eval(REOPENED, 1, this.key(issueKey), at);
  }

  /** The keys of the issue's own: its record, queue and markers (what it was aliased from is not among them). */
  async keysOf(issueKey: string): Promise<string[]> {
    const found: string[] = [];
    const base = this.key(issueKey);
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
    const base = this.key(issueKey);
    const runs = this.key(issueKey, 'runs');
    const others = (await this.keysOf(issueKey)).filter((k) => k !== base && k !== runs);
    const marker: RetiredIssue = { seq: expect.seq, closedAt: expect.closedAt, at: Date.now(), ...(expect.sessionId ? { sessionId: expect.sessionId } : {}) };
    const removed = Number(await this.redis.eval(RETIRE, 3 + others.length, base, runs, this.retiredKey(issueKey), ...others, String(expect.closedAt), expect.seq, RETIRED_MARKER_SECONDS, JSON.stringify(marker)));
    if (removed >= 0 && expect.sessionId) await this.releaseSession(expect.sessionId, issueKey);
    return removed < 0 ? undefined : removed;
  }

  /** Gives up the issue's claim on `sessionId` (see claimSession); another issue's claim stays. */
  private async releaseSession(sessionId: string, issueKey: string): Promise<void> {
    await this.redis.eval("if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end return 0", 1, `${KEY_PREFIX}:session-issues`, sessionId, issueKey);
  }

  /** What a retirement of the issue left (for 8 days): its last command number, the close it was for and its session. */
  async retired(issueKey: string): Promise<RetiredIssue | undefined> {
    const raw = await this.redis.get(this.retiredKey(issueKey));
    try {
      return raw ? (JSON.parse(raw) as RetiredIssue) : undefined;
    } catch {
      return undefined;
    }
  }

  /** Clears the note that the issue's session was on a forgotten host (a new session has begun). */
  async clearForgotten(issueKey: string): Promise<void> {
    await this.redis.hdel(this.key(issueKey), 'forgottenHost', 'forgottenSession', 'forgottenAt');
  }

  /** When host `hostId`'s worker last said it runs (ms), if it ever did since hosts are recorded. */
  async lastSeen(hostId: string): Promise<number | undefined> {
    const at = await this.redis.hget(`${KEY_PREFIX}:hosts`, hostId);
    return at ? Number(at) : undefined;
  }

  /**
   * Every host Redis knows: from the workers' heartbeats and from the issues they own, with
   * those issues. Reads every issue's record (a SCAN): an operator's command, not a hot path.
   */
  async hosts(): Promise<HostRecord[]> {
    const seen = await this.redis.hgetall(`${KEY_PREFIX}:hosts`);
    const issues = new Map<string, { issues: string[]; running: number }>();
    for (const id of Object.keys(seen)) issues.set(id, { issues: [], running: 0 });
    const read = new Set<string>(); // SCAN may return a key twice
    for await (const batch of this.redis.scanStream({ match: `${KEY_PREFIX}:issue:{*}`, count: 500 }) as AsyncIterable<string[]>) {
      const keys = batch.filter((key) => !read.has(key));
      for (const key of keys) read.add(key);
      if (keys.length === 0) continue;
      const pipeline = this.redis.pipeline();
      for (const key of keys) pipeline.hmget(key, 'hostId', 'running');
      const results = (await pipeline.exec()) ?? [];
      keys.forEach((key, i) => {
        const [hostId, running] = (results[i]?.[1] as Array<string | null> | undefined) ?? [];
        if (!hostId) return;
        const entry = issues.get(hostId) ?? { issues: [], running: 0 };
        entry.issues.push(key.slice(`${KEY_PREFIX}:issue:{`.length, -1));
        if (Number(running ?? 0) > 0) entry.running += 1;
        issues.set(hostId, entry);
      });
    }
    const hosts: HostRecord[] = [];
    for (const [hostId, entry] of issues) {
      hosts.push({ hostId, lastSeen: seen[hostId] ? Number(seen[hostId]) : undefined, alive: await this.hostAlive(hostId), issues: entry.issues.sort(), running: entry.running });
    }
    return hosts.sort((a, b) => a.hostId.localeCompare(b.hostId));
  }

  /**
   * Releases every issue host `hostId` owns (see FORGET) and forgets the host, if it is
   * still gone (else throws): the issues are bound to no host, so their next label starts a
   * session on a live host. Their runs that were on the host wait in its released list
   * (releasedRuns) until the caller has reported each; a queued start stays queued.
   */
  async forgetHost(hostId: string, issues?: readonly string[]): Promise<ReleasedIssue[]> {
    const released: ReleasedIssue[] = [];
    for (const issueKey of issues ?? (await this.hosts()).find((h) => h.hostId === hostId)?.issues ?? []) {
      const reply = (await this.redis.eval(FORGET, 6, this.key(issueKey), this.key(issueKey, 'runs'), this.key(issueKey, 'positions'),
        `${KEY_PREFIX}:host:${hostId}`, `${KEY_PREFIX}:released:${hostId}`, `${KEY_PREFIX}:forgotten-sessions`, hostId, String(Date.now()))) as string[] | null;
      if (!reply) continue;
      if (reply[0] === 'alive') throw new Error(`host "${hostId}" says it runs again: nothing more of it was released.`);
      released.push({ issueKey, sessionId: reply[1] || undefined, released: Number(reply[2]), kept: Number(reply[3]) });
    }
    await this.redis.hdel(`${KEY_PREFIX}:hosts`, hostId);
    return released;
  }

  /** The runs released from forgotten host `hostId` that are not reported yet, with what drops each once reported. */
  async releasedRuns(hostId: string): Promise<Array<{ command: RunCommand; reported: () => Promise<void> }>> {
    const key = `${KEY_PREFIX}:released:${hostId}`;
    const items = await this.redis.lrange(key, 0, -1);
    return items.flatMap((text) => {
      try {
        return [{ command: JSON.parse(text) as RunCommand, reported: async () => void (await this.redis.lrem(key, 1, text)) }];
      } catch {
        return [];
      }
    });
  }

  /**
   * The seq of the run that continues command `seq` of the issue after a provider wait: the
   * same however often it is asked (a retried job queues it once).
   */
  async waitSeq(issueKey: string, seq: number): Promise<number> {
    return Number(await this.redis.eval(WAIT_SEQ, 2, this.key(issueKey, `wait:${seq}`), this.key(issueKey), 30 * 86_400, seq));
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

  /** Notes that `issueKey`'s run waits for `credential`'s refusal to end (until `until`), so an answer of the provider wakes it. */
  async parkForProvider(credential: string, issueKey: string, until: number): Promise<void> {
    const key = `${KEY_PREFIX}:provider-parked:${credential}`;
    await this.redis.multi().sadd(key, issueKey).pexpireat(key, Math.round(until) + 3600_000).exec();
  }

  /** Until when the model provider refuses `credential` (ms), if it does now. */
  async providerRefusesUntil(credential: string): Promise<number | undefined> {
    const until = Number(((await this.redis.get(`${KEY_PREFIX}:provider-wait:${credential}`)) ?? '0').split(':')[0]);
    return until > Date.now() ? until : undefined;
  }

  /**
   * The provider answered a run of `credential` that began at `at`: a refusal recorded before
   * then no longer holds. Returns the issues whose runs were held back by it, to wake now.
   */
  async providerAccepted(credential: string, at: number): Promise<string[]> {
    return (await this.redis.eval(PROVIDER_ACCEPTED, 2, `${KEY_PREFIX}:provider-wait:${credential}`, `${KEY_PREFIX}:provider-parked:${credential}`, at)) as string[];
  }

  /** Whether session `sessionId` was on a host an operator forgot: its container, if that host comes back, is stopped. */
  async sessionForgotten(sessionId: string): Promise<boolean> {
    return (await this.redis.sismember(`${KEY_PREFIX}:forgotten-sessions`, sessionId)) === 1;
  }

  /** Hands out the next command number of the issue. */
  async nextSeq(issueKey: string): Promise<number> {
    return Number(await this.redis.eval(NEXT_SEQ, 2, this.key(issueKey), this.retiredKey(issueKey)));
  }

  /** The marker a retired issue leaves for a while: its last command number. */
  private retiredKey(issueKey: string): string {
    return `${KEY_PREFIX}:retired:{${issueKey}}`;
  }

  /** Sets fields of the issue's record. */
  async set(issueKey: string, fields: Partial<Record<'sessionId' | 'pod' | 'hostId' | 'lastStatusUrl' | 'lastState' | 'running' | 'runningCommand', string>>): Promise<void> {
    const entries = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (entries.length > 0) await this.redis.hset(this.key(issueKey), Object.fromEntries(entries));
  }

  /**
   * Claims session id `sessionId` for the issue, atomically (HSETNX on one hash of every
   * session id the queue gave out): true when it is now the issue's or was already (a retried
   * intake), false when another issue holds it, whose feed, record, log and stop target it
   * would otherwise share. The claim goes when the issue is retired.
   */
  async claimSession(sessionId: string, issueKey: string): Promise<boolean> {
    const key = `${KEY_PREFIX}:session-issues`;
    if ((await this.redis.hsetnx(key, sessionId, issueKey)) === 1) return true;
    return (await this.redis.hget(key, sessionId)) === issueKey;
  }

  /** Makes `hostId` the owner of the issue unless another host already is; returns the owner. */
  async claimHost(issueKey: string, hostId: string): Promise<string> {
    await this.redis.hsetnx(this.key(issueKey), 'hostId', hostId);
    return (await this.redis.hget(this.key(issueKey), 'hostId')) ?? hostId;
  }

  /** Says host `hostId` has a worker running, for `ttlMs`. */
  async heartbeat(hostId: string, ttlMs: number): Promise<void> {
    const now = String(Date.now());
    await this.redis.multi().set(`${KEY_PREFIX}:host:${hostId}`, now, 'PX', ttlMs).hset(`${KEY_PREFIX}:hosts`, hostId, now).exec();
  }

  /** Whether host `hostId` has said within its heartbeat's lifetime that it runs. */
  async hostAlive(hostId: string): Promise<boolean> {
    return (await this.redis.exists(`${KEY_PREFIX}:host:${hostId}`)) === 1;
  }

  /** Makes `to` the owner of the issue if `from` still is; false when the owner changed meanwhile. */
  async rebindHost(issueKey: string, from: string, to: string): Promise<boolean> {
    return Number(await this.redis.eval(REBIND, 1, this.key(issueKey), from, to)) === 1;
  }

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
    if (legacy === key || (await this.redis.exists(this.key(key))) === 1) return key;
    const old = await this.get(legacy);
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

  /** Cancels every command up to `seq` that has not started. */
  async markStopped(issueKey: string, seq: number): Promise<void> {
    await this.redis.hset(this.key(issueKey), 'stoppedSeq', String(seq));
  }

  /**
   * Queues a command for the issue; idempotent per seq. Resolves with the issue's queue
   * length after the append, or 0 when this seq was queued before.
   */
  async append(command: RunCommand): Promise<number> {
    const result = await this.redis.eval(APPEND, 2, this.key(command.issueKey, 'runs'), this.key(command.issueKey, 'seen'), String(command.seq), JSON.stringify(command));
    return Number(result);
  }

  /** The command at the head of the issue's queue, if any. */
  async head(issueKey: string): Promise<RunCommand | undefined> {
    const text = await this.redis.lindex(this.key(issueKey, 'runs'), 0);
    return text ? (JSON.parse(text) as RunCommand) : undefined;
  }

  /** Commands waiting for the issue, the running one included. */
  pending(issueKey: string): Promise<number> {
    return this.redis.llen(this.key(issueKey, 'runs'));
  }

  /** Removes a handled command from the head of the queue. */
  async done(command: RunCommand): Promise<void> {
    // One step with "nothing runs": a crash between a run's final comment and this leaves
    // the command both queued and on record as running, so the next drainer recovers it
    // (its end is in the log: the final is written again, nothing runs twice). Only this
    // command's own record is cleared: another's (a host released meanwhile) is left alone.
    await this.redis.eval(DONE, 3, this.key(command.issueKey, 'runs'), this.key(command.issueKey, 'positions'), this.key(command.issueKey), JSON.stringify(command), String(command.seq));
  }

  /** Everything the queue positions of the issue's commands are computed from, read at once. */
  async queueSnapshot(issueKey: string): Promise<QueueSnapshot<RunCommand>> {
    const [[, texts], [, fields], [, shown]] = (await this.redis.multi()
      .lrange(this.key(issueKey, 'runs'), 0, -1)
      .hmget(this.key(issueKey), 'running', 'stoppedSeq')
      .hgetall(this.key(issueKey, 'positions'))
      .exec()) as [[Error | null, string[]], [Error | null, Array<string | null>], [Error | null, Record<string, string>]];
    const commands = texts.map((text) => JSON.parse(text) as RunCommand);
    const resumes = commands.filter((c) => c.kind === 'resume');
    const claims = resumes.length > 0 ? await this.redis.mget(resumes.map((c) => `${this.key(issueKey, 'deliver')}:${c.seq}`)) : [];
    const deliveries = new Map<number, 'pending' | 'delivered'>();
    resumes.forEach((c, i) => {
      const claim = claims[i];
      if (claim === 'pending' || claim === 'delivered') deliveries.set(c.seq, claim);
    });
    return {
      commands,
      running: Number(fields[0] ?? 0),
      stoppedSeq: Number(fields[1] ?? 0),
      deliveries,
      shown: new Map(Object.entries(shown).map(([seq, position]) => [Number(seq), Number(position)])),
    };
  }

  /** Records the queue position command `seq`'s status comment shows (kept 30 days at most; dropped when the command is done). */
  async showPosition(issueKey: string, seq: number, position: number): Promise<void> {
    const key = this.key(issueKey, 'positions');
    await this.redis.multi().hset(key, String(seq), String(position)).expire(key, 30 * 24 * 3600).exec();
  }

  /**
   * Whether `command` still waits behind another of its issue's commands: queued and not
   * first, not running, not cancelled by a stop, and not being delivered into (or taken by)
   * the running agent. Checked right before its status comment is rendered as queued.
   */
  async waiting(command: RunCommand): Promise<boolean> {
    const [[, index], [, fields], [, claim]] = (await this.redis.multi()
      .lpos(this.key(command.issueKey, 'runs'), JSON.stringify(command))
      .hmget(this.key(command.issueKey), 'running', 'stoppedSeq')
      .get(`${this.key(command.issueKey, 'deliver')}:${command.seq}`)
      .exec()) as [[Error | null, number | null], [Error | null, Array<string | null>], [Error | null, string | null]];
    return typeof index === 'number' && index > 0 && Number(fields[0] ?? 0) !== command.seq && command.seq > Number(fields[1] ?? 0)
      && claim !== 'pending' && claim !== 'delivered';
  }

  /** Takes the issue's drain lock for `ttlMs`; false when another live drainer has it. */
  async lock(issueKey: string, token: string, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(this.key(issueKey, 'lock'), token, 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Extends the lock; false when it was lost. */
  async renew(issueKey: string, token: string, ttlMs: number): Promise<boolean> {
    return Number(await this.redis.eval(RENEW, 1, this.key(issueKey, 'lock'), token, String(ttlMs))) === 1;
  }

  /**
   * Releases the lock only if the queue is empty, atomically, so a command appended at the
   * last moment is never stranded: false means "more to do, keep draining".
   */
  async releaseIfEmpty(issueKey: string, token: string): Promise<boolean> {
    return Number(await this.redis.eval(RELEASE_IF_EMPTY, 2, this.key(issueKey, 'lock'), this.key(issueKey, 'runs'), token)) !== 0;
  }

  /** Releases the lock unconditionally (when this drainer hands the issue to another host). */
  async release(issueKey: string, token: string): Promise<void> {
    await this.redis.eval(RELEASE, 1, this.key(issueKey, 'lock'), token);
  }

  /**
   * Claims resume `seq` for delivery into the running agent, for `ttlMs` (a delivery that
   * dies half-way gives the command back to the drain then). False when the drain took it
   * or another delivery holds it. Keys: `…:deliver:<seq>` = pending | delivered | run.
   */
  async claimDelivery(issueKey: string, seq: number, ttlMs: number): Promise<boolean> {
    return (await this.redis.set(`${this.key(issueKey, 'deliver')}:${seq}`, 'pending', 'PX', ttlMs, 'NX')) === 'OK';
  }

  /** Keeps a pending delivery claim of resume `seq` for another `ttlMs`. */
  async renewDelivery(issueKey: string, seq: number, ttlMs: number): Promise<void> {
    await this.redis.eval(RENEW_PENDING, 1, `${this.key(issueKey, 'deliver')}:${seq}`, String(ttlMs));
  }

  /** Where resume `seq` stands: `pending`, `delivered`, `run` (the drain's), or undefined (nobody's yet). */
  async deliveryState(issueKey: string, seq: number): Promise<string | undefined> {
    return (await this.redis.get(`${this.key(issueKey, 'deliver')}:${seq}`)) ?? undefined;
  }

  /** The commands queued for the issue, the running one included, oldest first. */
  async commands(issueKey: string): Promise<RunCommand[]> {
    return (await this.redis.lrange(this.key(issueKey, 'runs'), 0, -1)).map((text) => JSON.parse(text) as RunCommand);
  }

  /** Records that resume `seq` went into the running agent: the drain skips it. */
  async markDelivered(issueKey: string, seq: number): Promise<void> {
    await this.redis.set(`${this.key(issueKey, 'deliver')}:${seq}`, 'delivered', 'EX', 30 * 24 * 3600);
  }

  /** Gives resume `seq` back to the drain after a delivery that did not happen. */
  async unclaimDelivery(issueKey: string, seq: number): Promise<void> {
    await this.redis.del(`${this.key(issueKey, 'deliver')}:${seq}`);
  }

  /**
   * The drain's turn at resume `seq`: `run` (it is the drain's now), `delivered` (it went
   * into the running agent: skip it), or `pending` (a delivery is under way: ask again).
   */
  async drainClaim(issueKey: string, seq: number): Promise<'run' | 'delivered' | 'pending'> {
    const value = String(await this.redis.eval(DRAIN_CLAIM, 1, `${this.key(issueKey, 'deliver')}:${seq}`));
    return value === 'delivered' || value === 'pending' ? value : 'run';
  }

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

  /**
   * Whether a refusal to `login` on the issue may be posted: not when one was posted to
   * them on this issue within `quietSeconds`, nor past `perHour` refusals of the
   * installation this hour. Counts the refusal when it may; the same delivery asking again
   * (a retried intake) is answered as the first time.
   */
  async allowRefusal(deliveryId: string, installationId: number, issueKey: string, login: string, limits: { quietSeconds: number; perHour: number }): Promise<boolean> {
    const person = `${this.key(issueKey, 'refused')}:${login.toLowerCase()}`;
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

  /** Whether a reply to delivery `id` was posted; with `mark`, records that it was. */
  async replied(id: string, mark = false): Promise<boolean> {
    const key = `${KEY_PREFIX}:replied:${id}`;
    if (mark) {
      await this.redis.set(key, '1', 'EX', 7 * 24 * 3600);
      return true;
    }
    return (await this.redis.exists(key)) === 1;
  }

  /** Remembers the status comment of a command, so a retried intake edits it instead of posting again. */
  async statusComment(issueKey: string, seq: number, commentId?: number): Promise<number | undefined> {
    const key = `${this.key(issueKey, 'status')}:${seq}`;
    if (commentId !== undefined) {
      await this.redis.set(key, String(commentId), 'EX', 30 * 24 * 3600);
      return commentId;
    }
    const value = await this.redis.get(key);
    return value ? Number(value) : undefined;
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
}
