import type { IssueRef, RunCommand } from '../../src/queue/contract.js';
import type { IssueRecord } from '../../src/queue/issue-record.js';
import type { QueueSnapshot } from '../../src/queue/queue-position.js';

type Fields = Partial<Record<'sessionId' | 'pod' | 'hostId' | 'lastStatusUrl' | 'lastState' | 'continuesOn' | 'running' | 'runningCommand', string>>;

/** A RunCommand of issue `issueKey` for the unit tests: a start at seq 1, a resume after. */
export function command(issueKey: string, seq: number, extra: Partial<RunCommand> = {}): RunCommand {
  const issue: IssueRef = { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' };
  return { seq, kind: seq === 1 ? 'start' : 'resume', issueKey, issue, pod: 'web', sessionId: 'web-00aa00aa', prompt: `prompt ${seq}`, statusCommentId: 100 + seq, requestedBy: 'alice', enqueuedAt: 0, ...extra };
}

/**
 * The issue stores in memory, with the contracts of the Redis ones (IssueRecords, IssueQueue,
 * HostRegistry, IssueIdentity, DeliveryClaims, ProviderWaitStore) as far as the queue's parts
 * use them. Every call is written to `calls` (name and first argument after the issue), so a
 * test can assert the order of effects.
 */
export class MemoryStores {
  readonly records = new Map<string, Record<string, string>>();
  readonly queues = new Map<string, RunCommand[]>();
  readonly locks = new Map<string, string>();
  readonly claims = new Map<string, string>();
  readonly positions = new Map<string, number>();
  readonly alive = new Set<string>();
  readonly forgotten = new Set<string>();
  readonly refusals = new Map<string, { until: number; since: number }>();
  readonly parked = new Map<string, Set<string>>();
  readonly waitSeqs = new Map<string, number>();
  readonly calls: string[] = [];

  private hash(issueKey: string): Record<string, string> {
    let h = this.records.get(issueKey);
    if (!h) this.records.set(issueKey, (h = {}));
    return h;
  }

  private queue(issueKey: string): RunCommand[] {
    let q = this.queues.get(issueKey);
    if (!q) this.queues.set(issueKey, (q = []));
    return q;
  }

  // IssueRecords
  async get(issueKey: string): Promise<IssueRecord> {
    const h = this.records.get(issueKey) ?? {};
    return {
      seq: Number(h.seq ?? 0), stoppedSeq: Number(h.stoppedSeq ?? 0), sessionId: h.sessionId || undefined, pod: h.pod || undefined, hostId: h.hostId || undefined,
      lastStatusUrl: h.lastStatusUrl || undefined, lastState: h.lastState || undefined, continuesOn: h.continuesOn || undefined, running: Number(h.running ?? 0), runningCommand: h.runningCommand || undefined,
      closedAt: h.closedAt ? Number(h.closedAt) : undefined, forgotten: undefined,
    };
  }

  async set(issueKey: string, fields: Fields): Promise<void> {
    this.calls.push(`set ${Object.keys(fields).join(',')}`);
    for (const [k, v] of Object.entries(fields)) if (v !== undefined) this.hash(issueKey)[k] = v;
  }

  async isStopped(issueKey: string, seq: number): Promise<boolean> {
    return seq <= Number(this.records.get(issueKey)?.stoppedSeq ?? 0);
  }

  async markStopped(issueKey: string, seq: number): Promise<void> {
    this.hash(issueKey).stoppedSeq = String(seq);
  }

  // IssueIdentity
  async keyFor(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>): Promise<string> {
    return `${issue.owner}.${issue.repo}-${issue.number}`.toLowerCase();
  }

  // IssueQueue
  async append(c: RunCommand): Promise<number> {
    const q = this.queue(c.issueKey);
    if (q.some((x) => x.seq === c.seq)) return 0;
    q.push(c);
    this.calls.push(`append ${c.seq}`);
    return q.length;
  }

  async head(issueKey: string): Promise<RunCommand | undefined> {
    return this.queues.get(issueKey)?.[0];
  }

  async pending(issueKey: string): Promise<number> {
    return this.queues.get(issueKey)?.length ?? 0;
  }

  async commands(issueKey: string): Promise<RunCommand[]> {
    return [...(this.queues.get(issueKey) ?? [])];
  }

  async done(c: RunCommand): Promise<void> {
    this.calls.push(`done ${c.seq}`);
    const q = this.queue(c.issueKey);
    const i = q.findIndex((x) => x.seq === c.seq);
    if (i >= 0) q.splice(i, 1);
    const h = this.hash(c.issueKey);
    if (h.running === String(c.seq)) Object.assign(h, { running: '0', runningCommand: '' });
  }

  async queueSnapshot(issueKey: string): Promise<QueueSnapshot<RunCommand>> {
    const h = await this.get(issueKey);
    return { commands: await this.commands(issueKey), running: h.running, stoppedSeq: h.stoppedSeq, deliveries: new Map(), shown: new Map() };
  }

  async waiting(c: RunCommand): Promise<boolean> {
    return (this.queues.get(c.issueKey) ?? []).findIndex((x) => x.seq === c.seq) > 0;
  }

  async showPosition(issueKey: string, seq: number, position: number): Promise<void> {
    this.positions.set(`${issueKey}:${seq}`, position);
  }

  async lock(issueKey: string, token: string): Promise<boolean> {
    if (this.locks.has(issueKey)) return false;
    this.locks.set(issueKey, token);
    this.calls.push('lock');
    return true;
  }

  async renew(issueKey: string, token: string): Promise<boolean> {
    return this.locks.get(issueKey) === token;
  }

  async releaseIfEmpty(issueKey: string, token: string): Promise<boolean> {
    if (this.locks.get(issueKey) !== token) return true;
    if ((this.queues.get(issueKey)?.length ?? 0) > 0) return false;
    this.locks.delete(issueKey);
    this.calls.push('unlock');
    return true;
  }

  async release(issueKey: string, token: string): Promise<void> {
    if (this.locks.get(issueKey) === token) {
      this.locks.delete(issueKey);
      this.calls.push('unlock');
    }
  }

  // HostRegistry
  async claimHost(issueKey: string, hostId: string): Promise<string> {
    const h = this.hash(issueKey);
    h.hostId ||= hostId;
    return h.hostId;
  }

  async hostAlive(hostId: string): Promise<boolean> {
    return this.alive.has(hostId);
  }

  async rebindHost(issueKey: string, from: string, to: string): Promise<boolean> {
    const h = this.hash(issueKey);
    if (h.hostId !== from) return false;
    h.hostId = to;
    return true;
  }

  async sessionForgotten(sessionId: string): Promise<boolean> {
    return this.forgotten.has(sessionId);
  }

  // DeliveryClaims
  async claimDelivery(issueKey: string, seq: number): Promise<boolean> {
    const key = `${issueKey}:${seq}`;
    if (this.claims.has(key)) return false;
    this.claims.set(key, 'pending');
    return true;
  }

  async renewDelivery(): Promise<void> {}

  async deliveryState(issueKey: string, seq: number): Promise<string | undefined> {
    return this.claims.get(`${issueKey}:${seq}`);
  }

  async markDelivered(issueKey: string, seq: number): Promise<void> {
    this.calls.push(`delivered ${seq}`);
    this.claims.set(`${issueKey}:${seq}`, 'delivered');
  }

  async unclaimDelivery(issueKey: string, seq: number): Promise<void> {
    this.calls.push(`unclaimed ${seq}`);
    this.claims.delete(`${issueKey}:${seq}`);
  }

  async drainClaim(issueKey: string, seq: number): Promise<'run' | 'delivered' | 'pending'> {
    const key = `${issueKey}:${seq}`;
    const value = this.claims.get(key);
    if (value === 'delivered' || value === 'pending') return value;
    this.claims.set(key, 'run');
    return 'run';
  }

  // ProviderWaitStore
  async waitSeq(issueKey: string, seq: number): Promise<number> {
    const key = `${issueKey}:${seq}`;
    const known = this.waitSeqs.get(key);
    if (known !== undefined) return known;
    const h = this.hash(issueKey);
    const next = Math.max(Number(h.seq ?? 0) + 1, seq + 1);
    h.seq = String(next);
    this.waitSeqs.set(key, next);
    return next;
  }

  async providerRefuses(credential: string, until: number): Promise<void> {
    const known = this.refusals.get(credential)?.until ?? 0;
    this.refusals.set(credential, { until: Math.max(known, until), since: Date.now() });
  }

  async providerRefusesUntil(credential: string): Promise<number | undefined> {
    const until = this.refusals.get(credential)?.until ?? 0;
    return until > Date.now() ? until : undefined;
  }

  async parkForProvider(credential: string, issueKey: string): Promise<void> {
    const set = this.parked.get(credential) ?? new Set<string>();
    set.add(issueKey);
    this.parked.set(credential, set);
  }

  async providerAccepted(credential: string, at: number): Promise<string[]> {
    const refusal = this.refusals.get(credential);
    if (refusal && refusal.since >= at) return [];
    this.refusals.delete(credential);
    const parked = [...(this.parked.get(credential) ?? [])];
    this.parked.delete(credential);
    return parked;
  }
}
