import type { Logger } from 'pino';
import { keepStart } from '../core/index.js';
import type { IntakeJob, IssueRef, Trigger } from '../queue/contract.js';
import type { IntakeStores } from '../queue/issue-stores.js';
import type { Producer } from '../queue/producer.js';
import { buildChecksPrompt, failedChecks } from './check-failures.js';
import { commandTrigger } from './commands.js';
import type { OctokitLike } from './comments-api.js';
import { mayTrigger, roleOf, type PermissionAnswer } from './permissions.js';
import type { RepoSettings } from './repo-settings.js';
import { buildReviewPrompt, readReview, reviewCommand, type ReviewRead } from './review-prompt.js';
import { statusOf } from './status-of.js';

/** How many times failing checks are looked at again while a run of their issue goes (about 5 h in all). */
const CHECKS_LATER = 12;

/** The steps of the intake a review or failing checks end in (see Intake). */
export interface IntakeSteps {
  /** The sender's permission on the repository (refusals remembered a few minutes). */
  permission(issue: IssueRef, login: string): Promise<PermissionAnswer>;
  /** The repository's `.github/cldpd.yml`. */
  settings(issue: IssueRef): Promise<RepoSettings>;
  /** Handles a delivery as a trigger of its own (a review becomes a resume, a stop, …). */
  handle(job: IntakeJob): Promise<string>;
  /** Queues a resume of the issue's session with `message` (and a line its status comment keeps). */
  resume(job: IntakeJob, message: string, key: string, note?: string): Promise<string>;
}

/** What the pull request part of the intake needs. */
export interface PullIntakeOptions {
  readonly state: IntakeStores;
  readonly producer: Pick<Producer, 'intake'>;
  readonly octokitFor: (installationId: number) => Promise<OctokitLike>;
  readonly logger: Logger;
  readonly steps: IntakeSteps;
}

/**
 * The intake of what happens on a session's pull request besides comments: reviews (read
 * whole, acted on once) and failing checks (`fixChecks`). Deliveries reach it already moved
 * onto the session's issue (see onSessionIssue); what they become ends in the intake's steps.
 */
export class PullIntake {
  constructor(private readonly options: PullIntakeOptions) {}

  /**
   * A review on a session's pull request (or a reply in one of its threads): acted on once per
   * review when its body carries a command or a line comment carries `/cldpd resume` (which
   * delivery of the review comes first does not matter); a resume's message is the whole
   * review. The reviewer's permission is asked first: a review by someone without write access
   * is never read (a refusal is said only when the delivery's own text holds a command).
   */
  async review(job: IntakeJob, trigger: Extract<Trigger, { kind: 'review' | 'review-comment' }>): Promise<string> {
    const pull = job.pull;
    if (!pull) return 'ignored: no pull request';
    const commentId = trigger.kind === 'review' ? trigger.reviewId : trigger.commentId;
    if (!mayTrigger(job.sender, roleOf(await this.options.steps.permission(job.issue, job.sender.login)))) {
      const own = commandTrigger(keepStart(trigger.body, 65_536), commentId);
      if (!own || (trigger.kind === 'review-comment' && own.kind !== 'resume')) return 'ignored: a review without write access';
      // The command as written: the usual path refuses it, once per person and issue.
      return this.options.steps.handle({ ...job, trigger: own });
    }
    const octokit = await this.options.octokitFor(job.issue.installationId);
    let read: ReviewRead;
    try {
      read = await readReview(octokit, { owner: job.issue.owner, repo: job.issue.repo, number: pull.number }, trigger.reviewId);
    } catch (err) {
      if (statusOf(err) === 404) return 'ignored: the review is gone';
      throw err;
    }
    const command = reviewCommand(read);
    if (!command) return 'ignored: no command';
    if (!(await this.options.state.claimFor(`review:${job.issue.owner}/${job.issue.repo}#${trigger.reviewId}`.toLowerCase(), job.deliveryId))) {
      return 'ignored: this review was acted on already';
    }
    const next: Trigger = command.kind === 'resume'
      ? { kind: 'resume', prompt: buildReviewPrompt(read, { number: pull.number, head: pull.head }), commentId, commentBody: '', framed: true }
      : command.kind === 'invalid' ? { kind: 'invalid', problem: command.problem, commentId } : { kind: command.kind, commentId };
    return this.options.steps.handle({ ...job, trigger: next });
  }

