import type { Redis } from 'ioredis';
import type { RunCommand } from './contract.js';
import { issueKeyName } from './issue-keys.js';
import { KEY_PREFIX } from './names.js';

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
  /** Since when (ms) its worker, still running, has found its Docker engine not answering; undefined while it answers. */
  readonly engineSilentSince?: number;
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

/** Moves an issue to another host, if the host it belongs to is still the one given. */
const REBIND = `
if redis.call('HGET', KEYS[1], 'hostId') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'hostId', ARGV[2])
return 1`;

/**
 * The worker hosts: their heartbeats (`cldpd:host:<id>`, `cldpd:hosts`), the hosts whose
 * worker runs but whose engine does not answer (`cldpd:hosts-engine-silent`), which host owns each
 * issue (the issue hash's `hostId`), and what forgetting a gone host released: its runs
 * (`cldpd:released:<id>`) and its sessions (`cldpd:forgotten-sessions`).
 */
export class HostRegistry {
  constructor(private readonly redis: Redis) {}

  /** Says host `hostId` has a worker running, for `ttlMs`. */
  async heartbeat(hostId: string, ttlMs: number): Promise<void> {
    const now = String(Date.now());
    await this.redis.multi().set(`${KEY_PREFIX}:host:${hostId}`, now, 'PX', ttlMs).hset(`${KEY_PREFIX}:hosts`, hostId, now).exec();
  }

  /**
   * Records that host `hostId`'s worker runs on but its Docker engine does not answer, since
   * `since` (ms): the host stops saying it is alive, and `cldpd hosts` says why. Undefined
   * clears it (the engine answers again).
   */
  async engineSilent(hostId: string, since: number | undefined): Promise<void> {
    if (since === undefined) await this.redis.hdel(`${KEY_PREFIX}:hosts-engine-silent`, hostId);
    else await this.redis.hset(`${KEY_PREFIX}:hosts-engine-silent`, hostId, String(since));
  }

  /** Whether host `hostId` has said within its heartbeat's lifetime that it runs. */
  async hostAlive(hostId: string): Promise<boolean> {
    return (await this.redis.exists(`${KEY_PREFIX}:host:${hostId}`)) === 1;
  }

  /** When host `hostId`'s worker last said it runs (ms), if it ever did since hosts are recorded. */
  async lastSeen(hostId: string): Promise<number | undefined> {
    const at = await this.redis.hget(`${KEY_PREFIX}:hosts`, hostId);
    return at ? Number(at) : undefined;
  }

  /** Makes `hostId` the owner of the issue unless another host already is; returns the owner. */
  async claimHost(issueKey: string, hostId: string): Promise<string> {
    await this.redis.hsetnx(issueKeyName(issueKey), 'hostId', hostId);
    return (await this.redis.hget(issueKeyName(issueKey), 'hostId')) ?? hostId;
  }

  /** Makes `to` the owner of the issue if `from` still is; false when the owner changed meanwhile. */
  async rebindHost(issueKey: string, from: string, to: string): Promise<boolean> {
    return Number(await this.redis.eval(REBIND, 1, issueKeyName(issueKey), from, to)) === 1;
  }

  /**
   * Every host Redis knows: from the workers' heartbeats and from the issues they own, with
   * those issues. Reads every issue's record (a SCAN): an operator's command, not a hot path.
   */
  async hosts(): Promise<HostRecord[]> {
    const seen = await this.redis.hgetall(`${KEY_PREFIX}:hosts`);
    const silent = await this.redis.hgetall(`${KEY_PREFIX}:hosts-engine-silent`);
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
      const alive = await this.hostAlive(hostId);
      hosts.push({ hostId, lastSeen: seen[hostId] ? Number(seen[hostId]) : undefined, alive, issues: entry.issues.sort(), running: entry.running,
        ...(silent[hostId] && !alive ? { engineSilentSince: Number(silent[hostId]) } : {}) });
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
      const reply = (await this.redis.eval(FORGET, 6, issueKeyName(issueKey), issueKeyName(issueKey, 'runs'), issueKeyName(issueKey, 'positions'),
        `${KEY_PREFIX}:host:${hostId}`, `${KEY_PREFIX}:released:${hostId}`, `${KEY_PREFIX}:forgotten-sessions`, hostId, String(Date.now()))) as string[] | null;
      if (!reply) continue;
      if (reply[0] === 'alive') throw new Error(`host "${hostId}" says it runs again: nothing more of it was released.`);
      released.push({ issueKey, sessionId: reply[1] || undefined, released: Number(reply[2]), kept: Number(reply[3]) });
    }
    await this.redis.multi().hdel(`${KEY_PREFIX}:hosts`, hostId).hdel(`${KEY_PREFIX}:hosts-engine-silent`, hostId).exec();
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

  /** Whether session `sessionId` was on a host an operator forgot: its container, if that host comes back, is stopped. */
  async sessionForgotten(sessionId: string): Promise<boolean> {
    return (await this.redis.sismember(`${KEY_PREFIX}:forgotten-sessions`, sessionId)) === 1;
  }
}
