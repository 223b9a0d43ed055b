import { issueKeyOf, type IntakeJob, type PullTarget } from '../queue/contract.js';
import type { IntakeStores } from '../queue/issue-stores.js';
import type { OctokitLike } from './comments-api.js';
import { statusOf } from './status-of.js';

/** A session's branch: `cldpd/issue-<n>`, or one named after it (`cldpd/issue-<n>-…`, `cldpd/issue-<n>/…`). */
const SESSION_BRANCH = /^cldpd\/issue-([1-9][0-9]{0,9})(?:[-/].*)?$/;

/** The issue number a session branch is named after; undefined for any other branch. */
export function issueOfBranch(ref: string): number | undefined {
  const match = SESSION_BRANCH.exec(ref);
  return match ? Number(match[1]) : undefined;
}

/** The web URL of issue `number` beside pull request `pullUrl` (same repository). */
export function issueUrlBeside(pullUrl: string, number: number): string {
  return pullUrl.replace(/\/pull\/\d+(?:[/?#].*)?$/, `/issues/${number}`);
}

/** What finding a pull request's session needs. */
export interface PullSessionDeps {
  readonly state: Pick<IntakeStores, 'issueOfPull' | 'pullOf' | 'keyFor' | 'get'>;
  readonly octokit: () => Promise<OctokitLike>;
}

/**
 * The delivery `job` (about pull request `job.pull`) moved onto the issue whose session the
 * pull request is: one cldpd recorded for a session, or one whose head is `cldpd/issue-<n>`
 * (or a branch named after it) in the same repository, when issue n has a session. `issue`
 * becomes that issue, `pull` keeps the pull request (with its head). Undefined when the pull
 * request is no session's: the delivery is then ignored quietly.
 */
export async function onSessionIssue(job: IntakeJob, deps: PullSessionDeps): Promise<IntakeJob | undefined> {
  const pull = job.pull;
  if (!pull) return job;
  const ref = { owner: job.issue.owner, repo: job.issue.repo, number: pull.number };
  let head = pull.head;
  let number: number | undefined;
  let key = await deps.state.issueOfPull(ref);
  if (key) {
    const link = await deps.state.pullOf(key, ref);
    head ??= link?.head;
    // The issue as recorded beside the pull request; an older record has only the key, whose
    // number is this repository's only when the key is this repository's (not after a transfer).
    const fromKey = Number(/-(\d+)$/.exec(key)?.[1]);
    number = link?.issue?.number ?? (issueKeyOf({ ...ref, number: fromKey }) === key ? fromKey : undefined);
  } else {
    let sameRepo = pull.sameRepo;
    if (head === undefined || sameRepo === undefined) {
      let data: unknown;
      try {
        ({ data } = await (await deps.octokit()).request('GET /repos/{owner}/{repo}/pulls/{pull_number}', { owner: ref.owner, repo: ref.repo, pull_number: pull.number }));
      } catch (err) {
        if (statusOf(err) === 404) return undefined; // gone, or not a pull request after all
        throw err;
      }
      const pr = data as { head?: { ref?: string; repo?: { id?: number } | null }; base?: { repo?: { id?: number } | null } };
      head = typeof pr.head?.ref === 'string' ? pr.head.ref : undefined;
      sameRepo = pr.head?.repo?.id !== undefined && pr.head.repo.id === pr.base?.repo?.id;
    }
    if (!sameRepo || head === undefined) return undefined;
    number = issueOfBranch(head);
    if (number === undefined || number === pull.number) return undefined;
    key = await deps.state.keyFor({ ...ref, number });
  }
  if (!Number.isSafeInteger(number) || !number) return undefined;
  const record = await deps.state.get(key);
  if (!record.sessionId && !record.forgotten) return undefined;
  const target: PullTarget = { ...pull, ...(head !== undefined ? { head } : {}), sameRepo: true };
  return { ...job, issue: { ...job.issue, number, url: issueUrlBeside(pull.url, number as number), title: '', body: null }, pull: target };
}
