import type { AgentSummary, SessionEvent } from '../../src/core/index.js';
import type { Reporter, RunCommand, RunOutcome, RunReport } from '../../src/queue/contract.js';

/** One run as a reporter saw it. */
export interface ReportedRun {
  readonly command: RunCommand;
  readonly events: SessionEvent[];
  startedAt?: number;
  finishedAt?: number;
  outcome?: RunOutcome;
  finishes: number;
}

/** A Reporter that records what each run reported. */
export class RecordingReporter implements Reporter {
  readonly runs: ReportedRun[] = [];

  forRun(command: RunCommand): RunReport {
    const run: ReportedRun = { command, events: [], finishes: 0 };
    this.runs.push(run);
    return {
      event: (event: SessionEvent, _agent: AgentSummary) => {
        run.events.push(event);
        if (event.type === 'container.started') run.startedAt = Date.now();
      },
      finish: async (outcome: RunOutcome) => {
        run.finishes += 1;
        run.outcome = outcome;
        run.finishedAt = Date.now();
      },
    };
  }

  /** Runs of one issue that finished, in the order they finished. */
  finished(issueKey: string): ReportedRun[] {
    return this.runs.filter((r) => r.command.issueKey === issueKey && r.finishedAt !== undefined).sort((a, b) => (a.finishedAt ?? 0) - (b.finishedAt ?? 0));
  }
}
