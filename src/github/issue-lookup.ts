import type { IssueRef } from '../queue/contract.js';
import type { OctokitLike } from './comments-api.js';
import { statusOf } from './status-of.js';

/** Whether an issue is open on GitHub: closed with when; `unknown` when GitHub does not show it. */
export type IssueOnGitHub = { readonly state: 'open' | 'unknown' } | { readonly state: 'closed'; readonly closedAt: number | undefined };

/**
 * Asks GitHub whether an issue is open (as the installation sees it): `closed` carries
 * `closed_at` when GitHub gives a readable one; `unknown` when the issue is deleted or out of
 * the installation's reach (404, 410). Any other failure rejects, so nothing is decided on it.
 */
export function issueLookup(octokitFor: (installationId: number) => Promise<OctokitLike>): (issue: IssueRef) => Promise<IssueOnGitHub> {
  return async (issue) => {
    try {
      const { data } = await (await octokitFor(issue.installationId)).request('GET /repos/{owner}/{repo}/issues/{issue_number}', { owner: issue.owner, repo: issue.repo, issue_number: issue.number });
      const { state: now, closed_at: closedAt } = data as { state?: string; closed_at?: string | null };
      if (now === 'open') return { state: 'open' };
      const at = Date.parse(closedAt ?? '');
      return { state: 'closed', closedAt: Number.isFinite(at) ? at : undefined };
    } catch (err) {
      // Deleted, or out of the installation's reach: whether it is open cannot be told.
      if ([404, 410].includes(statusOf(err) ?? 0)) return { state: 'unknown' };
      throw err;
    }
  };
}
