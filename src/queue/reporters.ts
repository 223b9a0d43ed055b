import type { Reporter, RunOutcome, RunReport } from './contract.js';

/**
 * One Reporter that hands every run to `primary` and to each of `others` (the live page's
 * feed, the metrics). Only `primary` (the status comment) may fail a run's finish: the
 * others are told the outcome too, but what goes wrong in them is theirs to log, and they
 * never hold the comment back (they are finished side by side with it).
 */
export function allReporters(primary: Reporter, ...others: readonly Reporter[]): Reporter {
  if (others.length === 0) return primary;
  return {
    forRun(command) {
      const main = primary.forRun(command);
      const rest = others.map((reporter) => reporter.forRun(command));
      const report: RunReport = {
        event(event, agent) {
          main.event(event, agent);
          for (const r of rest) {
            try {
              r.event(event, agent);
            } catch {
              // A side report never breaks the run it follows.
            }
          }
        },
        async finish(outcome: RunOutcome) {
          const [result] = await Promise.allSettled([main.finish(outcome), ...rest.map((r) => r.finish(outcome))]);
          if (result?.status === 'rejected') throw result.reason;
        },
      };
      return report;
    },
  };
}
