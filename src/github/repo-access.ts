import type { OctokitLike } from './comments-api.js';
import { roleOf, type PermissionAnswer } from './permissions.js';
import { statusOf } from './status-of.js';

/** An installation's Octokit, as `AppAuth.octokitFor` gives it. */
type OctokitFor = (installationId: number) => Promise<OctokitLike>;

/**
 * Whether a repository is public, asked with the app's installation: `private` unless GitHub
 * says it is not private and (where it says so) its visibility is `public`; on GitHub
 * Enterprise Server an `internal` one is private. Rejects when GitHub does not answer.
 */
export function repoVisibility(octokitFor: OctokitFor): (installationId: number, owner: string, repo: string) => Promise<'public' | 'private'> {
  return async (installationId, owner, repo) => {
    const { data } = await (await octokitFor(installationId)).request('GET /repos/{owner}/{repo}', { owner, repo });
    const { private: hidden, visibility } = data as { private?: boolean; visibility?: string };
    return hidden === false && (visibility === undefined || visibility === 'public') ? 'public' : 'private';
  };
}

/**
 * Whether `login` can read a repository, asked with the app's installation (the
 * collaborator-permission API, which counts organization members and teams too): false on
 * GitHub's 404 (neither a collaborator nor a member who can read it); any other failure
 * rejects, and is never taken for a "no".
 */
export function repoReader(octokitFor: OctokitFor): (installationId: number, owner: string, repo: string, login: string) => Promise<boolean> {
  return async (installationId, owner, repo, login) => {
    try {
      const { data } = await (await octokitFor(installationId)).request('GET /repos/{owner}/{repo}/collaborators/{username}/permission', { owner, repo, username: login });
      return roleOf(data as PermissionAnswer) !== 'none';
    } catch (err) {
      if (statusOf(err) === 404) return false; // not a collaborator, nor a member who can read it
      throw err;
    }
  };
}
