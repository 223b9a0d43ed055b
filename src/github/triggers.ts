import type { IntakeJob, Trigger } from '../queue/contract.js';
import { mayHoldCommand, podFromLabel } from './commands.js';
import { isBot } from './permissions.js';
import type { VerifiedDelivery } from './webhook-receiver.js';

/** Where accepted deliveries go: the intake queue. */
export interface IntakeSink {
  /** Queues the delivery; a redelivery (same delivery id) queues nothing more. */
  intake(job: IntakeJob): Promise<void>;
}

interface IssuePayload {
  issue: { number: number; html_url: string; title: string; body?: string | null; pull_request?: unknown; updated_at?: string; state?: string; closed_at?: string | null };
  repository: { name: string; owner: { login: string } };
  installation?: { id: number };
  sender: { login: string; type: string };
}

/** Whether a payload has every field cldpd reads; a delivery without them is ignored. */
function wellFormed(payload: unknown): payload is IssuePayload {
  const p = payload as Partial<IssuePayload> | undefined;
  return typeof p?.issue?.number === 'number' && typeof p.issue.html_url === 'string' && typeof p.issue.title === 'string'
    && typeof p.repository?.name === 'string' && typeof p.repository.owner?.login === 'string'
    && typeof p.sender?.login === 'string' && typeof p.sender.type === 'string'
    && typeof p.installation?.id === 'number';
}

function intakeJob(delivery: Delivery, payload: IssuePayload, trigger: Trigger): IntakeJob | undefined {
  if (!payload.installation) return undefined;
  return {
    deliveryId: delivery.key,
    ...(delivery.deliveryId ? { githubDelivery: delivery.deliveryId } : {}),
    trigger,
    issue: {
      installationId: payload.installation.id,
      owner: payload.repository.owner.login,
      repo: payload.repository.name,
      number: payload.issue.number,
      url: payload.issue.html_url,
      title: payload.issue.title,
      body: payload.issue.body ?? null,
      ...closedSince(payload),
    },
    sender: { login: payload.sender.login, type: payload.sender.type },
    receivedAt: Date.now(),
  };
}

/** When the payload's issue was closed, while it is. */
function closedSince(payload: IssuePayload): { closedAt?: number } {
  const at = payload.issue.state === 'closed' ? Date.parse(payload.issue.closed_at ?? '') : NaN;
  return Number.isFinite(at) ? { closedAt: at } : {};
}

/** A delivery whose signature was checked (see createWebhookReceiver). */
export type Delivery = Pick<VerifiedDelivery, 'key' | 'deliveryId' | 'event' | 'payload'>;

/** Where a malformed delivery is reported. */
export interface WarnLog {
  warn(fields: object, message: string): void;
}

/**
 * An event older than this (a comment's creation, a label's update of its issue) is not acted
 * on: a real delivery arrives within seconds and GitHub redelivers for 3 days. Deliveries are
 * remembered a little longer (IntakeLedger.handled), so no signed body is ever acted on twice.
 */
export const MAX_EVENT_AGE_MS = 7 * 24 * 3600_000;

/**
 * The webhook side of cldpd: guard, parse, enqueue — nothing else runs on the request path
 * (no API calls, no Docker). A label `cldpd:<pod>` on an issue and a `/cldpd` command in a
 * new issue comment become intake jobs keyed by what the delivery's signature covers;
 * everything else, and anything a bot sends (the app's own comments first), is ignored
 * quietly. Resolves with `accepted` once a job was queued (a redelivery's too), `ignored`
 * when the delivery asked for nothing; rejects when the queue does not take the job.
 */
