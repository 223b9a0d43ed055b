import { Queue, type ConnectionOptions } from 'bullmq';
import type { ControlJob, IntakeJob, RetireJob, RunCommand } from './contract.js';
import type { HostRegistry } from './host-registry.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import { INTAKE_QUEUE, RUN_QUEUE, controlQueue, hostQueue } from './names.js';

/** Job ids may not contain ":"; keep them to safe characters. */
export function jobId(...parts: Array<string | number>): string {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9_.-]/g, '_')).join('-');
}

/** The data of a drain job: "run the queued commands of this issue". */
export interface DrainJob {
  readonly issueKey: string;
}

const KEEP = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
};

/**
 * Puts work on the queues. The only writer of BullMQ jobs; every id is deterministic, so
 * adding the same work twice (a redelivered webhook, a retried intake) adds it once.
 */
export class Producer {
  private readonly queues = new Map<string, Queue>();

  /**
   * `options.durable`, when given, resolves once what this producer wrote so far would
   * survive the loss of the Redis server it wrote to (on a replica, behind Sentinel); an
   * intake is acknowledged only after it.
   */
  constructor(
    private readonly connection: ConnectionOptions,
    private readonly state: Pick<IssueQueue, 'append' | 'pending'> & Pick<IssueRecords, 'get'> & Pick<HostRegistry, 'hostAlive'>,
    private readonly options: { durable?: () => Promise<void> } = {},
  ) {}

  private queue(name: string): Queue {
    let queue = this.queues.get(name);
    if (!queue) {
      queue = new Queue(name, { connection: this.connection });
      // Its errors are the shared connection's, which its owner logs; unheard, BullMQ prints each to stderr.
      queue.on('error', () => undefined);
      this.queues.set(name, queue);
    }
    return queue;
  }

  /**
   * Queues a webhook delivery for its intake step (after `delayMs`, for one put off). The job
   * id is the delivery id: a redelivery within a day is a no-op. Resolves once the job is
   * durable (see the constructor's `durable`): GitHub does not send a delivery again.
   */
  async intake(job: IntakeJob, delayMs = 0): Promise<void> {
    // One BullMQ add, idempotent by job id: a redelivery adds nothing. This is all the
    // request path GitHub waits on does with Redis.
    await this.queue(INTAKE_QUEUE).add('intake', job, { jobId: jobId('delivery', job.deliveryId), attempts: 12, backoff: { type: 'exponential', delay: 2000 }, ...(delayMs > 0 ? { delay: delayMs } : {}), ...KEEP });
    await this.options.durable?.();
  }

  /**
   * Queues a run for its issue (idempotent per seq) and makes sure a drain job exists on
   * the right queue: the owning host's, or the shared one while the issue has no host (or,
   * for a start, while its host has not been seen for HOST_GONE_MS).
   * Resolves with how many runs are ahead of it.
   */
  async run(command: RunCommand): Promise<{ ahead: number }> {
    const length = await this.state.append(command);
    const issue = await this.state.get(command.issueKey);
    // A new session need not wait for a host that is gone: any worker may take it over.
    const host = issue.hostId && command.kind === 'start' && !(await this.state.hostAlive(issue.hostId)) ? undefined : issue.hostId;
    const queue = this.queue(host ? hostQueue(host) : RUN_QUEUE);
    await this.drain(command.issueKey, host, command.seq);
    const busy = await queue.getJobCounts('active', 'waiting');
    const aheadInIssue = length > 0 ? length - 1 : await this.state.pending(command.issueKey);
    return { ahead: Math.max(aheadInIssue, (busy.waiting ?? 0) + (busy.active ?? 0) - 1, 0) };
  }

  /** Adds a drain job for the issue to `hostId`'s queue (or the shared one), to run at once or after `delayMs`. */
  async drain(issueKey: string, hostId: string | undefined, seq: number | string, delayMs = 0): Promise<void> {
    const data: DrainJob = { issueKey };
    await this.queue(hostId ? hostQueue(hostId) : RUN_QUEUE).add('drain', data, {
      jobId: jobId('drain', issueKey, seq, hostId ?? 'any'),
      ...(delayMs > 0 ? { delay: delayMs } : {}),
      attempts: 5,
      backoff: { type: 'exponential', delay: 5000 },
      ...KEEP,
    });
  }

  /**
   * Queues the removal of a closed issue's sessions for `dueAt`: on its host, or any worker's
   * when it has none. Once per close, time and `tag` (what asked for it, when that is not the close).
   */
  async retire(job: RetireJob, hostId: string | undefined, dueAt: number, tag = ''): Promise<void> {
    await this.queue(hostId ? controlQueue(hostId) : RUN_QUEUE).add('retire', job, {
      jobId: jobId('retire', job.issueKey, job.closedAt, Math.round(dueAt), tag), delay: Math.max(0, dueAt - Date.now()), attempts: 5, backoff: { type: 'exponential', delay: 60_000 }, ...KEEP,
    });
  }

  /** Asks the host that owns a session to act on it now: stop it, or offer its running agent a message. */
  async control(hostId: string, job: ControlJob): Promise<void> {
    await this.queue(controlQueue(hostId)).add(job.kind, job, { jobId: jobId(job.kind, job.issueKey, job.kind === 'retire' ? job.closedAt : job.seq), attempts: 5, backoff: { type: 'exponential', delay: 1000 }, ...KEEP });
  }

  async close(): Promise<void> {
    await Promise.all([...this.queues.values()].map((q) => q.close()));
    this.queues.clear();
  }
}
