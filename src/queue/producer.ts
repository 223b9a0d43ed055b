import { Queue, type ConnectionOptions } from 'bullmq';
import type { ControlJob, IntakeJob, RetireJob, RunCommand } from './contract.js';
import { SHARED_POOL, type FairPool } from './fair-pool.js';
import type { HostRegistry } from './host-registry.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import { INTAKE_QUEUE, RUN_QUEUE, controlQueue, hostQueue } from './names.js';

/** Job ids may not contain ":"; keep them to safe characters. */
export function jobId(...parts: Array<string | number>): string {
  return parts.map((p) => String(p).replace(/[^A-Za-z0-9_.-]/g, '_')).join('-');
}

/**
 * The data of a drain job: a slot's turn in its queue's pool (see FairPool). It drains the
 * pool's fair next issue, which is `issueKey` only when that one's turn has come.
 */
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
   * `options.durable`, when given, makes an intake's write (`write`, idempotent) and resolves
   * once it would survive the loss of the Redis server it went to (on a replica, behind
   * Sentinel), writing it again if need be; an intake is acknowledged only after it.
   */
  constructor(
    private readonly connection: ConnectionOptions,
    private readonly state: Pick<IssueQueue, 'append' | 'pending' | 'head'> & Pick<IssueRecords, 'get'> & Pick<HostRegistry, 'hostAlive'> & Pick<FairPool, 'waitForSlot' | 'placeInPool'>,
    private readonly options: { durable?: (write: () => Promise<unknown>) => Promise<void> } = {},
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
    const write = () => this.queue(INTAKE_QUEUE).add('intake', job, { jobId: jobId('delivery', job.deliveryId), attempts: 12, backoff: { type: 'exponential', delay: 2000 }, ...(delayMs > 0 ? { delay: delayMs } : {}), ...KEEP });
    if (this.options.durable) await this.options.durable(write);
    else await write();
  }

  /**
   * Queues a run for its issue (idempotent per seq) and makes sure a drain job exists on
   * the right queue: the owning host's, or the shared one while the issue has no host (or,
   * for a start, while its host has not been seen for HOST_GONE_MS).
   */
  async run(command: RunCommand): Promise<void> {
    await this.state.append(command);
    await this.drain(command.issueKey, await this.hostFor(command), command.seq, 0, command.requestedBy);
  }

  /**
   * How many issues the pool of `command`'s issue gives a slot before it, were it queued now
   * (0 when it would be next); undefined when that is not known (further back than 500).
   * Runs of its own issue ahead of it are counted apart.
   */
  async place(command: Pick<RunCommand, 'issueKey' | 'kind' | 'requestedBy'>): Promise<number | undefined> {
    return this.state.placeInPool((await this.hostFor(command)) ?? SHARED_POOL, command.issueKey, command.requestedBy);
  }

  /** The host whose queue takes the command's issue, or undefined for the shared queue. */
  private async hostFor(command: Pick<RunCommand, 'issueKey' | 'kind'>): Promise<string | undefined> {
    const issue = await this.state.get(command.issueKey);
    // A new session need not wait for a host that is gone: any worker may take it over.
    return issue.hostId && command.kind === 'start' && !(await this.state.hostAlive(issue.hostId)) ? undefined : issue.hostId;
  }

  /**
   * Says the issue waits for a slot in `hostId`'s pool (or the shared one), from `delayMs` on,
   * and adds that slot's turn: a drain job on the pool's queue, one per arrival in the pool
   * (so a retried call adds none, and an entry never waits without a turn of its own).
   * `person`: who asked for the run that waits first (read from the issue's queue when not given).
   */
  async drain(issueKey: string, hostId: string | undefined, seq: number | string, delayMs = 0, person?: string): Promise<void> {
    // The pool first: a turn with nothing waiting is over at once, an issue waiting with no
    // turn would wait for the next one. No delay is due 0, not "now": another machine's
    // clock may be behind this one's.
    const who = person ?? (await this.state.head(issueKey))?.requestedBy ?? '';
    const pool = hostId ?? SHARED_POOL;
    const due = delayMs > 0 ? Date.now() + delayMs : 0;
    const { arrival, earlier } = await this.state.waitForSlot(pool, issueKey, who, due);
    const data: DrainJob = { issueKey };
    const add = (id: string) => this.queue(hostId ? hostQueue(hostId) : RUN_QUEUE).add('drain', data, {
      jobId: id,
      ...(delayMs > 0 ? { delay: delayMs } : {}),
      attempts: 5,
      backoff: { type: 'exponential', delay: 5000 },
      ...KEEP,
    });
    await add(jobId('drain', issueKey, pool, arrival));
    // It waited for a later time and is due sooner now: a turn for that time too.
    if (earlier) await add(jobId('drain', issueKey, pool, arrival, 'at', due, seq));
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
