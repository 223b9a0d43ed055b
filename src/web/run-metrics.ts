import type { AgentSummary, SessionEvent } from '../core/index.js';
import { BlockedTally } from '../queue/blocked-tally.js';
import type { Reporter, RunCommand, RunOutcome, RunReport } from '../queue/contract.js';
import type { CldpdMetrics, RunEnd } from './metrics.js';

/**
 * How a run ended, for the metrics: `cancelled`, `delivered` and `waiting` (for the model provider's limit) as the outcome says; a
 * container that exited by itself `finished` with exit code 0 and `failed` with any other;
 * one stopped on request `stopped`, one past its time limit `timeout`; everything else
 * (an error, no container at all) `failed`.
 */
export function runEnd(outcome: RunOutcome): RunEnd {
  if (outcome.kind === 'cancelled' || outcome.kind === 'delivered' || outcome.kind === 'waiting') return outcome.kind;
  const terminal = outcome.terminal;
  if (terminal?.type !== 'container.exited') return 'failed';
  if (terminal.reason !== 'exited') return terminal.reason;
  return terminal.exitCode === 0 ? 'finished' : 'failed';
}

/**
 * A Reporter that counts runs into the metrics: a start (and the time from the command
 * being queued) at `container.started`; at the end, how it ended, how long its container ran
 * (its exit's `durationMs`, else from `container.started` to the terminal event), and the
 * agent's cost and turns; each refusal of its egress gateway as it comes (an event seen again,
 * as a re-attached run may, counts nothing: see BlockedTally). Reports nothing anywhere else,
 * and never throws.
 */
export class RunMetrics implements Reporter {
  /** `now`: the clock for a run that ended without a terminal event; default Date.now. */
  constructor(private readonly metrics: Pick<CldpdMetrics, 'runStarted' | 'runFinished' | 'egressBlocked'>, private readonly now: () => number = Date.now) {}

  forRun(command: RunCommand): RunReport {
    let startedAt: number | undefined;
    let finished = false;
    const blocked = new BlockedTally();
    const { metrics, now } = this;
    return {
      event(event: SessionEvent, _agent: AgentSummary) {
        if (event.type === 'egress.blocked') {
          try {
            const refusals = blocked.add(event);
            // Re-told after a restart: counted by the process that saw them come.
            if (refusals > 0 && !event.replay) metrics.egressBlocked(command.pod, refusals);
          } catch {
            // Counting a refusal never breaks the run.
          }
          return;
        }
        // One container start per run (see SessionEvent's ordering contract).
        if (event.type !== 'container.started' || startedAt !== undefined) return;
        startedAt = event.at;
        try {
          metrics.runStarted(command.pod, (event.at - command.enqueuedAt) / 1000);
        } catch {
          // Counting a run never breaks the run.
        }
      },
      async finish(outcome: RunOutcome) {
        if (finished) return;
        finished = true;
        try {
          const terminal = outcome.terminal;
          const from = startedAt ?? outcome.startedAt;
          const durationMs = terminal?.type === 'container.exited' ? terminal.durationMs
            : from !== undefined ? (terminal?.at ?? now()) - from
            : undefined;
          const agent = outcome.agent;
          const costUsd = agent?.runCostUsd ?? agent?.result?.costUsd;
          const turns = agent?.runTurns ?? agent?.result?.turns;
          metrics.runFinished({
            pod: command.pod,
            end: runEnd(outcome),
            ...(durationMs !== undefined ? { durationSeconds: durationMs / 1000 } : {}),
            ...(costUsd !== undefined ? { costUsd } : {}),
            ...(turns !== undefined ? { turns } : {}),
          });
        } catch {
          // Counting a run never holds up its report.
        }
      },
    };
  }
}