export function webhookHandler(sink: IntakeSink, log: WarnLog, now: () => number = Date.now): (delivery: Delivery) => Promise<'accepted' | 'ignored'> {
  const tooOld = (time: string | undefined) => Date.parse(time ?? '') < now() - MAX_EVENT_AGE_MS;
  const queue = async (job: IntakeJob | undefined): Promise<'accepted' | 'ignored'> => {
    if (!job) return 'ignored';
    await sink.intake(job);
    return 'accepted';
  };
  /** A delivery that looked like one cldpd acts on, but is not: said in the log, then ignored. */
  const ignore = (fields: object, message: string): 'ignored' => {
    log.warn(fields, message);
    return 'ignored';
  };

  const labeled = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    if (!wellFormed(raw)) return ignore({ delivery: id }, 'ignored an issues.labeled delivery without the fields cldpd needs');
    const payload = raw as IssuePayload & { label?: { name: string } };
    const pod = podFromLabel(payload.label?.name);
    if (!pod || payload.issue.pull_request || isBot(payload.sender)) return 'ignored';
    // Labelling an issue updates it: an older issue time means an old delivery replayed.
    if (tooOld(payload.issue.updated_at)) {
      return ignore({ delivery: id, updatedAt: payload.issue.updated_at }, 'ignored a label on an issue last updated over 7 days ago (a replayed delivery?)');
    }
    return queue(intakeJob(delivery, payload, { kind: 'label', pod }));
  };

  const commented = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    const comment = (raw as { comment?: { id?: unknown; body?: unknown } } | undefined)?.comment;
    if (!wellFormed(raw) || typeof comment?.id !== 'number' || typeof comment.body !== 'string') {
      return ignore({ delivery: id }, 'ignored an issue_comment.created delivery without the fields cldpd needs');
    }
    const payload = raw as IssuePayload & { comment: { id: number; body: string; created_at?: string } };
    if (payload.issue.pull_request || isBot(payload.sender)) return 'ignored';
    // Only a cheap look at the raw text here: sanitising and parsing wait for the intake step.
    if (!mayHoldCommand(payload.comment.body)) return 'ignored';
    if (tooOld(payload.comment.created_at)) {
      return ignore({ delivery: id, createdAt: payload.comment.created_at }, 'ignored a command in a comment written over 7 days ago (a replayed delivery?)');
    }
    const trigger: Trigger = { kind: 'comment', commentId: payload.comment.id, commentBody: payload.comment.body };
    return queue(intakeJob(delivery, payload, trigger));
  };

  /** A close or reopen of an issue (by anyone, a bot too): when it happened decides which came last. */
  const closedOrReopened = async (delivery: Delivery, action: 'closed' | 'reopened'): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    if (!wellFormed(raw)) return ignore({ delivery: id }, `ignored an issues.${action} delivery without the fields cldpd needs`);
    const payload = raw as IssuePayload & { issue: { closed_at?: string | null } };
    if (payload.issue.pull_request) return 'ignored';
    const at = Date.parse((action === 'closed' ? payload.issue.closed_at : undefined) ?? payload.issue.updated_at ?? '');
    if (!Number.isFinite(at)) return ignore({ delivery: id }, `ignored an issues.${action} delivery without its time`);
    if (tooOld(new Date(at).toISOString())) return ignore({ delivery: id, at }, `ignored an issues.${action} of over 7 days ago (a replayed delivery?)`);
    return queue(intakeJob(delivery, payload, { kind: action, at }));
  };

  const transferred = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    const changes = (raw as { changes?: { new_issue?: { number?: unknown; html_url?: unknown }; new_repository?: { name?: unknown; owner?: { login?: unknown } } } } | undefined)?.changes;
    const to = changes?.new_issue;
    const repo = changes?.new_repository;
    if (!wellFormed(raw) || typeof to?.number !== 'number' || typeof to.html_url !== 'string' || typeof repo?.name !== 'string' || typeof repo.owner?.login !== 'string') {
      return ignore({ delivery: id }, 'ignored an issues.transferred delivery without the fields cldpd needs');
    }
    return queue(intakeJob(delivery, raw, { kind: 'transferred', to: { owner: repo.owner.login, repo: repo.name, number: to.number, url: to.html_url } }));
  };

  return async (delivery) => {
    const action = (delivery.payload as { action?: unknown } | null)?.action;
    if (delivery.event === 'issues' && action === 'labeled') return labeled(delivery);
    if (delivery.event === 'issues' && action === 'transferred') return transferred(delivery);
    if (delivery.event === 'issues' && (action === 'closed' || action === 'reopened')) return closedOrReopened(delivery, action);
    if (delivery.event === 'issue_comment' && action === 'created') return commented(delivery);
    return 'ignored';
  };
}
