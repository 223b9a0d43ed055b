import type { Logger } from 'pino';
import { providerLimit } from '../core/index.js';
import type { RunCommand, RunOutcome } from './contract.js';
import type { IssueQueue } from './issue-queue.js';
import type { IssueRecords } from './issue-record.js';
import type { Producer } from './producer.js';
import type { ProviderWaitStore } from './provider-wait-store.js';
import type { PositionReporter } from './queue-position.js';
import { utcMinute } from './run-view.js';

/**
 * Waiting out a model provider's quota or rate refusal instead of failing (see
 * providerLimit). `credentialOf` names the credential a command's pod uses (runs of pods
 * sharing one wait together); `maxWaits` bounds the waits of one session; a rate refusal
 * waits `retryMs`, doubled each time; `prompt` continues the session.
 */
export interface ProviderLimits {
  readonly credentialOf: (command: RunCommand) => Promise<string>;
  readonly maxWaits: number;
  readonly retryMs: number;
  readonly prompt: string;
}

/** What the provider wait decisions need. */
export interface ProviderWaitsOptions {
  readonly limits: ProviderLimits;
  readonly state: Pick<ProviderWaitStore, 'waitSeq' | 'providerRefuses' | 'providerRefusesUntil' | 'parkForProvider' | 'providerAccepted'>
    & Pick<IssueRecords, 'get' | 'isStopped'> & Pick<IssueQueue, 'append' | 'commands'>;
  readonly producer: Pick<Producer, 'drain'>;
  /** Renders a held command's status comment as waiting for the provider; none when absent. */
  readonly positions?: Pick<PositionReporter, 'waiting'> | undefined;
  readonly logger: Logger;
}

/** The provider's refusals, decided: which command is held back until when, and what a run that ended on one becomes. */
export class ProviderWaits {
  constructor(private readonly options: ProviderWaitsOptions) {}

  /**
   * When `command` may run, if not now: a run queued to continue after a provider wait, not
   * before its time; any run whose pod's credential the provider refuses now (another run
   * hit the limit), not before it resets. Its status comment says what it waits for.
   */
  async holdUntil(command: RunCommand): Promise<number | undefined> {
    const { limits, state } = this.options;
    // A run already going (picked up again after a restart) is followed first, never parked.
    if ((await state.get(command.issueKey)).running === command.seq) return undefined;
    const credential = await limits.credentialOf(command).catch(() => undefined);
    const refused = credential ? await state.providerRefusesUntil(credential) : undefined;
    const until = Math.max(command.providerWait?.notBefore ?? 0, refused ?? 0);
    if (until <= Date.now()) return undefined;
    // Held back by the credential's refusal (not only its own reset): an answer of the provider to another run wakes it.
    if (credential && refused !== undefined && refused >= (command.providerWait?.notBefore ?? 0)) await state.parkForProvider(credential, command.issueKey, until);
    void this.options.positions?.waiting?.(command, until);
    return until;
  }

  /**
   * A run that ended on the model provider's quota or rate refusal is not a failure: the
   * provider's reset is recorded for the pod's credential (its other runs wait too), a resume
   * continuing the session is queued for then (once, however often this is retried), and the
   * outcome says `waiting`; a run whose agent dropped its prompt (see ProviderLimit `repeat`)
   * is resumed with that prompt instead. After `maxWaits` waits it ends as it is, with the history.
   */
  async afterRun(command: RunCommand, outcome: RunOutcome): Promise<RunOutcome> {
    const { limits, state, producer, logger } = this.options;
    // A run that was stopped or timed out stays so, whatever its last result said.
    if (outcome.kind !== 'exited' || outcome.terminal?.type !== 'container.exited' || outcome.terminal.reason !== 'exited') return outcome;
    if (await state.isStopped(command.issueKey, command.seq)) return outcome;
    const waits = command.providerWait?.waits ?? [];
    const limit = providerLimit(outcome.agent?.result, Date.now(), limits.retryMs * 2 ** waits.length);
    if (!limit) {
      // The provider answered this credential: runs held back by an earlier refusal of it may go.
      if (outcome.agent?.result && !outcome.agent.result.isError) {
        const credential = await limits.credentialOf(command).catch(() => undefined);
        // A refusal recorded after this run began may have come after its last answer: only an earlier one is cleared.
        const woken = credential ? await state.providerAccepted(credential, outcome.terminal.at - outcome.terminal.durationMs) : [];
        for (const issueKey of woken) await producer.drain(issueKey, (await state.get(issueKey)).hostId, `wake-${Date.now()}`).catch(() => undefined);
      }
      return outcome;
    }
    const history = [...waits, { at: Date.now(), resetAt: limit.resetAt, kind: limit.kind }];
    if (waits.length >= limits.maxWaits) {
      const said = history.map((w) => `${utcMinute(w.at)} UTC (${w.kind === 'usage' ? 'usage limit' : 'rate limit'})`).join(', ');
      return { ...outcome, note: `The model provider refused ${history.length} times: ${said}. cldpd waited ${waits.length} times and stops waiting here; \`/cldpd resume\` continues the session.` };
    }
    const credential = await limits.credentialOf(command).catch(() => undefined);
    if (credential) await state.providerRefuses(credential, limit.resetAt);
    const seq = await state.waitSeq(command.issueKey, command.seq);
    const { note: _note, ...rest } = command;
    // Continued with the limits' prompt; with its own prompt when the agent kept nothing of it to
    // continue (a start's becomes the start of a new conversation in the same session: see Dispatcher.resume).
    const next: RunCommand = { ...rest, seq, kind: 'resume', prompt: limit.repeat && command.prompt.trim() ? command.prompt : limits.prompt, enqueuedAt: Date.now(), providerWait: { notBefore: limit.resetAt, waits: history } };
    // Queued once: a retry of this run finds it queued already (or run, and gone) under the same seq.
    if ((await state.append(next)) === 0 && !(await state.commands(command.issueKey)).some((c) => c.seq === seq)) {
      logger.warn({ issue: command.issueKey, seq }, 'the run to continue after the provider\'s limit has run already');
    }
    logger.info({ issue: command.issueKey, session: command.sessionId, resetAt: new Date(limit.resetAt).toISOString(), wait: history.length }, 'the model provider refused for its limit; the session continues by itself then');
    return { ...outcome, kind: 'waiting', waiting: { resumeAt: limit.resetAt, wait: history.length, of: limits.maxWaits, kind: limit.kind } };
  }
}
