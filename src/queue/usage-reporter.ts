import type { Logger } from 'pino';
import type { Reporter, RunOutcome, RunReport } from './contract.js';
import type { UsageLimits } from './usage-limits.js';

/**
 * Adds each run's cost to its day's spending, for its repository and the person who asked
 * for it (see UsageLimits): what the daily spending limits count. Never fails a run: a
 * cost that cannot be recorded is logged.
 */
export class UsageReporter implements Reporter {
  constructor(private readonly usage: Pick<UsageLimits, 'spend'>, private readonly logger: Pick<Logger, 'warn'>) {}

  forRun(command: Parameters<Reporter['forRun']>[0]): RunReport {
    return {
      event: () => undefined,
      finish: async (outcome: RunOutcome) => {
        const cost = outcome.agent?.runCostUsd ?? outcome.agent?.result?.costUsd;
        if (cost === undefined || outcome.kind === 'delivered') return;
        await this.usage.spend(`${command.issueKey}#${command.seq}`, `${command.issue.owner}/${command.issue.repo}`, command.requestedBy, cost).catch((err: unknown) => {
          this.logger.warn({ err, issue: command.issueKey, seq: command.seq, costUsd: cost }, 'could not add a run\'s cost to the day\'s spending');
        });
      },
    };
  }
}
