import { webhookHandler } from '../../src/github/triggers.js';
import type { IntakeJob } from '../../src/queue/contract.js';

/** The repository the webhook handler's unit tests deliver from: acme/web. */
export const repository = { name: 'web', owner: { login: 'acme' } };
/** Their issue: acme/web#3. */
export const issue = { number: 3, html_url: 'https://github.com/acme/web/issues/3', title: 'Bug', body: 'text' };
/** Their sender: a user. */
export const alice = { login: 'alice', type: 'User' };

/** A {@link webhookHandler} under test, with what it did so far. */
export interface RecordingWebhookHandler {
  /** The intake jobs it queued, in order. */
  readonly jobs: IntakeJob[];
  /** The messages it logged as warnings, in order. */
  readonly warnings: string[];
  /** Hands it a verified `event` delivery (key `body-sha256`, id `delivery-1`) and resolves with what it did. */
  receive(event: string, payload: object): Promise<'accepted' | 'ignored'>;
}

/** A fresh {@link webhookHandler} whose clock always reads `now` and which records its jobs and warnings. */
export function recordingWebhookHandler(now: number): RecordingWebhookHandler {
  const jobs: IntakeJob[] = [];
  const warnings: string[] = [];
  const handle = webhookHandler({ intake: async (job) => void jobs.push(job) }, { warn: (_, message) => void warnings.push(message) }, () => now);
  return { jobs, warnings, receive: (event, payload) => handle({ key: 'body-sha256', deliveryId: 'delivery-1', event, payload }) };
}
