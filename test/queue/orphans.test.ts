import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { LABELS, type Session } from '../../src/core/index.js';
import type { RunCommand, RunOutcome, RunReport } from '../../src/queue/contract.js';
import { Orphans } from '../../src/queue/orphans.js';
import { fakeSession } from '../fakes/fake-session.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';

const KEY = 'acme.web-1';
const URL = 'https://github.com/acme/web/issues/1';
const TERMINAL = { type: 'container.exited' as const, at: 1, exitCode: 0, reason: 'exited' as const, durationMs: 1 };

let stores: MemoryStores;
let reporter: RecordingReporter;
let asked: string[];
let finished: Array<{ seq: number; outcome: RunOutcome }>;
let followed: string[];

/** Orphans over an inventory stand-in that lists `containers`, and a dispatcher stand-in and recovers each as `recovery` says. */
function orphans(containers: Array<{ sessionId: string; issueUrl?: string }>, recovery: (sessionId: string) => unknown, following: string[] = []): Orphans {
  return new Orphans({
    inventory: {
      sweepHelpers: async () => 0 as never,
      sweepTakeovers: async () => [],
      containers: async () => containers.map((c) => ({ sessionId: c.sessionId, container: { labels: c.issueUrl ? { [LABELS.issue]: c.issueUrl } : {} } })) as never,
    },
    dispatcher: {
      stop: async (id: string) => void asked.push(`stop ${id}`),
      recover: async (id: string) => {
        asked.push(`recover ${id}`);
        return recovery(id) as never;
      },
    },
    state: stores,
    runner: {
      follows: (id: string) => following.includes(id),
      follow: async (c: RunCommand, s: Session, _r: RunReport) => {
        followed.push(`${c.seq} ${s.id}`);
        return { kind: 'exited', sessionId: s.id, terminal: TERMINAL };
      },
      finish: async (c: RunCommand, outcome: RunOutcome) => void finished.push({ seq: c.seq, outcome }),
    },
    reporter,
    logger: pino({ level: 'silent' }),
  });
}

/** Waits (a second at most) until the adoptions reconcile started in the background have asked the dispatcher `count` things. */
async function adoptionsAsked(count: number): Promise<void> {
  for (let i = 0; i < 200 && asked.length < count; i++) await new Promise((r) => setTimeout(r, 5));
}

beforeEach(() => {
  stores = new MemoryStores();
  reporter = new RecordingReporter();
  asked = [];
  finished = [];
  followed = [];
});

describe('orphaned containers, on in-memory stores', () => {
  it.each([
    { name: 'a finished run with no command on record: the container is stopped and removed, nothing reported', withCommand: false, recovery: { kind: 'finished', terminal: TERMINAL, agent: {}, lastLines: [] }, asked: ['recover s1', 'stop s1', 'recover s1'], finished: [] as number[], followed: [] as string[] },
    { name: 'a finished run of a command on record: its end is reported and the record cleared', withCommand: true, recovery: { kind: 'finished', terminal: TERMINAL, agent: {}, lastLines: ['x'] }, asked: ['recover s1'], finished: [2], followed: [] },
    { name: 'a run still going of a command on record: followed to its end and reported', withCommand: true, recovery: { kind: 'attached', session: fakeSession({ id: 's1' }), lastLines: [] }, asked: ['recover s1'], finished: [2], followed: ['2 s1'] },
    { name: 'a run still going with no command on record: waited for, nothing reported', withCommand: false, recovery: { kind: 'attached', session: fakeSession({ id: 's1' }), lastLines: [] }, asked: ['recover s1'], finished: [], followed: [] },
  ])('adopt: $name', async ({ withCommand, recovery, asked: expectAsked, finished: expectFinished, followed: expectFollowed }) => {
    await stores.set(KEY, { running: '2' });
    await orphans([], () => recovery).adopt('s1', withCommand ? command(KEY, 2, { sessionId: 's1' }) : undefined);
    expect(asked).toEqual(expectAsked);
    expect(finished.map((f) => f.seq)).toEqual(expectFinished);
    expect(followed).toEqual(expectFollowed);
    expect((await stores.get(KEY)).running).toBe(withCommand ? 0 : 2);
  });

  it('reconcile leaves alone what is followed, what its job re-attaches to, and terminal sessions; stops a forgotten host\'s session; adopts the rest', async () => {
    const running = command(KEY, 2, { sessionId: 's-job' });
    await stores.set(KEY, { running: '2', runningCommand: JSON.stringify(running) });
    await stores.append(running);
    stores.forgotten.add('s-forgotten');
    const o = orphans([
      { sessionId: 's-followed', issueUrl: URL },
      { sessionId: 's-job', issueUrl: URL },
      { sessionId: 's-terminal' },
      { sessionId: 's-forgotten', issueUrl: URL },
      { sessionId: 's-orphan', issueUrl: URL },
    ], () => ({ kind: 'finished', terminal: TERMINAL, agent: {}, lastLines: [] }), ['s-followed']);
    await o.reconcile();
    await adoptionsAsked(5);
    expect(asked).toEqual(['stop s-forgotten', 'recover s-forgotten', 'recover s-orphan', 'stop s-orphan', 'recover s-orphan']);
  });
});