  /**
   * Checks that failed on a session's pull request (or on a session's branch before its pull
   * request was opened): with `fixChecks` in the repository's settings, the session resumes with
   * the failures, once per commit and at most `fixChecks` times per pull request, only on the
   * commit its agent pushed last. While a run of the issue goes or waits, the delivery is looked
   * at again later (the run may push again, or record its commit). Checks on a commit a person
   * pushed (the pull request's head, not the agent's) stop the automatic fixes until a run of the
   * session pushes again.
   */
  async fixChecks(job: IntakeJob, trigger: Extract<Trigger, { kind: 'checks' }>): Promise<string> {
    const { state, logger } = this.options;
    const key = await state.keyFor(job.issue);
    const settings = await this.options.steps.settings(job.issue).catch((err: unknown) => {
      if (statusOf(err) !== undefined) throw err;
      logger.warn({ issue: key, err: (err as Error).message }, 'failing checks not acted on: the repository\'s settings cannot be read');
      return undefined;
    });
    if (!settings || settings.fixChecks === 0) return 'ignored: fixChecks is off';
    const issue = await state.get(key);
    if (!issue.sessionId) return 'ignored: no session';
    if (issue.running > 0 || (await state.pending(key)) > 0) return this.checksLater(job, trigger);
    const link = job.pull
      ? await state.pullOf(key, { owner: job.issue.owner, repo: job.issue.repo, number: job.pull.number })
      : (await state.pullsOf(key)).find((l) => l.head === trigger.branch);
    if (!link?.agentSha) return 'ignored: no commit of the agent is known on this pull request';
    const ref = { owner: job.issue.owner, repo: job.issue.repo, number: link.number };
    if (trigger.sha !== link.agentSha) {
      const octokit = await this.options.octokitFor(job.issue.installationId);
      const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner: ref.owner, repo: ref.repo, pull_number: ref.number });
      const headSha = (data as { head?: { sha?: unknown } }).head?.sha;
      if (headSha !== trigger.sha) return 'ignored: checks of an earlier commit';
      await state.stopCheckFixes(key, ref, link.agentSha);
      logger.info({ issue: key, pull: ref.number, sha: trigger.sha }, 'a person pushed to the session\'s pull request: its failing checks are not fixed automatically until a run of the session pushes again');
      return 'ignored: a person pushed; automatic fixes stop';
    }
    const claim = await state.claimCheckFix(key, ref, trigger.sha, settings.fixChecks, job.deliveryId);
    if ('refused' in claim) return `ignored: fix ${claim.refused}`;
    const octokit = await this.options.octokitFor(job.issue.installationId);
    const checks = await failedChecks(octokit, ref, trigger.sha);
    const message = buildChecksPrompt(checks, { number: ref.number, head: link.head, sha: trigger.sha }, { n: claim.fix, of: settings.fixChecks });
    const names = checks.slice(0, 5).map((c) => c.name).join(', ') || 'checks';
    const note = `Started because checks failed on \`${trigger.sha.slice(0, 7)}\` (${names}): automatic fix ${claim.fix} of ${settings.fixChecks} for this pull request.`;
    const onPull: IntakeJob = { ...job, pull: { number: link.number, url: link.url, head: link.head, sameRepo: true } };
    return this.options.steps.resume({ ...onPull, trigger: { kind: 'resume', prompt: message, commentId: trigger.suiteId, commentBody: '', framed: true, note } }, message, key, note);
  }

  /** Queues failing checks to be looked at again once the issue's run may have ended: a minute, then twice as long each time, at most CHECKS_LATER times. */
  private async checksLater(job: IntakeJob, trigger: Extract<Trigger, { kind: 'checks' }>): Promise<string> {
    const later = (trigger.later ?? 0) + 1;
    if (later > CHECKS_LATER) return 'ignored: a run of the issue went on too long to look at these checks again';
    const base = job.deliveryId.replace(/:later\d+$/, '');
    await this.options.producer.intake({ ...job, deliveryId: `${base}:later${later}`, trigger: { ...trigger, later } }, Math.min(30 * 60_000, 60_000 * 2 ** (later - 1)));
    return `deferred: a run of the issue goes or waits (look ${later} of ${CHECKS_LATER})`;
  }
}
