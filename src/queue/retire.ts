import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { messageOf, type HostInventory, type RemovedSession } from '../core/index.js';
import type { IssueRef, RetireJob } from './contract.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import type { Producer } from './producer.js';

/** What retiring a closed issue needs: its record in Redis, this host's sessions, and the live feeds. */
export interface RetireDeps {
  readonly state: Pick<IssueRecords, 'get' | 'retired' | 'keysOf' | 'reopened' | 'closed' | 'retire'> & Pick<IssueQueue, 'lock' | 'renew' | 'pending' | 'release'>;
  readonly inventory: HostInventory;
  readonly hostId: string;
  readonly feed?: { remove(sessionIds: readonly string[]): Promise<void> } | undefined;
  /**
   * Asks GitHub about the issue right before anything is removed: a reopen whose delivery
   * never arrived must not cost it its sessions. `closed` with when it was closed last;
   * `open`; `unknown` when GitHub does not show it (deleted, or out of the app's reach).
   * Undefined when it cannot ask (a terminal's gc); a rejection keeps everything for now.
   */
  readonly onGitHub?: (() => Promise<{ readonly state: 'open' | 'unknown' } | { readonly state: 'closed'; readonly closedAt: number | undefined }>) | undefined;
}

/** Which close a retirement is for. */
export type RetireWhen =
  /** The retention job of one close: only while the issue is still closed since exactly then, and no session was used for `retentionMs` since. */
  | { readonly closedAt: number; readonly retentionMs: number }
  /** `cldpd gc`: any close before this time, and no session used since. */
  | { readonly closedBefore: number };

/** What {@link retireIssue} did, or why it did nothing. */
export type Retirement =
  /** `later`: look again (a run going, a session running); `at`: not before then (used, or closed again, after the close). */
  | { readonly kind: 'kept'; readonly reason: string; readonly later: boolean; readonly at?: number; /** The close a later look is for, when it is another. */ readonly closedAt?: number }
  /** The issue's record says another host owns it: its own sessions are that host's to remove. */
  | { readonly kind: 'elsewhere'; readonly hostId: string; readonly removed: readonly RemovedSession[] }
  | { readonly kind: 'removed'; readonly removed: readonly RemovedSession[]; readonly feeds: readonly string[]; readonly keys: number };

/** How long the issue's lock is held while it is retired, renewed meanwhile. */
const LOCK_MS = 60_000;

/**
 * Removes a closed issue's sessions for good: the issue's own keys in Redis and its live
 * feeds first, then its sessions' containers, volumes, records and logs on this host.
 *
 * Nothing is removed while the issue is open (or was reopened, or closed again after
 * `when`), while a session of it was used since the close (the period then runs from that
 * use), while it has a run queued or running (`later`: look again), or while GitHub says it
 * is open. The issue's drain lock is held throughout, and its keys go in one step that checks
 * nothing was asked of it since: from then on a new label starts a new session, and no
 * command can reach the sessions being removed. Their removal is idempotent: one that did not
 * finish (a container still running, Docker away) finishes when looked at again, from the
 * marker the keys' removal left. When another host owns the issue, only this host's
 * sessions of it go (`elsewhere`). `dryRun` says what would go and changes nothing.
 */
