import type { Logger } from 'pino';
import { LABELS, type Dispatcher, type HostInventory } from '../core/index.js';
import type { Reporter, RunCommand, RunOutcome } from './contract.js';
import type { HostRegistry } from './host-registry.js';
import type { IssueIdentity } from './issue-identity.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import type { CommandRunner } from './run-command.js';

/** What finding and adopting orphaned containers needs. */
export interface OrphansOptions {
  readonly dispatcher: Pick<Dispatcher, 'stop' | 'recover'>;
  /** This host's containers, found by their labels. */
  readonly inventory: Pick<HostInventory, 'sweepHelpers' | 'sweepTakeovers' | 'containers'>;
  readonly state: Pick<IssueRecords, 'get' | 'set'> & Pick<IssueIdentity, 'keyFor'> & Pick<IssueQueue, 'head'> & Pick<HostRegistry, 'sessionForgotten'>;
  readonly runner: Pick<CommandRunner, 'follows' | 'follow' | 'finish'>;
  readonly reporter: Reporter;
  readonly logger: Logger;
}

/**
 * Containers of this host that belong to an issue and that nothing follows: a run whose job
 * will pick it up again is left to it; a run that is still open is adopted (followed to its
 * end and reported); a container whose run is already over is stopped and removed.
 */
export class Orphans {
  private readonly adopting = new Set<string>();

  constructor(private readonly options: OrphansOptions) {}

  /**
   * Deals with the containers of this host that nothing follows, so no run ends silently and
   * none is left behind (see the class). Adoptions go on in the background.
   */
  async reconcile(): Promise<void> {
    const { dispatcher, inventory, state, logger, runner } = this.options;
    await inventory.sweepHelpers().catch((err: unknown) => logger.warn({ err }, 'could not remove leftover helper containers'));
    const lost = await inventory.sweepTakeovers().catch((err: unknown) => {
      logger.warn({ err }, 'could not remove lost terminals (cldpd attach)');
      return [];
    });
    if (lost.length > 0) logger.warn({ containers: lost }, 'removed terminals of cldpd attach held past their lifetime (or never started): their sessions\' queued runs go on');
    for (const found of await inventory.containers(true)) {
      if (this.adopting.has(found.sessionId) || runner.follows(found.sessionId)) continue;
      // A person's terminal (cldpd attach) is no run: theirs until they leave.
      if (found.container.labels[LABELS.attach]) continue;
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

  /** Follows session `sessionId`'s container to its end and reports it on `command`, when it has one on record; removes it when its end was reported already. */
  async adopt(sessionId: string, command: RunCommand | undefined): Promise<void> {
    const { dispatcher, logger, runner, reporter, state } = this.options;
    const recovery = await dispatcher.recover(sessionId);
    if (recovery.kind === 'finished' && !command) {
      // Its end is on record already: what is left is a container nobody owns.
      await dispatcher.stop(sessionId).catch(() => undefined);
      await dispatcher.recover(sessionId).catch(() => undefined); // removes the stopped container
      logger.warn({ session: sessionId }, 'stopped and removed a container whose run had already ended');
      return;
    }
    let outcome: RunOutcome | undefined;
    const report = command ? reporter.forRun(command) : undefined;
    if (recovery.kind === 'attached') {
      outcome = command && report
        ? await runner.follow(command, recovery.session, report, recovery.lastLines)
        : await recovery.session.outcome().then((terminal) => ({ kind: terminal.type === 'error' ? ('error' as const) : ('exited' as const), sessionId, terminal }));
      if (!command) await recovery.session.wait().catch(() => undefined);
    } else if (recovery.kind === 'finished') {
      outcome = { kind: recovery.terminal.type === 'error' ? 'error' : 'exited', sessionId, terminal: recovery.terminal, agent: recovery.agent, lastLines: recovery.lastLines };
    }
    if (command && outcome) {
      await runner.finish(command, outcome, report);
      await state.set(command.issueKey, { running: '0', runningCommand: '' });
    }
  }
}
