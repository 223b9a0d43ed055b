import type { Logger } from 'pino';
import { messageOf, type AgentSummary, type SessionEvent } from '../core/index.js';
import { reportTarget, type Reporter, type RunCommand, type RunOutcome, type RunReport } from '../queue/contract.js';
import type { PositionReporter } from '../queue/queue-position.js';
import { BlockedTally } from '../queue/blocked-tally.js';
import { outcomePhase, phaseAfter } from '../queue/run-view.js';
import type { CommentsApi } from './comments-api.js';
import { createRedactor } from '../core/redact.js';
import { within } from '../core/within.js';
import { BLOCKED_SHOWN, RESUME_WAITS, renderStatusComment, statusMarker, type StatusView } from './status-comment.js';
import { statusOf } from './status-of.js';
import type { WriteBudget } from './write-budget-policy.js';

/** What the status reporter needs. */
export interface StatusReporterOptions {
  readonly comments: CommentsApi;
  readonly budget: WriteBudget;
  /** Least time between two progress edits of one comment. */
  readonly intervalMs: number;
  /** The redactor for a pod's runs: hides the values of env injected into it. */
  readonly redactorFor: (pod: string) => Promise<(text: string) => string>;
  readonly logger: Logger;
  /** The worker host the runs are on, shown in the comment with where its whole log is. */
  readonly hostId?: string;
  /** The signed link to a session's live page, valid from now for as long as its feed is kept; no link when absent. */
  readonly liveLink?: (sessionId: string) => string;
  /** How long a final edit keeps being retried; default 15 minutes. */
  readonly finalDeadlineMs?: number;
  readonly now?: () => number;
}

const LAST_LINES = 20;

/** Runs whose report began that are remembered, so no queued render touches their comments. */
const BEGUN_KEPT = 10_000;

/** How long a run's first write waits at most for a queued render of its comment under way. */
const QUEUED_WRITE_WAIT_MS = 30_000;

function runKey(command: RunCommand): string {
  return `${command.issueKey}#${command.seq}`;
}

/**
 * What the comment of a command that waits shows: what the intake posted, with the host once
 * known; for a run queued to continue after the provider's limit, that it waits, until when.
 */
function queuedView(command: RunCommand, now: number, hostId: string | undefined, queuePosition?: number, forSlot = false): StatusView {
  const wait = command.providerWait;
  const last = wait?.waits.at(-1);
  if (wait && last && wait.notBefore > now) {
    return {
      pod: command.pod, sessionId: command.sessionId, run: 0, command: command.kind, phase: 'waiting', now, requestedBy: command.requestedBy,
      ...(hostId ? { host: hostId } : {}), waitingFor: { resumeAt: wait.notBefore, kind: last.kind, wait: wait.waits.length },
    };
  }
  return {
    pod: command.pod, sessionId: command.sessionId, run: command.kind === 'start' ? 1 : 0, command: command.kind, phase: 'queued', now,
    requestedBy: command.requestedBy, ...(hostId ? { host: hostId } : {}), ...(queuePosition !== undefined ? { queuePosition } : {}),
    ...(command.note ? { note: command.note } : command.kind === 'resume' && queuePosition && !forSlot ? { note: RESUME_WAITS } : {}),
  };
}

/** Resolves when `write` has settled, or after `ms`, whichever is first; never rejects. */
async function settled(write: Promise<unknown>, ms: number): Promise<void> {
  await within(ms, write).then(() => undefined, () => undefined);
}

/**
 * Whether GitHub's answer will be the same however often it is asked: the comment or issue
 * is gone (404, 410), the body is refused (422), or writing is forbidden (403 for an
 * archived repository or a removed installation) — but not a 403 of a rate limit.
 */
export function isPermanent(err: unknown): boolean {
  const status = statusOf(err);
  if (status === 404 || status === 410 || status === 422) return true;
  if (status !== 403) return false;
  const headers = (err as { response?: { headers?: Record<string, string | undefined> } }).response?.headers ?? {};
  const limited = headers['retry-after'] !== undefined || headers['x-ratelimit-remaining'] === '0' || /rate limit/i.test((err as Error).message ?? '');
  return !limited;
}

