import type { Redis } from 'ioredis';
import { DeliveryClaims } from './delivery-claims.js';
import { FairPool } from './fair-pool.js';
import { HostRegistry } from './host-registry.js';
import { IntakeLedger } from './intake-ledger.js';
import { IssueIdentity } from './issue-identity.js';
import { IssueQueue } from './issue-queue.js';
import { IssueRecords } from './issue-record.js';
import { ProviderWaitStore } from './provider-wait-store.js';
import { PullRequestLinks } from './pull-request-links.js';

/** A store's public methods, as a structural type (what a fake implements). */
export type StoreOf<T> = Pick<T, keyof T>;

/** What the intake step keeps in Redis: the record, identity, queue and hosts of issues, and its own ledger. */
export type IntakeStores = StoreOf<IssueRecords> & StoreOf<FairPool> & StoreOf<IssueIdentity> & StoreOf<IssueQueue> & StoreOf<HostRegistry> & StoreOf<IntakeLedger> & StoreOf<PullRequestLinks>;

/** What the run worker keeps in Redis: all but the intake ledger. */
export type WorkerStores = StoreOf<IssueRecords> & StoreOf<FairPool> & StoreOf<IssueIdentity> & StoreOf<IssueQueue> & StoreOf<HostRegistry> & StoreOf<ProviderWaitStore> & StoreOf<DeliveryClaims> & StoreOf<PullRequestLinks>;

/** Every store of the per-issue state, as one object. */
export type IssueStores = IntakeStores & WorkerStores;

/**
 * The per-issue stores over one Redis connection, as one object whose methods are the
 * stores' (no two stores name a method alike): for the composition roots, which hand it to
 * callers that each take the narrow store they use.
 */
export function issueStores(redis: Redis): IssueStores {
  const records = new IssueRecords(redis);
  const parts: object[] = [records, new IssueIdentity(redis, records), new IssueQueue(redis), new HostRegistry(redis), new IntakeLedger(redis), new ProviderWaitStore(redis), new DeliveryClaims(redis), new PullRequestLinks(redis), new FairPool(redis)];
  const all: Record<string, unknown> = {};
  for (const part of parts) {
    for (const name of Object.getOwnPropertyNames(Object.getPrototypeOf(part))) {
      if (name === 'constructor') continue;
      if (name in all) throw new Error(`two issue stores name a method "${name}"`);
      const method = (part as Record<string, unknown>)[name];
      if (typeof method === 'function') all[name] = method.bind(part);
    }
  }
  return all as unknown as IssueStores;
}
