import type { FeedHead, SessionFeedStore, StoredEntry } from '../queue/session-feed.js';

/** One live page following a session: where it is, and where its new entries go. */
export interface FeedSubscriber {
  /** The stream id of the last entry it has; only later ones are handed to it. */
  cursor: string;
  /** New entries (oldest first) and the head as of them. */
  deliver(entries: readonly StoredEntry[], head: FeedHead | undefined): void;
}

/** Orders two stream ids (`<ms>-<seq>`). */
export function compareIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map((p) => BigInt(p || '0'));
  const [bm = 0n, bs = 0n] = b.split('-').map((p) => BigInt(p || '0'));
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}

/**
 * Follows the feeds that open pages watch, for one server process: every `pollMs` while
 * anyone watches, one non-blocking read over all their sessions (from the oldest cursor of
 * each), then each subscriber gets what is newer than its own cursor. One Redis connection
 * serves any number of pages; nothing polls while nobody watches.
 */
export class FeedFollower {
  private readonly watching = new Map<string, Set<FeedSubscriber>>();
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  private closed = false;

  constructor(private readonly store: Pick<SessionFeedStore, 'poll' | 'head'>, private readonly pollMs = 200, private readonly onError: (err: unknown) => void = () => undefined) {}

  /** Starts handing `subscriber` the session's new entries; returns what stops it. */
  follow(sessionId: string, subscriber: FeedSubscriber): () => void {
    let subs = this.watching.get(sessionId);
    if (!subs) this.watching.set(sessionId, (subs = new Set()));
    subs.add(subscriber);
    this.arm();
    return () => {
      subs.delete(subscriber);
      if (subs.size === 0 && this.watching.get(sessionId) === subs) this.watching.delete(sessionId);
    };
  }

  /** Pages being followed now. */
  get followers(): number {
    let count = 0;
    for (const subs of this.watching.values()) count += subs.size;
    return count;
  }

  /** Stops polling; subscribers get nothing more. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.watching.clear();
  }

  private arm(): void {
    if (this.timer || this.polling || this.closed || this.watching.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, this.pollMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.polling = true;
    try {
      // Only the subscribers there now get this read: one that joins while it is under way
      // may be behind the cursors it was made from, and waits for the next read.
      const cursors = new Map<string, string>();
      const polled = new Map<string, FeedSubscriber[]>();
      for (const [sessionId, subs] of this.watching) {
        let oldest: string | undefined;
        for (const sub of subs) if (oldest === undefined || compareIds(sub.cursor, oldest) < 0) oldest = sub.cursor;
        if (oldest !== undefined) cursors.set(sessionId, oldest);
        polled.set(sessionId, [...subs]);
      }
      const found = await this.store.poll(cursors);
      for (const [sessionId, entries] of found) {
        if (entries.length === 0) continue;
        const head = await this.store.head(sessionId);
        for (const sub of polled.get(sessionId) ?? []) {
          if (!this.watching.get(sessionId)?.has(sub)) continue;
          const fresh = entries.filter((e) => compareIds(e.id, sub.cursor) > 0);
          if (fresh.length === 0) continue;
          sub.cursor = (fresh.at(-1) as StoredEntry).id;
          sub.deliver(fresh, head);
        }
      }
    } catch (err) {
      this.onError(err);
    } finally {
      this.polling = false;
      this.arm();
    }
  }
}
