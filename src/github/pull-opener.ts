import type { Logger } from 'pino';
import { messageOf, shorten, stripEscapes, toWellFormed } from '../core/index.js';
import type { PullRequestOpener, RunCommand, RunOutcome, RunWork, WorkPull } from '../queue/contract.js';
import type { PullRequestLinks } from '../queue/pull-request-links.js';
import type { OctokitLike } from './comments-api.js';
import { keepMarkdownEnd, safeMarkdown } from './markdown-safe.js';
import { readRepoSettings, type RepoSettings } from './repo-settings.js';
import { sanitizeUntrusted } from './sanitize.js';
import { statusOf } from './status-of.js';

/** GitHub refuses pull request titles over 256 characters. */
export const MAX_PULL_TITLE_CHARS = 256;
/** The agent's summary in a pull request's description, at most (GitHub takes 65,536 characters; the rest is cldpd's). */
export const MAX_PULL_SUMMARY_CHARS = 20_000;
/** Pull requests opened after one run, at most: its branches beyond these stay bare branches (the status comment lists them). */
export const MAX_PULLS_OPENED_PER_RUN = 3;

/** The hidden first line of a description cldpd wrote: which issue's session the pull request is. */
export function pullBodyMarker(issueKey: string): string {
  return `<!-- cldpd:pull ${issueKey} -->`;
}

/**
 * The run's branches that have no open pull request, in the order they are opened: the
 * watched branch (`cldpd/issue-<n>`) first, then those named after it by name; at most
 * {@link MAX_PULLS_OPENED_PER_RUN}.
 */
export function branchesWithoutPull(work: RunWork): string[] {
  const open = new Set(work.pulls.filter((p) => p.state === 'open').map((p) => p.branch));
  const names = work.branches.map((b) => b.name).filter((name) => !open.has(name));
  names.sort((a, b) => (a === work.watched ? -1 : b === work.watched ? 1 : a < b ? -1 : a > b ? 1 : 0));
  return names.slice(0, MAX_PULLS_OPENED_PER_RUN);
}

/** Whether a pod's runs may have pull requests opened for them: its pod.json `github` asks `pull_requests: write`. */
export function mayOpenPulls(permissions: Readonly<Record<string, string>>): boolean {
  return permissions.pull_requests === 'write';
}

/** What cldpd does after a run, given what it pushed, the pod's permissions and the repository's `pullRequest` setting. */
export type PullDecision =
  | { readonly kind: 'nothing pushed' }
  /** Every branch the run pushed has an open pull request already. */
  | { readonly kind: 'already open' }
  /** The pod's `github` does not ask `pull_requests: write`. */
  | { readonly kind: 'not permitted' }
  /** `.github/cldpd.yml` says `pullRequest: off`. */
  | { readonly kind: 'off' }
  | { readonly kind: 'open'; readonly branches: readonly string[]; readonly draft: boolean };

/**
 * Pure: whether to open pull requests after a run, and which. The setting is asked last: the
 * caller may leave it at its default when an earlier answer settles it (nothing pushed, all
 * open already, not permitted), and read `.github/cldpd.yml` only when it matters.
 */
export function decidePull(input: { readonly work: RunWork; readonly permissions: Readonly<Record<string, string>>; readonly setting: RepoSettings['pullRequest'] }): PullDecision {
  if (input.work.branches.length === 0) return { kind: 'nothing pushed' };
  const branches = branchesWithoutPull(input.work);
  if (branches.length === 0) return { kind: 'already open' };
  if (!mayOpenPulls(input.permissions)) return { kind: 'not permitted' };
  if (input.setting === 'off') return { kind: 'off' };
  return { kind: 'open', branches, draft: input.setting === 'draft' };
}

/** Pure: a pull request's title from its issue's: hidden text removed, one line, at most {@link MAX_PULL_TITLE_CHARS}; `Issue #<n>` when nothing is left. */
export function pullRequestTitle(issueTitle: string | null | undefined, issueNumber: number): string {
  const line = sanitizeUntrusted(stripEscapes(issueTitle ?? '')).replace(/\s+/g, ' ').trim();
  return toWellFormed(shorten(line || `Issue #${issueNumber}`, MAX_PULL_TITLE_CHARS));
}

/** What a pull request's description is made of. */
export interface PullBodyInput {
  readonly issueKey: string;
  readonly issueNumber: number;
  readonly sessionId: string;
  /** The agent's final answer, redacted already; absent when the run gave none. */
  readonly summary?: string | undefined;
  /** The session page (a signed link); absent when there is no public address for it. */
  readonly sessionUrl?: string | undefined;
}

/**
 * Pure: the description of a pull request cldpd opens. Its hidden marker, the agent's
 * summary (defused like a status comment's answer: no mention notifies, no `#n` links or
 * closes anything, no image loads, no raw HTML; its end kept within
 * {@link MAX_PULL_SUMMARY_CHARS}), `Closes #<n>` (the only live reference, cldpd's own), the
 * session page and how to go on from the pull request. cldpd writes it once, when it opens
 * the pull request, and never edits it: what people write there stays theirs.
 */
