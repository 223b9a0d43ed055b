import { DelayedError } from 'bullmq';
import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RunCommand, RunOutcome } from '../../src/queue/contract.js';
import { IssueDrain, type DrainJobHandle } from '../../src/queue/issue-drain.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';

const KEY = 'acme.web-1';
const HOST = 'host-a';

let stores: MemoryStores;
let delivered: Set<number>;
let holds: Map<number, number>;
let forwarded: Array<{ hostId: string | undefined; jobId: string; delayMs?: number }>;
let finished: Array<{ seq: number; outcome: RunOutcome }>;

/** An IssueDrain on the in-memory stores; the run of a command is written to the stores' call log. */
function drain(): IssueDrain {
  return new IssueDrain({
    hostId: HOST,
    state: stores,
    producer: { drain: async (_issueKey: string, hostId: string | undefined, jobId: string, delayMs?: number) => void forwarded.push({ hostId, jobId, ...(delayMs !== undefined ? { delayMs } : {}) }) },
    runner: {
      run: async (c: RunCommand) => void stores.calls.push(`run ${c.seq}`),
      finish: async (c: RunCommand, outcome: RunOutcome) => void finished.push({ seq: c.seq, outcome }),
    },
    delivery: { drainClaim: async (c: RunCommand) => (delivered.has(c.seq) ? 'delivered' : 'run') },
    positions: { settled: async () => undefined, refresh: async () => undefined },
    waits: { holdUntil: async (c: RunCommand) => holds.get(c.seq) },
    logger: pino({ level: 'silent' }),
    lockTtlMs: 60_000,
    recheckMs: 1000,
  });
}

function job(): DrainJobHandle & { delayedTo?: number } {
  const handle: DrainJobHandle & { delayedTo?: number } = {
    id: 'job-1',
    data: { issueKey: KEY },
    moveToDelayed: async (at: number) => {
      handle.delayedTo = at;
    },
  };
  return handle;
}

beforeEach(() => {
  stores = new MemoryStores();
  delivered = new Set();
  holds = new Map();
  forwarded = [];
  finished = [];
});

describe('the per-issue drain, on in-memory stores', () => {
  it('ordering: runs the issue\'s commands one at a time in queue order, each taken off the queue after its run, under the lock', async () => {
    for (const seq of [1, 2, 3]) await stores.append(command(KEY, seq));
    stores.calls.length = 0;
    expect(await drain().drain(job(), 'token')).toBe('drained');
    // A drain that took a later command first, removed one before its run ended, or ran
    // outside the lock, writes another sequence.
    expect(stores.calls).toEqual(['lock', 'run 1', 'done 1', 'run 2', 'done 2', 'run 3', 'done 3', 'unlock']);
    expect(stores.locks.size).toBe(0);
  });

  it('ordering: a command appended while one runs is taken in the same drain, after it', async () => {
    await stores.append(command(KEY, 1));
    const d = drain();
    const original = stores.done.bind(stores);
    stores.done = async (c) => {
      if (c.seq === 1) await stores.append(command(KEY, 2));
      await original(c);
    };
    stores.calls.length = 0;
    await d.drain(job(), 'token');
    expect(stores.calls.filter((c) => c.startsWith('run'))).toEqual(['run 1', 'run 2']);
  });

  it.each([
    { name: 'a command stopped before it started is reported cancelled and not run', stoppedSeq: 2, running: 0, expectRuns: ['run 3'], cancelled: [2] },
    { name: 'a stopped command that had started (picked up again) runs, so the stop reaches it', stoppedSeq: 2, running: 2, expectRuns: ['run 2', 'run 3'], cancelled: [] },
    { name: 'nothing stopped: every command runs', stoppedSeq: 0, running: 0, expectRuns: ['run 2', 'run 3'], cancelled: [] },
  ])('stop: $name', async ({ stoppedSeq, running, expectRuns, cancelled }) => {
    await stores.set(KEY, { hostId: HOST, running: String(running) });
    await stores.markStopped(KEY, stoppedSeq);
    for (const seq of [2, 3]) await stores.append(command(KEY, seq));
    await drain().drain(job(), 'token');
    expect(stores.calls.filter((c) => c.startsWith('run'))).toEqual(expectRuns);
    expect(finished.filter((f) => f.outcome.kind === 'cancelled').map((f) => f.seq)).toEqual(cancelled);
    expect(await stores.pending(KEY)).toBe(0);
  });

  it('a resume that went into the running agent is taken off the queue without a run', async () => {
    await stores.set(KEY, { hostId: HOST });
    for (const seq of [2, 3]) await stores.append(command(KEY, seq));
    delivered.add(2);
    stores.calls.length = 0;
    await drain().drain(job(), 'token');
    expect(stores.calls).toEqual(['lock', 'done 2', 'run 3', 'done 3', 'unlock']);
  });

  it('a command the provider holds back releases the lock and looks again when the hold ends; nothing behind it runs', async () => {
    await stores.set(KEY, { hostId: HOST });
    for (const seq of [2, 3]) await stores.append(command(KEY, seq));
    holds.set(2, Date.now() + 60_000);
    const said = await drain().drain(job(), 'token');
    expect(said).toMatch(/^waiting for the provider until /);
    expect(stores.calls.filter((c) => c.startsWith('run'))).toEqual([]);
    expect(stores.locks.size).toBe(0);
    expect(forwarded).toHaveLength(1);
    expect(forwarded[0]?.hostId).toBe(HOST);
    expect(forwarded[0]?.delayMs).toBeGreaterThan(50_000);
  });

  it('an issue another live host owns is forwarded to it, unlocked and unrun', async () => {
    await stores.set(KEY, { hostId: 'host-b' });
    stores.alive.add('host-b');
    await stores.append(command(KEY, 1));
    expect(await drain().drain(job(), 'token')).toBe('forwarded to host-b');
    expect(forwarded.map((f) => f.hostId)).toEqual(['host-b']);
    expect(stores.calls).not.toContain('lock');
  });

  it('a start of an issue whose owner is gone is taken over and runs here', async () => {
    await stores.set(KEY, { hostId: 'host-gone' });
    await stores.append(command(KEY, 1));
    expect(await drain().drain(job(), 'token')).toBe('drained');
    expect((await stores.get(KEY)).hostId).toBe(HOST);
    expect(stores.calls).toContain('run 1');
  });

  it('a locked issue is looked at again later (the job is delayed), not run twice', async () => {
    await stores.append(command(KEY, 1));
    stores.locks.set(KEY, 'someone-else');
    const handle = job();
    await expect(drain().drain(handle, 'token')).rejects.toBeInstanceOf(DelayedError);
    expect(handle.delayedTo).toBeGreaterThan(Date.now());
    expect(stores.calls.filter((c) => c.startsWith('run'))).toEqual([]);
  });
});
