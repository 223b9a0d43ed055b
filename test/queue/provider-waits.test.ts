import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import type { RunCommand, RunOutcome } from '../../src/queue/contract.js';
import { ProviderWaits } from '../../src/queue/provider-waits.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';

const KEY = 'acme.web-1';
const HOUR = 3600_000;
const CREDENTIAL = 'key-1';

let stores: MemoryStores;
let woken: string[];
let shownWaiting: number[];

function waits(maxWaits = 3): ProviderWaits {
  return new ProviderWaits({
    limits: { credentialOf: async () => CREDENTIAL, maxWaits, retryMs: 60_000, prompt: 'continue' },
    state: stores,
    producer: { drain: async (issueKey: string) => void woken.push(issueKey) },
    positions: { waiting: async (_c: RunCommand, until: number) => void shownWaiting.push(until) },
    logger: pino({ level: 'silent' }),
  });
}

/** A run's outcome that ended as `how`, with the agent's last result saying `said`. */
function ended(how: { reason?: 'exited' | 'stopped' | 'timeout'; isError?: boolean; said?: string; kind?: RunOutcome['kind'] } = {}): RunOutcome {
  const now = Date.now();
  return {
    kind: how.kind ?? 'exited',
    sessionId: 'web-00aa00aa',
    terminal: { type: 'container.exited', at: now, exitCode: how.isError ? 1 : 0, reason: how.reason ?? 'exited', durationMs: 1000 },
    agent: { result: { kind: 'result', isError: how.isError ?? false, text: how.said ?? 'done' } as never },
  };
}

const USAGE = () => `Claude AI usage limit reached|${Math.floor((Date.now() + 2 * HOUR) / 1000)}`;

beforeEach(() => {
  stores = new MemoryStores();
  woken = [];
  shownWaiting = [];
});

describe('provider waits, decided on in-memory stores', () => {
  it.each([
    { name: 'a run that ended well stays as it is', outcome: () => ended(), kind: 'exited', queued: false },
    { name: 'a stopped run stays stopped, whatever its last result said', outcome: () => ended({ reason: 'stopped', isError: true, said: USAGE() }), kind: 'exited', queued: false },
    { name: 'a run that could not start stays an error', outcome: () => ({ kind: 'error' as const, sessionId: 'web-00aa00aa', message: 'no image' }), kind: 'error', queued: false },
    { name: 'a usage limit waits, and queues the resume that continues the session', outcome: () => ended({ isError: true, said: USAGE() }), kind: 'waiting', queued: true },
    { name: 'a rate refusal waits too', outcome: () => ended({ isError: true, said: 'API Error: 429 {"type":"rate_limit_error"}' }), kind: 'waiting', queued: true },
    { name: 'an error of another kind is not a wait', outcome: () => ended({ isError: true, said: 'something else broke' }), kind: 'exited', queued: false },
  ])('after a run: $name', async ({ outcome, kind, queued }) => {
    const after = await waits().afterRun(command(KEY, 1), outcome());
    expect(after.kind).toBe(kind);
    expect((await stores.commands(KEY)).length > 0).toBe(queued);
  });

  it('the resume after a wait is queued once however often the run is retried, after the command, and the credential is refused until the reset', async () => {
    const c = command(KEY, 4);
    const first = await waits().afterRun(c, ended({ isError: true, said: USAGE() }));
    await waits().afterRun(c, ended({ isError: true, said: USAGE() }));
    const queued = await stores.commands(KEY);
    expect(queued.map((q) => [q.seq, q.kind, q.prompt])).toEqual([[5, 'resume', 'continue']]);
    expect(queued[0]?.providerWait?.notBefore).toBe(first.waiting?.resumeAt);
    expect(await stores.providerRefusesUntil(CREDENTIAL)).toBe(first.waiting?.resumeAt);
  });

  it('a run whose agent dropped its prompt (refused before any answer) is resumed with its own prompt, not the limits\' one', async () => {
    const refused = (): RunOutcome => ({ ...ended({ isError: true, said: 'quota' }), agent: { result: { kind: 'result', isError: true, text: 'quota', limit: { kind: 'rate', resetAt: Date.now() + HOUR, repeat: true } } } });
    const after = await waits().afterRun(command(KEY, 1), refused());
    expect(after.kind).toBe('waiting');
    await waits().afterRun(command(KEY, 3, { prompt: 'add a test' }), refused());
    const queued = await stores.commands(KEY);
    expect(queued.map((q) => [q.kind, q.prompt])).toEqual([['resume', 'prompt 1'], ['resume', 'add a test']]);
    expect(queued.every((q) => q.providerWait?.waits.length === 1)).toBe(true);
  });

  it('a command stopped meanwhile does not wait', async () => {
    await stores.markStopped(KEY, 1);
    expect((await waits().afterRun(command(KEY, 1), ended({ isError: true, said: USAGE() }))).kind).toBe('exited');
  });

  it('past maxWaits the run ends as it is, with the history in its note', async () => {
    const history = [{ at: 0, resetAt: 1, kind: 'usage' as const }, { at: 2, resetAt: 3, kind: 'rate' as const }];
    const after = await waits(2).afterRun(command(KEY, 2, { providerWait: { notBefore: 0, waits: history } }), ended({ isError: true, said: USAGE() }));
    expect(after.kind).toBe('exited');
    expect(after.note).toMatch(/refused 3 times: .* cldpd waited 2 times/);
    expect(await stores.pending(KEY)).toBe(0);
  });

  it('an answer of the provider wakes the issues parked on an earlier refusal of the credential', async () => {
    await stores.providerRefuses(CREDENTIAL, Date.now() + HOUR);
    await stores.parkForProvider(CREDENTIAL, 'acme.web-9');
    stores.refusals.set(CREDENTIAL, { until: Date.now() + HOUR, since: Date.now() - 10_000 });
    await waits().afterRun(command(KEY, 1), ended());
    expect(woken).toEqual(['acme.web-9']);
    expect(await stores.providerRefusesUntil(CREDENTIAL)).toBeUndefined();
  });

  it.each([
    { name: 'nothing refused: runs now', refusedFor: 0, notBeforeIn: 0, running: false, held: false, parked: false },
    { name: 'its credential refused: held until the reset, parked on it', refusedFor: HOUR, notBeforeIn: 0, running: false, held: true, parked: true },
    { name: 'its own reset ahead: held until then, not parked', refusedFor: 0, notBeforeIn: HOUR, running: false, held: true, parked: false },
    { name: 'already running (picked up again): followed, never held', refusedFor: HOUR, notBeforeIn: 0, running: true, held: false, parked: false },
  ])('before a run: $name', async ({ refusedFor, notBeforeIn, running, held, parked }) => {
    if (refusedFor) await stores.providerRefuses(CREDENTIAL, Date.now() + refusedFor);
    const c = command(KEY, 2, notBeforeIn ? { providerWait: { notBefore: Date.now() + notBeforeIn, waits: [] } } : {});
    if (running) await stores.set(KEY, { running: '2' });
    const until = await waits().holdUntil(c);
    expect(until !== undefined).toBe(held);
    expect(shownWaiting.length > 0).toBe(held);
    expect(stores.parked.get(CREDENTIAL)?.has(KEY) ?? false).toBe(parked);
  });
});
