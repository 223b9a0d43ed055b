import { createHash } from 'node:crypto';
import { CldpdError } from './errors.js';

const ISSUE_URL = /^https?:\/\/[^/\s]+\/([^/\s]+)\/([^/\s]+)\/issues\/(\d+)\/?$/;

/**
 * Where an issue is: its web URL (github.com or Enterprise Server) and the owner, repository
 * and number it names. The job contract's issue (queue) adds the installation that reaches it.
 */
export interface IssueAddress {
  readonly url: string;
  readonly owner: string;
  readonly repo: string;
  readonly number: number;
}

/** Parses `https://<host>/<owner>/<repo>/issues/<n>` (github.com or Enterprise Server); throws `InvalidInput` otherwise. */
export function parseIssueUrl(url: string): IssueAddress {
  const match = ISSUE_URL.exec(url.trim());
  if (!match) {
    throw new CldpdError('InvalidInput', `"${url}" is not an issue URL. Use the form https://github.com/OWNER/REPO/issues/NUMBER.`);
  }
  return { url: url.trim().replace(/\/$/, ''), owner: match[1] as string, repo: match[2] as string, number: Number(match[3]) };
}

/**
 * A stable, Docker-safe key for an issue: `owner.repo-<n>`, lowercase (GitHub's names are
 * case-insensitive). One key per issue: an owner never contains a dot and the number
 * follows the last hyphen, so `acme-web/app` and `acme/web-app` cannot meet.
 */
export function issueKey(issue: Pick<IssueAddress, 'owner' | 'repo' | 'number'>): string {
  return `${issue.owner}.${issue.repo}-${issue.number}`.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
}

/**
 * What a pod's persisted volumes for an issue are named by: readable, plus a hash of the
 * pod and the issue, since a pod name may hold the same characters as an owner and
 * `<pod>-<key>` alone could name two pairs.
 */
export function issueVolumeKey(pod: string, issue: Pick<IssueAddress, 'owner' | 'repo' | 'number'>): string {
  const key = issueKey(issue);
  return `${pod}-${key}-${createHash('sha256').update(`${pod}\n${key}`).digest('hex').slice(0, 12)}`;
}

/** The branch a run's agent is asked to push its work to: one per issue. */
export function issueBranch(issue: Pick<IssueAddress, 'number'>): string {
  return `cldpd/issue-${issue.number}`;
}
