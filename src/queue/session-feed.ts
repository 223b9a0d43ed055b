import type { Redis } from 'ioredis';
import { KEY_PREFIX } from './names.js';

/**
 * One thing a session's live page shows, already redacted by the worker that published it
 * (the page shows exactly what a status comment could). `at` is ms since the epoch.
 * - `run`: a run of the session begins (1 for the start, then one per resume);
 * - `build`: the image build started, printed a line, or completed;
 * - `step`: a setup step begins;
 * - `text`: the agent's own words (Markdown);
 * - `tool`: a tool call with its telling argument;
 * - `result`: what a tool returned, as a size and its first line;
 * - `message`: an instruction the agent took;
 * - `line`: a plain output line of the container (or of a setup step);
 * - `blocked`: the run's egress gateway refused a connection (`host` is what the container
 *   asked for, redacted; `count`: that host:port's refusals in the run so far); `last` on the
 *   last one a run lists (see FeedWriter): the status comment and /metrics count the rest;
 * - `end`: the run's outcome, and the agent's final answer when the entries before do not end with it.
 */
export type FeedEntry =
  | { readonly k: 'run'; readonly at: number; readonly run: number; readonly command: 'start' | 'resume'; readonly by?: string }
  | { readonly k: 'build'; readonly at: number; readonly text: string }
  | { readonly k: 'step'; readonly at: number; readonly step: number; readonly of: number; readonly name: string }
  | { readonly k: 'text'; readonly at: number; readonly text: string }
  | { readonly k: 'tool'; readonly at: number; readonly name: string; readonly summary: string }
  | { readonly k: 'result'; readonly at: number; readonly isError: boolean; readonly lines: number; readonly chars: number; readonly firstLine: string }
  | { readonly k: 'message'; readonly at: number; readonly text: string }
  | { readonly k: 'line'; readonly at: number; readonly stream: 'stdout' | 'stderr'; readonly text: string; readonly step?: number }
  | { readonly k: 'blocked'; readonly at: number; readonly host: string; readonly port: number; readonly via: 'connect' | 'http' | 'tls'; readonly count: number; readonly last?: true }
  | {
      readonly k: 'end';
      readonly at: number;
      readonly outcome: 'finished' | 'failed' | 'cancelled' | 'delivered' | 'waiting';
      readonly exitCode?: number;
      readonly reason?: string;
      readonly durationMs?: number;
      /** Why it failed or was cancelled, in words. */
      readonly note?: string;
      readonly costUsd?: number;
      readonly turns?: number;
      /** The agent's final answer (Markdown), when it is not the same as its last words (a `text` entry before). */
      readonly answer?: string;
      /** Whether that answer is the agent's error (Claude Code's result said so). */
      readonly answerIsError?: boolean;
    };

/** An entry as read back: its place in the session's feed (1, 2, …) and its stream id (the page's cursor). */
export interface StoredEntry {
  readonly id: string;
  readonly n: number;
  readonly entry: FeedEntry;
}

/** What the page's header shows about a session; every field is as of the latest entry. */
export interface FeedHead {
  readonly sessionId: string;
  readonly pod: string;
  readonly owner: string;
  readonly repo: string;
  readonly number: number;
  readonly issueUrl: string;
  readonly installationId: number;
  readonly host: string;
  /** queued, building, setting up, running, waiting, finished, failed, cancelled, delivered. */
  readonly phase: string;
  readonly run: number;
  /** When the session's first run began, and when the latest one did. */
  readonly startedAt?: number;
  readonly runStartedAt?: number;
  /** When the latest run ended; absent while it runs. */
  readonly endedAt?: number;
  /** What the session has cost so far, and its turns. */
  readonly costUsd?: number;
  readonly turns?: number;
  /** Entries published in all: the oldest ones are trimmed once there are more than the feed keeps. */
  readonly total: number;
  /** Bytes of the entries the feed holds now (their JSON), as its trimming counts them. */
  readonly bytes?: number;
}

/** Bytes of entries a session's feed keeps unless told otherwise: 4 MiB. */
export const DEFAULT_FEED_BYTES = 4 * 1024 * 1024;

