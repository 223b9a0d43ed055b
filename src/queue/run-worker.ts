import { DelayedError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { isCldpdError, type Dispatcher, type HostInventory } from '../core/index.js';
import type { ControlJob, PullRequestOpener, Reporter, RetireJob, RunCommand, RunRepoAccess } from './contract.js';
import { SHARED_POOL } from './fair-pool.js';
import { HostSlots } from './host-slots.js';
import { IssueDrain, LOST_LOCK } from './issue-drain.js';
import type { WorkerStores } from './issue-stores.js';
import { LiveDelivery } from './live-delivery.js';
import { HOST_GONE_MS, RUN_QUEUE, controlQueue, hostQueue } from './names.js';
import { Orphans } from './orphans.js';
import type { DrainJob, Producer } from './producer.js';
import { ProviderWaits, type ProviderLimits } from './provider-waits.js';
import { QueuePositions, type PositionReporter } from './queue-position.js';
import { runRetireJob, type RetireJobDeps } from './retire.js';
import { CommandRunner } from './run-command.js';

/** How long a turn waits for a slot of this host before it goes back to its queue, and how soon it is offered again then. */
const SLOT_WAIT_MS = 500;
const SLOT_RECHECK_MS = 1_000;

/** What a run worker needs; the composition root builds the real ones. */
export interface RunWorkerOptions {
  readonly connection: ConnectionOptions;
  readonly hostId: string;
  /** Runs this host takes at once, from the shared and its own queue together: its slots. */
  readonly concurrency: number;
  readonly dispatcher: Dispatcher;
  /** This host's containers and volumes, for reconciling and retiring; the same runner, store and host as the dispatcher's. */
  readonly inventory: HostInventory;
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
  readonly issueOnGitHub?: RetireJobDeps['issueOnGitHub'];
  /** The live feeds of sessions, removed with a closed issue's sessions; none when absent. */
  readonly feed?: { remove(sessionIds: readonly string[]): Promise<void> };
  /** Mints tokens for a command's repository, for pods that ask for `github` permissions, and finds what the run pushed; none when absent. */
  readonly github?: (command: RunCommand) => RunRepoAccess;
  /** Opens the pull request of what a run pushed and records the session's pull requests (see PullRequestOpener); none when absent. */
  readonly pulls?: PullRequestOpener;
  /** The repository's narrower egress list for a command's pod, asked before each start or resume (see CommandRunnerOptions.egress); none when absent. */
  readonly egress?: (command: RunCommand) => Promise<readonly string[] | undefined>;
  /** Waiting out a model provider's quota or rate refusal instead of failing (see ProviderLimits): none when absent. */
  readonly providerLimits?: ProviderLimits;
  /**
   * Asks this host's Docker engine whether it answers (bounded in time; rejects when it does
   * not), before each heartbeat. While it does not, the host stops saying it is alive (so it
   * is shown unseen, and can be forgotten), says why in Redis, and takes no new jobs; once it
   * answers again all of that is undone. Each change is logged once. Not asked when absent.
   */
  readonly engineAnswers?: () => Promise<void>;
}

/**
 * The worker of one Docker host: takes runs from the shared queue (issues without a host)
 * and from its own queue (issues whose sessions live here), runs each issue's commands in
 * order under a per-issue lock (IssueDrain), and serves stop requests and deliveries into a
 * running agent from its control queue at once. On start-up, and every `reconcileMs`, it
 * adopts containers of this host that no job is following (Orphans).
 */
export class RunWorker {
  private readonly workers: Worker[] = [];
  private readonly slots: HostSlots;
  private readonly runner: CommandRunner;
  private readonly positions: QueuePositions;
  private readonly delivery: LiveDelivery;
  private readonly issueDrain: IssueDrain;
  private readonly orphans: Orphans;
  private reconciler: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private readonly lockTtlMs: number;
  /** Since when this host's engine has not answered; undefined while it answers. */
  private engineSilentSince: number | undefined;
  private beating: Promise<void> | undefined;

  constructor(private readonly options: RunWorkerOptions) {
    const { state, logger, producer, reporter, dispatcher, hostId } = options;
    this.lockTtlMs = options.lockTtlMs ?? 60_000;
    this.slots = new HostSlots(options.concurrency);
    this.positions = new QueuePositions({ positions: options.positions, state, logger });
    const waits = options.providerLimits ? new ProviderWaits({ limits: options.providerLimits, state, producer, positions: options.positions, logger }) : undefined;
    this.runner = new CommandRunner({ dispatcher, state, reporter, waits, github: options.github, pulls: options.pulls, egress: options.egress, logger });
    this.delivery = new LiveDelivery({ state, runner: this.runner, positions: this.positions, logger });
    this.issueDrain = new IssueDrain({ hostId, state, producer, runner: this.runner, delivery: this.delivery, positions: this.positions, waits, logger,
      lockTtlMs: this.lockTtlMs, recheckMs: options.recheckMs ?? 5_000, hostGoneMs: options.hostGoneMs });
    this.orphans = new Orphans({ dispatcher, inventory: options.inventory, state, runner: this.runner, reporter, logger });
  }

  /** The runs this worker follows now to their end and reports on: one per issue at most. */
  get activeRuns(): number {
    return this.runner.size;
  }

  /** Adopts orphaned containers, then starts taking jobs. */
  async start(): Promise<void> {
    const gone = this.options.hostGoneMs ?? HOST_GONE_MS;
    await this.options.state.engineSilent(this.options.hostId, undefined);
    await this.options.state.heartbeat(this.options.hostId, gone);
    this.heartbeat = setInterval(() => {
      // One beat at a time: an engine slow to answer must not pile up pings.
      this.beating ??= this.beat(gone).catch((err: unknown) => this.options.logger.warn({ err }, 'could not say this host is alive')).finally(() => {
        this.beating = undefined;
      });
    }, Math.min(30_000, Math.max(100, Math.floor(gone / 3))));
    this.heartbeat.unref();
    await this.orphans.reconcile();
    const { connection, concurrency } = this.options;
    // Sessions last long and a restart of the worker is a normal event: let the job be
    // picked up again (and re-attach) many times rather than fail it.
    const common = { connection, maxStalledCount: 100, lockDuration: this.lockTtlMs, stalledInterval: Math.max(1000, Math.floor(this.lockTtlMs / 2)) };
    for (const name of [RUN_QUEUE, hostQueue(this.options.hostId)]) {
      const pool = name === RUN_QUEUE ? SHARED_POOL : this.options.hostId;
      this.workers.push(new Worker<DrainJob | RetireJob>(name, (job, token) => this.route(job, token, pool), { ...common, concurrency }));
    }
    this.workers.push(new Worker<ControlJob>(controlQueue(this.options.hostId), async (job, token) => {
      await this.putBackWhileSilent(job, token);
      return this.control(job.data);
    }, { ...common, concurrency: 4 }));
    this.reconciler = setInterval(() => {
      this.orphans.reconcile().catch((err: unknown) => this.options.logger.warn({ err }, 'reconciling containers failed'));
    }, this.options.reconcileMs ?? 60_000);
    this.reconciler.unref();
    for (const w of this.workers) {
      w.on('failed', (job, err) => this.options.logger.error({ err, job: job?.id, queue: w.name }, 'job failed'));
      w.on('error', (err) => this.options.logger.error({ err, queue: w.name }, 'worker error'));
    }
  }

  /**
   * Says this host is alive for `goneMs`, if its engine answers; else says since when it
   * does not, and pauses taking jobs until it answers again.
   */
  private async beat(goneMs: number): Promise<void> {
    const { engineAnswers, state, hostId, logger } = this.options;
    if (engineAnswers) {
      const silence = await engineAnswers().then(() => undefined, (err: unknown) => err);
      if (silence !== undefined) {
        if (this.engineSilentSince === undefined) {
          this.engineSilentSince = Date.now();
          logger.error({ err: silence, host: hostId }, `this host's Docker engine does not answer: the host stops saying it is alive and takes no new jobs until the engine answers again (an operator may "cldpd hosts forget ${hostId}" meanwhile)`);
        }
        // Every beat while it is silent: a worker resumed by a beat whose write then failed is paused again.
        await Promise.all(this.workers.filter((w) => !w.isPaused()).map((w) => w.pause(true)));
        await state.engineSilent(hostId, this.engineSilentSince);
        return;
      }
      if (this.engineSilentSince !== undefined) {
        logger.info({ host: hostId, silentForMs: Date.now() - this.engineSilentSince }, 'this host\'s Docker engine answers again: taking jobs');
        // Taking jobs first: a failed write below must not leave the workers paused while the
        // host says it is alive (the next beat writes it again).
        for (const w of this.workers) void w.resume();
        await state.engineSilent(hostId, undefined);
        this.engineSilentSince = undefined;
      }
      // However it came about, a worker never stays paused while the engine answers.
      for (const w of this.workers) if (w.isPaused()) void w.resume();
    }
    await state.heartbeat(hostId, goneMs);
  }

  /**
   * Stops taking jobs and lets go of the running ones without waiting for them: their
   * containers keep running and the next worker start on this host re-attaches to them.
   */
  async close(): Promise<void> {
    clearInterval(this.reconciler);
    clearInterval(this.heartbeat);
    await this.beating;
    await Promise.all(this.workers.map((w) => w.close(true)));
    this.workers.length = 0;
    await this.positions.close();
  }

  /** A job of the run queues: a retirement, or a slot's turn in `pool`. */
  private async route(job: Job<DrainJob | RetireJob>, token: string | undefined, pool: string): Promise<string> {
    await this.putBackWhileSilent(job, token);
    if (job.name === 'retire') return this.retire(job.data as RetireJob);
    return this.turn(job as Job<DrainJob>, token, pool);
  }

  /**
   * A slot's turn: when this host has a slot free, drains the issue the pool gives it (the
   * fair next, see FairPool), which need not be the job's own. With every slot taken for
   * longer than SLOT_WAIT_MS, the turn goes back to its queue for a moment (any host may take
   * it meanwhile: turns are alike, only their number counts).
   */
  private async turn(job: Job<DrainJob>, token: string | undefined, pool: string): Promise<string> {
    const { state, logger, producer } = this.options;
    if (!(await this.slots.take(SLOT_WAIT_MS))) {
      await job.moveToDelayed(Date.now() + SLOT_RECHECK_MS, token);
      throw new DelayedError();
    }
    const id = job.id ?? '';
    let over = true;
    try {
      const picked = await state.takeSlot(pool, id);
      if (picked === undefined) return 'no issue waits';
      if (typeof picked !== 'string') {
        // What waits is being drained by another worker (which takes it too; should that one
        // die, this turn is what runs it), or is not due yet (this machine's clock may be
        // behind the one that queued it): the turn is kept for it.
        const at = 'busy' in picked ? Date.now() + (this.options.recheckMs ?? 5_000) : Math.max(picked.at, Date.now() + 100);
        await job.moveToDelayed(at, token);
        throw new DelayedError();
      }
      const issueKey = picked;
      if (issueKey !== job.data.issueKey) logger.debug({ issue: issueKey, job: id, asked: job.data.issueKey }, 'this slot goes to the issue whose turn it is');
      // Only a host's own pool: its waiting runs start nowhere else, so no render of a place
      // lands over a run's report begun in another process.
      if (pool !== SHARED_POOL) void this.positions.refreshPool(pool);
      const result = await this.issueDrain.drain({ id: job.id, data: { issueKey }, moveToDelayed: (at, t) => job.moveToDelayed(at, t) }, token);
      // The issue's lock went to another drainer mid-way: what it left queued gets a turn of its own.
      if (result === LOST_LOCK) await producer.drain(issueKey, (await state.get(issueKey)).hostId, `again-${id}`);
      return result;
    } catch (err) {
      // Picked up again later (a delay, or another attempt): the same issue, kept with its job.
      over = !(err instanceof DelayedError) && job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      throw err;
    } finally {
      if (over) await state.slotDone(pool, id).catch((err: unknown) => logger.warn({ err, job: id }, 'could not forget which issue a slot drained'));
      this.slots.give();
    }
  }

  /**
   * A job taken while this host's engine does not answer goes back to its queue, for a
   * second: pausing the workers does not stop a fetch already waiting on Redis, which takes
   * the next job; another host (or this one, its engine back) takes it then.
   */
  private async putBackWhileSilent(job: Job, token: string | undefined): Promise<void> {
    if (this.engineSilentSince === undefined) return;
    await job.moveToDelayed(Date.now() + 1000, token);
    throw new DelayedError();
  }

  private retire(job: RetireJob): Promise<string> {
    const { state, inventory, hostId, logger, producer, feed, issueOnGitHub } = this.options;
    return runRetireJob({ state, inventory, hostId, logger, producer, feed, issueOnGitHub }, job);
  }

  private async control(job: ControlJob): Promise<string> {
    if (job.kind === 'message') return this.delivery.deliver(job);
    if (job.kind === 'retire') return this.retire(job);
    // Whatever this worker runs for the issue at or below the stop's seq is stopped, whichever
    // session it belongs to: a start queued behind it may already be the issue's session.
    const live = this.runner.following(job.issueKey);
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
}
