import type { Logger } from 'pino';
import type { RunCommand } from './contract.js';
import { fairOrder } from './fair-order.js';
import type { FairSnapshot } from './fair-pool.js';

/**
 * What the position of an issue's queued commands is computed from: one read of the issue's
 * state in Redis (see IssueQueue.queueSnapshot).
 */
export interface QueueSnapshot<C extends { readonly seq: number } = { readonly seq: number }> {
  /** The issue's commands, oldest first: the first is running, or the next the drain takes. */
  readonly commands: readonly C[];
  /** The seq of the running command; 0 when none. */
  readonly running: number;
  /** Commands up to this seq that have not started are cancelled by `/cldpd stop`. */
  readonly stoppedSeq: number;
  /**
   * Resumes offered to the running agent: `pending` while being delivered (it may still run on
   * its own), `delivered` once the agent took it (it will not run). Others are not listed.
   */
  readonly deliveries: ReadonlyMap<number, 'pending' | 'delivered'>;
  /** The position each command's status comment shows now, where it is known. */
  readonly shown: ReadonlyMap<number, number>;
}

/** A status comment to show again as queued, `position` runs of its issue ahead of it. */
export interface PositionUpdate<C> {
  readonly command: C;
  readonly position: number;
  /** It is its issue's next run and waits for a slot (not behind a run of its own issue). */
  readonly forSlot?: boolean;
}

/** Whether the command will still run (or runs now): only those count as ahead of another. */
function willRun(snapshot: QueueSnapshot<{ readonly seq: number }>, seq: number): boolean {
  if (seq === snapshot.running) return true;
  return seq > snapshot.stoppedSeq && snapshot.deliveries.get(seq) !== 'delivered';
}

/**
 * Pure: how many runs of the issue a command queued now has ahead of it: the running one and
 * every queued command that will still run (not those a `/cldpd stop` cancelled, nor resumes
 * that went into the running agent). Runs of other issues are not counted.
 */
export function runsAhead(snapshot: QueueSnapshot<{ readonly seq: number }>): number {
  return snapshot.commands.filter((c) => willRun(snapshot, c.seq)).length;
}

/**
 * Pure: the status comments to show again as queued, in queue order, each with its position:
 * the number of the issue's commands ahead of it that will run, the running one included,
 * plus `poolPlace`, the issues its pool gives a slot first while the issue waits for one.
 * Only commands whose comment shows another position (or one not known) are listed; never the
 * first command unless it waits for a slot (else it runs, or is about to: its comment is its
 * run's report), the running one, a command a stop cancelled, nor a resume being delivered
 * into or taken by the running agent (its comment is about to say so, or does).
 */
export function positionUpdates<C extends { readonly seq: number }>(snapshot: QueueSnapshot<C>, poolPlace?: number): PositionUpdate<C>[] {
  const updates: PositionUpdate<C>[] = [];
  const waitsForSlot = poolPlace !== undefined && snapshot.running === 0;
  let ahead = waitsForSlot ? poolPlace : 0;
  snapshot.commands.forEach((command, index) => {
    const runs = willRun(snapshot, command.seq);
    const waiting = (index > 0 || waitsForSlot) && command.seq !== snapshot.running && runs && snapshot.deliveries.get(command.seq) === undefined;
    if (waiting && snapshot.shown.get(command.seq) !== ahead) updates.push({ command, position: ahead, ...(index === 0 ? { forSlot: true } : {}) });
    if (runs) ahead += 1;
  });
  return updates;
}

/**
 * Shows a queued command's new place in its issue's queue on its status comment; the GitHub
 * side implements it (see StatusReporter). It never writes the comment of a command whose
 * run report has begun (`Reporter.forRun`), and such a report's first write waits for a
 * queued render of its comment that is in flight: the run's own report always wins.
 */
export interface PositionReporter {
  /**
   * Renders `command`'s status comment as queued, `position` runs ahead of it (of its issue,
   * or with `forSlot`, of the issues its pool gives a slot first),
   * when the write budget has a write free now. Resolves true when the comment shows it (or is
   * gone: nothing to keep up to date), false when it was skipped or failed (try again at the
   * next change). Never rejects.
   */
  queued(command: RunCommand, position: number, forSlot?: boolean): Promise<boolean>;
  /** Renders `command`'s status comment as waiting for the model provider's limit to reset at `until` (ms), when the write budget allows. Never rejects. */
  waiting?(command: RunCommand, until: number): Promise<void>;
}