/** How much of a session's feed Redis keeps. */
export interface FeedLimits {
  /** Entries kept per session; older ones are trimmed. */
  readonly maxEntries: number;
  /**
   * Bytes of entries (their JSON) kept per session, default {@link DEFAULT_FEED_BYTES}; older
   * entries are trimmed, but never the newest one. Redis holds about 40 bytes more per entry.
   */
  readonly maxBytes?: number;
  /** How long a feed is kept after its last entry. */
  readonly keepSeconds: number;
}

const HEAD_NUMBERS = ['number', 'installationId', 'run', 'startedAt', 'runStartedAt', 'endedAt', 'costUsd', 'turns', 'total', 'bytes'] as const;

/**
 * KEYS: stream, head. ARGV: maxEntries, maxBytes, keepSeconds, count of entries, the
 * entries' JSON, then head field/value pairs (an empty value deletes the field). Numbers
 * each entry in the head's `total` as it adds it, so entries keep one count across runs and
 * workers. The head's `bytes` counts the JSON the stream holds (a feed from before it was
 * counted is counted once, here); past either bound the oldest entries are trimmed, the
 * newest always kept, with one exact XTRIM MINID (Redis 6.2 or later).
 */
const PUBLISH = `
local maxEntries, maxBytes, keep, count = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local function size(row)
  local fields = row[2]
  for j = 1, #fields, 2 do
    if fields[j] == 'e' then return #fields[j + 1] end
  end
  return 0
end
local bytes = tonumber(redis.call('HGET', KEYS[2], 'bytes'))
if not bytes then
  bytes = 0
  local from = '-'
  repeat
    local rows = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 500)
    for _, row in ipairs(rows) do
      bytes = bytes + size(row)
      from = '(' .. row[1]
    end
  until #rows < 500
end
for i = 1, count do
  local n = redis.call('HINCRBY', KEYS[2], 'total', 1)
  local e = ARGV[4 + i]
  redis.call('XADD', KEYS[1], '*', 'n', n, 'e', e)
  bytes = bytes + #e
end
local len = redis.call('XLEN', KEYS[1])
if len > 1 and (len > maxEntries or bytes > maxBytes) then
  local from, kept = '-', nil
  while not kept do
    local rows = redis.call('XRANGE', KEYS[1], from, '+', 'COUNT', 100)
    if #rows == 0 then break end
    for _, row in ipairs(rows) do
      if len <= 1 or (len <= maxEntries and bytes <= maxBytes) then
        kept = row[1]
        break
      end
      bytes = bytes - size(row)
      len = len - 1
      from = '(' .. row[1]
    end
  end
  if kept then redis.call('XTRIM', KEYS[1], 'MINID', kept) end
end
for i = 5 + count, #ARGV, 2 do
  if ARGV[i + 1] == '' then redis.call('HDEL', KEYS[2], ARGV[i]) else redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
end
redis.call('HSET', KEYS[2], 'bytes', bytes)
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('EXPIRE', KEYS[1], keep) end
redis.call('EXPIRE', KEYS[2], keep)
return redis.call('HGET', KEYS[2], 'total')
`;

/**
 * The live feed of each session in Redis: a stream of {@link FeedEntry} (bounded to
 * `maxEntries` and `maxBytes`, oldest trimmed) and a head hash, both kept `keepSeconds` after the last
 * entry. Workers publish; the page server reads. Nothing here touches Docker or disk, so
 * the server and the workers may be on different machines.
 */
export class SessionFeedStore {
  constructor(private readonly redis: Redis, readonly limits: FeedLimits) {}

  private streamKey(sessionId: string): string {
    return `${KEY_PREFIX}:feed:${sessionId}`;
  }

  private headKey(sessionId: string): string {
    return `${KEY_PREFIX}:feed:${sessionId}:head`;
  }

