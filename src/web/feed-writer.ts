import type { Logger } from 'pino';
import { keepStart, messageOf, stripEscapes, toWellFormed, type AgentSummary, type SessionEvent } from '../core/index.js';
import type { Reporter, RunCommand, RunOutcome, RunReport } from '../queue/contract.js';
import type { FeedEntry, FeedHead, SessionFeedStore } from '../queue/session-feed.js';
import { outcomePhase, phaseAfter, utcMinute } from '../queue/run-view.js';
import { createRedactor } from '../core/redact.js';
import { within } from '../core/within.js';

/** What the feed writer needs. */
export interface FeedWriterOptions {
  readonly store: Pick<SessionFeedStore, 'publish'>;
  /** The redactor of a pod's runs: the same one its status comments go through. */
  readonly redactorFor: (pod: string) => Promise<(text: string) => string>;
  readonly hostId: string;
  readonly logger: Logger;
  /** Least time between two publishes of one run; default 50 ms. */
  readonly flushMs?: number;
  /** Entries a run holds while Redis does not take them; beyond this the oldest are let go (and counted on the page). Default 5,000. */
  readonly maxPending?: number;
  /** How long a run's finish waits for its last entries to be taken; default 10 s. */
  readonly finishWaitMs?: number;
}

/** Longest text of one entry on the page; the rest is cut (after redaction, so no secret is half shown). */
const MAX_TEXT = 20_000;
const MAX_LINE = 2_000;
const BATCH = 500;
/** Refusals of the egress gateway one run lists on the page; the status comment and /metrics count every one. */
export const MAX_BLOCKED_ENTRIES = 200;
/** Longest host name of a refusal on the page: a DNS name is at most 253 characters. */
const MAX_HOST = 300;

/** The entry fields that hold text from the run (everything else is cldpd's own). */
const TEXT_FIELDS = new Set(['text', 'name', 'summary', 'firstLine', 'note', 'by', 'answer', 'host']);

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** The page's entries for one event of a run, before redaction; none for the terminal event (the finish says how it ended). */
export function feedEntries(event: SessionEvent, command: Pick<RunCommand, 'kind' | 'requestedBy'>): FeedEntry[] {
  const at = event.at;
  switch (event.type) {
    case 'build.started':
      return [{ k: 'build', at, text: `building image ${event.image}` }];
    case 'build.output':
      return [{ k: 'build', at, text: event.line }];
    case 'build.completed':
      return [{ k: 'build', at, text: `image ${event.image} ready` }];
    case 'container.started':
      return [{ k: 'run', at, run: event.run, command: event.run === 1 ? 'start' : command.kind, ...(command.requestedBy ? { by: command.requestedBy } : {}) }];
    case 'setup.step':
      return [{ k: 'step', at, step: event.step, of: event.of, name: event.name }];
    case 'egress.blocked':
      // Re-told after a restart: the feed has them already.
      if (event.replay) return [];
      return [{ k: 'blocked', at, host: event.host, port: event.port, via: event.via, count: event.count }];
    case 'output': {
      if (!event.agent) return [{ k: 'line', at, stream: event.stream, text: event.line, ...(event.step !== undefined ? { step: event.step } : {}) }];
      const entries: FeedEntry[] = [];
      for (const a of event.agent) {
        if (a.kind === 'text') entries.push({ k: 'text', at, text: a.text });
        else if (a.kind === 'tool') entries.push({ k: 'tool', at, name: a.name, summary: a.summary });
        else if (a.kind === 'tool_result') entries.push({ k: 'result', at, isError: a.isError, lines: a.lines, chars: a.chars, firstLine: a.firstLine });
        else if (a.kind === 'message') entries.push({ k: 'message', at, text: a.text });
      }
      return entries;
    }
    default:
      return [];
  }
}

/**
 * An entry as the page may show it: every text from the run redacted first, then stripped
 * of terminal escapes, made well-formed and cut (a line to 2,000 characters, other text to
 * 20,000), so a cut never reveals part of a secret. A character is at most 3 bytes of the
 * entry's JSON (control characters but tab and newline are stripped), so a line entry is at
 * most about 6 KB and a text one about 60 KB per field.
 */
