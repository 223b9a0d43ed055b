import type { IntakeJob, PullTarget, Trigger } from '../queue/contract.js';
import { mayHoldCommand, podFromLabel } from './commands.js';
import { issueOfBranch } from './pull-sessions.js';
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

interface PullPayload {
  pull_request: { number: number; html_url: string; title: string; body?: string | null; head: { ref: string; repo?: { id?: number } | null }; base: { repo?: { id?: number } | null } };
  repository: { name: string; owner: { login: string } };
  installation: { id: number };
  sender: { login: string; type: string };
}

/** Whether a pull request event's payload has every field cldpd reads. */
function pullWellFormed(payload: unknown): payload is PullPayload {
  const p = payload as Partial<PullPayload> | undefined;
  const pr = p?.pull_request;
  return typeof pr?.number === 'number' && typeof pr.html_url === 'string' && typeof pr.title === 'string' && typeof pr.head?.ref === 'string'
    && typeof p?.repository?.name === 'string' && typeof p.repository.owner?.login === 'string'
    && typeof p.sender?.login === 'string' && typeof p.sender.type === 'string' && typeof p.installation?.id === 'number';
}

/** Whether the pull request's head is a branch of its own repository (a fork's head never is a session's). */
function sameRepo(payload: PullPayload): boolean {
  const head = payload.pull_request.head.repo?.id;
  return head !== undefined && head === payload.pull_request.base.repo?.id;
}

/** The intake job of a pull request's delivery: its `issue` is the pull request until the intake step finds the session's issue. */
function pullIntakeJob(delivery: Delivery, payload: PullPayload, trigger: Trigger): IntakeJob {
  const pr = payload.pull_request;
  const pull: PullTarget = { number: pr.number, url: pr.html_url, head: pr.head.ref, sameRepo: true };
  return {
    deliveryId: delivery.key,
    ...(delivery.deliveryId ? { githubDelivery: delivery.deliveryId } : {}),
    trigger,
    issue: { installationId: payload.installation.id, owner: payload.repository.owner.login, repo: payload.repository.name, number: pr.number, url: pr.html_url, title: pr.title, body: pr.body ?? null },
    sender: { login: payload.sender.login, type: payload.sender.type },
    receivedAt: Date.now(),
    pull,
  };
}

interface CheckSuitePayload {
  check_suite?: { id?: unknown; head_sha?: unknown; head_branch?: unknown; conclusion?: unknown; updated_at?: unknown; pull_requests?: Array<{ number?: number; head?: { ref?: string; repo?: { id?: number } }; base?: { repo?: { id?: number } } }> };
  repository?: { name?: string; html_url?: string; owner?: { login?: string } };
  installation?: { id?: number };
  sender?: { login?: string; type?: string };
}

