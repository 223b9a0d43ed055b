import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { CldpdError, type Session } from '../../src/core/index.js';
import type { RunCommand, RunOutcome } from '../../src/queue/contract.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { fakeSession } from '../fakes/fake-session.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';

const KEY = 'acme.web-1';

let stores: MemoryStores;
let reporter: RecordingReporter;
let asked: string[];

/** A dispatcher stand-in: `start`/`resume` give `session` (or throw `fails`), `recover` answers `recovery`. */
function runner(opts: { session?: Session; fails?: Error; recovery?: unknown; busy?: boolean[]; afterRun?: (c: RunCommand, o: RunOutcome) => Promise<RunOutcome> } = {}): CommandRunner {
  const busy = [...(opts.busy ?? [])];
  const give = async (what: string) => {
    asked.push(what);
    if (opts.fails) throw opts.fails;
    return opts.session ?? fakeSession();
  };
  return new CommandRunner({
    dispatcher: {
      start: () => give('start'),
      resume: () => give('resume'),
      recover: async () => {
        asked.push('recover');
        if (!opts.recovery) throw new CldpdError('SessionNotFound', 'no such session');
        return opts.recovery as never;
      },
      isBusy: async () => busy.shift() ?? false,
    },
    state: stores,
    reporter,
    waits: opts.afterRun ? { afterRun: opts.afterRun } : undefined,
    logger: pino({ level: 'silent' }),
    busyPollMs: 1,
  });
}

beforeEach(() => {
  stores = new MemoryStores();
  reporter = new RecordingReporter();
  asked = [];
});

describe('one command → dispatcher → reporter, on in-memory stores', () => {
  it('a start runs, is on record as running while it does, follows the session to its end and reports it once', async () => {
    const c = command(KEY, 1);
    await runner({ session: fakeSession({ lines: ['hello'] }) }).run(c);
    // This host is asked first whether it has the session already (it has not): see below.
    expect(asked).toEqual(['recover', 'start']);
    const [run] = reporter.runs;
    expect(run?.finishes).toBe(1);
    expect(run?.outcome).toMatchObject({ kind: 'exited', sessionId: 'web-00aa00aa', lastLines: ['hello'] });
    const record = await stores.get(KEY);
    expect(record.running).toBe(1); // cleared with the command's removal from the queue, not before
    expect(record.sessionId).toBe('web-00aa00aa');
    expect(record.lastState).toBe('run 1 (start) finished with exit code 0');
  });

  it.each([
    { name: 'a start stopped before it began is reported cancelled and never started', seq: 1, stoppedSeq: 1, outcome: 'cancelled', asked: ['recover'] },
    { name: 'a resume stopped before it began is reported cancelled and never resumed', seq: 2, stoppedSeq: 2, outcome: 'cancelled', asked: [] },
    { name: 'a resume after the stop runs', seq: 3, stoppedSeq: 2, outcome: 'exited', asked: ['resume'] },
  ])('stop: $name', async ({ seq, stoppedSeq, outcome, asked: expected }) => {
    await stores.markStopped(KEY, stoppedSeq);
    await runner().run(command(KEY, seq));
    expect(reporter.runs[0]?.outcome?.kind).toBe(outcome);
    expect(asked).toEqual(expected);
  });

  it('a run that cannot start is reported as an error with its message, not thrown', async () => {
    await runner({ fails: new Error('no such image') }).run(command(KEY, 1));
    expect(reporter.runs[0]?.outcome).toMatchObject({ kind: 'error', message: 'no such image' });
  });

  it('a run picked up again after a restart whose end is on record is reported from the record, not started again', async () => {
    const c = command(KEY, 2);
    await stores.set(KEY, { running: '2' });
    const terminal = { type: 'container.exited', at: 1, exitCode: 3, reason: 'exited', durationMs: 1 };
    await runner({ recovery: { kind: 'finished', terminal, agent: {}, lastLines: ['bye'] } }).run(c);
    expect(asked).toEqual(['recover']);
    expect(reporter.runs[0]?.outcome).toMatchObject({ kind: 'exited', terminal: { exitCode: 3 }, lastLines: ['bye'] });
  });

  it.each([
    ['ended', { kind: 'finished', terminal: { type: 'container.exited', at: 1, exitCode: 0, reason: 'exited', durationMs: 1 }, agent: {}, lastLines: ['done'] }, 'exited'],
    ['still running', { kind: 'attached', session: fakeSession({ lines: ['more'] }), lastLines: [] }, 'exited'],
  ])('a start this host made already, though Redis has no record of it running (a failover lost that write), is recovered (%s), never started again', async (_what, recovery, outcome) => {
    await runner({ recovery }).run(command(KEY, 1));
    expect(asked).toEqual(['recover']);
    expect(reporter.runs[0]?.outcome?.kind).toBe(outcome);
    expect(reporter.runs[0]?.finishes).toBe(1);
  });

  it('a resume waits while the session still runs, then resumes', async () => {
    await runner({ busy: [true, true, false] }).run(command(KEY, 2));
    expect(asked).toEqual(['resume']);
    expect(reporter.runs[0]?.outcome?.kind).toBe('exited');
  });

  it('the provider\'s after-run decision is what the final report says', async () => {
    await runner({ afterRun: async (_c, o) => ({ ...o, kind: 'waiting', waiting: { resumeAt: 0, wait: 1, of: 3, kind: 'usage' } }) }).run(command(KEY, 1));
    expect(reporter.runs[0]?.outcome?.kind).toBe('waiting');
  });

  it('a stop that came while the run was being set up is applied once it is followed', async () => {
    const session = fakeSession();
    const r = runner({ session });
    await stores.markStopped(KEY, 1);
    await r.follow(command(KEY, 1), session, reporter.forRun(command(KEY, 1)));
    expect(session.stops).toBe(1);
    expect(r.size).toBe(0);
  });
});