/** How many issues waiting for a slot have their place shown again each time a slot is given. */
const POOL_RENDERS = 30;

/** How long the drain waits at most for queue position renders under way before it acts on its next command. */
const POSITIONS_WAIT_MS = 60_000;

/** What the queue position renders need. */
export interface QueuePositionsOptions {
  /** Keeps the queue position on the status comments of waiting commands up to date; none when absent. */
  readonly positions?: PositionReporter | undefined;
  /** The issue's queue as IssueQueue keeps it. */
  readonly state: {
    queueSnapshot(issueKey: string): Promise<QueueSnapshot<RunCommand>>;
    waiting(command: RunCommand): Promise<boolean>;
    showPosition(issueKey: string, seq: number, position: number): Promise<void>;
    /** The issues waiting for a slot in a pool (see FairPool). */
    poolSnapshot(pool: string): Promise<FairSnapshot>;
    /** Whether an issue still waits for a slot in a pool. */
    waitsInPool(pool: string, issueKey: string): Promise<boolean>;
  };
  readonly logger: Logger;
}

/**
 * The queue position renders of each issue, one after the other. The drain waits for them
 * (settled) before it acts on its next command, so no "queued" render lands on a comment
 * after its run has begun reporting.
 */
export class QueuePositions {
  private readonly positioning = new Map<string, Promise<void>>();

  constructor(private readonly options: QueuePositionsOptions) {}

  /**
   * Shows the issue's waiting commands their new place in its queue (see positionUpdates),
   * after the renders begun before; never rejects. Commands are looked at once, then each is
   * checked again right before its comment is written: one that started, was cancelled or
   * went into the running agent meanwhile is left alone. `slot`: the issue waits for a slot in
   * `pool`, `place` issues ahead of it (its next run shows that place too).
   */
  refresh(issueKey: string, slot?: { readonly pool: string; readonly place: number }): Promise<void> {
    const { positions, state, logger } = this.options;
    if (!positions) return Promise.resolve();
    const render = async (): Promise<void> => {
      for (const { command, position, forSlot } of positionUpdates(await state.queueSnapshot(issueKey), slot?.place)) {
        // Checked again right before the write: a slot may have taken it meanwhile.
        if (forSlot ? !(slot && (await state.waitsInPool(slot.pool, issueKey))) : !(await state.waiting(command))) continue;
        if (await positions.queued(command, position, forSlot)) await state.showPosition(issueKey, command.seq, position);
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
   * Shows the issues waiting in `pool` their new place after a slot was given (the first
   * POOL_RENDERS of them in the pool's order: those further back move up later); never rejects.
   */
  async refreshPool(pool: string): Promise<void> {
    if (!this.options.positions) return;
    try {
      const { entries, served } = await this.options.state.poolSnapshot(pool);
      await Promise.all(fairOrder(entries, served, Date.now(), POOL_RENDERS).map((entry, place) => this.refresh(entry.issueKey, { pool, place })));
    } catch (err) {
      this.options.logger.warn({ err, pool }, 'could not update the places of runs waiting for a slot');
    }
  }

  /**
   * Resolves once the issue's queue position renders begun so far have landed (or failed), or
   * after POSITIONS_WAIT_MS: a write GitHub never answers must not hold the issue's runs (the
   * reporter still keeps a late one off a run's comment, see PositionReporter).
   */
  async settled(issueKey: string): Promise<void> {
    const pending = this.positioning.get(issueKey);
    if (!pending) return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([pending, new Promise<void>((resolve) => (timer = setTimeout(resolve, POSITIONS_WAIT_MS)))]);
    clearTimeout(timer);
  }

  /** Resolves once every issue's renders begun so far have settled. */
  async close(): Promise<void> {
    await Promise.all([...this.positioning.keys()].map((issueKey) => this.settled(issueKey)));
  }
}
