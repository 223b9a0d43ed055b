import { describe, expect, it } from 'vitest';
import { octokitComments, type OctokitLike } from '../../src/github/comments-api.js';

const issue = { installationId: 1, owner: 'acme', repo: 'web', number: 7, url: 'https://github.com/acme/web/issues/7' };

/** An Octokit that answers every request (or refuses the writes) and lists the routes asked. */
function octokit(refuseWrites = false): OctokitLike & { routes: string[] } {
  const routes: string[] = [];
  return {
    routes,
    async request(route) {
      routes.push(route);
      if (refuseWrites && !route.startsWith('GET')) throw Object.assign(new Error('Forbidden'), { status: 403 });
      return { data: route.startsWith('GET') ? [] : { id: 5, html_url: 'https://github.com/acme/web/issues/7#issuecomment-5' } };
    },
  };
}

describe('octokitComments\' write observer', () => {
  it('is told of each post and edit sent, never of a read', async () => {
    const told: string[] = [];
    const api = octokitComments(async () => octokit(), { write: (kind) => void told.push(kind) });
    await api.create(issue, 'hello');
    await api.update(issue, 5, 'edited');
    await api.update(issue, 5, 'edited again');
    await api.list(issue, { since: new Date(0) });
    expect(told).toEqual(['post', 'edit', 'edit']);
  });

  it('counts a write GitHub refused too: it was sent, and counts against GitHub\'s limits', async () => {
    const told: string[] = [];
    const api = octokitComments(async () => octokit(true), { write: (kind) => void told.push(kind) });
    await expect(api.update(issue, 5, 'edited')).rejects.toMatchObject({ status: 403 });
    expect(told).toEqual(['edit']);
  });

  it('writes all the same when the observer throws', async () => {
    const client = octokit();
    const api = octokitComments(async () => client, { write: () => { throw new Error('boom'); } });
    await expect(api.create(issue, 'hello')).resolves.toEqual({ id: 5, url: 'https://github.com/acme/web/issues/7#issuecomment-5' });
    expect(client.routes).toEqual(['POST /repos/{owner}/{repo}/issues/{issue_number}/comments']);
  });
});
