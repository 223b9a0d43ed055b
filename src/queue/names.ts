/** Webhook deliveries waiting for their intake step (permission check, acknowledgement). */
export const INTAKE_QUEUE = 'cldpd-intake';
/** Runs of issues that have no host yet: any worker may take them. */
export const RUN_QUEUE = 'cldpd-run';

/** Runs of issues whose sessions live on `hostId`: only that host's worker takes them. */
export function hostQueue(hostId: string): string {
  return `cldpd-host-${hostId}`;
}

/** Stop requests for sessions on `hostId`: served at once, never behind a run. */
export function controlQueue(hostId: string): string {
  return `cldpd-control-${hostId}`;
}

/** Prefix of every Redis key cldpd writes itself (BullMQ's keys use its own `bull:` prefix). */
export const KEY_PREFIX = 'cldpd';

/**
 * A host whose worker has not said it runs for this long is gone: a new session of an
 * issue it owned starts on another host. Long enough for a restart or an upgrade.
 */
export const HOST_GONE_MS = 10 * 60_000;