export async function retireIssue(deps: RetireDeps, issueKey: string, issueUrl: string, when: RetireWhen, options: { dryRun?: boolean } = {}): Promise<Retirement> {
  const { state, inventory, hostId } = deps;
  const first = await state.get(issueKey);
  if (first.closedAt === undefined) {
    // Its keys may be gone already, by a removal that did not finish with the sessions.
    const retired = await state.retired(issueKey);
    if (retired && 'closedAt' in when && retired.closedAt === when.closedAt && first.seq <= retired.seq) {
      // Only what was there at the retirement: a session started since is a new one's.
      const candidates = [...new Set([...(await inventory.sessionsOfIssue(issueUrl)), ...(retired.sessionId ? [retired.sessionId] : [])])];
      const old: string[] = [];
      for (const id of candidates) if (((await inventory.createdAt(id)) ?? 0) <= retired.at) old.push(id);
      return removeSessions(deps, old, 0, options);
    }
    const known = first.sessionId !== undefined || first.hostId !== undefined || first.seq > 0;
    return { kind: 'kept', reason: known ? 'its issue is open' : 'Redis has no record of its issue, so whether it is closed is unknown', later: false };
  }
  const token = `retire:${hostId}:${randomBytes(4).toString('hex')}`;
  if (!options.dryRun && !(await state.lock(issueKey, token, LOCK_MS))) return { kind: 'kept', reason: 'its issue has a run going', later: true };
  let lost = false;
  const renew = options.dryRun ? undefined : setInterval(() => {
    state.renew(issueKey, token, LOCK_MS).then((ok) => (lost ||= !ok), () => undefined);
  }, LOCK_MS / 3);
  try {
    const issue = await state.get(issueKey);
    const closedAt = issue.closedAt;
    if (closedAt === undefined) return { kind: 'kept', reason: 'its issue is open', later: false };
    if ('closedAt' in when && closedAt !== when.closedAt) return { kind: 'kept', reason: 'its issue was reopened, or closed again since', later: false };
    if ('closedBefore' in when && closedAt > when.closedBefore) return { kind: 'kept', reason: `its issue was closed only at ${new Date(closedAt).toISOString()}`, later: false };
    if (issue.running > 0 || (await state.pending(issueKey)) > 0) return { kind: 'kept', reason: 'its issue has a run queued or running', later: true };
    // An issue transferred since keeps its sessions under the address they were started with.
    const ownSession = issue.sessionId && (!issue.hostId || issue.hostId === hostId) ? [issue.sessionId] : [];
    const sessions = [...new Set([...(await inventory.sessionsOfIssue(issueUrl)), ...ownSession])];
    const lastUsed = await inventory.lastActive(sessions);
    if ('retentionMs' in when && lastUsed !== undefined && lastUsed > closedAt) {
      const at = lastUsed + when.retentionMs;
      if (at > Date.now()) return { kind: 'kept', reason: `a session of it was used after the close, at ${new Date(lastUsed).toISOString()}`, later: false, at };
    }
    if ('closedBefore' in when && lastUsed !== undefined && lastUsed > when.closedBefore) {
      return { kind: 'kept', reason: `a session of it was used after the cut-off, at ${new Date(lastUsed).toISOString()}`, later: false };
    }
    if (issue.hostId && issue.hostId !== hostId) {
      const { removed, kept } = await inventory.removeSessions(sessions, options);
      if (kept.length > 0) return { kind: 'kept', reason: kept.map((k) => `${k.sessionId}: ${k.reason}`).join('; '), later: true };
      return { kind: 'elsewhere', hostId: issue.hostId, removed };
    }
    if (options.dryRun) {
      const { removed } = await inventory.removeSessions(sessions, options);
      return { kind: 'removed', removed, feeds: feedsOf(sessions, issue.sessionId), keys: (await state.keysOf(issueKey)).length };
    }
    const github = await deps.onGitHub?.();
    if (github?.state === 'open') {
      await state.reopened(issueKey, Date.now());
      return { kind: 'kept', reason: 'GitHub says its issue is open again', later: false };
    }
    if (github?.state === 'unknown') return { kind: 'kept', reason: 'GitHub does not show its issue (deleted, or out of the app\'s reach): "cldpd gc" removes it', later: false };
    if (github?.state === 'closed' && github.closedAt !== undefined && 'retentionMs' in when && github.closedAt > closedAt + 1000) {
      // Reopened and closed again, both unheard of: the period runs from that close.
      await state.closed(issueKey, github.closedAt);
      return { kind: 'kept', reason: `GitHub says its issue was closed again at ${new Date(github.closedAt).toISOString()}`, later: false, at: github.closedAt + when.retentionMs, closedAt: github.closedAt };
    }
    if (lost) return { kind: 'kept', reason: 'its issue\'s lock was lost', later: true };
    const keys = await state.retire(issueKey, { closedAt, seq: issue.seq, sessionId: issue.sessionId });
    if (keys === undefined) return { kind: 'kept', reason: 'its issue was asked for a run meanwhile', later: true };
    const feeds = feedsOf(sessions, issue.sessionId);
    await deps.feed?.remove(feeds);
    const outcome = await removeSessions(deps, sessions, keys, options);
    return outcome.kind === 'removed' ? { ...outcome, feeds } : outcome;
  } finally {
    if (renew) clearInterval(renew);
    if (!options.dryRun) await state.release(issueKey, token).catch(() => undefined);
  }
}

function feedsOf(sessions: readonly string[], current: string | undefined): string[] {
  return [...new Set([...sessions, ...(current ? [current] : [])])];
}