  /**
   * Appends `entries` in order and updates the head with `head` (an undefined field is left
   * as it is, `null` removes it), in one atomic step. Resolves with the feed's total.
   */
  async publish(sessionId: string, entries: readonly FeedEntry[], head: { readonly [K in keyof FeedHead]?: FeedHead[K] | null }): Promise<number> {
    const fields = Object.entries(head).filter(([, v]) => v !== undefined).flatMap(([k, v]) => [k, v === null ? '' : String(v)]);
    const total = await this.redis.eval(PUBLISH, 2, this.streamKey(sessionId), this.headKey(sessionId),
      this.limits.maxEntries, this.limits.maxBytes ?? DEFAULT_FEED_BYTES, this.limits.keepSeconds, entries.length, ...entries.map((e) => JSON.stringify(e)), ...fields);
    return Number(total);
  }

  /** The session's head; undefined when it has none (never published, or expired). */
  async head(sessionId: string): Promise<FeedHead | undefined> {
    const raw = await this.redis.hgetall(this.headKey(sessionId));
    if (!raw.sessionId || !raw.owner || !raw.repo) return undefined;
    const head: Record<string, string | number> = { ...raw };
    for (const name of HEAD_NUMBERS) {
      if (raw[name] === undefined) continue;
      const value = Number(raw[name]);
      if (Number.isFinite(value)) head[name] = value;
      else delete head[name];
    }
    // A session whose only run was cancelled before it began has no phase or run of its own yet.
    head.phase ??= 'queued';
    head.run ??= 0;
    head.total ??= 0;
    return head as unknown as FeedHead;
  }

  /** Up to `count` entries after stream id `after` (all from the oldest kept when absent), oldest first. */
  async entries(sessionId: string, after?: string, count = this.limits.maxEntries + 1000): Promise<StoredEntry[]> {
    const start = after ? `(${after}` : '-';
    const rows = await this.redis.xrange(this.streamKey(sessionId), start, '+', 'COUNT', count);
    return rows.map(parseRow).filter((e): e is StoredEntry => e !== undefined);
  }

  /** Up to `count` entries before stream id `before` (from the newest when absent), newest first. */
  async newest(sessionId: string, count: number, before?: string): Promise<StoredEntry[]> {
    const rows = await this.redis.xrevrange(this.streamKey(sessionId), before ? `(${before}` : '+', '-', 'COUNT', count);
    return rows.map(parseRow).filter((e): e is StoredEntry => e !== undefined);
  }

  /**
   * The entries published after each cursor (session id → stream id), at most `count` per
   * session, without waiting: one round trip for every session a server follows.
   */
  async poll(cursors: ReadonlyMap<string, string>, count = 500): Promise<Map<string, StoredEntry[]>> {
    const found = new Map<string, StoredEntry[]>();
    if (cursors.size === 0) return found;
    const ids = [...cursors.keys()];
    const reply = (await this.redis.xread('COUNT', count, 'STREAMS', ...ids.map((id) => this.streamKey(id)), ...ids.map((id) => cursors.get(id) as string))) as Array<[string, Array<[string, string[]]>]> | null;
    for (const [key, rows] of reply ?? []) {
      const sessionId = key.slice(`${KEY_PREFIX}:feed:`.length);
      found.set(sessionId, rows.map(parseRow).filter((e): e is StoredEntry => e !== undefined));
    }
    return found;
  }

  /** Removes sessions' feeds and heads at once (a closed issue's, after its retention period). */
  async remove(sessionIds: readonly string[]): Promise<void> {
    const keys = sessionIds.flatMap((id) => [this.streamKey(id), this.headKey(id)]);
    if (keys.length > 0) await this.redis.del(...keys);
  }

  /** The id of the newest entry kept, or `0-0` for an empty or missing feed: a cursor that sees everything after now. */
  async lastId(sessionId: string): Promise<string> {
    const rows = await this.redis.xrevrange(this.streamKey(sessionId), '+', '-', 'COUNT', 1);
    return rows[0]?.[0] ?? '0-0';
  }
}

function parseRow([id, fields]: [string, string[]]): StoredEntry | undefined {
  const values: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) values[fields[i] as string] = fields[i + 1] as string;
  try {
    return { id, n: Number(values.n), entry: JSON.parse(values.e ?? '') as FeedEntry };
  } catch {
    return undefined;
  }
}
