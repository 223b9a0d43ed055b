import type { Logger } from 'pino';
import { isCldpdError, messageOf, type Dispatcher, type Session } from '../core/index.js';
import type { PullRequestOpener, RunCommand, RunOutcome, RunRepoAccess, RunReport, Reporter } from './contract.js';
import type { IssueRecords } from './issue-record.js';
import type { ProviderWaits } from './provider-waits.js';
import { outcomeWords } from './run-view.js';

const LAST_LINES = 20;

/** What running one command needs. */
export interface CommandRunnerOptions {
  readonly dispatcher: Pick<Dispatcher, 'start' | 'resume' | 'recover' | 'isBusy'>;
  readonly state: Pick<IssueRecords, 'get' | 'set' | 'isStopped'>;
  readonly reporter: Reporter;
  /** What a run that ended on the model provider's limit becomes (see ProviderWaits.afterRun); the outcome as it is when absent. */
  readonly waits?: Pick<ProviderWaits, 'afterRun'> | undefined;
  /** Mints tokens for a command's repository, for pods that ask for `github` permissions, and finds what the run pushed; none when absent. */
  readonly github?: ((command: RunCommand) => RunRepoAccess) | undefined;
  /**
   * The repository's narrower egress list for a command's pod (`.github/cldpd.yml` `egress`),
   * asked before each start or resume and passed to the dispatcher; a rejection fails the run
   * before anything starts, with its message. None asked when absent.
   */
  readonly egress?: ((command: RunCommand) => Promise<readonly string[] | undefined>) | undefined;
  /** Opens the pull request of what a run pushed and records the session's pull requests; none when absent. */
  readonly pulls?: PullRequestOpener | undefined;
  readonly logger: Logger;
  /** How long a resume waits between looks at a session still running; default 2 s. */
  readonly busyPollMs?: number;
}

/**
 * One command → the dispatcher → the reporter: starts or resumes the command's session (or
 * picks up its run after a restart), follows it to its end and writes its final status. Knows
 * the run it follows per issue: one at most.
 */
export class CommandRunner {
  /** The run followed per issue, with its command's seq. */
  private readonly live = new Map<string, { readonly session: Session; readonly seq: number }>();

  constructor(private readonly options: CommandRunnerOptions) {}

  /** How many runs are followed now. */
  get size(): number {
    return this.live.size;
  }

  /** The run followed for the issue, if any. */
  following(issueKey: string): { readonly session: Session; readonly seq: number } | undefined {
    return this.live.get(issueKey);
  }

  /** Whether session `sessionId`'s run is followed. */
  follows(sessionId: string): boolean {
    return [...this.live.values()].some((l) => l.session.id === sessionId);
  }