/** The sessions' part of a retirement, once the issue's keys are gone: kept for later while one still runs. */
async function removeSessions(deps: RetireDeps, sessions: readonly string[], keys: number, options: { dryRun?: boolean }): Promise<Retirement> {
  const { removed, kept } = await deps.inventory.removeSessions(sessions, options);
  if (kept.length > 0) return { kind: 'kept', reason: `its keys are removed; ${kept.map((k) => `${k.sessionId}: ${k.reason}`).join('; ')}`, later: true };
  return { kind: 'removed', removed, feeds: [], keys };
}

/** How long a closed issue's removal waits before it looks again (a run going, a session running, an error), and how often at most: a month. */
const RETIRE_RECHECK_MS = 3600_000;
const MAX_RETIRE_RECHECKS = 24 * 30;

/** What the retire job of a worker needs: what a retirement needs, and where to send the job on. */
export interface RetireJobDeps extends Omit<RetireDeps, 'onGitHub'> {
  readonly producer: Pick<Producer, 'retire'>;
  readonly logger: Logger;
  /** What GitHub says of the issue, asked before a retirement removes anything; not asked when absent. */
  readonly issueOnGitHub?: ((issue: IssueRef) => ReturnType<NonNullable<RetireDeps['onGitHub']>>) | undefined;
}

/**
 * Runs a retire job: removes a closed issue's sessions once its retention period is over
 * (see retireIssue). Looked at again in an hour while the issue has a run queued or running;
 * sent on to the host that owns the issue once this host's sessions of it are gone. Says what it did.
 */
export async function runRetireJob(deps: RetireJobDeps, job: RetireJob): Promise<string> {
  const { state, inventory, hostId, logger, producer, feed, issueOnGitHub } = deps;
  const issue = job.issue;
  const onGitHub = issueOnGitHub && issue ? () => issueOnGitHub(issue) : undefined;
  let outcome: Retirement;
  try {
    outcome = await retireIssue({ state, inventory, hostId, feed, onGitHub }, job.issueKey, job.issueUrl, { closedAt: job.closedAt, retentionMs: job.retentionMs ?? 0 });
  } catch (err) {
    // Docker, Redis or GitHub did not answer: looked at again later, as a run going would be.
    logger.warn({ err: messageOf(err), issue: job.issueKey }, 'could not remove a closed issue\'s sessions; trying again in an hour');
    outcome = { kind: 'kept', reason: messageOf(err), later: true };
  }
  const sessions = (removed: readonly RemovedSession[]) => ({ sessions: removed.map((r) => r.sessionId), containers: removed.reduce((n, r) => n + r.containers, 0), volumes: removed.flatMap((r) => r.volumes), bytes: removed.reduce((n, r) => n + r.bytes, 0) });
  switch (outcome.kind) {
    case 'kept': {
      const owner = (await state.get(job.issueKey)).hostId;
      if (outcome.at !== undefined) {
        await producer.retire({ ...job, closedAt: outcome.closedAt ?? job.closedAt }, owner, outcome.at);
        return `kept until ${new Date(outcome.at).toISOString()}: ${outcome.reason}`;
      }
      if (!outcome.later) return `kept: ${outcome.reason}`;
      const recheck = (job.recheck ?? 0) + 1;
      if (recheck > MAX_RETIRE_RECHECKS) {
        logger.error({ issue: job.issueKey, reason: outcome.reason }, 'gave up removing a closed issue\'s sessions after a month of trying; "cldpd gc" removes them once nothing of them runs');
        return `given up: ${outcome.reason}`;
      }
      // An hour, or the retention period when that is shorter (a test's few seconds).
      await producer.retire({ ...job, recheck }, owner, Date.now() + Math.min(RETIRE_RECHECK_MS, Math.max(1000, job.retentionMs ?? RETIRE_RECHECK_MS)));
      return `kept for now: ${outcome.reason}`;
    }
    case 'elsewhere':
      if (outcome.removed.length > 0) logger.info({ issue: job.issueKey, ...sessions(outcome.removed) }, 'removed this host\'s sessions of a closed issue after its retention period');
      await producer.retire(job, outcome.hostId, Date.now());
      return `forwarded to ${outcome.hostId}`;
    case 'removed':
      logger.info({ issue: job.issueKey, ...sessions(outcome.removed), feeds: outcome.feeds, keys: outcome.keys }, 'removed a closed issue\'s sessions after its retention period');
      return `removed ${outcome.removed.length} session${outcome.removed.length === 1 ? '' : 's'} and ${outcome.keys} key${outcome.keys === 1 ? '' : 's'}`;
  }
}
