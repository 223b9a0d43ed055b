import type { SessionEvent } from '../core/index.js';
import type { RunOutcome } from './contract.js';

/** The UTC minute of `at` (ms), as `2026-01-31 14:05`. */
export function utcMinute(at: number): string {
  return new Date(at).toISOString().slice(0, 16).replace('T', ' ');
}

/**
 * Pure: how a run ended, in words for the record (`/cldpd status` shows them to anyone
 * who can read the issue): no text from the run or its error, which stay in the redacted
 * status comment.
 */
export function outcomeWords(outcome: RunOutcome): string {
  return outcome.kind === 'cancelled' ? 'cancelled'
    : outcome.kind === 'delivered' ? 'went into the running agent'
    : outcome.kind === 'waiting' && outcome.waiting ? `waits for the model provider's limit until ${utcMinute(outcome.waiting.resumeAt)} UTC, then continues by itself`
    : outcome.terminal?.type === 'container.exited' ? `finished with exit code ${outcome.terminal.exitCode}`
    : `failed (${outcome.terminal?.type === 'error' ? outcome.terminal.code : 'before it started'}; the status comment says why)`;
}

/** Where a run stands, as its status comment and its page's header show it. */
export type RunPhase = 'queued' | 'waiting' | 'building' | 'setting up' | 'running' | 'finished' | 'failed' | 'cancelled' | 'delivered';

/**
 * Pure: a run's phase after `event`, from `phase` before it: building from its build,
 * running from its container's start, setting up during a setup step, and running again with
 * the container's own output after the setup. Any other event leaves it as it was.
 */
export function phaseAfter<P extends string | null | undefined>(phase: P, event: SessionEvent): P | RunPhase {
  switch (event.type) {
    case 'build.started':
      return 'building';
    case 'container.started':
      return 'running';
    case 'setup.step':
      return 'setting up';
    case 'output':
      return event.step === undefined && phase === 'setting up' ? 'running' : phase;
    default:
      return phase;
  }
}

/** Pure: the phase a run's outcome ends it in. */
export function outcomePhase(outcome: RunOutcome): Extract<RunPhase, 'cancelled' | 'delivered' | 'waiting' | 'finished' | 'failed'> {
  return outcome.kind === 'cancelled' ? 'cancelled'
    : outcome.kind === 'delivered' ? 'delivered'
    : outcome.kind === 'waiting' && outcome.waiting ? 'waiting'
    : outcome.terminal?.type === 'container.exited' ? 'finished'
    : 'failed';
}
