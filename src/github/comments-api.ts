import type { IssueRef } from '../queue/contract.js';

/** The issue-comment calls cldpd makes; the composition root backs it with Octokit. */
export interface CommentsApi {
  /** Posts a comment; resolves with its id and web URL. */
  create(issue: IssueRef, body: string): Promise<{ id: number; url: string }>;
  /** Replaces a comment's body. Rejects with a `status` of 404 when the comment is gone. */
  update(issue: IssueRef, commentId: number, body: string): Promise<void>;
  /** Comments of the issue, newest last (at most the last 100). */
  list(issue: IssueRef): Promise<Array<{ id: number; url: string; body: string }>>;
}

/** The Octokit surface {@link octokitComments} uses. */
export interface OctokitLike {
  request(route: string, parameters?: Record<string, unknown>): Promise<{ data: unknown }>;
}

/** A CommentsApi over an installation Octokit per issue. */
export function octokitComments(octokitFor: (installationId: number) => Promise<OctokitLike>): CommentsApi {
  return {
    async create(issue, body) {
      const octokit = await octokitFor(issue.installationId);
      const { data } = await octokit.request('POST /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: issue.owner, repo: issue.repo, issue_number: issue.number, body });
      const comment = data as { id: number; html_url: string };
      return { id: comment.id, url: comment.html_url };
    },
    async update(issue, commentId, body) {
      const octokit = await octokitFor(issue.installationId);
      await octokit.request('PATCH /repos/{owner}/{repo}/issues/comments/{comment_id}', { owner: issue.owner, repo: issue.repo, comment_id: commentId, body });
    },
    async list(issue) {
      const octokit = await octokitFor(issue.installationId);
      const { data } = await octokit.request('GET /repos/{owner}/{repo}/issues/{issue_number}/comments', { owner: issue.owner, repo: issue.repo, issue_number: issue.number, per_page: 100 });
      return (data as Array<{ id: number; html_url: string; body?: string }>).map((c) => ({ id: c.id, url: c.html_url, body: c.body ?? '' }));
    },
  };
}
