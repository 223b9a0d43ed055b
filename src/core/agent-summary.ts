import { isConversationId, type AgentEvent } from './events.js';
import { estimateUsd, type TokenUsage } from './model-prices.js';

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
  /** What this run has spent so far, counted as it goes; absent until the agent reports a cost or a usage. */
  spend?: RunSpend;
}

/** One assistant message's usage, as counted: the most each line of it said (see AgentEvent `usage`). */
export interface CountedMessage {
  readonly id?: string;
  readonly model?: string;
  readonly tokens: TokenUsage;
  /** Characters of its content so far, over all its lines. */
  readonly chars: number;
}

/**
 * What a run has spent: the cost its agent's last result gave (`runCostUsd`), plus an
 * estimate for the assistant messages since, from their token usage at their model's list
 * price (see estimateUsd). A result replaces the estimate of everything before it. The
 * stream gives a message's output tokens as at its start, so a message counts at least a
 * token for each 4 characters of its content.
 */
export interface RunSpend {
  /** US dollars. */
  readonly usd: number;
  /** The part of `usd` that is an estimate: 0 when the agent's last word was its result. */
  readonly estimatedUsd: number;
  /** Messages since the last result that fell out of `recent`, in US dollars. */
  readonly settledUsd: number;
  /**
   * The latest messages since the last result, at most {@link RECENT_MESSAGES}, the one
   * whose line came last at the end: a message's later lines (and lines read again after a re-attach) find it here
   * and are not counted twice.
   */
  readonly recent: readonly CountedMessage[];
}

/** Messages kept apart in a run's spend (more may interleave: subagents). */
export const RECENT_MESSAGES = 16;

/** About this many characters of content make a token. */
const CHARS_PER_TOKEN = 4;

function messageUsd(m: CountedMessage): number {
  return estimateUsd({ ...m.tokens, output: Math.max(m.tokens.output, Math.ceil(m.chars / CHARS_PER_TOKEN)) }, m.model);
}

function mostOf(a: TokenUsage, b: TokenUsage): TokenUsage {
  return {
    input: Math.max(a.input, b.input),
    output: Math.max(a.output, b.output),
    cacheWrite5m: Math.max(a.cacheWrite5m, b.cacheWrite5m),
    cacheWrite1h: Math.max(a.cacheWrite1h, b.cacheWrite1h),
    cacheRead: Math.max(a.cacheRead, b.cacheRead),
    webSearches: Math.max(a.webSearches, b.webSearches),
    usOnly: a.usOnly || b.usOnly,
  };
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
  /** Whether the last result counted this run alone (see AgentEvent result `runOnly`). */
  private runOnly = false;
  /** Messages since the last result with a cost: see RunSpend. */
  private settledUsd: number;
  private recent: CountedMessage[];

  /** `seed`: the summary of the part of the run already seen elsewhere (copied, not kept). */
  constructor(before: SpentBefore = NOTHING_SPENT, seed: AgentSummary = {}) {
    this.before = before;
    this.summary = { ...seed };
    this.settledUsd = seed.spend?.settledUsd ?? 0;
    this.recent = [...(seed.spend?.recent ?? [])];
  }

  /** Adds events in the order the agent wrote them. */
  add(events: readonly AgentEvent[]): void {
    const summary = this.summary;
    for (const event of events) {
      switch (event.kind) {
        case 'init':
          if (isConversationId(event.claudeSessionId)) summary.claudeSessionId = event.claudeSessionId;
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
        case 'usage':
          this.countUsage(event);
          this.count();
          break;
        case 'result':
          // A CLI whose result carries no answer gave it as its last message.
          summary.result = event.text === undefined && !event.isError && summary.lastText !== undefined ? { ...event, text: summary.lastText } : event;
          if (event.claudeSessionId && isConversationId(event.claudeSessionId)) summary.claudeSessionId = event.claudeSessionId;
          this.runOnly = event.runOnly === true;
          if (event.costUsd !== undefined && event.costUsd >= 0) {
            this.reportedCostUsd = event.costUsd;
            // The result's cost counts every message before it.
            this.settledUsd = 0;
            this.recent = [];
          }
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

  private countUsage(event: Extract<AgentEvent, { kind: 'usage' }>): void {
    const at = event.messageId === undefined ? -1 : this.recent.findIndex((m) => m.id === event.messageId);
    const known = this.recent[at];
    if (known) {
      // The latest-used last: a message still being written is never the one settled.
      this.recent.splice(at, 1);
      this.recent.push({ ...known, tokens: mostOf(known.tokens, event.tokens), chars: known.chars + event.contentChars, ...(known.model === undefined && event.model !== undefined ? { model: event.model } : {}) });
      return;
    }
    this.recent.push({ ...(event.messageId !== undefined ? { id: event.messageId } : {}), ...(event.model !== undefined ? { model: event.model } : {}), tokens: event.tokens, chars: event.contentChars });
    while (this.recent.length > RECENT_MESSAGES) this.settledUsd += messageUsd(this.recent.shift() as CountedMessage);
  }

  private count(): void {
    const { summary, before } = this;
    if (this.reportedCostUsd !== undefined) {
      // Claude Code reports the Claude session's cost, earlier runs included, when it
      // could restore them; a total below what was recorded is this process's alone.
      const cost = this.reportedCostUsd;
      const whole = !this.runOnly && cost >= before.costUsd;
      summary.sessionCostUsd = whole ? cost : before.costUsd + cost;
      summary.runCostUsd = whole ? cost - before.costUsd : cost;
    }
    if (this.reportedTurns !== undefined) {
      // …but the turns of this process only.
      summary.runTurns = this.reportedTurns;
      summary.sessionTurns = before.turns + this.reportedTurns;
    }
    if (summary.runCostUsd !== undefined || this.recent.length > 0 || this.settledUsd > 0) {
      const estimatedUsd = this.recent.reduce((sum, m) => sum + messageUsd(m), this.settledUsd);
      summary.spend = { usd: (summary.runCostUsd ?? 0) + estimatedUsd, estimatedUsd, settledUsd: this.settledUsd, recent: [...this.recent] };
    }
  }
}
