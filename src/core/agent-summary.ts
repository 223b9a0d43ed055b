import type { AgentEvent } from './events.js';

/** What Claude Code said during the run, as far as it was understood. */
export interface AgentSummary {
  claudeSessionId?: string;
  lastText?: string;
  lastTool?: string;
  /** What the agent is doing, in a few words, for a person watching: never tool output. */
  activity?: string;
  result?: Extract<AgentEvent, { kind: 'result' }>;
  /** What this run cost: the session's total now less its total before the run. */
  runCostUsd?: number;
  /** What the Claude session has cost in all its runs. */
  sessionCostUsd?: number;
  /** Turns this run took, and in all runs of the session. */
  runTurns?: number;
  sessionTurns?: number;
  /** Instructions sent into this run while it ran (beyond its first prompt). */
  messagesSent?: number;
}

/** What the Claude session had cost, and the turns it had taken, before a run. */
export interface SpentBefore {
  readonly costUsd: number;
  readonly turns: number;
}

const NOTHING_SPENT: SpentBefore = { costUsd: 0, turns: 0 };

/**
 * Folds the agent events of one run, in the order the agent wrote them, into the run's
 * {@link AgentSummary}: Claude session id, last text and tool, activity, final result, and
 * the run's and the session's cost and turns counted from what was spent before the run.
 * Does no I/O, so a live run and a run read back from its log come to the same summary.
 * `messagesSent` is left to the caller: sent messages are not agent events.
 */
export class AgentSummaryAccumulator {
  /** The summary so far: one object, updated in place as events are added. */
  readonly summary: AgentSummary;
  private before: SpentBefore;
  /** The latest cost and turns the agent reported in this run, before any counting. */
  private reportedCostUsd: number | undefined;
  private reportedTurns: number | undefined;

  /** `seed`: the summary of the part of the run already seen elsewhere (copied, not kept). */
  constructor(before: SpentBefore = NOTHING_SPENT, seed: AgentSummary = {}) {
    this.before = before;
    this.summary = { ...seed };
  }

  /** Adds events in the order the agent wrote them. */
  add(events: readonly AgentEvent[]): void {
    const summary = this.summary;
    for (const event of events) {
      switch (event.kind) {
        case 'init':
          summary.claudeSessionId = event.claudeSessionId;
          break;
        case 'text':
          summary.lastText = event.text;
          summary.activity = event.text;
          break;
        case 'thinking':
          summary.activity = 'thinking';
          break;
        case 'tool':
          summary.lastTool = event.summary ? `${event.name}: ${event.summary}` : event.name;
          summary.activity = summary.lastTool;
          break;
        case 'message':
          if (event.replay) summary.activity = 'reading a new instruction';
          break;
        case 'result':
          summary.result = event;
          if (event.claudeSessionId) summary.claudeSessionId = event.claudeSessionId;
          if (event.costUsd !== undefined && event.costUsd >= 0) this.reportedCostUsd = event.costUsd;
          if (event.turns !== undefined && event.turns >= 0) this.reportedTurns = event.turns;
          this.count();
          break;
        default:
          break;
      }
    }
  }

  /**
   * Counts the run's and the session's cost and turns again from `before`: for a run read
   * back from a log, what was spent before it is known only once its end has been read.
   */
  rebase(before: SpentBefore): void {
    this.before = before;
    this.count();
  }

  private count(): void {
    const { summary, before } = this;
    if (this.reportedCostUsd !== undefined) {
      // Claude Code reports the Claude session's cost, earlier runs included, when it
      // could restore them; a total below what was recorded is this process's alone.
      const cost = this.reportedCostUsd;
      const whole = cost >= before.costUsd;
      summary.sessionCostUsd = whole ? cost : before.costUsd + cost;
      summary.runCostUsd = whole ? cost - before.costUsd : cost;
    }
    if (this.reportedTurns !== undefined) {
      // …but the turns of this process only.
      summary.runTurns = this.reportedTurns;
      summary.sessionTurns = before.turns + this.reportedTurns;
    }
  }
}
