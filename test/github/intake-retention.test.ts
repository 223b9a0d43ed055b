import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { Intake, type IntakeOptions } from '../../src/github/intake.js';
import { issueKeyOf, type IntakeJob, type IssueRef, type RetireJob, type Trigger } from '../../src/queue/contract.js';
import type { IssueRecord } from '../../src/queue/issue-record.js';
import type { IntakeStores } from '../../src/queue/issue-stores.js';
import type { Producer } from '../../src/queue/producer.js';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const DAY = 86_400_000;
const RETENTION_MS = 14 * DAY;

const EMPTY: IssueRecord = {
  seq: 0, stoppedSeq: 0, sessionId: undefined, pod: undefined, hostId: undefined, lastStatusUrl: undefined, lastState: undefined, continuesOn: undefined,
  running: 0, runningCommand: undefined, closedAt: undefined, forgotten: undefined,
};

/**
 * The part of the issue stores a close or a reopen uses, in memory. `closed` and `reopened` keep
 * IssueRecords' contract: a close holds unless a reopen at or after it was recorded (deliveries
 * may come out of order); a reopen clears a close at or before it. Nothing else is there: a
 * call to any other method fails the test.
 */
class FakeIssueState {
  readonly records = new Map<string, IssueRecord>();
  readonly reopenedAt = new Map<string, number>();
  readonly calls: string[] = [];
  private readonly handledKeys = new Set<string>();

  /** Gives the issue a record, as a label that started a session would. */
  worked(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>, fields: Partial<IssueRecord>): void {
    this.records.set(issueKeyOf(issue), { ...EMPTY, ...fields });
  }

  async handled(key: string, mark = false): Promise<boolean> {
    if (mark) this.handledKeys.add(key);
    return this.handledKeys.has(key);
  }

  async keyFor(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>): Promise<string> {
    return issueKeyOf(issue);
  }

  async get(issueKey: string): Promise<IssueRecord> {
    return this.records.get(issueKey) ?? EMPTY;
  }

  async closed(issueKey: string, at: number): Promise<boolean> {
    this.calls.push(`closed ${issueKey} ${at}`);
    if ((this.reopenedAt.get(issueKey) ?? 0) >= at) return false;
    const record = this.records.get(issueKey) ?? EMPTY;
    if ((record.closedAt ?? 0) < at) this.records.set(issueKey, { ...record, closedAt: at });
    return true;
  }

  async reopened(issueKey: string, at: number): Promise<void> {
    this.calls.push(`reopened ${issueKey} ${at}`);
    if ((this.reopenedAt.get(issueKey) ?? 0) < at) this.reopenedAt.set(issueKey, at);
    const record = this.records.get(issueKey) ?? EMPTY;
    if (record.closedAt !== undefined && record.closedAt <= at) this.records.set(issueKey, { ...record, closedAt: undefined });
  }
}

/** The part of Producer a close uses: the retire jobs it would queue, with their host and when they are due. */
class FakeProducer {
  readonly retired: Array<{ job: RetireJob; hostId: string | undefined; dueAt: number }> = [];

  async retire(job: RetireJob, hostId: string | undefined, dueAt: number): Promise<void> {
    this.retired.push({ job, hostId, dueAt });
  }
}

const ref = { installationId: 9, owner: 'acme', repo: 'web', number: 3, url: 'https://github.com/acme/web/issues/3' };
const KEY = issueKeyOf(ref);

let state: FakeIssueState;
let producer: FakeProducer;
let comments: string[];
let apiCalls: number;
let deliveries: number;

/** An Intake on the fakes; closing and reopening must need neither the API nor a comment. */
function intake(extra: Partial<IntakeOptions> = { retentionMs: RETENTION_MS }): Intake {
  const commentsApi = {
    create: async (_: unknown, body: string) => {
      comments.push(body);
      return { id: 1, url: 'https://github.com/acme/web/issues/3#issuecomment-1' };
    },
  } as unknown as CommentsApi;
  return new Intake({
    state: state as unknown as IntakeStores,
    producer: producer as unknown as Producer,
    comments: commentsApi,
    octokitFor: async () => {
      apiCalls += 1;
      throw new Error('no API call is expected');
    },
    appLogin: async () => 'cldpd[bot]',
    logger: pino({ level: 'silent' }),
    ...extra,
  });
}

/** An intake job of `trigger` on acme/web#3, as the webhook handler makes it (a new delivery each time). */
function job(trigger: Trigger, sender = { login: 'alice', type: 'User' }): IntakeJob {
  deliveries += 1;
  return { deliveryId: `delivery-${deliveries}`, trigger, issue: { ...ref, title: 'Bug', body: 'text' }, sender, receivedAt: Date.now() };
}

beforeEach(() => {
  // The retire delay is counted from Date.now(), not from IntakeOptions.now.
  vi.useFakeTimers({ now: NOW, toFake: ['Date'] });
  state = new FakeIssueState();
  producer = new FakeProducer();
  comments = [];
  apiCalls = 0;
  deliveries = 0;
});

afterEach(() => {
  vi.useRealTimers();
});

