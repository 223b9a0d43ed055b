import { randomBytes } from 'node:crypto';
import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { LABELS, isCldpdError, messageOf, providerLimit, type Dispatcher, type RemovedSession, type Session } from '../core/index.js';
import type { ControlJob, IssueRef, Reporter, RetireJob, RunCommand, RunOutcome, RunRepoAccess } from './contract.js';
import type { WorkerStores } from './issue-stores.js';
import { HOST_GONE_MS, RUN_QUEUE, controlQueue, hostQueue } from './names.js';
import type { DrainJob, Producer } from './producer.js';
import { retireIssue, type RetireDeps, type Retirement } from './retire.js';
import { positionUpdates, type PositionReporter } from './queue-position.js';

/** What a run worker needs; the composition root builds the real ones. */
/** How long a closed issue's removal waits before it looks again (a run going, a session running, an error), and how often at most: a month. */
const RETIRE_RECHECK_MS = 3600_000;
const MAX_RETIRE_RECHECKS = 24 * 30;

export interface RunWorkerOptions {
  readonly connection: ConnectionOptions;
  readonly hostId: string;
  /** Runs at once from each of the shared and the host queue. */
  readonly concurrency: number;
  readonly dispatcher: Dispatcher;
  readonly state: WorkerStores;
  readonly producer: Producer;
  readonly reporter: Reporter;
  /** Keeps the queue position on the status comments of waiting commands up to date; none when absent. */
  readonly positions?: PositionReporter;
  readonly logger: Logger;
  /** How long a job and the per-issue lock stay with a worker that stopped renewing them; default 60 s. */
  readonly lockTtlMs?: number;
  /** How soon a drain job whose issue is busy elsewhere looks again; default 5 s. */
  readonly recheckMs?: number;
  /** How often containers nothing follows are looked for; default 60 s. */
  readonly reconcileMs?: number;
  /** How long this host counts as alive after its last heartbeat; default HOST_GONE_MS (10 minutes). Heartbeats come every 30 s, or a third of this. */
  readonly hostGoneMs?: number;
  /** What GitHub says of the issue (open, closed and since when, or not shown), asked before a retirement removes anything; not asked when absent. */
  readonly issueOnGitHub?: (issue: IssueRef) => Promise<NonNullable<Awaited<ReturnType<NonNullable<RetireDeps['onGitHub']>>>>>;
  /** The live feeds of sessions, removed with a closed issue's sessions; none when absent. */
  readonly feed?: { remove(sessionIds: readonly string[]): Promise<void> };
  /** Mints tokens for a command's repository, for pods that ask for `github` permissions, and finds what the run pushed; none when absent. */
  readonly github?: (command: RunCommand) => RunRepoAccess;
  /**
   * Waiting out a model provider's quota or rate refusal instead of failing (see
   * providerLimit): none when absent. `credentialOf` names the credential a command's pod
   * uses (runs of pods sharing one wait together); `maxWaits` bounds the waits of one
   * session; a rate refusal waits `retryMs`, doubled each time; `prompt` continues the session.
   */
  readonly providerLimits?: {
    readonly credentialOf: (command: RunCommand) => Promise<string>;
    readonly maxWaits: number;
    readonly retryMs: number;
    readonly prompt: string;
  };
}

const LAST_LINES = 20;

/** How long the drain waits at most for queue position renders under way before it acts on its next command. */
const POSITIONS_WAIT_MS = 60_000;

/** How long a delivery into a running agent holds its resume before the drain may take it back. */
const DELIVERY_CLAIM_MS = 60_000;

/**
 * The worker of one Docker host: takes runs from the shared queue (issues without a host)
 * and from its own queue (issues whose sessions live here), runs each issue's commands in
 * order under a per-issue lock, and serves stop requests from its control queue at once.
 * On start-up it adopts containers of this host that no job is following.
 */
export class RunWorker {
  private readonly workers: Worker[] = [];
  /** The run this worker follows per issue, with its command's seq. */
  private readonly live = new Map<string, { readonly session: Session; readonly seq: number }>();
  private readonly adopting = new Set<string>();
  /**
   * Per issue, the queue position renders under way (one after the other). The drain waits
   * for them before it acts on its next command, so no "queued" render lands on a comment
   * after its run has begun reporting.
   */
  private readonly positioning = new Map<string, Promise<void>>();
  private reconciler: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly lockTtlMs: number;
  private readonly recheckMs: number;

  constructor(private readonly options: RunWorkerOptions) {
    this.lockTtlMs = options.lockTtlMs ?? 60_000;
    this.recheckMs = options.recheckMs ?? 5_000;
  }

