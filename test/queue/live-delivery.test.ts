import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { Session } from '../../src/core/index.js';
import type { RunCommand, RunOutcome } from '../../src/queue/contract.js';
import { LiveDelivery, type DeliveryJob } from '../../src/queue/live-delivery.js';
import { fakeSession, type FakeSessionScript } from '../fakes/fake-session.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';

const KEY = 'acme.web-1';

let stores: MemoryStores;
let finished: Array<{ seq: number; outcome: RunOutcome }>;

function delivery(live: { session: Session; seq: number } | undefined): LiveDelivery {
  return new LiveDelivery({
    state: stores,
    runner: { following: () => live, finish: async (c: RunCommand, outcome: RunOutcome) => void finished.push({ seq: c.seq, outcome }) },
    positions: { settled: async () => undefined, refresh: async () => undefined },
    logger: pino({ level: 'silent' }),
    pollMs: 1,
  });
}

function job(seq: number, sessionId = 'web-00aa00aa'): DeliveryJob {
  return { kind: 'message', issueKey: KEY, sessionId, seq, command: command(KEY, seq) } as DeliveryJob;
}

/** Waits until the settling of a delivery under way has written what it writes. */
async function settled(): Promise<void> {
  for (let i = 0; i < 100 && !stores.calls.some((c) => /^(delivered|unclaimed)/.test(c)); i++) await new Promise((r) => setTimeout(r, 5));
}

beforeEach(() => {
  stores = new MemoryStores();
  finished = [];
});

describe('live delivery, decided on in-memory stores', () => {
  it.each([
    { name: 'nothing followed here', live: false, session: {}, setup: async () => undefined, said: 'not running here: the resume runs in its turn' },
    { name: 'another session followed', live: true, sessionId: 'web-00bb00bb', session: {}, setup: async () => undefined, said: 'not running here: the resume runs in its turn' },
    { name: 'stopped meanwhile', live: true, session: {}, setup: async () => stores.markStopped(KEY, 3), said: 'stopped: the drain cancels it' },
    { name: 'an earlier resume waits its turn', live: true, session: {}, setup: async () => void (await stores.append(command(KEY, 2))), said: 'an earlier resume waits its turn: this one follows it' },
    { name: 'the agent takes no more input', live: true, session: { acceptsInput: false }, setup: async () => undefined, said: 'the agent takes no more input: the resume runs in its turn' },
    { name: 'the drain took it first', live: true, session: {}, setup: async () => void (await stores.drainClaim(KEY, 3)), said: 'the drain has it' },
    { name: 'the run ended before it was sent', live: true, session: { sendFails: true }, setup: async () => undefined, said: 'the run ended first: the resume runs in its turn' },
    { name: 'sent', live: true, session: {}, setup: async () => undefined, said: 'sent to the running agent' },
  ] as Array<{ name: string; live: boolean; sessionId?: string; session: FakeSessionScript; setup: () => Promise<void>; said: string }>)('deliver: $name', async ({ live, sessionId, session, setup, said }) => {
    await stores.set(KEY, { running: '1' });
    await setup();
    const s = fakeSession({ ...session, ...(sessionId ? { id: sessionId } : {}) });
    expect(await delivery(live ? { session: s, seq: 1 } : undefined).deliver(job(3))).toBe(said);
    // Whatever did not go in stays the drain's: no claim left pending.
    if (said !== 'sent to the running agent' && said !== 'the drain has it') expect(await stores.deliveryState(KEY, 3)).toBeUndefined();
  });

  it('a message the agent took is reported delivered on its own comment, then marked so the drain skips it', async () => {
    await stores.set(KEY, { running: '1' });
    await delivery({ session: fakeSession({ taken: true }), seq: 1 }).deliver(job(3));
    await settled();
    expect(finished.map((f) => [f.seq, f.outcome.kind])).toEqual([[3, 'delivered']]);
    expect(await stores.drainClaim(KEY, 3)).toBe('delivered');
  });

  it('a message the run ended without taking goes back to the drain, unreported', async () => {
    await stores.set(KEY, { running: '1' });
    await delivery({ session: fakeSession({ taken: false }), seq: 1 }).deliver(job(3));
    await settled();
    expect(finished).toEqual([]);
    expect(await stores.drainClaim(KEY, 3)).toBe('run');
  });

  it('the drain waits out a delivery under way, then takes what it left', async () => {
    await stores.claimDelivery(KEY, 2);
    const d = delivery(undefined);
    const claim = d.drainClaim(command(KEY, 2));
    setTimeout(() => void stores.markDelivered(KEY, 2), 20);
    expect(await claim).toBe('delivered');
    expect(await d.drainClaim(command(KEY, 4))).toBe('run');
  });
});
