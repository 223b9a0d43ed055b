import { keepStart, type SessionEvent } from '../core/index.js';
import { DEFAULT_PORTS } from '../gateway/rules.js';

/** A host a run was refused, as it is shown: `host` (on port 80 or 443) or `host:port`, with how many times. */
export interface BlockedHost {
  /** As the gateway reported it (run text: redact and escape it before showing it), cut to {@link MAX_BLOCKED_NAME} characters. */
  readonly name: string;
  readonly count: number;
}

/** The hosts a run was refused, most refused first: at most the number asked, and how many more there were. */
export interface BlockedView {
  readonly hosts: readonly BlockedHost[];
  /** Hosts refused but not in `hosts`. */
  readonly more: number;
  /** Refusals in all. */
  readonly total: number;
}

/** Distinct host:port pairs a tally remembers; refusals of others are counted, not named. */
export const MAX_BLOCKED_TRACKED = 1000;

/** Characters of a host name a tally keeps (a DNS name is at most 253): the name is the container's text, of any length. */
export const MAX_BLOCKED_NAME = 300;

type Blocked = Extract<SessionEvent, { type: 'egress.blocked' }>;

/**
 * The refusals of one run, from its `egress.blocked` events. Each event carries the running
 * count of its host:port, so the highest count seen is the total whatever order or repeats
 * the events come in (a re-attached run that sees some again counts nothing twice). Bounded:
 * at most {@link MAX_BLOCKED_TRACKED} pairs are remembered; refusals of pairs beyond them are
 * counted one an event, and a pair first refused beyond them (`count` 1) as one more host.
 */
export class BlockedTally {
  /** `port host` → the highest count seen. */
  private readonly counts = new Map<string, number>();
  private untrackedHosts = 0;
  private refusals = 0;

  /** Adds one event, in constant time; returns how many refusals it adds to those seen before (0 for a repeat). */
  add(event: Blocked): number {
    const port = Number.isInteger(event.port) ? event.port : 0;
    const count = Number.isFinite(event.count) ? Math.max(1, Math.floor(event.count)) : 1;
    const host = keepStart(String(event.host), MAX_BLOCKED_NAME);
    const key = `${port} ${host}`;
    const seen = this.counts.get(key);
    if (seen === undefined && this.counts.size >= MAX_BLOCKED_TRACKED) {
      if (count === 1) this.untrackedHosts += 1;
      this.refusals += 1;
      return 1;
    }
    if (seen !== undefined && seen >= count) return 0;
    this.counts.set(key, count);
    this.refusals += count - (seen ?? 0);
    return count - (seen ?? 0);
  }

  /** Refusals in all. */
  get total(): number {
    return this.refusals;
  }

  /**
   * The `limit` most refused hosts (a host's ports 80 and 443 together, other ports apart),
   * then by name. Sorts what it remembers (under a millisecond for the most it keeps): ask
   * for it when it is shown, not for each event.
   */
  view(limit: number): BlockedView {
    const names = new Map<string, number>();
    for (const [key, count] of this.counts) {
      const space = key.indexOf(' ');
      const port = Number(key.slice(0, space));
      const host = key.slice(space + 1);
      const name = DEFAULT_PORTS.includes(port) ? host : `${host}:${port}`;
      names.set(name, (names.get(name) ?? 0) + count);
    }
    const sorted = [...names].map(([name, count]) => ({ name, count })).sort((a, b) => b.count - a.count || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const hosts = sorted.slice(0, Math.max(0, limit));
    return { hosts, more: sorted.length - hosts.length + this.untrackedHosts, total: this.total };
  }
}
