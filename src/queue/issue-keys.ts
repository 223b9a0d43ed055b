import { KEY_PREFIX } from './names.js';

/**
 * The Redis key of an issue's hash (`cldpd:issue:{key}`) or of one of its parts
 * (`…:runs`, `…:seen`, `…:lock`, `…:positions`, `…:deliver:<seq>`, `…:wait:<seq>`,
 * `…:status:<seq>`, `…:refused:<login>`). The braces keep an issue's keys in one slot.
 */
export function issueKeyName(issueKey: string, part?: string): string {
  return `${KEY_PREFIX}:issue:{${issueKey}}${part ? `:${part}` : ''}`;
}

/** The marker a retired issue leaves for a while: its last command number. */
export function retiredKeyName(issueKey: string): string {
  return `${KEY_PREFIX}:retired:{${issueKey}}`;
}

/** The claim on resume `seq` of the issue: pending | delivered | run (see DeliveryClaims). */
export function deliveryClaimKeyName(issueKey: string, seq: number): string {
  return `${issueKeyName(issueKey, 'deliver')}:${seq}`;
}

/** The hash of every session id the queue gave out → the issue that holds it. */
export const SESSION_ISSUES_KEY = `${KEY_PREFIX}:session-issues`;

/** The hash of every session pull request cldpd recorded (`owner/repo#n`) → the issue whose session it is. */
export const PULL_ISSUES_KEY = `${KEY_PREFIX}:pull-issues`;