export function redactEntry(entry: FeedEntry, redact: (text: string) => string): FeedEntry {
  const out: Record<string, unknown> = { ...entry };
  for (const [key, value] of Object.entries(entry)) {
    if (typeof value !== 'string' || !TEXT_FIELDS.has(key)) continue;
    const clean = toWellFormed(stripEscapes(redact(value)));
    const max = entry.k === 'blocked' ? MAX_HOST : entry.k === 'line' || entry.k === 'build' ? MAX_LINE : MAX_TEXT;
    out[key] = clean.length > max ? `${keepStart(clean, max)} … (${clean.length - max} more characters)` : clean;
  }
  return out as unknown as FeedEntry;
}

/**
 * Publishes every run to its session's live feed (see SessionFeedStore), for the session
 * page: its entries redacted as comments are, and the header's phase, cost and turns. Never
 * blocks or fails a run: entries are published in batches every `flushMs`, and while Redis
 * does not take them a bounded number wait (the page says how many were let go).
 */
export class FeedWriter implements Reporter {
  constructor(private readonly options: FeedWriterOptions) {}

  forRun(command: RunCommand): RunReport {
    return new FeedRun(command, this.options);
  }
}

class FeedRun implements RunReport {
  private pending: FeedEntry[] = [];
  /** Entries ever taken off the front of `pending` (published or let go): where `pending[0]` is in the run's sequence. */
  private shifted = 0;
  private head: Mutable<{ [K in keyof FeedHead]?: FeedHead[K] | null }>;
  private dropped = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  /** The agent's last words in this run, as its entries had them: a final answer the same as these is not shown twice. */
  private lastText: string | undefined;
  /** Refusals of the egress gateway listed so far (at most MAX_BLOCKED_ENTRIES). */
  private blocked = 0;
  /** Whether the run reached its build or container: only then does it own the header's phase. */
  private began = false;
  /** Set once the finish has waited its time: a publish that fails after it is not retried. */
  private abandoned = false;
  private readonly redactor: Promise<(text: string) => string>;

  constructor(private readonly command: RunCommand, private readonly options: FeedWriterOptions) {
    const { issue } = command;
    this.head = { sessionId: command.sessionId, pod: command.pod, owner: issue.owner, repo: issue.repo, number: issue.number, issueUrl: issue.url, installationId: issue.installationId, host: options.hostId };
    this.redactor = options.redactorFor(command.pod).catch(() => createRedactor([]));
  }

  event(event: SessionEvent, agent: AgentSummary): void {
    const entries = this.bounded(feedEntries(event, this.command));
    for (const entry of entries) if (entry.k === 'text') this.lastText = entry.text;
    this.push(...entries);
    const h = this.head;
    if (event.type === 'build.started' || event.type === 'container.started') this.began = true;
    // The container's own output owns the phase only once this run reached its build or container.
    const phase = event.type !== 'output' || this.began ? phaseAfter(h.phase, event) : h.phase;
    if (phase !== h.phase) h.phase = phase;
    switch (event.type) {
      case 'build.started':
        h.endedAt = null;
        break;
      case 'container.started':
        h.run = event.run;
        h.runStartedAt = event.at;
        h.endedAt = null;
        if (event.run === 1) h.startedAt = event.at;
        break;
      default:
        break;
    }
    this.spent(agent);
    this.schedule();
  }

  /** `entries` with refusals past the run's MAX_BLOCKED_ENTRIES left out, the last one listed marked: a container that knocks without end does not push its run off the page. */
  private bounded(entries: FeedEntry[]): FeedEntry[] {
    return entries.flatMap((entry): FeedEntry[] => {
      if (entry.k !== 'blocked') return [entry];
      if (this.blocked >= MAX_BLOCKED_ENTRIES) return [];
      this.blocked += 1;
      return [this.blocked === MAX_BLOCKED_ENTRIES ? { ...entry, last: true as const } : entry];
    });
  }

