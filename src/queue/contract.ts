import { issueKey, type AgentSummary, type RepoTokenSource, type SessionEvent } from '../core/index.js';

/** The repository and issue a job is about. */
export interface IssueRef {
  readonly installationId: number;
  readonly owner: string;
  readonly repo: string;
  readonly number: number;
  /** The issue's web URL. */
  readonly url: string;
}

/** Where a run's status comment is: the pull request it was asked for on, or its issue. */
export function reportTarget(command: Pick<RunCommand, 'issue' | 'reportOn'>): IssueRef {
  return command.reportOn ? { ...command.issue, number: command.reportOn.number, url: command.reportOn.url } : command.issue;
}

/** `owner.repo-number`, lowercase: the key of an issue in Redis (see the core's issueKey). */
export function issueKeyOf(issue: Pick<IssueRef, 'owner' | 'repo' | 'number'>): string {
  return issueKey(issue);
}

/** A trigger as the webhook handler saw it; the intake step checks and acts on it. */
export type Trigger =
  | { readonly kind: 'label'; readonly pod: string }
  /**
   * A comment that may hold a command, as written: the intake step finds the command (and
   * becomes one of the four kinds below) or ignores the comment.
   */
  | { readonly kind: 'comment'; readonly commentId: number; readonly commentBody: string }
  /** What a comment's command is; servers before `comment` queued these directly. */
  /** `framed`: the prompt is the whole message (a review's, failing checks'), not an instruction to frame as a comment's. */
  | { readonly kind: 'resume'; readonly prompt: string; readonly commentId: number; readonly commentBody: string; readonly framed?: boolean; readonly note?: string }
  | { readonly kind: 'stop'; readonly commentId: number }
  | { readonly kind: 'status'; readonly commentId: number }
  | { readonly kind: 'invalid'; readonly problem: string; readonly commentId: number }
  /** The issue was closed (`at`: when): its sessions are removed after the retention period, unless it is reopened first. */
  | { readonly kind: 'closed'; readonly at: number }
  /** The issue was reopened (`at`: when): nothing of it is removed. */
  | { readonly kind: 'reopened'; readonly at: number }
  /** The issue was moved to another repository: it is reached from there from now on. */
  | { readonly kind: 'transferred'; readonly to: Pick<IssueRef, 'owner' | 'repo' | 'number' | 'url'> }
  /**
   * A review submitted on a pull request (its body as written): the intake step reads its
   * line comments too, and resumes the session once when any part carries `/cldpd resume`.
   */
  | { readonly kind: 'review'; readonly reviewId: number; readonly body: string; readonly state: string }
  /** A reply in a review thread that may hold a command (as written); it belongs to review `reviewId`. */
  | { readonly kind: 'review-comment'; readonly commentId: number; readonly reviewId: number; readonly body: string }
  /**
   * Checks on commit `sha` completed with a failure: with `fixChecks`, the session may be
   * resumed to fix them. `branch`: the session branch they ran on, when GitHub listed no pull
   * request (it was not open yet); `later`: how many times they were put off while a run went.
   */
  | { readonly kind: 'checks'; readonly sha: string; readonly suiteId: number; readonly conclusion: string; readonly branch?: string; readonly later?: number };

/**
 * The pull request a delivery is about (a comment, review or check there). The intake step
 * finds the issue whose session it is (recorded by cldpd, or its head `cldpd/issue-<n>` in the
 * same repository) and ignores the delivery quietly when it is no session's.
 */
export interface PullTarget {
  readonly number: number;
  readonly url: string;
  /** Its head branch, when the delivery says it (a comment's does not). */
  readonly head?: string;
  /** Whether its head is in the same repository (a fork's never is a session's). */
  readonly sameRepo?: boolean;
}

/**
 * Job of the intake queue, one per accepted webhook delivery. Keyed by what the delivery's
 * signature covers, so a redelivery, or a replay of a signed body under a new delivery id,
 * makes no second job and no second run.
 */
export interface IntakeJob {
  /** The SHA-256 of the delivery's signed body (hex). */
  readonly deliveryId: string;
  /** GitHub's X-GitHub-Delivery id, for logs (not signed, so never a key). */
  readonly githubDelivery?: string;
  readonly trigger: Trigger;
  readonly issue: IssueRef & { readonly title: string; readonly body: string | null; /** When the issue was closed, when the delivery says it is. */ readonly closedAt?: number };
  readonly sender: { readonly login: string; readonly type: string };
  readonly receivedAt: number;
  /** Set when the delivery is about a pull request: `issue` is then the pull request, until the intake step finds the session's issue. */
  readonly pull?: PullTarget;
}

/**
 * One run an issue asked for: a start (new session) or a resume. Queued per issue and run
 * strictly in order, one at a time, on the host that owns the issue's session.
 */
export interface RunCommand {
  /** Position in the issue's sequence of commands; increases by one per command. */
  readonly seq: number;
  readonly kind: 'start' | 'resume';
  readonly issueKey: string;
  readonly issue: IssueRef;
  readonly pod: string;
  /** Chosen at intake for a start (so a retried job finds it); the issue's session for a resume. */
  readonly sessionId: string;
  /** The issue context (start) or the resume instruction. */
  readonly prompt: string;
  /** The status comment this run edits. */
  readonly statusCommentId: number;
  /**
   * The session's pull request the run was asked for on (a comment or review there): its
   * status comment is there, not on the issue. Absent: the issue.
   */
  readonly reportOn?: { readonly number: number; readonly url: string };
  readonly requestedBy: string;
  readonly enqueuedAt: number;
  /** A line its status comment keeps while it waits and runs, such as where the issue's earlier session was. */
  readonly note?: string;
  /**
   * Set on a resume cldpd queued itself to continue a session the model provider refused
   * for quota or rate: it runs no sooner than `notBefore`, and `waits` is the history so far.
   */
  readonly providerWait?: ProviderWait;
}

