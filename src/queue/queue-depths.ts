import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';

/** How many jobs one queue holds, by state. */
export interface QueueDepth {
  readonly queue: string;
  readonly waiting: number;
  readonly active: number;
  readonly delayed: number;
}

/**
 * Counts the jobs of a fixed set of queues, for the metrics: one BullMQ Queue per name,
 * opened once on the shared connection and closed by `close()`. Takes no job and changes
 * nothing.
 */
export class QueueDepths {
  private readonly queues: Queue[];

  /** `names`: the queues to count (see names.ts); a name given twice is counted once. */
  constructor(private readonly redis: Redis, names: readonly string[]) {
    this.queues = [...new Set(names)].map((name) => new Queue(name, { connection: redis }));
    // Their errors are the shared connection's, which its owner logs; unheard, BullMQ prints each to stderr.
    for (const queue of this.queues) queue.on('error', () => undefined);
  }

  /**
   * The jobs each queue holds now, in the order the names were given. Rejects at once when
   * Redis is not connected (ioredis would otherwise hold the calls until it is back).
   */
  async counts(): Promise<QueueDepth[]> {
    if (this.redis.status !== 'ready') throw new Error(`Redis is not connected (${this.redis.status})`);
    return Promise.all(this.queues.map(async (queue) => {
      const counts = await queue.getJobCounts('waiting', 'active', 'delayed');
      return { queue: queue.name, waiting: counts.waiting ?? 0, active: counts.active ?? 0, delayed: counts.delayed ?? 0 };
    }));
  }

  /** Closes the queues; the Redis connection stays open (it is the caller's). */
  async close(): Promise<void> {
    await Promise.all(this.queues.map((queue) => queue.close()));
  }
}