export function pullRequestBody(input: PullBodyInput): string {
  const parts = [pullBodyMarker(input.issueKey)];
  const summary = input.summary?.trim();
  if (summary) {
    const kept = keepMarkdownEnd(safeMarkdown(summary), MAX_PULL_SUMMARY_CHARS);
    parts.push(`${kept.cut > 0 ? `_…${kept.cut} earlier characters cut._\n\n` : ''}${kept.text}`);
  } else {
    parts.push('_The agent gave no summary of this run; the session page shows what it did._');
  }
  parts.push(`Closes #${input.issueNumber}`);
  const session = input.sessionUrl ? `[session \`${input.sessionId}\`](${input.sessionUrl.replace(/[()\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)})` : `session \`${input.sessionId}\``;
  parts.push([
    '---',
    `Opened by cldpd from the work of ${session}.`,
    'To go on, comment `/cldpd resume <what to do next>` on this pull request, or submit a review whose body or line comments carry `/cldpd resume`: the agent continues the same session and pushes to this branch.',
    'cldpd does not edit this description again: change it as you like.',
  ].join('  \n'));
  return toWellFormed(parts.join('\n\n'));
}

/** What opening the session's pull requests needs. */
export interface PullOpenerOptions {
  /** An Octokit authenticated as the installation: reads the settings, the issue and the repository, and opens the pull request. */
  readonly octokitFor: (installationId: number) => Promise<OctokitLike>;
  readonly links: Pick<PullRequestLinks, 'linkPull' | 'pullsOf'>;
  /** The pod's pod.json `github` permissions (what its runs' tokens are minted with). */
  readonly podPermissions: (pod: string) => Promise<Readonly<Record<string, string>>>;
  /** Hides the pod's secrets in what the agent wrote (as in its status comments). */
  readonly redactorFor: (pod: string) => Promise<(text: string) => string>;
  /** The session page's link; none in the description when absent. */
  readonly liveLink?: ((sessionId: string) => string) | undefined;
  readonly logger: Logger;
  readonly now?: () => number;
}

/** GitHub's answer to a pull request, as far as it is used here. */
interface ApiPull {
  readonly number: number;
  readonly title: string;
  readonly html_url: string;
  readonly state: string;
  readonly draft?: boolean;
  readonly merged_at?: string | null;
  readonly base?: { readonly ref?: string };
  readonly body?: string | null;
  readonly user?: { readonly login?: string; readonly type?: string } | null;
}

function workPull(p: ApiPull, branch: string, openedByCldpd: boolean): WorkPull {
  return { number: p.number, title: p.title, url: p.html_url, state: p.merged_at ? 'merged' : p.state, branch, ...(p.base?.ref ? { base: p.base.ref } : {}), ...(p.draft ? { draft: true } : {}), ...(openedByCldpd ? { openedByCldpd: true } : {}) };
}

/** GitHub's refusal in words, with what to do where cldpd knows it. */
function refusal(err: unknown): string {
  const status = statusOf(err);
  const said = shorten(messageOf(err).replace(/\s+/g, ' '), 300);
  if (status === 403 || status === 401) return `GitHub refused (${status}: ${said}): the GitHub App needs the "Pull requests" permission (read and write), accepted on the installation`;
  if (status === undefined) return `it could not be asked of GitHub (${said})`;
  return `GitHub refused (${status}: ${said})`;
}

/**
 * The {@link PullRequestOpener} of the GitHub side: after a run that pushed, for each of its
 * branches without an open pull request (see {@link decidePull}), it looks once more for an
 * open one from that branch, then opens one (`POST /repos/{owner}/{repo}/pulls`): a draft
 * unless `.github/cldpd.yml` says `pullRequest: ready`; base the base of the issue's earlier
 * pull request, else the repository's default branch; title the issue's; description
 * {@link pullRequestBody}. A 422 because one exists already (a retried job, a person quicker)
 * finds it instead; a repository without drafts gets it ready for review. Every pull request
 * of the work, found or opened, is then recorded as the session's (PullRequestLinks), with
 * the head commit the run left on its branch. Never throws.
 */
export class PullOpener implements PullRequestOpener {
  constructor(private readonly options: PullOpenerOptions) {}

  async afterPush(command: RunCommand, outcome: RunOutcome, work: RunWork): Promise<RunWork> {
    const log = this.options.logger.child({ issue: command.issueKey, session: command.sessionId, seq: command.seq });
    let result = work;
    try {
      result = await this.open(command, outcome, work, log);
    } catch (err) {
      log.warn({ err: messageOf(err) }, 'could not open the pull request of what the run pushed');
      result = { ...work, notOpened: branchesWithoutPull(work).map((branch) => ({ branch, reason: refusal(err) })) };
    }
    await this.record(command, result).catch((err: unknown) => log.warn({ err: messageOf(err) }, 'could not record the session\'s pull requests'));
    return result;
  }

