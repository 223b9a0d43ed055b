import type { WriteBudget } from '../../src/github/write-budget-policy.js';

/** Takes every write `budget` has free for `installationId`; resolves with how many. */
export async function spend(budget: WriteBudget, installationId: number): Promise<number> {
  let taken = 0;
  while (await budget.tryTake(installationId)) taken += 1;
  return taken;
}
