import type { ApplicationFunction } from 'probot';
import type { IntakeJob, Trigger } from '../queue/contract.js';
import { parseCommand, podFromLabel } from './commands.js';
import { isBot } from './permissions.js';

/** Where accepted deliveries go: the intake queue. */
export interface IntakeSink {
  /** Queues the delivery; a redelivery (same delivery id) queues nothing more. */
  intake(job: IntakeJob): Promise<void>;
}

interface IssuePayload {
  issue: { number: number; html_url: string; title: string; body?: string | null; pull_request?: unknown };
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

function intakeJob(id: string, payload: IssuePayload, trigger: Trigger): IntakeJob | undefined {
  if (!payload.installation) return undefined;
  return {
    deliveryId: id,
    trigger,
    issue: {
      installationId: payload.installation.id,
      owner: payload.repository.owner.login,
      repo: payload.repository.name,
      number: payload.issue.number,
      url: payload.issue.html_url,
      title: payload.issue.title,
      body: payload.issue.body ?? null,
    },
    sender: { login: payload.sender.login, type: payload.sender.type },
    receivedAt: Date.now(),
  };
}

/** A delivery as both Probot's and @octokit/webhooks' handlers receive it. */
export interface Delivery {
  readonly id: string;
  readonly payload: unknown;
}

/** Subscribes a handler to one webhook event: Probot's `app.on` and @octokit/webhooks' `on` both fit. */
export type Subscribe = (event: 'issues.labeled' | 'issue_comment.created', handler: (delivery: Delivery) => Promise<void>) => void;

/** Where a malformed delivery is reported. */
export interface WarnLog {
  warn(fields: object, message: string): void;
}

/**
 * The webhook side of cldpd: guard, parse, enqueue — nothing else runs on the request path
 * (no API calls, no Docker). A label `cldpd:<pod>` on an issue and a `/cldpd` command in a
 * new issue comment become intake jobs keyed by the delivery id; everything else, and
 * anything a bot sends (the app's own comments first), is ignored quietly.
 */
export function registerHandlers(on: Subscribe, sink: IntakeSink, log: WarnLog): void {
  on('issues.labeled', async ({ id, payload: raw }) => {
    if (!wellFormed(raw)) return log.warn({ delivery: id }, 'ignored an issues.labeled delivery without the fields cldpd needs');
    const payload = raw as IssuePayload & { label?: { name: string } };
    const pod = podFromLabel(payload.label?.name);
    if (!pod || payload.issue.pull_request || isBot(payload.sender)) return;
    const job = intakeJob(id, payload, { kind: 'label', pod });
    if (job) await sink.intake(job);
  });

  on('issue_comment.created', async ({ id, payload: raw }) => {
    const comment = (raw as { comment?: { id?: unknown; body?: unknown } } | undefined)?.comment;
    if (!wellFormed(raw) || typeof comment?.id !== 'number' || typeof comment.body !== 'string') {
      return log.warn({ delivery: id }, 'ignored an issue_comment.created delivery without the fields cldpd needs');
    }
    const payload = raw as IssuePayload & { comment: { id: number; body: string } };
    if (payload.issue.pull_request || isBot(payload.sender)) return;
    const command = parseCommand(payload.comment.body);
    if (!command) return;
    const commentId = payload.comment.id;
    const trigger: Trigger = command.kind === 'resume'
      ? { kind: 'resume', prompt: command.prompt, commentId, commentBody: payload.comment.body }
      : command.kind === 'invalid'
        ? { kind: 'invalid', problem: command.problem, commentId }
        : { kind: command.kind, commentId };
    const job = intakeJob(id, payload, trigger);
    if (job) await sink.intake(job);
  });
}

/** The same handlers as a Probot app (used where Probot's own server runs, e.g. through a smee.io proxy). */
export function cldpdApp(sink: IntakeSink): ApplicationFunction {
  return (app) => registerHandlers((event, handler) => app.on(event, (context) => handler({ id: context.id, payload: context.payload })), sink, app.log);
}