  async finish(outcome: RunOutcome): Promise<void> {
    const terminal = outcome.terminal;
    const phase = outcomePhase(outcome);
    const at = terminal?.at ?? Date.now();
    const end: Mutable<Extract<FeedEntry, { k: 'end' }>> = { k: 'end', at, outcome: phase };
    if (terminal?.type === 'container.exited') Object.assign(end, { exitCode: terminal.exitCode, reason: terminal.reason, durationMs: terminal.durationMs });
    const subtype = outcome.agent?.result?.subtype;
    const limit = subtype === 'error_max_turns' ? 'The agent stopped at the pod\'s turn limit (maxTurns in its pod.json).'
      : subtype === 'error_max_budget_usd' ? 'The agent stopped at the pod\'s spending limit for a run (maxBudgetUsd in its pod.json).'
      : undefined;
    const waitingNote = outcome.waiting ? `The model provider refused for its ${outcome.waiting.kind === 'usage' ? 'usage limit' : 'rate limit'}; the session continues by itself at ${utcMinute(outcome.waiting.resumeAt)} UTC (wait ${outcome.waiting.wait} of ${outcome.waiting.of}).` : undefined;
    const note = terminal?.type === 'error' ? terminal.message : outcome.message ?? waitingNote ?? outcome.note ?? limit;
    if (note) end.note = note;
    const cost = outcome.agent?.runCostUsd ?? outcome.agent?.result?.costUsd;
    const turns = outcome.agent?.runTurns ?? outcome.agent?.result?.turns;
    if (cost !== undefined) end.costUsd = cost;
    if (turns !== undefined) end.turns = turns;
    // The final answer, as the status comment shows it, unless the page shows it already as the agent's last words.
    const answer = outcome.agent?.result?.text?.trim();
    if (answer && answer !== this.lastText?.trim()) {
      end.answer = answer;
      if (outcome.agent?.result?.isError) end.answerIsError = true;
    }
    if (outcome.kind === 'delivered') {
      // Not a run of its own: its instruction went into the running one, which keeps the header.
      this.push({ k: 'message', at, text: outcome.message ?? 'Sent to the running agent.' });
    } else {
      this.push(end);
      if (this.began || outcome.kind === 'error' || outcome.kind === 'exited') {
        this.head.phase = phase;
        this.head.endedAt = at;
      }
    }
    if (outcome.agent) this.spent(outcome.agent);
    clearTimeout(this.timer);
    this.timer = undefined;
    await within(this.options.finishWaitMs ?? 10_000, this.drain()).catch(() => undefined);
    // A finished run keeps nothing waiting for a Redis that does not come back.
    this.abandoned = true;
  }

  private spent(agent: AgentSummary): void {
    const cost = agent.sessionCostUsd ?? agent.result?.costUsd;
    const turns = agent.sessionTurns ?? agent.result?.turns;
    if (cost !== undefined) this.head.costUsd = cost;
    if (turns !== undefined) this.head.turns = turns;
  }

  private push(...entries: FeedEntry[]): void {
    this.pending.push(...entries);
    const max = this.options.maxPending ?? 5000;
    if (this.pending.length > max) {
      const over = this.pending.length - max;
      this.pending.splice(0, over);
      this.shifted += over;
      this.dropped += over;
    }
  }

  private schedule(): void {
    if (this.timer || this.flushing) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.drain();
    }, this.options.flushMs ?? 50);
    this.timer.unref();
  }

  /** Publishes what is pending, batch after batch; one publish at a time, in order. Never rejects. */
  private drain(): Promise<void> {
    this.flushing ??= (async () => {
      let failures = 0;
      while (this.pending.length > 0 || Object.keys(this.head).length > 0) {
        const redact = await this.redactor;
        const from = this.shifted;
        const batch = this.pending.slice(0, BATCH);
        const entries = batch.map((e) => redactEntry(e, redact));
        const dropped = this.dropped;
        if (dropped > 0) entries.unshift({ k: 'line', at: Date.now(), stream: 'stderr', text: `[${dropped} entries could not be published while Redis did not answer]` });
        // Events that come meanwhile write a fresh head: none is lost, none sent twice.
        const head = this.head;
        this.head = {};
        try {
          await this.options.store.publish(this.command.sessionId, entries, head);
          // Entries let go while this publish was under way are off `pending` already (counted
          // in `shifted`): only what is still there of this batch comes off now, and those of
          // the batch among them were published after all, not lost.
          const trimmedMeanwhile = this.shifted - from;
          const published = Math.max(0, batch.length - trimmedMeanwhile);
          this.pending.splice(0, published);
          this.shifted += published;
          this.dropped = Math.max(0, this.dropped - dropped - Math.min(batch.length, trimmedMeanwhile));
          failures = 0;
        } catch (err) {
          this.head = { ...head, ...this.head };
          if (this.abandoned) return;
          if (failures++ === 0) this.options.logger.warn({ err: messageOf(err), session: this.command.sessionId }, 'could not publish to the live session page; retrying');
          await new Promise((resolve) => setTimeout(resolve, Math.min(1000 * failures, 5000)));
        }
      }
    })().finally(() => {
      this.flushing = undefined;
      if (this.pending.length > 0 && !this.abandoned) this.schedule();
    });
    return this.flushing;
  }
}
