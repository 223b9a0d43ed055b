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
 * Told when the budget held a write back: `waited` when a write that must land had to wait
 * for the bucket, `skipped` when a progress edit was left out because the bucket was empty.
 * Must not throw.
 */
export interface BudgetObserver {
  budget(kind: 'waited' | 'skipped'): void;
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

/**
 * One installation's bucket, wherever it is kept: takes a write if one is free and resolves
 * with 0, else with the ms until one will be. Rejects when the bucket cannot be reached.
 */
export type TakeOrWait = (installationId: number) => Promise<number>;

/**
 * The WriteBudget over a bucket. When the bucket cannot be reached, progress edits are
 * skipped and writes that must land go ahead: the budget protects GitHub's limits, it must
 * never keep an outcome off an issue. `observer` is told of each write held back by an
 * empty bucket (one `waited` per write, however long it waited), not of an unreachable one
 * (that goes to `onError`).
 */
export function tokenBudget(takeOrWait: TakeOrWait, onError: (err: unknown) => void = () => undefined, observer?: BudgetObserver): WriteBudget {
  const held = (kind: 'waited' | 'skipped') => {
    try {
      observer?.budget(kind);
    } catch {
      // Counting never changes what the budget decides.
    }
  };
  return {
    async tryTake(installationId) {
      let wait: number;
      try {
        wait = await takeOrWait(installationId);
      } catch (err) {
        onError(err);
        return false;
      }
      if (wait !== 0) held('skipped');
      return wait === 0;
    },
    async take(installationId) {
      for (let attempt = 0; ; attempt++) {
        let wait: number;
        try {
          wait = await takeOrWait(installationId);
        } catch (err) {
          onError(err);
          return;
        }
        if (wait === 0) return;
        if (attempt === 0) held('waited');
        await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 10)));
      }
    },
  };
}

/** Buckets inside one process (tests, the bench); deployments share theirs through Redis. `observer`: see {@link tokenBudget}. */
export function localWriteBudget(perMinute: number, now: () => number = Date.now, observer?: BudgetObserver): WriteBudget {
  const capacity = bucketCapacity(perMinute);
  const buckets = new Map<number, { tokens: number; last: number }>();
  return tokenBudget(async (installationId) => {
    const t = now();
    const bucket = buckets.get(installationId) ?? { tokens: capacity, last: t };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((t - bucket.last) * perMinute) / 60_000);
    bucket.last = t;
    buckets.set(installationId, bucket);
    if (bucket.tokens < 1) return Math.ceil(((1 - bucket.tokens) * 60_000) / perMinute);
    bucket.tokens -= 1;
    return 0;
  }, undefined, observer);
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
    list: (issue, options) => api.list(issue, options),
  };
}