describe('Intake: a closed issue', () => {
  it('records the close and schedules the removal of its sessions for the retention period after it, on the issue\'s host', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', pod: 'web', hostId: 'h1' });

    const result = await intake().process(job({ kind: 'closed', at: NOW }));

    expect(producer.retired).toEqual([{
      job: { kind: 'retire', issueKey: KEY, issueUrl: ref.url, closedAt: NOW, retentionMs: RETENTION_MS, issue: ref },
      hostId: 'h1',
      dueAt: NOW + RETENTION_MS,
    }]);
    expect((await state.get(KEY)).closedAt).toBe(NOW);
    expect(result).toBe(`closed: its sessions are removed after ${new Date(NOW + RETENTION_MS).toISOString()}`);
    expect(comments).toEqual([]);
  });

  it('counts the retention period from when the issue was closed, not from when the delivery is handled', async () => {
    state.worked(ref, { seq: 2, sessionId: 'web-00aa11bb', pod: 'web', hostId: 'h1' });
    const closedAt = NOW - 90_000;

    await intake().process(job({ kind: 'closed', at: closedAt }));

    expect(producer.retired.map((r) => [r.job.closedAt, r.dueAt])).toEqual([[closedAt, closedAt + RETENTION_MS]]);
  });

  it('passes on a removal already due with its time in the past (the producer runs it at once)', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    await intake({ retentionMs: DAY / 2 }).process(job({ kind: 'closed', at: NOW - DAY }));

    expect(producer.retired.map((r) => r.dueAt)).toEqual([NOW - DAY / 2]);
  });

  it('schedules the removal on any worker when the issue has no host', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', pod: 'web' });

    await intake().process(job({ kind: 'closed', at: NOW }));

    expect(producer.retired).toEqual([expect.objectContaining({ hostId: undefined, dueAt: NOW + RETENTION_MS })]);
  });

  it('treats an issue with commands but no session now (its host was forgotten) as one cldpd worked on', async () => {
    state.worked(ref, { seq: 3, forgotten: { hostId: 'old', sessionId: 'web-00aa11bb', at: NOW - DAY } });

    await intake().process(job({ kind: 'closed', at: NOW }));

    expect(producer.retired).toHaveLength(1);
  });

  it.each([
    ['a bot', { login: 'stale[bot]', type: 'Bot' }],
    ['someone without write access', { login: 'mallory', type: 'User' }],
  ])('acts on a close by %s without asking the API: who closed it does not matter', async (_, sender) => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    await intake().process(job({ kind: 'closed', at: NOW }, sender));

    expect(producer.retired).toHaveLength(1);
    expect(apiCalls).toBe(0);
    expect(comments).toEqual([]);
  });

  it('does nothing for a delivery handled before', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });
    const closed = job({ kind: 'closed', at: NOW });

    await intake().process(closed);
    const again = await intake().process(closed);

    expect(again).toBe('ignored: handled before');
    expect(producer.retired).toHaveLength(1);
  });

  it('records nothing and schedules nothing without a retention period', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    const result = await intake({}).process(job({ kind: 'closed', at: NOW }));

    expect(result).toBe('closed: kept (reopened since, or no retention)');
    expect(producer.retired).toEqual([]);
    expect(state.calls).toEqual([]);
  });
});

describe('Intake: a reopened issue', () => {
  it('records the reopen and schedules nothing', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    const result = await intake().process(job({ kind: 'reopened', at: NOW }));

    expect(result).toBe('reopened: nothing is removed');
    expect(state.calls).toEqual([`reopened ${KEY} ${NOW}`]);
    expect(producer.retired).toEqual([]);
    expect(comments).toEqual([]);
  });

  it('a reopen after a close clears it; a later close schedules a removal of its own', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    await intake().process(job({ kind: 'closed', at: NOW - 3000 }));
    await intake().process(job({ kind: 'reopened', at: NOW - 2000 }));
    expect((await state.get(KEY)).closedAt).toBeUndefined();
    await intake().process(job({ kind: 'closed', at: NOW - 1000 }));

    expect(producer.retired.map((r) => r.job.closedAt)).toEqual([NOW - 3000, NOW - 1000]);
    expect((await state.get(KEY)).closedAt).toBe(NOW - 1000);
  });

  it('out of order: a close delivered after a later reopen schedules nothing', async () => {
    state.worked(ref, { seq: 1, sessionId: 'web-00aa11bb', hostId: 'h1' });

    await intake().process(job({ kind: 'reopened', at: NOW }));
    const result = await intake().process(job({ kind: 'closed', at: NOW - 1000 }));

    expect(result).toBe('closed: kept (reopened since, or no retention)');
    expect(state.calls).toEqual([`reopened ${KEY} ${NOW}`, `closed ${KEY} ${NOW - 1000}`]);
    expect(producer.retired).toEqual([]);
    expect((await state.get(KEY)).closedAt).toBeUndefined();
  });
});

describe('Intake: an issue cldpd never worked on', () => {
  it.each([
    ['closed', { kind: 'closed', at: NOW }],
    ['reopened', { kind: 'reopened', at: NOW }],
  ] as const)('leaves it alone when %s: nothing recorded, nothing scheduled, nothing said', async (kind, trigger) => {
    const result = await intake().process(job(trigger));

    expect(result).toBe(`${kind}: not an issue cldpd worked on`);
    expect(state.calls).toEqual([]);
    expect(producer.retired).toEqual([]);
    expect(comments).toEqual([]);
    expect(apiCalls).toBe(0);
  });

  it('marks the delivery handled all the same', async () => {
    const closed = job({ kind: 'closed', at: NOW });

    await intake().process(closed);

    expect(await state.handled(closed.deliveryId)).toBe(true);
  });
});