/** The waits for a model provider's limit of one session's runs, oldest first, and when the next may run. */
export interface ProviderWait {
  readonly notBefore: number;
  readonly waits: ReadonlyArray<{ readonly at: number; readonly resetAt: number; readonly kind: 'usage' | 'rate' }>;
}

/**
 * A control job for the host that owns a session: acts at once, never waits behind runs.
 * `stop` stops the session's running container; `message` offers a queued resume to the
 * session's running agent as its next user message (the queued command runs as usual when
 * the agent is not taking input).
 */
export type ControlJob =
  | { readonly kind: 'stop'; readonly issueKey: string; readonly sessionId: string; readonly seq: number }
  | RetireJob
  | { readonly kind: 'message'; readonly issueKey: string; readonly sessionId: string; readonly seq: number; readonly command: RunCommand };

/**
 * Removes a closed issue's sessions for good once its retention period is over (see
 * RunWorker): only if it is still closed since `closedAt`. On the host that owns the issue
 * (its control queue), or any worker when it has none.
 */
export interface RetireJob {
  readonly kind: 'retire';
  readonly issueKey: string;
  readonly issueUrl: string;
  readonly closedAt: number;
  /** The issue, to ask GitHub whether it is still closed before anything is removed (a reopen's delivery may have been lost). */
  readonly issue?: IssueRef;
  /** The retention period it was scheduled with: a session used after the close is kept that long after its last use. */
  readonly retentionMs?: number;
  /** How many times it was looked at again (a run going, a session running, an error): each time an hour later, at most MAX_RETIRE_RECHECKS. */
  readonly recheck?: number;
}

/** What a run produced on GitHub, found through the API after it (never from the agent's words). */
export interface RunWork {
  /** The branch the run was told to push to; its work is looked for there and on branches named after it. */
  readonly watched: string;
  /** Branches created or moved while the run held its token, with their head commit after it (`sha`). */
  readonly branches: ReadonlyArray<{ readonly name: string; readonly url: string; readonly sha?: string }>;
  /** Pull requests whose head is one of those branches, with the one cldpd opened after the run (see PullRequestOpener). */
  readonly pulls: ReadonlyArray<WorkPull>;
  /** Branches whose pull request cldpd meant to open and could not, each with why in words (GitHub's refusal, a setting it could not read). */
  readonly notOpened?: ReadonlyArray<{ readonly branch: string; readonly reason: string }>;
}

/** A pull request of a run's work. */
export interface WorkPull {
  readonly number: number;
  readonly title: string;
  readonly url: string;
  /** `open`, `closed` or `merged`. */
  readonly state: string;
  /** Its head branch: one of the run's. */
  readonly branch: string;
  /** The branch it merges into, when GitHub said. */
  readonly base?: string;
  readonly draft?: boolean;
  /** cldpd opened it after this run. */
  readonly openedByCldpd?: boolean;
}

/**
 * What follows a run that pushed: opens a pull request for each of its branches that has no
 * open one (as `.github/cldpd.yml` `pullRequest` and the pod's `github` permissions allow),
 * and records every pull request of the work as the session's. Owned by the queue,
 * implemented by the GitHub side.
 */
export interface PullRequestOpener {
  /**
   * `work` with the pull request it opened added to `pulls`, and what it could not open in
   * `notOpened`. Never throws: a failure is said in the result (and logged), never a failed
   * run. Safe to call again for the same work (a retried job): it looks before it opens, so a
   * branch never gets two.
   */
  afterPush(command: RunCommand, outcome: RunOutcome, work: RunWork): Promise<RunWork>;
}

/** A source of the run's repository token that can also say, after the run, what it pushed. */
export interface RunRepoAccess extends RepoTokenSource {
  /** What changed on GitHub since the first token was minted; undefined when none was. */
  produced(): Promise<RunWork | undefined>;
}

/**
 * How a run ended, for its final status edit. `delivered`: a resume that went into the
 * session's running agent as its next message instead of running on its own.
 */
export interface RunOutcome {
  /** `waiting`: the model provider refused for quota or rate; the session continues by itself at `waiting.resumeAt`. */
  readonly kind: 'exited' | 'error' | 'cancelled' | 'delivered' | 'waiting';
  readonly sessionId: string;
  readonly terminal?: Extract<SessionEvent, { type: 'container.exited' | 'error' }>;
  readonly agent?: AgentSummary;
  /** The last lines of output, oldest first. */
  readonly lastLines?: readonly string[];
  /** Why it was cancelled or failed before running, in words. */
  readonly message?: string;
  readonly startedAt?: number;
  /** What the run pushed, when it had a token to push with. */
  readonly work?: RunWork;
  /** For `waiting`: when the session continues, and which wait this is of how many allowed. */
  readonly waiting?: { readonly resumeAt: number; readonly wait: number; readonly of: number; readonly kind: 'usage' | 'rate' };
  /** A line for the run's status comment (the provider's refusals, when it ends after too many). */
  readonly note?: string;
}

/** The live report of one run: its status comment, edited as the run moves. */
export interface RunReport {
  /** Called with every event of the run, in order. Never blocks: edits are coalesced and throttled. */
  event(event: SessionEvent, agent: AgentSummary): void;
  /** The final edit. Called exactly once per run, whatever happened; resolves once written or given up. */
  finish(outcome: RunOutcome): Promise<void>;
}

/** Where runs report to (the issue's status comments); owned by the queue, implemented by the GitHub side. */
export interface Reporter {
  forRun(command: RunCommand): RunReport;
}
