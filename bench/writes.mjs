// 4. GitHub writes: a simulated 10-minute session producing 100k lines, alone and 20 at
// once, through the real status reporter and write budget on a virtual clock.
import FakeTimers from '@sinonjs/fake-timers';
import { pino } from 'pino';

export async function benchWrites({ sessions = [1, 20], minutes = 10, lines = 100_000, intervalMs = 10_000, perMinute = 40 } = {}) {
  const results = [];
  for (const count of sessions) {
    const clock = FakeTimers.install({ now: 0, toFake: ['Date', 'setTimeout', 'clearTimeout', 'setInterval', 'clearInterval'] });
    try {
      const { StatusReporter } = await import('../dist/github/status-reporter.js');
      const { localWriteBudget } = await import('../dist/github/write-budget-policy.js');
      const writes = [];
      const comments = {
        async create(issue) {
          writes.push({ at: Date.now(), issue: issue.number });
          return { id: 1, url: 'u' };
        },
        async update(issue) {
          writes.push({ at: Date.now(), issue: issue.number });
        },
        async list() {
          return [];
        },
      };
      // One budget for the intake's "queued" comments and the reporter's edits, as the
      // deployment's processes share one through Redis.
      const budget = localWriteBudget(perMinute);
      const reporter = new StatusReporter({ comments, budget, intervalMs, redactorFor: async () => (t) => t, logger: pino({ level: 'silent' }) });
      const runs = [];
      for (let i = 0; i < count; i++) {
        const command = { seq: 1, kind: 'start', issueKey: `b-${i}`, issue: { installationId: 1, owner: 'b', repo: 'r', number: i, url: 'u' }, pod: 'p', sessionId: 'p-00000000', prompt: 'x', statusCommentId: 1, requestedBy: 'a', enqueuedAt: 0 };
        const queued = budget.take(1); // the "queued" comment the intake posts
        await clock.runToLastAsync();
        await queued;
        writes.push({ at: Date.now(), issue: i });
        runs.push(reporter.forRun(command));
      }
      const step = (minutes * 60_000) / lines;
      for (const run of runs) run.event({ type: 'container.started', at: 0, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
      for (let l = 0; l < lines; l++) {
        await clock.tickAsync(step);
        for (const run of runs) run.event({ type: 'output', at: Date.now(), stream: 'stdout', line: `line ${l}` }, {});
      }
      const finishing = runs.map((run) => run.finish({ kind: 'exited', sessionId: 'p-00000000', terminal: { type: 'container.exited', at: Date.now(), exitCode: 0, reason: 'exited', durationMs: minutes * 60_000 }, lastLines: ['done'] }));
      let finished = false;
      void Promise.all(finishing).then(() => (finished = true));
      while (!finished) await clock.tickAsync(1000);
      let peak = 0;
      for (let i = 0, j = 0; i < writes.length; i++) {
        while (writes[i].at - writes[j].at >= 60_000) j++;
        peak = Math.max(peak, i - j + 1);
      }
      results.push({ sessions: count, writes: writes.length, perSession: writes.length / count, peakPerMinute: peak, limitPerSession: 3 + (minutes * 60) / 10 });
    } finally {
      clock.uninstall();
    }
  }
  return results;
}