  /** The runs this worker follows now to their end and reports on: one per issue at most. */
  get activeRuns(): number {
    return this.live.size;
  }

  /** Adopts orphaned containers, then starts taking jobs. */
  async start(): Promise<void> {
    const gone = this.options.hostGoneMs ?? HOST_GONE_MS;
    const beat = () => this.options.state.heartbeat(this.options.hostId, gone);
    await beat();
    this.heartbeat = setInterval(() => {
      beat().catch((err: unknown) => this.options.logger.warn({ err }, 'could not say this host is alive'));
    }, Math.min(30_000, Math.max(100, Math.floor(gone / 3))));
    this.heartbeat.unref();
    await this.reconcile();
    const { connection, concurrency } = this.options;
    // Sessions last long and a restart of the worker is a normal event: let the job be
    // picked up again (and re-attach) many times rather than fail it.
    const common = { connection, maxStalledCount: 100, lockDuration: this.lockTtlMs, stalledInterval: Math.max(1000, Math.floor(this.lockTtlMs / 2)) };
    for (const name of [RUN_QUEUE, hostQueue(this.options.hostId)]) {
      this.workers.push(new Worker<DrainJob | RetireJob>(name, (job, token) => this.drain(job, token), { ...common, concurrency }));
    }
    this.workers.push(new Worker<ControlJob>(controlQueue(this.options.hostId), (job) => this.control(job.data), { ...common, concurrency: 4 }));
    this.reconciler = setInterval(() => {
      this.reconcile().catch((err: unknown) => this.options.logger.warn({ err }, 'reconciling containers failed'));
    }, this.options.reconcileMs ?? 60_000);
    this.reconciler.unref();
    for (const w of this.workers) {
      w.on('failed', (job, err) => this.options.logger.error({ err, job: job?.id, queue: w.name }, 'job failed'));
      w.on('error', (err) => this.options.logger.error({ err, queue: w.name }, 'worker error'));
    }
  }

  /**
   * Stops taking jobs and lets go of the running ones without waiting for them: their
   * containers keep running and the next worker start on this host re-attaches to them.
   */
  async close(): Promise<void> {
    clearInterval(this.reconciler);
    clearInterval(this.heartbeat);
    await Promise.all(this.workers.map((w) => w.close(true)));
    this.workers.length = 0;
    await Promise.all([...this.positioning.keys()].map((issueKey) => this.positionsSettled(issueKey)));
  }

  private async drain(job: Job<DrainJob | RetireJob>, token: string | undefined): Promise<string> {
    if (job.name === 'retire') return this.retire(job.data as RetireJob);
    const { state, hostId, logger } = this.options;
    const { issueKey } = job.data;
    const owner = (await state.get(issueKey)).hostId;
    if (owner && owner !== hostId && !(await this.takeOver(issueKey, owner))) {
      const now = (await state.get(issueKey)).hostId ?? owner; // another worker may have taken it over meanwhile
      if (now !== hostId) {
        await this.options.producer.drain(issueKey, now, `fwd-${job.id ?? ''}`);
        return `forwarded to ${now}`;
      }
    }
    const lockToken = `${hostId}:${job.id ?? ''}:${randomBytes(4).toString('hex')}`;
    if (!(await state.lock(issueKey, lockToken, this.lockTtlMs))) {
      // Another drainer is running this issue's commands and will take this one too; look
      // again shortly in case it died.
      await job.moveToDelayed(Date.now() + this.recheckMs, token);
      throw new DelayedError();
    }
    let lost = false;
    const renew = setInterval(() => {
      state.renew(issueKey, lockToken, this.lockTtlMs).then((ok) => {
        if (!ok && !lost) {
          lost = true;
          logger.error({ issue: issueKey }, 'lost the issue lock; finishing the current run, then stopping');
        }
      }, (err: unknown) => logger.warn({ err, issue: issueKey }, 'could not renew the issue lock'));
    }, this.lockTtlMs / 3);
    let released = false;
    try {
      while (!lost) {
        const command = await state.head(issueKey);
        if (!command) {
          if (await state.releaseIfEmpty(issueKey, lockToken)) {
            released = true;
            break;
          }
          continue;
        }
        // The commands behind this one have moved up (the one before ended) or this one is
        // about to start: their comments show their new place while it runs. Renders begun
        // before land first: this command may be one they were for.
        await this.positionsSettled(issueKey);
        void this.refreshPositions(issueKey);
        if (command.kind === 'resume' && (await this.drainClaim(command)) === 'delivered') {
          // It went into the running agent as its next message (see deliver()).
          await state.done(command);
          continue;
        }
        const issue = await state.get(issueKey);
        // A stopped command that had already started is not "cancelled": it is picked up
        // again below, and the stop is applied to what is still running.
        if (command.seq <= issue.stoppedSeq && issue.running !== command.seq) {
          await this.finish(command, { kind: 'cancelled', sessionId: command.sessionId, message: 'Cancelled by `/cldpd stop` before it started.' });
          await state.done(command);
          continue;
        }
        const waitUntil = await this.waitUntil(command);
        if (waitUntil !== undefined) {
          // The provider refuses this command's credential for now: look again then, holding nothing meanwhile.
          await this.positionsSettled(issueKey);
          await state.release(issueKey, lockToken);
          released = true;
          await this.options.producer.drain(issueKey, (await state.get(issueKey)).hostId, `wait-${command.seq}-${Date.now()}`, waitUntil - Date.now());
          logger.info({ issue: issueKey, seq: command.seq, until: new Date(waitUntil).toISOString() }, 'a run waits for the model provider\'s limit to reset');
          return `waiting for the provider until ${new Date(waitUntil).toISOString()}`;
        }
        if (command.kind === 'start') {
          const claimed = await state.claimHost(issueKey, hostId);
          if (claimed !== hostId && !(await this.takeOver(issueKey, claimed))) {
            await this.positionsSettled(issueKey);
            await state.release(issueKey, lockToken);
            released = true;
            await this.options.producer.drain(issueKey, claimed, `fwd-${job.id ?? ''}`);
            return `forwarded to ${claimed}`;
          }
        }
        await this.runCommand(command);
        await state.done(command);
      }
      return 'drained';
    } finally {
      clearInterval(renew);
      if (!released) await state.release(issueKey, lockToken).catch(() => undefined);
    }
  }

