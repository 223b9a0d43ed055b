import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { Session } from '../../src/core/index.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { fakeSession } from '../fakes/fake-session.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';

const KEY = 'acme.web-1';

interface Call {
  readonly what: 'start' | 'resume' | 'recover';
  readonly options: unknown;
}

/** A CommandRunner over a dispatcher that records what it is asked with, and `egress` as the repository's list source. */
function world(egress?: (c: RunCommand) => Promise<readonly string[] | undefined>, recovery?: { kind: 'attached'; session: Session; lastLines: string[] }) {
  const calls: Call[] = [];
  const asked: RunCommand[] = [];
  const stores = new MemoryStores();
  const reporter = new RecordingReporter();
  const runner = new CommandRunner({
    dispatcher: {
      start: async (_pod, _input, options) => {
        calls.push({ what: 'start', options });
        return fakeSession();
      },
      resume: async (_id, _prompt, options) => {
        calls.push({ what: 'resume', options });
        return fakeSession();
      },
      recover: async (_id, options) => {
        calls.push({ what: 'recover', options });
        return (recovery ?? { kind: 'none' }) as never;
      },
      isBusy: async () => false,
    },
    state: stores,
    reporter,
    egress: egress ? async (c) => {
      asked.push(c);
      return egress(c);
    } : undefined,
    logger: pino({ level: 'silent' }),
  });
  return { runner, calls, asked, stores, reporter };
}

/** What was started or resumed: a start asks first whether this host has its session already (a recovery that finds none). */
const made = (w: { calls: Array<{ what: string; options: unknown }> }) => w.calls.filter((c) => c.what !== 'recover');

describe('the repository\'s egress list reaches the dispatcher', () => {
  it('a start is given its pod\'s list, with its session id', async () => {
    const w = world(async () => ['registry.npmjs.org', '*.pythonhosted.org']);
    await w.runner.run(command(KEY, 1));
    expect(made(w)).toEqual([{ what: 'start', options: { sessionId: 'web-00aa00aa', egress: ['registry.npmjs.org', '*.pythonhosted.org'] } }]);
    expect(w.asked.map((c) => [c.pod, c.issue.owner, c.issue.repo])).toEqual([['web', 'acme', 'web']]);
  });

  it('a resume is given the list read afresh for it', async () => {
    const w = world(async () => ['a.example']);
    await w.runner.run(command(KEY, 2));
    expect(w.calls).toEqual([{ what: 'resume', options: { egress: ['a.example'] } }]);
  });

  it('an empty list is passed as it is (nothing beyond what cldpd needs), and no list as none', async () => {
    const empty = world(async () => []);
    await empty.runner.run(command(KEY, 1));
    expect(made(empty)[0]?.options).toEqual({ sessionId: 'web-00aa00aa', egress: [] });
    const none = world(async () => undefined);
    await none.runner.run(command(KEY, 1));
    expect(made(none)[0]?.options).toEqual({ sessionId: 'web-00aa00aa' });
    const unasked = world();
    await unasked.runner.run(command(KEY, 1));
    expect(made(unasked)[0]?.options).toEqual({ sessionId: 'web-00aa00aa' });
  });

  it('a list that cannot be read fails the run before anything starts, with the reason on its status', async () => {
    const w = world(async () => {
      throw new Error('The run did not start: cldpd could not read .github/cldpd.yml');
    });
    await w.runner.run(command(KEY, 1));
    expect(made(w)).toEqual([]);
    expect(w.reporter.runs[0]?.outcome).toMatchObject({ kind: 'error', message: 'The run did not start: cldpd could not read .github/cldpd.yml' });
  });

  it('a run picked up again after a restart keeps the network it has: nothing is read for it', async () => {
    const w = world(async () => ['a.example'], { kind: 'attached', session: fakeSession(), lastLines: [] });
    await w.stores.set(KEY, { running: '1' });
    await w.runner.run(command(KEY, 1));
    expect(w.calls.map((c) => c.what)).toEqual(['recover']);
    expect(w.asked).toEqual([]);
  });

  it('a command stopped before it ran reads nothing', async () => {
    const w = world(async () => ['a.example']);
    await w.stores.markStopped(KEY, 1);
    await w.runner.run(command(KEY, 1));
    expect(w.asked).toEqual([]);
    expect(w.reporter.runs[0]?.outcome?.kind).toBe('cancelled');
  });
});
