import type { Logger } from 'pino';
import type { AgentSummary } from '../core/index.js';
import type { Reporter, RunOutcome, RunReport } from './contract.js';
import type { UsageLimits } from './usage-counters.js';

/** What a run has spent so far by its summary, and whether that is exact (its agent's last word was its result). */
function spentBy(agent: AgentSummary | undefined): { usd: number; estimate: boolean } | undefined {
  if (agent?.spend) return { usd: agent.spend.usd, estimate: agent.spend.estimatedUsd > 0 };
  const cost = agent?.runCostUsd ?? agent?.result?.costUsd;
  return cost === undefined ? undefined : { usd: cost, estimate: false };
}

/**
 * Counts each run's spending in its day's, for its repository and the person who asked for
 * it (see UsageLimits): what the daily spending limits count. A run counts as it goes,
 * from what its agent reports (an estimate from token usage, replaced by the result's cost
 * once it comes), so a run that is stopped, times out or fails counts what it spent, and
 * a running one counts against the next trigger. Never fails a run: a figure that cannot be
 * recorded is logged, and the next one (or the run's end) records it.
 */
export class UsageReporter implements Reporter {
  constructor(private readonly usage: Pick<UsageLimits, 'spend'>, private readonly logger: Pick<Logger, 'warn'>) {}

  forRun(command: Parameters<Reporter['forRun']>[0]): RunReport {
    const runId = `${command.issueKey}#${command.seq}`;
    const repo = `${command.issue.owner}/${command.issue.repo}`;
    const record = (spent: { usd: number; estimate: boolean }): Promise<void> =>
      this.usage.spend(runId, repo, command.requestedBy, spent.usd, { estimate: spent.estimate }).catch((err: unknown) => {
        this.logger.warn({ err, issue: command.issueKey, seq: command.seq, costUsd: spent.usd }, 'could not add a run\'s spending to the day\'s');
      });
    // One write at a time, the latest figure next: a busy run costs Redis a write per round trip at most.
    let writing: Promise<void> | undefined;
    let next: { usd: number; estimate: boolean } | undefined;
    let last: { usd: number; estimate: boolean } | undefined;
    const drain = async (): Promise<void> => {
      while (next) {
        const spent = next;
        next = undefined;
        await record(spent);
      }
      writing = undefined;
    };
    return {
      event: (_event, agent) => {
        const spent = spentBy(agent);
        if (!spent || (spent.usd === last?.usd && spent.estimate === last.estimate)) return;
        last = spent;
        next = spent;
        writing ??= drain();
      },
      finish: async (outcome: RunOutcome) => {
        // A resume that went into the running agent: its spending is that run's.
        if (outcome.kind === 'delivered') return;
        await writing;
        const spent = spentBy(outcome.agent);
        if (spent) await record(spent);
      },
    };
  }
}
