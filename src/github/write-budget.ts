import type { CommentsApi } from './comments-api.js';

/**
 * GitHub writes (comments posted or edited), budgeted per installation: GitHub's secondary
 * rate limits count content-creating requests per installation, whichever process makes
 * them. Progress edits take a write only when one is free; what must land waits for one.
 */
export interface WriteBudget {
  /** Takes a write of `installationId` if one is free now. */
  tryTake(installationId: number): Promise<boolean>;
  /** Waits for a write of `installationId`, then takes it. */
  take(installationId: number): Promise<void>;
}

/**
 * The bucket every budget uses: `perMinute` writes a minute, refilled continuously, holding
 * at most half a minute's worth. A bucket nobody used is full. So no 60 s ever sees more
 * than 1.5 × `perMinute` writes (60 at the default 40: GitHub's limit is 80), and a burst of
 * runs starting together gets its "queued" comments out at once.
 */
export function bucketCapacity(perMinute: number): number {
  return Math.max(1, Math.floor(perMinute / 2));
}

/** A WriteBudget inside one process (tests, the bench, a single `cldpd up`). */
export class LocalWriteBudget implements WriteBudget {
  private readonly buckets = new Map<number, { tokens: number; last: number }>();

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {}

  /** Takes a write if one is free, else says in how many ms one will be. */
  private takeOrWait(installationId: number): number {
    const t = this.now();
    const capacity = bucketCapacity(this.perMinute);
    const bucket = this.buckets.get(installationId) ?? { tokens: capacity, last: t };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((t - bucket.last) * this.perMinute) / 60_000);
    bucket.last = t;
    this.buckets.set(installationId, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) * 60_000) / this.perMinute);
  }

  async tryTake(installationId: number): Promise<boolean> {
    return this.takeOrWait(installationId) === 0;
  }

  async take(installationId: number): Promise<void> {
    for (let wait = this.takeOrWait(installationId); wait > 0; wait = this.takeOrWait(installationId)) {
      await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 10)));
    }
  }
}

/** A CommentsApi whose posts and edits wait for the budget: for writes that must land (the intake's). */
export function budgetedComments(api: CommentsApi, budget: WriteBudget): CommentsApi {
  return {
    async create(issue, body) {
      await budget.take(issue.installationId);
      return api.create(issue, body);
    },
    async update(issue, commentId, body) {
      await budget.take(issue.installationId);
      return api.update(issue, commentId, body);
    },
    list: (issue) => api.list(issue),
  };
}