/** Check suite conclusions that mean the checks failed. */
const FAILED_CONCLUSIONS = new Set(['failure', 'timed_out']);

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
 * (no API calls, no Docker). A label `cldpd:<pod>` on an issue, a `/cldpd` command in a new
 * comment (on an issue or a pull request), a review submitted on a same-repository pull
 * request, a reply in a review thread that may hold a command, and checks that failed on a
 * same-repository pull request become intake jobs keyed by what the delivery's signature covers;
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
    if (isBot(payload.sender)) return 'ignored';
    // Only a cheap look at the raw text here: sanitising and parsing wait for the intake step.
    if (!mayHoldCommand(payload.comment.body)) return 'ignored';
    if (tooOld(payload.comment.created_at)) {
      return ignore({ delivery: id, createdAt: payload.comment.created_at }, 'ignored a command in a comment written over 7 days ago (a replayed delivery?)');
    }
    const trigger: Trigger = { kind: 'comment', commentId: payload.comment.id, commentBody: payload.comment.body };
    const job = intakeJob(delivery, payload, trigger);
    // On a pull request: the intake step finds whether it is a session's (its head is not in this payload).
    return queue(job && payload.issue.pull_request ? { ...job, pull: { number: payload.issue.number, url: payload.issue.html_url } } : job);
  };

  const reviewed = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    const review = (raw as { review?: { id?: unknown; body?: unknown; state?: unknown; submitted_at?: unknown } } | undefined)?.review;
    if (!pullWellFormed(raw) || typeof review?.id !== 'number' || (review.body !== null && review.body !== undefined && typeof review.body !== 'string')) {
      return ignore({ delivery: id }, 'ignored a pull_request_review.submitted delivery without the fields cldpd needs');
    }
    if (isBot(raw.sender) || !sameRepo(raw)) return 'ignored';
    if (tooOld(typeof review.submitted_at === 'string' ? review.submitted_at : undefined)) {
      return ignore({ delivery: id, submittedAt: review.submitted_at }, 'ignored a review submitted over 7 days ago (a replayed delivery?)');
    }
    // Its line comments are not in the payload: every review of a same-repository pull request
    // goes to the intake step, which reads them only when the pull request is a session's.
    const trigger: Trigger = { kind: 'review', reviewId: review.id, body: typeof review.body === 'string' ? review.body : '', state: typeof review.state === 'string' ? review.state : '' };
    return queue(pullIntakeJob(delivery, raw, trigger));
  };

  const reviewCommented = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    const comment = (raw as { comment?: { id?: unknown; body?: unknown; in_reply_to_id?: unknown; pull_request_review_id?: unknown; created_at?: unknown } } | undefined)?.comment;
    if (!pullWellFormed(raw) || typeof comment?.id !== 'number' || typeof comment.body !== 'string') {
      return ignore({ delivery: id }, 'ignored a pull_request_review_comment.created delivery without the fields cldpd needs');
    }
    // A line comment of a review is read with its review (pull_request_review.submitted); a
    // reply in a thread acts here, once per review whichever delivery comes first.
    if (isBot(raw.sender) || !sameRepo(raw) || typeof comment.in_reply_to_id !== 'number' || typeof comment.pull_request_review_id !== 'number') return 'ignored';
    if (!mayHoldCommand(comment.body)) return 'ignored';
    if (tooOld(typeof comment.created_at === 'string' ? comment.created_at : undefined)) {
      return ignore({ delivery: id, createdAt: comment.created_at }, 'ignored a command in a review comment written over 7 days ago (a replayed delivery?)');
    }
    return queue(pullIntakeJob(delivery, raw, { kind: 'review-comment', commentId: comment.id, reviewId: comment.pull_request_review_id, body: comment.body }));
  };

  /** Checks that completed with a failure on a same-repository pull request's head; the intake step decides (fixChecks). */
  const checksCompleted = async (delivery: Delivery): Promise<'accepted' | 'ignored'> => {
    const { deliveryId: id, payload: raw } = delivery;
    const p = raw as CheckSuitePayload | undefined;
    const suite = p?.check_suite;
    if (typeof suite?.id !== 'number' || typeof suite.head_sha !== 'string' || typeof p?.repository?.name !== 'string' || typeof p.repository.owner?.login !== 'string'
      || typeof p.installation?.id !== 'number' || typeof p.sender?.login !== 'string') {
      return ignore({ delivery: id }, 'ignored a check_suite.completed delivery without the fields cldpd needs');
    }
    if (!FAILED_CONCLUSIONS.has(String(suite.conclusion))) return 'ignored';
    // A session's pull request first, when GitHub lists several (a stranger may open one from the same branch).
    const listed = (Array.isArray(suite.pull_requests) ? suite.pull_requests : []).filter((pr) => typeof pr?.number === 'number' && pr.head?.repo?.id !== undefined && pr.head.repo.id === pr.base?.repo?.id);
    const found = listed.find((pr) => issueOfBranch(String(pr.head?.ref ?? '')) !== undefined) ?? listed[0];
    // None listed: the session's pull request may not be open yet (cldpd opens it after the run), so a session branch's checks go on.
    const branch = typeof suite.head_branch === 'string' && listed.length === 0 ? suite.head_branch : undefined;
    const branchIssue = branch !== undefined ? issueOfBranch(branch) : undefined;
    if (!found && branchIssue === undefined) return 'ignored';
    if (tooOld(typeof suite.updated_at === 'string' ? suite.updated_at : undefined)) {
      return ignore({ delivery: id, updatedAt: suite.updated_at }, 'ignored checks completed over 7 days ago (a replayed delivery?)');
    }
    const repoUrl = typeof p.repository.html_url === 'string' ? p.repository.html_url : `https://github.com/${p.repository.owner.login}/${p.repository.name}`;
    if (!found) {
      return queue({
        deliveryId: delivery.key,
        ...(delivery.deliveryId ? { githubDelivery: delivery.deliveryId } : {}),
        trigger: { kind: 'checks', sha: suite.head_sha, suiteId: suite.id, conclusion: String(suite.conclusion), branch: branch as string },
        issue: { installationId: p.installation.id, owner: p.repository.owner.login, repo: p.repository.name, number: branchIssue as number, url: `${repoUrl}/issues/${branchIssue}`, title: '', body: null },
        sender: { login: p.sender.login, type: typeof p.sender.type === 'string' ? p.sender.type : 'Bot' },
        receivedAt: Date.now(),
      });
    }
    const pull = { number: found.number as number, head: found.head };
    const url = `${repoUrl}/pull/${pull.number}`;
    return queue({
      deliveryId: delivery.key,
      ...(delivery.deliveryId ? { githubDelivery: delivery.deliveryId } : {}),
      trigger: { kind: 'checks', sha: suite.head_sha, suiteId: suite.id, conclusion: String(suite.conclusion) },
      issue: { installationId: p.installation.id, owner: p.repository.owner.login, repo: p.repository.name, number: pull.number, url, title: '', body: null },
      sender: { login: p.sender.login, type: typeof p.sender.type === 'string' ? p.sender.type : 'Bot' },
      receivedAt: Date.now(),
      pull: { number: pull.number, url, ...(typeof pull.head?.ref === 'string' ? { head: pull.head.ref } : {}), sameRepo: true },
    });
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
    if (delivery.event === 'pull_request_review' && action === 'submitted') return reviewed(delivery);
    if (delivery.event === 'pull_request_review_comment' && action === 'created') return reviewCommented(delivery);
    if (delivery.event === 'check_suite' && action === 'completed') return checksCompleted(delivery);
    return 'ignored';
  };
}
