import { randomBytes } from 'node:crypto';
import { DelayedError, type Job } from 'bullmq';
import type { Logger } from 'pino';
import type { HostRegistry } from './host-registry.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import type { LiveDelivery } from './live-delivery.js';
import { HOST_GONE_MS } from './names.js';
import type { DrainJob, Producer } from './producer.js';
import type { ProviderWaits } from './provider-waits.js';
import type { QueuePositions } from './queue-position.js';
import type { CommandRunner } from './run-command.js';

/** What a drain says when the issue's lock went to another drainer before its queue was empty. */
export const LOST_LOCK = 'lost the issue lock';

/** What the drain needs. */
export interface IssueDrainOptions {
  readonly hostId: string;
  readonly state: Pick<IssueRecords, 'get'>
    & Pick<IssueQueue, 'head' | 'done' | 'lock' | 'renew' | 'releaseIfEmpty' | 'release'>
    & Pick<HostRegistry, 'claimHost' | 'hostAlive' | 'rebindHost'>;
  readonly producer: Pick<Producer, 'drain'>;
  readonly runner: Pick<CommandRunner, 'run' | 'finish'>;
  readonly delivery: Pick<LiveDelivery, 'drainClaim'>;
  readonly positions: Pick<QueuePositions, 'settled' | 'refresh'>;
  /** Holds back a command the model provider refuses for now (see ProviderWaits.holdUntil); never when absent. */
  readonly waits?: Pick<ProviderWaits, 'holdUntil'> | undefined;
  readonly logger: Logger;
  /** How long the per-issue lock stays with a drainer that stopped renewing it. */
  readonly lockTtlMs: number;
  /** How soon a drain job whose issue is busy elsewhere looks again. */
  readonly recheckMs: number;
  /** How long a host counts as alive after its last heartbeat (for the log line of a take-over). */
  readonly hostGoneMs?: number | undefined;
}

/** The part of a BullMQ drain job the drain uses. */
export type DrainJobHandle = Pick<Job<DrainJob>, 'id' | 'data' | 'moveToDelayed'>;

/**
 * The per-issue drain: runs one issue's queued commands in order, one at a time, under the
 * issue's lock; forwards the issue to the host that owns it, or takes it over from a gone one.
 */
export class IssueDrain {
  constructor(private readonly options: IssueDrainOptions) {}

  /** Drains the job's issue; says what it did. Throws DelayedError when another drainer holds the issue (the job looks again later). */
  async drain(job: DrainJobHandle, token: string | undefined): Promise<string> {
    const { state, hostId, logger, positions, runner, producer, lockTtlMs } = this.options;
    const { issueKey } = job.data;
    const owner = (await state.get(issueKey)).hostId;
    if (owner && owner !== hostId && !(await this.takeOver(issueKey, owner))) {
      const now = (await state.get(issueKey)).hostId ?? owner; // another worker may have taken it over meanwhile
      if (now !== hostId) {
        await producer.drain(issueKey, now, `fwd-${job.id ?? ''}`);
        return `forwarded to ${now}`;
      }
    }
    const lockToken = `${hostId}:${job.id ?? ''}:${randomBytes(4).toString('hex')}`;
    if (!(await state.lock(issueKey, lockToken, lockTtlMs))) {
      // Another drainer is running this issue's commands and will take this one too; look
      // again shortly in case it died.
      await job.moveToDelayed(Date.now() + this.options.recheckMs, token);
      throw new DelayedError();
    }
    let lost = false;
    const renew = setInterval(() => {
      state.renew(issueKey, lockToken, lockTtlMs).then((ok) => {
        if (!ok && !lost) {
          lost = true;
          logger.error({ issue: issueKey }, 'lost the issue lock; finishing the current run, then stopping');
        }
      }, (err: unknown) => logger.warn({ err, issue: issueKey }, 'could not renew the issue lock'));
    }, lockTtlMs / 3);
    let released = false;
    try {
      while (!lost) {
        const command = await state.head(issueKey);
        if (!command) {
          if (await state.releaseIfEmpty(issueKey, lockToken)) {
            released = true;
            break;
          }
          continue;
        }
        // The commands behind this one have moved up (the one before ended) or this one is
        // about to start: their comments show their new place while it runs. Renders begun
        // before land first: this command may be one they were for.
        await positions.settled(issueKey);
        void positions.refresh(issueKey);
        if (command.kind === 'resume' && (await this.options.delivery.drainClaim(command)) === 'delivered') {
          // It went into the running agent as its next message (see LiveDelivery.deliver).
          await state.done(command);
          continue;
        }
        const issue = await state.get(issueKey);
        // A stopped command that had already started is not "cancelled": it is picked up
        // again below, and the stop is applied to what is still running.
        if (command.seq <= issue.stoppedSeq && issue.running !== command.seq) {
          await runner.finish(command, { kind: 'cancelled', sessionId: command.sessionId, message: 'Cancelled by `/cldpd stop` before it started.' });
          await state.done(command);
          continue;
        }
        const waitUntil = await this.options.waits?.holdUntil(command);
        if (waitUntil !== undefined) {
          // The provider refuses this command's credential for now: look again then, holding nothing meanwhile.
          await positions.settled(issueKey);
          await state.release(issueKey, lockToken);
          released = true;
          await producer.drain(issueKey, (await state.get(issueKey)).hostId, `wait-${command.seq}-${Date.now()}`, waitUntil - Date.now());
          logger.info({ issue: issueKey, seq: command.seq, until: new Date(waitUntil).toISOString() }, 'a run waits for the model provider\'s limit to reset');
          return `waiting for the provider until ${new Date(waitUntil).toISOString()}`;
        }
        if (command.kind === 'start') {
          const claimed = await state.claimHost(issueKey, hostId);
          if (claimed !== hostId && !(await this.takeOver(issueKey, claimed))) {
            await positions.settled(issueKey);
            await state.release(issueKey, lockToken);
            released = true;
            await producer.drain(issueKey, claimed, `fwd-${job.id ?? ''}`);
            return `forwarded to ${claimed}`;
          }
        }
        await runner.run(command);
        await state.done(command);
      }
      return lost ? LOST_LOCK : 'drained';
    } finally {
      clearInterval(renew);
      if (!released) await state.release(issueKey, lockToken).catch(() => undefined);
    }
  }

  /**
   * Takes an issue over from a host that is gone, when what waits first is a new session:
   * its old sessions (and their volumes) stay on that host, which runs their resumes when
   * it is back, but a start need not wait for it.
   */
  private async takeOver(issueKey: string, owner: string): Promise<boolean> {
    const { state, hostId, logger } = this.options;
    const head = await state.head(issueKey);
    // A run that began on that host may still be running there (a host cut off from Redis
    // runs on): it is never started a second time here.
    if (head?.kind !== 'start' || (await state.get(issueKey)).running === head.seq || (await state.hostAlive(owner))) return false;
    if (!(await state.rebindHost(issueKey, owner, hostId))) return false;
    logger.warn({ issue: issueKey, from: owner }, `the host that owned this issue has not been seen for ${Math.round((this.options.hostGoneMs ?? HOST_GONE_MS) / 1000)} s; its new session runs here`);
    return true;
  }
}