  /** Runs one command to its end and reports it; never throws for the run's own failures. */
  async run(command: RunCommand): Promise<void> {
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
      // A start's session id is its delivery's own, so a session of that id on this host is
      // this very start, made before: Redis lost the record of it (the writes a failed-over
      // primary had not passed on). It is recovered as an interrupted run, never started again.
      if (retried || command.kind === 'start') {
        const recovery = await dispatcher.recover(command.sessionId, github).catch((err: unknown) => {
          if (isCldpdError(err, 'SessionNotFound')) return { kind: 'none' as const };
          throw err;
        });
        if (retried || recovery.kind !== 'none') log.info({ recovery: recovery.kind }, 'picked up a run that was interrupted');
        if (recovery.kind === 'finished') {
          outcome = await this.withWork(command, { kind: recovery.terminal.type === 'error' ? 'error' : 'exited', sessionId: command.sessionId, terminal: recovery.terminal, agent: recovery.agent, lastLines: recovery.lastLines }, access, log);
          return;
        }
        if (recovery.kind === 'attached') {
          // A stop that came for this run before the restart still holds: follow() applies it.
          session = recovery.session;
          earlier = recovery.lastLines;
        }
      }
      if (!session && (await state.isStopped(command.issueKey, command.seq))) {
        outcome = { kind: 'cancelled', sessionId: command.sessionId, message: 'Stopped by `/cldpd stop`.' };
        return;
      }
      if (!session) {
        const egress = await this.options.egress?.(command);
        const options = { ...github, ...(egress ? { egress } : {}) };
        session = command.kind === 'start'
          ? await dispatcher.start(command.pod, { issueUrl: command.issue.url, prompt: command.prompt }, { sessionId: command.sessionId, ...options })
          : await dispatcher.resume(command.sessionId, command.prompt, options);
      }
      if (command.kind === 'start') await state.set(command.issueKey, { sessionId: session.id, pod: command.pod });
      outcome = await this.withWork(command, await this.follow(command, session, report, earlier), access, log);
    } catch (err) {
      log.warn({ err }, 'the run could not start');
      outcome = { kind: 'error', sessionId: command.sessionId, message: messageOf(err) };
    } finally {
      // A run that ended on the provider's limit waits for it, however it was found to have
      // ended (followed, or read back after a restart): the resume it queues is queued once.
      const waits = this.options.waits;
      if (outcome && waits) {
        const ended = outcome;
        outcome = await waits.afterRun(command, ended).catch((err: unknown) => {
          log.warn({ err }, 'could not queue the run that continues after the provider\'s limit');
          return ended;
        });
      }
      // "running" is cleared with the command's removal (IssueQueue.done), never before: see there.
      await this.finish(command, outcome ?? { kind: 'error', sessionId: command.sessionId, message: 'The run ended without an outcome.' }, report);
    }
  }

  /**
   * The outcome with what the run pushed (found through `access`) and the pull request opened
   * for it (see PullRequestOpener); as it was when nothing was pushed or nothing could be found.
   */
  private async withWork(command: RunCommand, outcome: RunOutcome, access: RunRepoAccess | undefined, log: Logger): Promise<RunOutcome> {
    const work = await access?.produced().catch((err: unknown) => {
      log.warn({ err: messageOf(err) }, 'could not find what the run pushed');
      return undefined;
    });
    if (!work) return outcome;
    return { ...outcome, work: await Promise.resolve(this.options.pulls?.afterPush(command, outcome, work) ?? work).catch((err: unknown) => {
      log.warn({ err: messageOf(err) }, 'could not open or record the pull request of what the run pushed');
      return work;
    }) };
  }

  /**
   * Returns once the session's agent is not running any more, or the command was stopped.
   * It can still run when this worker did not start it (adopted after a restart: its input
   * cannot be reached again); a second agent on one conversation is never started, so the
   * resume waits for it to end (its own timeout bounds that).
   */
  private async waitUntilFree(command: RunCommand): Promise<void> {
    for (let waited = 0; ; waited++) {
      if (await this.options.state.isStopped(command.issueKey, command.seq)) return;
      if (!(await this.options.dispatcher.isBusy(command.sessionId))) return;
      if (waited === 0) this.options.logger.info({ issue: command.issueKey, session: command.sessionId }, 'the session is still running; the resume waits for it to end');
      await new Promise((resolve) => setTimeout(resolve, this.options.busyPollMs ?? 2000));
    }
  }

  /** Follows a run to its end; `earlier` are its last lines logged before a restart. */
  async follow(command: RunCommand, session: Session, report: RunReport, earlier: readonly string[] = []): Promise<RunOutcome> {
    this.live.set(command.issueKey, { session, seq: command.seq });
    // A stop that came while the run was being set up (or before a restart) found nothing
    // to stop then: apply it now.
    if (await this.options.state.isStopped(command.issueKey, command.seq)) void session.stop().catch(() => undefined);
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

  /** Writes the command's final status and its line on the issue's record; never throws. */
  async finish(command: RunCommand, outcome: RunOutcome, report: RunReport = this.options.reporter.forRun(command)): Promise<void> {
    try {
      await report.finish(outcome);
    } catch (err) {
      this.options.logger.error({ err, issue: command.issueKey }, 'could not write the final status');
    }
    await this.options.state.set(command.issueKey, { lastState: `run ${command.seq} (${command.kind}) ${outcomeWords(outcome)}`.slice(0, 500) }).catch(() => undefined);
  }
}
