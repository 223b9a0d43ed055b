import type { Logger } from 'pino';
import type { Session } from '../core/index.js';
import type { ControlJob, RunCommand } from './contract.js';
import type { DeliveryClaims } from './delivery-claims.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import type { QueuePositions } from './queue-position.js';
import type { CommandRunner } from './run-command.js';

/** How long a delivery into a running agent holds its resume before the drain may take it back. */
const DELIVERY_CLAIM_MS = 60_000;

/** A resume offered to the running agent (the control queue's `message` job). */
export type DeliveryJob = Extract<ControlJob, { kind: 'message' }>;

/** What live delivery needs. */
export interface LiveDeliveryOptions {
  readonly state: Pick<DeliveryClaims, 'claimDelivery' | 'renewDelivery' | 'deliveryState' | 'markDelivered' | 'unclaimDelivery' | 'drainClaim'>
    & Pick<IssueRecords, 'get' | 'isStopped'> & Pick<IssueQueue, 'commands'>;
  readonly runner: Pick<CommandRunner, 'following' | 'finish'>;
  readonly positions: Pick<QueuePositions, 'settled' | 'refresh'>;
  readonly logger: Logger;
  /** How often the drain looks again at a resume whose delivery is under way; default 250 ms. */
  readonly pollMs?: number;
}

/**
 * Resumes into a running agent: a queued resume is either delivered into the agent of the
 * run this worker follows, or run by the drain in its turn, never both and never neither.
 */
export class LiveDelivery {
  constructor(private readonly options: LiveDeliveryOptions) {}

  /** The drain's claim on a resume, waiting out a delivery into the running agent that is under way. */
  async drainClaim(command: RunCommand): Promise<'run' | 'delivered'> {
    for (;;) {
      const claim = await this.options.state.drainClaim(command.issueKey, command.seq);
      if (claim !== 'pending') return claim;
      await new Promise((resolve) => setTimeout(resolve, this.options.pollMs ?? 250));
    }
  }

  /**
   * Offers a queued resume to the session's running agent as its next user message. It
   * goes in only when this worker follows the session's run and the agent still takes
   * input; the resume is claimed in Redis first, so it is either delivered here or run by
   * the drain in its turn, never both and never neither. Acknowledged on its own status
   * comment at once; the agent's answer lands in the running run's comment.
   */
  async deliver(job: DeliveryJob): Promise<string> {
    const { state } = this.options;
    const session = this.options.runner.following(job.issueKey)?.session;
    if (!session || session.id !== job.sessionId) return 'not running here: the resume runs in its turn';
    if (await state.isStopped(job.issueKey, job.seq)) return 'stopped: the drain cancels it';
    if (!(await this.earlierResumesSent(job))) return 'an earlier resume waits its turn: this one follows it';
    const reservation = session.reserve();
    if (!reservation) return 'the agent takes no more input: the resume runs in its turn';
    let claimed = false;
    try {
      claimed = await state.claimDelivery(job.issueKey, job.seq, DELIVERY_CLAIM_MS);
    } finally {
      if (!claimed) reservation.cancel();
    }
    if (!claimed) return 'the drain has it';
    const tag = String(job.seq);
    const taken = session.whenTaken(tag);
    try {
      await reservation.send(job.command.prompt, tag);
    } catch {
      await state.unclaimDelivery(job.issueKey, job.seq);
      return 'the run ended first: the resume runs in its turn';
    }
    void this.settle(job, session, taken).catch((err: unknown) =>
      this.options.logger.error({ err, issue: job.issueKey, seq: job.seq }, 'could not settle a delivery into the running agent'));
    return 'sent to the running agent';
  }

  /**
   * A sent message counts as delivered once the agent takes it (echoes it): then its
   * resume's status comment says where it went and the drain skips it. If the run ends
   * first, the resume goes back to the drain and runs on its own. Meanwhile the claim is
   * kept alive; if this worker dies, it lapses and the drain runs the resume (at least once).
   */
  private async settle(job: DeliveryJob, session: Session, taken: Promise<boolean>): Promise<void> {
    const { state, logger, positions } = this.options;
    const renew = setInterval(() => {
      state.renewDelivery(job.issueKey, job.seq, DELIVERY_CLAIM_MS).catch((err: unknown) => logger.warn({ err, issue: job.issueKey, seq: job.seq }, 'could not renew a delivery claim'));
    }, DELIVERY_CLAIM_MS / 3);
    try {
      if (!(await taken)) {
        await state.unclaimDelivery(job.issueKey, job.seq);
        return;
      }
      // The comment first, then the mark: a crash in between runs the resume again rather than leave it silent.
      // A queued render of this comment under way lands before it.
      await positions.settled(job.issueKey);
      await this.options.runner.finish(job.command, {
        kind: 'delivered',
        sessionId: session.id,
        message: `Sent to the agent of session \`${session.id}\` while it ran (run ${session.run}), which took it as its next instruction; its answer is in that run's status comment.`,
      });
      await state.markDelivered(job.issueKey, job.seq);
      // It will not run: the commands behind it have moved up.
      void positions.refresh(job.issueKey);
    } finally {
      clearInterval(renew);
    }
  }

  /** True when every resume of the issue queued before this one went (or is going) into the running agent: instructions keep their order. */
  private async earlierResumesSent(job: DeliveryJob): Promise<boolean> {
    const { state } = this.options;
    const running = (await state.get(job.issueKey)).running;
    for (const queued of await state.commands(job.issueKey)) {
      if (queued.kind !== 'resume' || queued.seq >= job.seq || queued.seq === running) continue;
      const claim = await state.deliveryState(job.issueKey, queued.seq);
      if (claim !== 'pending' && claim !== 'delivered') return false;
    }
    return true;
  }
}