/**
 * Reports runs on their status comment: progress edits coalesced to one per interval and
 * only when the installation's write budget allows; the final edit always, retried until it lands
 * (a deleted comment is posted again) or GitHub's answer shows it never will. Also shows a
 * waiting command its new place in the queue (a progress edit as well), and never once its
 * run's report has begun: the run's first write waits for such a render under way.
 */
export class StatusReporter implements Reporter, PositionReporter {
  /** Runs whose report began here (the latest BEGUN_KEPT). */
  private readonly begun = new Set<string>();
  /** Queued renders under way, per run. */
  private readonly rendering = new Map<string, Promise<void>>();

  constructor(private readonly options: StatusReporterOptions) {}

  forRun(command: RunCommand): RunReport {
    const key = runKey(command);
    this.begun.delete(key);
    this.begun.add(key);
    if (this.begun.size > BEGUN_KEPT) this.begun.delete(this.begun.values().next().value as string);
    return new StatusRun(command, this.options, this.rendering.get(key));
  }

  async waiting(command: RunCommand, until: number): Promise<void> {
    const key = runKey(command);
    const { budget, comments, logger, hostId } = this.options;
    if (this.begun.has(key) || this.rendering.has(key) || !(await budget.tryTake(command.issue.installationId))) return;
    const body = renderStatusComment(waitingView(command, until, (this.options.now ?? Date.now)(), hostId), statusMarker({ issueKey: command.issueKey, seq: command.seq }), (text) => text);
    const write = comments.update(reportTarget(command), command.statusCommentId, body).then(() => undefined, (err: unknown) => {
      if (statusOf(err) !== 404) logger.warn({ err: messageOf(err), issue: command.issueKey, seq: command.seq }, 'could not say a run waits for the provider\'s limit');
    });
    this.rendering.set(key, write);
    await write;
    this.rendering.delete(key);
  }

  async queued(command: RunCommand, position: number, forSlot = false): Promise<boolean> {
    const key = runKey(command);
    const { budget, comments, logger, hostId } = this.options;
    if (this.begun.has(key) || this.rendering.has(key)) return false;
    if (!(await budget.tryTake(command.issue.installationId))) return false;
    if (this.begun.has(key) || this.rendering.has(key)) return false; // its run began while the budget was asked
    const body = renderStatusComment(queuedView(command, (this.options.now ?? Date.now)(), hostId, position, forSlot), statusMarker({ issueKey: command.issueKey, seq: command.seq }), (text) => text);
    const write = comments.update(reportTarget(command), command.statusCommentId, body);
    const done = write.then(() => undefined, () => undefined);
    this.rendering.set(key, done);
    try {
      await write;
      return true;
    } catch (err) {
      // Deleted: the run posts its comment again when it starts; nothing to keep up to date until then.
      if (statusOf(err) === 404) return true;
      logger.warn({ err: messageOf(err), issue: command.issueKey, seq: command.seq }, 'could not show a queued run its new place in the queue');
      return false;
    } finally {
      this.rendering.delete(key);
    }
  }
}

/** The view of a command that waits for the provider's limit `until`: its own wait, or one another run hit. */
function waitingView(command: RunCommand, until: number, now: number, hostId: string | undefined): StatusView {
  const own = command.providerWait?.waits.at(-1);
  return {
    ...queuedView(command, now, hostId), phase: 'waiting',
    waitingFor: own && command.providerWait?.notBefore === until ? { resumeAt: until, kind: own.kind, wait: command.providerWait.waits.length } : { resumeAt: until, kind: 'usage', because: 'shared' },
  };
}

class StatusRun implements RunReport {
  private view: StatusView;
  private readonly lines: string[] = [];
  /** The last lines of the image build: shown when the run fails before its container. */
  private readonly buildLines: string[] = [];
  /** The hosts the run's gateway refused. */
  private readonly blocked = new BlockedTally();
  private lastEdit = 0;
  private replays = 0;
  private timer: NodeJS.Timeout | undefined;
  private editing: Promise<void> = Promise.resolve();
  private finished = false;
  private commentId: number;
  private readonly redactor: Promise<(text: string) => string>;
  private readonly now: () => number;

