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
