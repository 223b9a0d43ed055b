import type { Dispatcher, RemovedSession } from '../core/index.js';
import type { IssueState } from './issue-state.js';

/** What retiring a closed issue needs: its record in Redis, this host's sessions, and the live feeds. */
export interface RetireDeps {
  readonly state: IssueState;
  readonly dispatcher: Dispatcher;
  readonly hostId: string;
  readonly feed?: { remove(sessionIds: readonly string[]): Promise<void> } | undefined;
}

/** Which close a retirement is for. */
export type RetireWhen =
  /** The retention job of one close: only while the issue is still closed since exactly then. */
  | { readonly closedAt: number }
  /** `cldpd gc`: any close before this time. */
  | { readonly closedBefore: number };

/** What {@link retireIssue} did, or why it did nothing. */
export type Retirement =
  | { readonly kind: 'kept'; readonly reason: string; readonly later: boolean }
  /** The issue's record says another host owns it: its own sessions are that host's to remove. */
  | { readonly kind: 'elsewhere'; readonly hostId: string; readonly removed: readonly RemovedSession[] }
  | { readonly kind: 'removed'; readonly removed: readonly RemovedSession[]; readonly feeds: readonly string[]; readonly keys: number };

/**
 * Removes a closed issue's sessions for good: their containers, volumes, records and logs on
 * this host, their live feeds, and the issue's own keys in Redis. Nothing is removed while
 * the issue is open (or was reopened, or closed again after `when`), while it has a run
 * queued or running (`later`: look again), or while one of its sessions here still runs.
 * When another host owns the issue, only this host's sessions of it go (`elsewhere`), and
 * its record stays for that host. `dryRun` says what would go and changes nothing.
 */
export async function retireIssue(deps: RetireDeps, issueKey: string, issueUrl: string, when: RetireWhen, options: { dryRun?: boolean } = {}): Promise<Retirement> {
  const { state, dispatcher, hostId, feed } = deps;
  const issue = await state.get(issueKey);
  if (issue.closedAt === undefined) {
    const known = issue.sessionId !== undefined || issue.hostId !== undefined || issue.seq > 0;
    return { kind: 'kept', reason: known ? 'its issue is open' : 'Redis has no record of its issue, so whether it is closed is unknown', later: false };
  }
  if ('closedAt' in when && issue.closedAt !== when.closedAt) return { kind: 'kept', reason: 'its issue was reopened, or closed again since', later: false };
  if ('closedBefore' in when && issue.closedAt > when.closedBefore) return { kind: 'kept', reason: `its issue was closed only at ${new Date(issue.closedAt).toISOString()}`, later: false };
  if (issue.running > 0 || (await state.pending(issueKey)) > 0) return { kind: 'kept', reason: 'its issue has a run queued or running', later: true };
  // An issue transferred since keeps its sessions under the address they were started with.
  const ownSession = issue.sessionId && (!issue.hostId || issue.hostId === hostId) ? [issue.sessionId] : [];
  const sessions = [...new Set([...(await dispatcher.sessionsOfIssue(issueUrl)), ...ownSession])];
  const { removed, kept } = await dispatcher.removeSessions(sessions, options);
  if (kept.length > 0) return { kind: 'kept', reason: kept.map((k) => `${k.sessionId}: ${k.reason}`).join('; '), later: true };
  if (issue.hostId && issue.hostId !== hostId) return { kind: 'elsewhere', hostId: issue.hostId, removed };
  const feeds = [...new Set([...sessions, ...(issue.sessionId ? [issue.sessionId] : [])])];
  if (options.dryRun) return { kind: 'removed', removed, feeds, keys: (await state.keysOf(issueKey)).length };
  await feed?.remove(feeds);
  const keys = await state.retire(issueKey);
  return { kind: 'removed', removed, feeds, keys };
}
