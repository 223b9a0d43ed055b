import type { IssueRef } from '../queue/contract.js';

/** A comment as listed: who wrote it matters more than what it says. */
export interface ListedComment {
  readonly id: number;
  readonly url: string;
  readonly body: string;
  readonly author: { readonly login: string; readonly type: string };
}

/** The issue-comment calls cldpd makes; the composition root backs it with Octokit. */
export interface CommentsApi {
  /** Posts a comment; resolves with its id and web URL. */
  create(issue: IssueRef, body: string): Promise<{ id: number; url: string }>;
  /** Replaces a comment's body. Rejects with a `status` of 404 when the comment is gone. */
  update(issue: IssueRef, commentId: number, body: string): Promise<void>;
  /** Comments of the issue updated at or after `since`, oldest first, with their authors (at most 1,000). */
  list(issue: IssueRef, options: { since: Date }): Promise<ListedComment[]>;
}

/**
 * Told of each comment write as it is sent to GitHub (`post`: a new comment, `edit`: a
 * changed one), whatever GitHub answers: each counts against GitHub's limits. Must not throw.
 */
export interface CommentWriteObserver {
  write(kind: 'post' | 'edit'): void;
}

/** The Octokit surface {@link octokitComments} uses. */
export interface OctokitLike {
  request(route: string, parameters?: Record<string, unknown>): Promise<{ data: unknown }>;
}

/** A CommentsApi over an installation Octokit per issue; `observer` is told of each write it sends. */
export function octokitComments(octokitFor: (installationId: number) => Promise<OctokitLike>, observer?: CommentWriteObserver): CommentsApi {
  const sent = (kind: 'post' | 'edit') => {
    try {
      observer?.write(kind);
    } catch {
      // Counting a write never stops it.
    }
  };
  return {
    async create(issue, body) {
      const octokit = await octokitFor(issue.installationId);
      sent('post');
      const { data } = await octokit.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: issue.owner, repo: issue.repo, issue_number: issue.number, body });
      const comment = data as { id: number; html_url: string };
      return { id: comment.id, url: comment.html_url };
    },
    async update(issue, commentId, body) {
      const octokit = await octokitFor(issue.installationId);
      sent('edit');
      await octokit.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', { owner: issue.owner, repo: issue.repo, comment_id: commentId, body });
    },
    async list(issue, { since }) {
      const octokit = await octokitFor(issue.installationId);
      const found: ListedComment[] = [];
      for (let page = 1; page <= 10; page++) {
        const { data } = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: issue.owner, repo: issue.repo, issue_number: issue.number, since: since.toISOString(), per_page: 100, page });
        const comments = data as Array<{ id: number; html_url: string; body?: string; user?: { login?: string; type?: string } | null }>;
        found.push(...comments.map((c) => ({ id: c.id, url: c.html_url, body: c.body ?? '', author: { login: c.user?.login ?? '', type: c.user?.type ?? '' } })));
        if (comments.length < 100) break;
      }
      return found;
    },
  };
}
