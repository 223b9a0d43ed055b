import { randomBytes } from 'node:crypto';
import type { Dispatcher, RemovedSession } from '../core/index.js';
import type { IssueState } from './issue-state.js';

/** What retiring a closed issue needs: its record in Redis, this host's sessions, and the live feeds. */
export interface RetireDeps {
  readonly state: IssueState;
  readonly dispatcher: Dispatcher;
  readonly hostId: string;
  readonly feed?: { remove(sessionIds: readonly string[]): Promise<void> } | undefined;
  /**
   * Asks GitHub whether the issue is still closed, right before anything is removed: a
   * reopen whose delivery never arrived must not cost the issue its sessions. Undefined when
   * it cannot ask (a terminal's gc); a rejection keeps everything for now.
   */
  readonly stillClosed?: (() => Promise<boolean>) | undefined;
}

/** Which close a retirement is for. */
export type RetireWhen =
  /** The retention job of one close: only while the issue is still closed since exactly then, and no session was used for `retentionMs` since. */
  | { readonly closedAt: number; readonly retentionMs: number }
  /** `cldpd gc`: any close before this time, and no session used since. */
  | { readonly closedBefore: number };

/** What {@link retireIssue} did, or why it did nothing. */
export type Retirement =
  /** `later`: look again (a run going, a session running); `at`: not before then (a session was used after the close). */
  | { readonly kind: 'kept'; readonly reason: string; readonly later: boolean; readonly at?: number }
  /** The issue's record says another host owns it: its own sessions are that host's to remove. */
  | { readonly kind: 'elsewhere'; readonly hostId: string; readonly removed: readonly RemovedSession[] }
  | { readonly kind: 'removed'; readonly removed: readonly RemovedSession[]; readonly feeds: readonly string[]; readonly keys: number };

/** How long the issue's lock is held while its sessions are removed, renewed meanwhile. */
const LOCK_MS = 60_000;

/**
 * Removes a closed issue's sessions for good: their containers, volumes, records and logs on
 * this host, their live feeds, and the issue's own keys in Redis. Nothing is removed while
 * the issue is open (or was reopened, or closed again after `when`), while a session of it
 * was used since (the period then runs from that use), while it has a run queued or running
 * (`later`: look again), or while one of its sessions here still runs. The issue's drain
 * lock is held throughout, so no run of it starts meanwhile, and its keys go in one step
 * that checks nothing was asked of it since. When another host owns the issue, only this
 * host's sessions of it go (`elsewhere`). `dryRun` says what would go and changes nothing.
 */
export async function retireIssue(deps: RetireDeps, issueKey: string, issueUrl: string, when: RetireWhen, options: { dryRun?: boolean } = {}): Promise<Retirement> {
  const { state, dispatcher, hostId, feed } = deps;
  const first = await state.get(issueKey);
  if (first.closedAt === undefined) {
    const known = first.sessionId !== undefined || first.hostId !== undefined || first.seq > 0;
    return { kind: 'kept', reason: known ? 'its issue is open' : 'Redis has no record of its issue, so whether it is closed is unknown', later: false };
  }
  const token = `retire:${hostId}:${randomBytes(4).toString('hex')}`;
  if (!options.dryRun && !(await state.lock(issueKey, token, LOCK_MS))) return { kind: 'kept', reason: 'its issue has a run going', later: true };
  const renew = options.dryRun ? undefined : setInterval(() => void state.renew(issueKey, token, LOCK_MS).catch(() => undefined), LOCK_MS / 3);
  try {
    const issue = await state.get(issueKey);
    const closedAt = issue.closedAt;
    if (closedAt === undefined) return { kind: 'kept', reason: 'its issue is open', later: false };
    if ('closedAt' in when && closedAt !== when.closedAt) return { kind: 'kept', reason: 'its issue was reopened, or closed again since', later: false };
    if ('closedBefore' in when && closedAt > when.closedBefore) return { kind: 'kept', reason: `its issue was closed only at ${new Date(closedAt).toISOString()}`, later: false };
    if (issue.running > 0 || (await state.pending(issueKey)) > 0) return { kind: 'kept', reason: 'its issue has a run queued or running', later: true };
    // An issue transferred since keeps its sessions under the address they were started with.
    const ownSession = issue.sessionId && (!issue.hostId || issue.hostId === hostId) ? [issue.sessionId] : [];
    const sessions = [...new Set([...(await dispatcher.sessionsOfIssue(issueUrl)), ...ownSession])];
    const lastUsed = await dispatcher.lastActive(sessions);
    if ('retentionMs' in when && lastUsed !== undefined && lastUsed > closedAt) {
      const at = lastUsed + when.retentionMs;
      if (at > Date.now()) return { kind: 'kept', reason: `a session of it was used after the close, at ${new Date(lastUsed).toISOString()}`, later: false, at };
    }
    if ('closedBefore' in when && lastUsed !== undefined && lastUsed > when.closedBefore) {
      return { kind: 'kept', reason: `a session of it was used after the cut-off, at ${new Date(lastUsed).toISOString()}`, later: false };
    }
    if (!options.dryRun && deps.stillClosed && !(await deps.stillClosed())) {
      await state.reopened(issueKey, Date.now());
      return { kind: 'kept', reason: 'GitHub says its issue is open again', later: false };
    }
    const { removed, kept } = await dispatcher.removeSessions(sessions, options);
    if (kept.length > 0) return { kind: 'kept', reason: kept.map((k) => `${k.sessionId}: ${k.reason}`).join('; '), later: true };
    if (issue.hostId && issue.hostId !== hostId) return { kind: 'elsewhere', hostId: issue.hostId, removed };
    const feeds = [...new Set([...sessions, ...(issue.sessionId ? [issue.sessionId] : [])])];
    if (options.dryRun) return { kind: 'removed', removed, feeds, keys: (await state.keysOf(issueKey)).length };
    const keys = await state.retire(issueKey, { closedAt, seq: issue.seq });
    if (keys === undefined) return { kind: 'kept', reason: 'its issue was asked for a run meanwhile', later: false };
    await feed?.remove(feeds);
    return { kind: 'removed', removed, feeds, keys };
  } finally {
    if (renew) clearInterval(renew);
    if (!options.dryRun) await state.release(issueKey, token).catch(() => undefined);
  }
}