  /**
   * Shows the issue's waiting commands their new place in its queue (see positionUpdates),
   * after the renders begun before; never rejects. Commands are looked at once, then each is
   * checked again right before its comment is written: one that started, was cancelled or
   * went into the running agent meanwhile is left alone.
   */
  private refreshPositions(issueKey: string): Promise<void> {
    const { positions, state, logger } = this.options;
    if (!positions) return Promise.resolve();
    const render = async (): Promise<void> => {
      for (const { command, position } of positionUpdates(await state.queueSnapshot(issueKey))) {
        if (!(await state.waiting(command))) continue;
        if (await positions.queued(command, position)) await state.showPosition(issueKey, command.seq, position);
      }
    };
    const previous = this.positioning.get(issueKey) ?? Promise.resolve();
    const next = previous.then(render).catch((err: unknown) => logger.warn({ err, issue: issueKey }, 'could not update the queue positions of waiting runs'));
    this.positioning.set(issueKey, next);
    void next.then(() => {
      if (this.positioning.get(issueKey) === next) this.positioning.delete(issueKey);
    });
    return next;
  }

  /**
   * Resolves once the issue's queue position renders begun so far have landed (or failed), or
   * after POSITIONS_WAIT_MS: a write GitHub never answers must not hold the issue's runs (the
   * reporter still keeps a late one off a run's comment, see PositionReporter).
   */
  private async positionsSettled(issueKey: string): Promise<void> {
    const pending = this.positioning.get(issueKey);
    if (!pending) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pending, new Promise<void>((resolve) => (timer = setTimeout(resolve, POSITIONS_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /**
   * Takes an issue over from a host that is gone, when what waits first is a new session:
   * its old sessions (and their volumes) stay on that host, which runs their resumes when
   * it is back, but a start need not wait for it.
   */
  private async takeOver(issueKey: string, owner: string): Promise<boolean> {
    const { state, hostId, logger } = this.options;
    const head = await state.head(issueKey);
    // A run that began on that host may still be running there (a host cut off from Redis
    // runs on): it is never started a second time here.
    if (head?.kind !== 'start' || (await state.get(issueKey)).running === head.seq || (await state.hostAlive(owner))) return false;
    if (!(await state.rebindHost(issueKey, owner, hostId))) return false;
    logger.warn({ issue: issueKey, from: owner }, `the host that owned this issue has not been seen for ${Math.round((this.options.hostGoneMs ?? HOST_GONE_MS) / 1000)} s; its new session runs here`);
    return true;
  }

  /** Runs one command to its end and reports it; never throws for the run's own failures. */
  private async runCommand(command: RunCommand): Promise<void> {
    const { dispatcher, state, logger, reporter } = this.options;
    const log = logger.child({ issue: command.issueKey, session: command.sessionId, seq: command.seq });
    const issue = await state.get(command.issueKey);
    const retried = issue.running === command.seq;
    // Waiting for a running agent happens before the run is on record as started, so a
    // worker that dies meanwhile leaves nothing to recover: the retried job waits again.
    if (!retried && command.kind === 'resume') await this.waitUntilFree(command);
    await state.set(command.issueKey, { running: String(command.seq), runningCommand: JSON.stringify(command) });
    const report = reporter.forRun(command);
    let outcome: RunOutcome | undefined;
    const access = this.options.github?.(command);
    const github = access ? { github: access } : {};
    try {
      let session: Session | undefined;
      let earlier: readonly string[] = [];
      if (retried) {
        const recovery = await dispatcher.recover(command.sessionId, github).catch((err: unknown) => {
          if (isCldpdError(err, 'SessionNotFound')) return { kind: 'none' as const };
          throw err;
        });
        log.info({ recovery: recovery.kind }, 'picked up a run that was interrupted');
        if (recovery.kind === 'finished') {
          outcome = { kind: recovery.terminal.type === 'error' ? 'error' : 'exited', sessionId: command.sessionId, terminal: recovery.terminal, agent: recovery.agent, lastLines: recovery.lastLines };
          return;
        }
        if (recovery.kind === 'attached') {
          // A stop that came for this run before the restart still holds: follow() applies it.
          session = recovery.session;
          earlier = recovery.lastLines;
        }
      }
      if (!session && command.seq <= (await state.get(command.issueKey)).stoppedSeq) {
        outcome = { kind: 'cancelled', sessionId: command.sessionId, message: 'Stopped by `/cldpd stop`.' };
        return;
      }
      session ??= command.kind === 'start'
        ? await dispatcher.start(command.pod, { issueUrl: command.issue.url, prompt: command.prompt }, { sessionId: command.sessionId, ...github })
        : await dispatcher.resume(command.sessionId, command.prompt, github);
      if (command.kind === 'start') await state.set(command.issueKey, { sessionId: session.id, pod: command.pod });
      outcome = await this.follow(command, session, report, earlier);
      const work = await access?.produced().catch((err: unknown) => {
        log.warn({ err: messageOf(err) }, 'could not find what the run pushed');
        return undefined;
      });
      if (work) outcome = { ...outcome, work };
    } catch (err) {
      log.warn({ err }, 'the run could not start');
      outcome = { kind: 'error', sessionId: command.sessionId, message: messageOf(err) };
    } finally {
      // A run that ended on the provider's limit waits for it, however it was found to have
      // ended (followed, or read back after a restart): the resume it queues is queued once.
      if (outcome) {
        const ended = outcome;
        outcome = await this.providerWait(command, ended).catch((err: unknown) => {
          log.warn({ err }, 'could not queue the run that continues after the provider\'s limit');
          return ended;
        });
      }
      // "running" is cleared with the command's removal (state.done), never before: see there.
      await this.finish(command, outcome ?? { kind: 'error', sessionId: command.sessionId, message: 'The run ended without an outcome.' }, report);
    }
  }

  /**
   * When `command` may run, if not now: a run queued to continue after a provider wait, not
   * before its time; any run whose pod's credential the provider refuses now (another run
   * hit the limit), not before it resets. Its status comment says what it waits for.
   */
  private async waitUntil(command: RunCommand): Promise<number | undefined> {
    const limits = this.options.providerLimits;
    // A run already going (picked up again after a restart) is followed first, never parked.
    if (!limits || (await this.options.state.get(command.issueKey)).running === command.seq) return undefined;
    const credential = await limits.credentialOf(command).catch(() => undefined);
    const refused = credential ? await this.options.state.providerRefusesUntil(credential) : undefined;
    const until = Math.max(command.providerWait?.notBefore ?? 0, refused ?? 0);
    if (until <= Date.now()) return undefined;
    // Held back by the credential's refusal (not only its own reset): an answer of the provider to another run wakes it.
    if (credential && refused !== undefined && refused >= (command.providerWait?.notBefore ?? 0)) await this.options.state.parkForProvider(credential, command.issueKey, until);
    void this.options.positions?.waiting?.(command, until);
    return until;
  }

  /**
   * A run that ended on the model provider's quota or rate refusal is not a failure: the
   * provider's reset is recorded for the pod's credential (its other runs wait too), a resume
   * continuing the session is queued for then (once, however often this is retried), and the
   * outcome says `waiting`. After `maxWaits` waits it ends as it is, with the history.
   */
  private async providerWait(command: RunCommand, outcome: RunOutcome): Promise<RunOutcome> {
    const limits = this.options.providerLimits;
    // A run that was stopped or timed out stays so, whatever its last result said.
    if (!limits || outcome.kind !== 'exited' || outcome.terminal?.type !== 'container.exited' || outcome.terminal.reason !== 'exited') return outcome;
    if (command.seq <= (await this.options.state.get(command.issueKey)).stoppedSeq) return outcome;
    const waits = command.providerWait?.waits ?? [];
    const limit = providerLimit(outcome.agent?.result, Date.now(), limits.retryMs * 2 ** waits.length);
    if (!limit) {
      // The provider answered this credential: runs held back by an earlier refusal of it may go.
      if (outcome.agent?.result && !outcome.agent.result.isError) {
        const credential = await limits.credentialOf(command).catch(() => undefined);
        // A refusal recorded after this run began may have come after its last answer: only an earlier one is cleared.
        const woken = credential ? await this.options.state.providerAccepted(credential, outcome.terminal.at - outcome.terminal.durationMs) : [];
        for (const issueKey of woken) await this.options.producer.drain(issueKey, (await this.options.state.get(issueKey)).hostId, `wake-${Date.now()}`).catch(() => undefined);
      }
      return outcome;
    }
    const history = [...waits, { at: Date.now(), resetAt: limit.resetAt, kind: limit.kind }];
    if (waits.length >= limits.maxWaits) {
      const said = history.map((w) => `${new Date(w.at).toISOString().slice(0, 16).replace('T', ' ')} UTC (${w.kind === 'usage' ? 'usage limit' : 'rate limit'})`).join(', ');
      return { ...outcome, note: `The model provider refused ${history.length} times: ${said}. cldpd waited ${waits.length} times and stops waiting here; \`/cldpd resume\` continues the session.` };
    }
    const { state } = this.options;
    const credential = await limits.credentialOf(command).catch(() => undefined);
    if (credential) await state.providerRefuses(credential, limit.resetAt);
    const seq = await state.waitSeq(command.issueKey, command.seq);
    const { note: _note, ...rest } = command;
    const next: RunCommand = { ...rest, seq, kind: 'resume', prompt: limits.prompt, enqueuedAt: Date.now(), providerWait: { notBefore: limit.resetAt, waits: history } };
    // Queued once: a retry of this run finds it queued already (or run, and gone) under the same seq.
    if ((await state.append(next)) === 0 && !(await state.commands(command.issueKey)).some((c) => c.seq === seq)) {
      this.options.logger.warn({ issue: command.issueKey, seq }, 'the run to continue after the provider\'s limit has run already');
    }
    this.options.logger.info({ issue: command.issueKey, session: command.sessionId, resetAt: new Date(limit.resetAt).toISOString(), wait: history.length }, 'the model provider refused for its limit; the session continues by itself then');
    return { ...outcome, kind: 'waiting', waiting: { resumeAt: limit.resetAt, wait: history.length, of: limits.maxWaits, kind: limit.kind } };
  }

  /**
   * Returns once the session's agent is not running any more, or the command was stopped.
   * It can still run when this worker did not start it (adopted after a restart: its input
   * cannot be reached again); a second agent on one conversation is never started, so the
   * resume waits for it to end (its own timeout bounds that).
   */
  private async waitUntilFree(command: RunCommand): Promise<void> {
    for (let waited = 0; ; waited++) {
      if (command.seq <= (await this.options.state.get(command.issueKey)).stoppedSeq) return;
      if (!(await this.options.dispatcher.isBusy(command.sessionId))) return;
      if (waited === 0) this.options.logger.info({ issue: command.issueKey, session: command.sessionId }, 'the session is still running; the resume waits for it to end');
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  }

  /** Follows a run to its end; `earlier` are its last lines logged before a restart. */
  private async follow(command: RunCommand, session: Session, report: ReturnType<Reporter['forRun']>, earlier: readonly string[] = []): Promise<RunOutcome> {
    this.live.set(command.issueKey, { session, seq: command.seq });
    // A stop that came while the run was being set up (or before a restart) found nothing
    // to stop then: apply it now.
    if (command.seq <= (await this.options.state.get(command.issueKey)).stoppedSeq) void session.stop().catch(() => undefined);
    const lastLines: string[] = [...earlier];
    let startedAt: number | undefined;
    try {
      for await (const event of session.events()) {
        if (event.type === 'container.started') startedAt = event.at;
        if (event.type === 'output' && !event.agent) {
          lastLines.push(event.line);
          if (lastLines.length > LAST_LINES) lastLines.shift();
        }
        report.event(event, session.agent);
      }
    } finally {
      this.live.delete(command.issueKey);
    }
    const terminal = await session.outcome();
    return {
      kind: terminal.type === 'error' ? 'error' : 'exited',
      sessionId: session.id,
      terminal,
      agent: session.agent,
      lastLines,
      ...(startedAt !== undefined ? { startedAt } : {}),
    };
  }

  private async finish(command: RunCommand, outcome: RunOutcome, report = this.options.reporter.forRun(command)): Promise<void> {
    try {
      await report.finish(outcome);
    } catch (err) {
      this.options.logger.error({ err, issue: command.issueKey }, 'could not write the final status');
    }
    // No text from the run or its error here: /cldpd status shows this line to anyone who can
    // read the issue, and the status comment (redacted) is where the details are.
    const summary = outcome.kind === 'cancelled' ? 'cancelled'
      : outcome.kind === 'delivered' ? 'went into the running agent'
      : outcome.kind === 'waiting' && outcome.waiting ? `waits for the model provider's limit until ${new Date(outcome.waiting.resumeAt).toISOString().slice(0, 16).replace('T', ' ')} UTC, then continues by itself`
      : outcome.terminal?.type === 'container.exited' ? `finished with exit code ${outcome.terminal.exitCode}`
      : `failed (${outcome.terminal?.type === 'error' ? outcome.terminal.code : 'before it started'}; the status comment says why)`;
    await this.options.state.set(command.issueKey, { lastState: `run ${command.seq} (${command.kind}) ${summary}`.slice(0, 500) }).catch(() => undefined);
  }

  /**
   * Removes a closed issue's sessions once its retention period is over (see retireIssue).
   * Looked at again in an hour while the issue has a run queued or running; sent on to the
   * host that owns the issue once this host's sessions of it are gone.
   */
  private async retire(job: RetireJob): Promise<string> {
    const { state, dispatcher, hostId, logger, producer, feed, issueOnGitHub } = this.options;
    const issue = job.issue;
    const onGitHub = issueOnGitHub && issue ? () => issueOnGitHub(issue) : undefined;
    let outcome: Retirement;
    try {
      outcome = await retireIssue({ state, dispatcher, hostId, feed, onGitHub }, job.issueKey, job.issueUrl, { closedAt: job.closedAt, retentionMs: job.retentionMs ?? 0 });
    } catch (err) {
      // Docker, Redis or GitHub did not answer: looked at again later, as a run going would be.
      logger.warn({ err: messageOf(err), issue: job.issueKey }, 'could not remove a closed issue\'s sessions; trying again in an hour');
      outcome = { kind: 'kept', reason: messageOf(err), later: true };
    }
    const sessions = (removed: readonly RemovedSession[]) => ({ sessions: removed.map((r) => r.sessionId), containers: removed.reduce((n, r) => n + r.containers, 0), volumes: removed.flatMap((r) => r.volumes), bytes: removed.reduce((n, r) => n + r.bytes, 0) });
    switch (outcome.kind) {
      case 'kept': {
        const owner = (await state.get(job.issueKey)).hostId;
        if (outcome.at !== undefined) {
          await producer.retire({ ...job, closedAt: outcome.closedAt ?? job.closedAt }, owner, outcome.at);
          return `kept until ${new Date(outcome.at).toISOString()}: ${outcome.reason}`;
        }
        if (!outcome.later) return `kept: ${outcome.reason}`;
        const recheck = (job.recheck ?? 0) + 1;
        if (recheck > MAX_RETIRE_RECHECKS) {
          logger.error({ issue: job.issueKey, reason: outcome.reason }, 'gave up removing a closed issue\'s sessions after a month of trying; "cldpd gc" removes them once nothing of them runs');
          return `given up: ${outcome.reason}`;
        }
        // An hour, or the retention period when that is shorter (a test's few seconds).
        await producer.retire({ ...job, recheck }, owner, Date.now() + Math.min(RETIRE_RECHECK_MS, Math.max(1000, job.retentionMs ?? RETIRE_RECHECK_MS)));
        return `kept for now: ${outcome.reason}`;
      }
      case 'elsewhere':
        if (outcome.removed.length > 0) logger.info({ issue: job.issueKey, ...sessions(outcome.removed) }, 'removed this host\'s sessions of a closed issue after its retention period');
        await producer.retire(job, outcome.hostId, Date.now());
        return `forwarded to ${outcome.hostId}`;
      case 'removed':
        logger.info({ issue: job.issueKey, ...sessions(outcome.removed), feeds: outcome.feeds, keys: outcome.keys }, 'removed a closed issue\'s sessions after its retention period');
        return `removed ${outcome.removed.length} session${outcome.removed.length === 1 ? '' : 's'} and ${outcome.keys} key${outcome.keys === 1 ? '' : 's'}`;
    }
  }

  /** The drain's claim on a resume, waiting out a delivery into the running agent that is under way. */
  private async drainClaim(command: RunCommand): Promise<'run' | 'delivered'> {
    for (;;) {
      const claim = await this.options.state.drainClaim(command.issueKey, command.seq);
      if (claim !== 'pending') return claim;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  /**
   * Offers a queued resume to the session's running agent as its next user message. It
   * goes in only when this worker follows the session's run and the agent still takes
   * input; the resume is claimed in Redis first, so it is either delivered here or run by
   * the drain in its turn, never both and never neither. Acknowledged on its own status
   * comment at once; the agent's answer lands in the running run's comment.
   */
  private async deliver(job: Extract<ControlJob, { kind: 'message' }>): Promise<string> {
    const { state } = this.options;
    const session = this.live.get(job.issueKey)?.session;
    if (!session || session.id !== job.sessionId) return 'not running here: the resume runs in its turn';
    if (job.seq <= (await state.get(job.issueKey)).stoppedSeq) return 'stopped: the drain cancels it';
    if (!(await this.earlierResumesSent(job))) return 'an earlier resume waits its turn: this one follows it';
    const reservation = session.reserve();
    if (!reservation) return 'the agent takes no more input: the resume runs in its turn';
    let claimed = false;
    try {
      claimed = await state.claimDelivery(job.issueKey, job.seq, DELIVERY_CLAIM_MS);
    } finally {
      if (!claimed) reservation.cancel();
    }
    if (!claimed) return 'the drain has it';
    const tag = String(job.seq);
    const taken = session.whenTaken(tag);
    try {
      await reservation.send(job.command.prompt, tag);
    } catch {
      await state.unclaimDelivery(job.issueKey, job.seq);
      return 'the run ended first: the resume runs in its turn';
    }
    void this.settleDelivery(job, session, taken).catch((err: unknown) =>
      this.options.logger.error({ err, issue: job.issueKey, seq: job.seq }, 'could not settle a delivery into the running agent'));
    return 'sent to the running agent';
  }

  /**
   * A sent message counts as delivered once the agent takes it (echoes it): then its
   * resume's status comment says where it went and the drain skips it. If the run ends
   * first, the resume goes back to the drain and runs on its own. Meanwhile the claim is
   * kept alive; if this worker dies, it lapses and the drain runs the resume (at least once).
   */
  private async settleDelivery(job: Extract<ControlJob, { kind: 'message' }>, session: Session, taken: Promise<boolean>): Promise<void> {
    const { state, logger } = this.options;
    const renew = setInterval(() => {
      state.renewDelivery(job.issueKey, job.seq, DELIVERY_CLAIM_MS).catch((err: unknown) => logger.warn({ err, issue: job.issueKey, seq: job.seq }, 'could not renew a delivery claim'));
    }, DELIVERY_CLAIM_MS / 3);
    try {
      if (!(await taken)) {
        await state.unclaimDelivery(job.issueKey, job.seq);
        return;
      }
      // The comment first, then the mark: a crash in between runs the resume again rather than leave it silent.
      // A queued render of this comment under way lands before it.
      await this.positionsSettled(job.issueKey);
      await this.finish(job.command, {
        kind: 'delivered',
        sessionId: session.id,
        message: `Sent to the agent of session \`${session.id}\` while it ran (run ${session.run}), which took it as its next instruction; its answer is in that run's status comment.`,
      });
      await state.markDelivered(job.issueKey, job.seq);
      // It will not run: the commands behind it have moved up.
      void this.refreshPositions(job.issueKey);
    } finally {
      clearInterval(renew);
    }
  }

  /** True when every resume of the issue queued before this one went (or is going) into the running agent: instructions keep their order. */
  private async earlierResumesSent(job: Extract<ControlJob, { kind: 'message' }>): Promise<boolean> {
    const { state } = this.options;
    const running = (await state.get(job.issueKey)).running;
    for (const queued of await state.commands(job.issueKey)) {
      if (queued.kind !== 'resume' || queued.seq >= job.seq || queued.seq === running) continue;
      const claim = await state.deliveryState(job.issueKey, queued.seq);
      if (claim !== 'pending' && claim !== 'delivered') return false;
    }
    return true;
  }

  private async control(job: ControlJob): Promise<string> {
    if (job.kind === 'message') return this.deliver(job);
    if (job.kind === 'retire') return this.retire(job);
    // Whatever this worker runs for the issue at or below the stop's seq is stopped, whichever
    // session it belongs to: a start queued behind it may already be the issue's session.
    const live = this.live.get(job.issueKey);
    if (live && live.seq <= job.seq) {
      await live.session.stop();
      return `stopped run ${live.seq} (session ${live.session.id})`;
    }
    try {
      await this.options.dispatcher.stop(job.sessionId);
      return 'stopped';
    } catch (err) {
      if (isCldpdError(err, 'SessionNotFound')) return 'nothing to stop';
      throw err;
    }
  }

  /**
   * Containers of this host that belong to an issue and that nothing follows are dealt with,
   * so no run ends silently and none is left behind: a run whose job will pick it up again
   * is left to it; a run that is still open is adopted (followed to its end and reported);
   * a container whose run is already over (its end was reported, e.g. after the engine
   * stopped answering) is stopped and removed. Runs at start-up and every `reconcileMs`.
   */
  private async reconcile(): Promise<void> {
    const { dispatcher, state, logger } = this.options;
    await dispatcher.sweepHelpers().catch((err: unknown) => logger.warn({ err }, 'could not remove leftover helper containers'));
    for (const found of await dispatcher.containers(true)) {
      if (this.adopting.has(found.sessionId) || [...this.live.values()].some((l) => l.session.id === found.sessionId)) continue;
      if (await state.sessionForgotten(found.sessionId)) {
        // An operator released this host's issues while it was gone (`cldpd hosts forget`):
        // its runs were reported cancelled and may have started afresh elsewhere. Never follow it.
        await dispatcher.stop(found.sessionId).catch(() => undefined);
        await dispatcher.recover(found.sessionId).catch(() => undefined); // removes the stopped container
        logger.warn({ session: found.sessionId }, 'stopped and removed the container of a session whose host an operator forgot');
        continue;
      }
      const url = found.container.labels[LABELS.issue];
      const match = url ? /\/([^/]+)\/([^/]+)\/issues\/(\d+)$/.exec(url) : null;
      if (!match) continue; // a terminal session: not the worker's
      const issueKey = await state.keyFor({ owner: match[1] as string, repo: match[2] as string, number: Number(match[3]) });
      const issue = await state.get(issueKey);
      const command = issue.runningCommand ? (JSON.parse(issue.runningCommand) as RunCommand) : undefined;
      const head = await state.head(issueKey);
      const mine = command?.sessionId === found.sessionId ? command : undefined;
      if (mine && head && head.seq === mine.seq) continue; // its job will re-attach
      if (!mine) logger.warn({ session: found.sessionId, issue: issueKey }, 'a container of this host has no run on record; following it to its end');
      this.adopting.add(found.sessionId);
      void this.adopt(found.sessionId, mine)
        .catch((err: unknown) => logger.error({ err, session: found.sessionId }, 'could not adopt a container'))
        .finally(() => this.adopting.delete(found.sessionId));
    }
  }

  private async adopt(sessionId: string, command: RunCommand | undefined): Promise<void> {
    const recovery = await this.options.dispatcher.recover(sessionId);
    if (recovery.kind === 'finished' && !command) {
      // Its end is on record already: what is left is a container nobody owns.
      await this.options.dispatcher.stop(sessionId).catch(() => undefined);
      await this.options.dispatcher.recover(sessionId).catch(() => undefined); // removes the stopped container
      this.options.logger.warn({ session: sessionId }, 'stopped and removed a container whose run had already ended');
      return;
    }
    let outcome: RunOutcome | undefined;
    const report = command ? this.options.reporter.forRun(command) : undefined;
    if (recovery.kind === 'attached') {
      outcome = command && report
        ? await this.follow(command, recovery.session, report, recovery.lastLines)
        : await recovery.session.outcome().then((terminal) => ({ kind: terminal.type === 'error' ? ('error' as const) : ('exited' as const), sessionId, terminal }));
      if (!command) await recovery.session.wait().catch(() => undefined);
    } else if (recovery.kind === 'finished') {
      outcome = { kind: recovery.terminal.type === 'error' ? 'error' : 'exited', sessionId, terminal: recovery.terminal, agent: recovery.agent, lastLines: recovery.lastLines };
    }
    if (command && outcome) {
      await this.finish(command, outcome, report);
      await this.options.state.set(command.issueKey, { running: '0', runningCommand: '' });
    }
  }
}