  private async open(command: RunCommand, outcome: RunOutcome, work: RunWork, log: Logger): Promise<RunWork> {
    const { issue } = command;
    const permissions = await this.options.podPermissions(command.pod).catch((err: unknown) => {
      log.warn({ err: messageOf(err), pod: command.pod }, 'could not read the pod\'s permissions; no pull request is opened');
      return {};
    });
    let decision = decidePull({ work, permissions, setting: 'draft' });
    if (decision.kind !== 'open') return work;
    const octokit = await this.options.octokitFor(issue.installationId);
    let settings: RepoSettings;
    try {
      settings = await readRepoSettings(octokit, issue);
    } catch (err) {
      const reason = statusOf(err) === undefined ? messageOf(err) : `cldpd could not read .github/cldpd.yml: ${refusal(err)}`;
      return { ...work, notOpened: decision.branches.map((branch) => ({ branch, reason })) };
    }
    decision = decidePull({ work, permissions, setting: settings.pullRequest });
    if (decision.kind !== 'open') return work;

    const pulls = [...work.pulls];
    const notOpened = [...(work.notOpened ?? [])];
    let fields: { title: string; base: string; body: string } | undefined;
    for (const branch of decision.branches) {
      try {
        const found = await this.openPull(octokit, command, branch);
        if (found) {
          pulls.push(found);
          continue;
        }
        fields ??= await this.fields(octokit, command, outcome);
        const opened = await this.create(octokit, command, branch, fields, decision.draft);
        log.info({ pull: opened.number, branch, draft: opened.draft ?? false }, opened.openedByCldpd ? 'opened the pull request of what the run pushed' : 'found the pull request of what the run pushed');
        pulls.push(opened);
      } catch (err) {
        log.warn({ err: messageOf(err), branch }, 'could not open the pull request of what the run pushed');
        notOpened.push({ branch, reason: refusal(err) });
      }
    }
    return { ...work, pulls, ...(notOpened.length > 0 ? { notOpened } : {}) };
  }

  /** The open pull request from `branch` in the issue's repository, if there is one. */
  private async openPull(octokit: OctokitLike, command: RunCommand, branch: string): Promise<WorkPull | undefined> {
    const { owner, repo } = command.issue;
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls', { owner, repo, state: 'open', head: `${owner}:${branch}`, per_page: 1 });
    const [found] = data as ApiPull[];
    // One cldpd opened for this issue before (a retried job whose first try opened it) is still cldpd's.
    const ours = found?.user?.type === 'Bot' && (found.body ?? '').startsWith(pullBodyMarker(command.issueKey));
    return found ? workPull(found, branch, ours) : undefined;
  }

  /** Title, base and description: asked once per run, only when a pull request is to be opened. */
  private async fields(octokit: OctokitLike, command: RunCommand, outcome: RunOutcome): Promise<{ title: string; base: string; body: string }> {
    const { owner, repo, number } = command.issue;
    const earlier = (await this.options.links.pullsOf(command.issueKey)).find((p) => p.base);
    const base = earlier?.base ?? ((await octokit.request('GET /repos/{owner}/{repo}', { owner, repo })).data as { default_branch: string }).default_branch;
    const issue = (await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}', { owner, repo, issue_number: number })).data as { title?: string | null };
    const answer = outcome.agent?.result?.text;
    const redact = answer ? await this.options.redactorFor(command.pod) : undefined;
    const body = pullRequestBody({
      issueKey: command.issueKey, issueNumber: number, sessionId: outcome.sessionId,
      summary: answer && redact ? redact(answer) : undefined,
      sessionUrl: this.options.liveLink?.(outcome.sessionId),
    });
    return { title: pullRequestTitle(issue.title, number), base, body };
  }

  /** Opens the pull request; one that exists already (422) is found instead; a repository without drafts gets it ready. */
  private async create(octokit: OctokitLike, command: RunCommand, branch: string, fields: { title: string; base: string; body: string }, draft: boolean): Promise<WorkPull> {
    const { owner, repo } = command.issue;
    try {
      const { data } = await octokit.request('POST /repos/{owner}/{repo}/pulls', { owner, repo, head: branch, base: fields.base, title: fields.title, body: fields.body, draft });
      return workPull(data as ApiPull, branch, true);
    } catch (err) {
      if (statusOf(err) !== 422) throw err;
      const found = await this.openPull(octokit, command, branch);
      if (found) return found;
      if (draft && /draft pull requests are not supported/i.test(messageOf(err))) return this.create(octokit, command, branch, fields, false);
      throw err;
    }
  }

  /** Records every pull request of the work as the session's, with the head the run left on its branch. */
  private async record(command: RunCommand, work: RunWork): Promise<void> {
    const now = (this.options.now ?? Date.now)();
    const { owner, repo } = command.issue;
    for (const pull of work.pulls) {
      const sha = work.branches.find((b) => b.name === pull.branch)?.sha;
      await this.options.links.linkPull(command.issueKey, {
        owner, repo, number: pull.number, url: pull.url, head: pull.branch, base: pull.base ?? '',
        ...(sha ? { agentSha: sha } : {}), ...(pull.openedByCldpd ? { opened: true } : {}), at: now,
        issue: { number: command.issue.number, url: command.issue.url },
      });
    }
  }
}
