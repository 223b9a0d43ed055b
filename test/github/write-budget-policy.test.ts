import { describe, expect, it } from 'vitest';
import { budgetedComments, localWriteBudget, tokenBudget, type BudgetObserver } from '../../src/github/write-budget-policy.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { spend } from '../fakes/budget.js';

/** A budget observer that lists what it was told. */
function recorder(): BudgetObserver & { told: string[] } {
  const told: string[] = [];
  return { told, budget: (kind) => void told.push(kind) };
}

const issue = { installationId: 1, owner: 'acme', repo: 'web', number: 7, url: 'https://github.com/acme/web/issues/7' };

describe('the write budget\'s observer', () => {
  it('is told "skipped" for each progress edit an empty bucket turns away, and nothing for one it lets through', async () => {
    const observer = recorder();
    const budget = localWriteBudget(60, () => 0, observer);
    expect(await spend(budget, 1)).toBe(30);
    expect(observer.told).toEqual(['skipped']); // spend() stops at the first refusal
    expect(await budget.tryTake(1)).toBe(false);
    expect(observer.told).toEqual(['skipped', 'skipped']);
  });

  it('is told "waited" once for a write that must land and had to wait, however many times it asked', async () => {
    const observer = recorder();
    const waits = [25, 25, 0, 0];
    const budget = tokenBudget(async () => waits.shift() ?? 0, undefined, observer);
    await budget.take(1); // waits twice, then takes
    expect(observer.told).toEqual(['waited']);
    await budget.take(1); // a free write: no wait
    expect(observer.told).toEqual(['waited']);
  });

  it('is told nothing when the bucket cannot be reached: that is an error, not a wait', async () => {
    const observer = recorder();
    const errors: unknown[] = [];
    const budget = tokenBudget(async () => { throw new Error('Redis is down'); }, (err) => errors.push(err), observer);
    expect(await budget.tryTake(1)).toBe(false);
    await budget.take(1);
    expect(observer.told).toEqual([]);
    expect(errors).toHaveLength(2);
  });

  it('never changes what the budget decides when it throws', async () => {
    const budget = localWriteBudget(60, () => 0, { budget: () => { throw new Error('boom'); } });
    expect(await spend(budget, 1)).toBe(30);
    const waits = [10, 0];
    await expect(tokenBudget(async () => waits.shift() ?? 0, undefined, { budget: () => { throw new Error('boom'); } }).take(1)).resolves.toBeUndefined();
  });

  it('counts the waits of a budgeted comments API: writes that must land wait, reads never do', async () => {
    const observer = recorder();
    const waits = [20, 0];
    const budget = tokenBudget(async () => waits.shift() ?? 0, undefined, observer);
    const api: CommentsApi = { create: async () => ({ id: 1, url: 'u' }), update: async () => undefined, list: async () => [] };
    const comments = budgetedComments(api, budget);
    await comments.list(issue, { since: new Date(0) });
    expect(observer.told).toEqual([]);
    await comments.create(issue, 'hello');
    await comments.update(issue, 1, 'edited');
    expect(observer.told).toEqual(['waited']);
  });
});