  /** `queuedWrite`: a queued render of this run's comment under way; every write of the run comes after it. */
  constructor(private readonly command: RunCommand, private readonly options: StatusReporterOptions, queuedWrite?: Promise<void>) {
    this.now = options.now ?? Date.now;
    this.commentId = command.statusCommentId;
    this.view = queuedView(command, this.now(), options.hostId);
    if (queuedWrite) this.editing = settled(queuedWrite, QUEUED_WRITE_WAIT_MS);
    // Without the pod's values (its pod.json unreadable now), token shapes are still hidden.
    this.redactor = options.redactorFor(command.pod).catch((err: unknown) => {
      options.logger.warn({ err: messageOf(err), pod: command.pod }, 'could not read the values to hide for this pod; hiding token shapes only');
      return createRedactor([]);
    });
    // The first edit after the "queued" comment may come at once.
    this.lastEdit = 0;
  }

  event(event: SessionEvent, agent: AgentSummary): void {
    if (this.finished) return;
    const v = { ...this.view } as { -readonly [K in keyof StatusView]: StatusView[K] };
    v.phase = phaseAfter(v.phase, event);
    switch (event.type) {
      case 'build.started':
        v.startedAt = event.at;
        break;
      case 'build.output':
        v.activity = event.line;
        this.buildLines.push(event.line);
        if (this.buildLines.length > LAST_LINES) this.buildLines.shift();
        break;
      case 'container.started':
        v.run = event.run;
        v.startedAt = event.at;
        v.activity = undefined;
        break;
      case 'setup.step':
        v.activity = `${event.name} (${event.step}/${event.of})`;
        break;
      case 'output':
        if (event.agent) {
          // What the agent is doing in its own words or tool calls; tool output never goes here.
          const last = [...event.agent].reverse().find((a) => a.kind === 'text' || a.kind === 'tool' || a.kind === 'thinking');
          if (last?.kind === 'text') v.activity = last.text;
          if (last?.kind === 'tool') v.activity = last.summary ? `${last.name}: ${last.summary}` : last.name;
          if (last?.kind === 'thinking') v.activity = 'thinking';
          // The agent echoes each message it takes; the first is the run's own prompt.
          this.replays += event.agent.filter((a) => a.kind === 'message' && a.replay).length;
          if (this.replays > 1) v.messagesTaken = this.replays - 1;
        } else {
          this.lines.push(event.line);
          if (this.lines.length > LAST_LINES) this.lines.shift();
          // While setting up, "Latest" keeps naming the step: its output is in the block below.
          if (v.phase !== 'setting up') v.activity = event.line;
        }
        break;
      case 'egress.blocked':
        // Counted here, listed when the comment is written: a flood of refusals costs a count each.
        // A repeat (a re-attached run's) changes nothing and costs no edit.
        if (this.blocked.add(event) === 0) return;
        break;
      default:
        return; // the terminal event is reported by finish()
    }
    if (agent.result) v.turns = agent.runTurns ?? agent.result.turns;
    if (v.phase === 'queued') v.phase = 'running'; // a re-attached run starts with output
    this.view = v;
    this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.finished) return;
    const due = this.lastEdit + this.options.intervalMs - this.now();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      if (this.finished) return;
      // Claim this interval now: events arriving while the budget is asked must not schedule another edit.
      this.lastEdit = this.now();
      this.editing = this.editing.catch(() => undefined).then(async () => {
        if (this.finished) return;
        if (!(await this.options.budget.tryTake(this.command.issue.installationId))) {
          this.lastEdit = this.now(); // over budget: skip this edit, try again one interval later
          this.schedule();
          return;
        }
        await this.write(false);
      });
    }, Math.max(0, due));
    this.timer.unref();
  }

  private async write(final: boolean): Promise<void> {
    this.lastEdit = this.now();
    const redact = await this.redactor;
    const liveUrl = this.view.phase !== 'queued' && this.view.sessionId ? this.options.liveLink?.(this.view.sessionId) : undefined;
    const blocked = this.blocked.total > 0 ? { blocked: this.blocked.view(BLOCKED_SHOWN) } : {};
    const body = renderStatusComment({ ...this.view, now: this.now(), lastLines: [...this.lines], ...(liveUrl ? { liveUrl } : {}), ...blocked }, statusMarker({ issueKey: this.command.issueKey, seq: this.command.seq }), redact);
    try {
      await this.options.comments.update(reportTarget(this.command), this.commentId, body);
    } catch (err) {
      if (statusOf(err) === 404) {
        // Someone deleted the status comment: the outcome still belongs on the issue.
        const created = await this.options.comments.create(reportTarget(this.command), body);
        this.commentId = created.id;
        return;
      }
      if (final) throw err;
      this.options.logger.warn({ err: messageOf(err), issue: this.command.issueKey }, 'a progress edit of the status comment failed');
    }
  }

  async finish(outcome: RunOutcome): Promise<void> {
    if (this.finished) return;
    this.finished = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.editing.catch(() => undefined);
    const v = { ...this.view, sessionId: outcome.sessionId } as { -readonly [K in keyof StatusView]: StatusView[K] };
    v.activity = undefined;
    const terminal = outcome.terminal;
    v.phase = outcomePhase(outcome);
    if (outcome.kind === 'cancelled') {
      v.note = outcome.message;
    } else if (outcome.kind === 'delivered') {
      v.note = outcome.message;
    } else if (outcome.kind === 'waiting' && outcome.waiting) {
      v.waitingFor = { resumeAt: outcome.waiting.resumeAt, kind: outcome.waiting.kind, wait: outcome.waiting.wait, of: outcome.waiting.of };
    } else if (terminal?.type === 'container.exited') {
      v.exitCode = terminal.exitCode;
      v.reason = terminal.reason;
      v.durationMs = terminal.durationMs;
    } else {
      v.error = terminal?.type === 'error' ? terminal.message : outcome.message ?? 'The run failed.';
    }
    const result = outcome.agent?.result;
    if (result) {
      const cost = outcome.agent?.runCostUsd ?? result.costUsd;
      if (cost !== undefined) v.costUsd = cost;
      if (outcome.agent?.sessionCostUsd !== undefined && v.run > 1) v.sessionCostUsd = outcome.agent.sessionCostUsd;
      const turns = outcome.agent?.runTurns ?? result.turns;
      if (turns !== undefined) v.turns = turns;
      if (result.tokens) v.tokens = { ...result.tokens, ...(result.runOnly ? {} : { conversation: true }) };
      if (result.text) v.finalAnswer = result.text;
      if (result.isError) v.agentError = true;
      if (result.subtype === 'error_max_turns') v.limit = 'turns';
      if (result.subtype === 'error_max_budget_usd') v.limit = 'budget';
    }
    if (outcome.work) v.work = outcome.work;
    if (outcome.note) v.note = outcome.note;
    if (outcome.lastLines && outcome.lastLines.length > 0) {
      this.lines.length = 0;
      this.lines.push(...outcome.lastLines.slice(-LAST_LINES));
    }
    if (v.phase === 'failed' && this.lines.length === 0 && this.buildLines.length > 0) {
      // It failed before its container: what the build said last is what helps.
      this.lines.push(...this.buildLines);
      v.linesFrom = 'build';
    }
    this.view = v;
    const deadline = this.now() + (this.options.finalDeadlineMs ?? 15 * 60_000);
    for (let attempt = 0; ; attempt++) {
      await this.options.budget.take(this.command.issue.installationId);
      try {
        await this.write(true);
        return;
      } catch (err) {
        if (isPermanent(err)) {
          this.options.logger.error({ err: messageOf(err), issue: this.command.issueKey }, 'GitHub refuses the final status edit for good (the issue is gone, the repository archived, or the app removed); giving up');
          throw err;
        }
        if (this.now() > deadline) throw err;
        const wait = Math.min(1000 * 2 ** attempt, 30_000);
        this.options.logger.warn({ err: messageOf(err), issue: this.command.issueKey, retryInMs: wait }, 'the final status edit failed; retrying');
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }
}
