import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { PullRequestOpener, RunRepoAccess, RunWork } from '../../src/queue/contract.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { fakeSession } from '../fakes/fake-session.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';

const KEY = 'acme.web-1';
const WORK: RunWork = { watched: 'cldpd/issue-1', branches: [{ name: 'cldpd/issue-1', url: 'https://github.com/acme/web/tree/cldpd/issue-1', sha: 'a'.repeat(40) }], pulls: [] };

/** A run whose access says it pushed WORK, followed by `pulls`. */
async function runWith(pulls: PullRequestOpener): Promise<RecordingReporter> {
  const reporter = new RecordingReporter();
  const access = { fullName: 'acme/web', repository: async () => ({ fullName: 'acme/web', cloneUrl: 'x', defaultBranch: 'main' }), mint: async () => ({ token: 't', expiresAt: 0 }), produced: async () => WORK } satisfies RunRepoAccess;
  const runner = new CommandRunner({
    dispatcher: { start: async () => fakeSession(), resume: async () => fakeSession(), recover: async () => ({ kind: 'none' }) as never, isBusy: async () => false },
    state: new MemoryStores(), reporter, github: () => access, pulls, logger: pino({ level: 'silent' }),
  });
  await runner.run(command(KEY, 1));
  return reporter;
}

describe('a run that pushed, and its pull request', () => {
  it('the final status shows the work as the opener left it (the pull request it opened)', async () => {
    const seen: RunWork[] = [];
    const reporter = await runWith({
      afterPush: async (_c, outcome, work) => {
        seen.push(work);
        expect(outcome.kind).toBe('exited');
        return { ...work, pulls: [{ number: 3, title: 'T', url: 'u', state: 'open', branch: 'cldpd/issue-1', draft: true, openedByCldpd: true }] };
      },
    });
    expect(seen).toEqual([WORK]);
    expect(reporter.runs[0]?.outcome).toMatchObject({ kind: 'exited', work: { pulls: [{ number: 3, openedByCldpd: true }] } });
  });

  it('an opener that throws fails nothing: the run finishes with the work as found', async () => {
    const reporter = await runWith({ afterPush: async () => Promise.reject(new Error('boom')) });
    expect(reporter.runs[0]?.finishes).toBe(1);
    expect(reporter.runs[0]?.outcome).toMatchObject({ kind: 'exited', work: WORK });
  });
});
