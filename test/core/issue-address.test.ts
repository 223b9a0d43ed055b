import { describe, expect, it } from 'vitest';
import { issueKey, issueVolumeKey, parseIssueUrl } from '../../src/core/issue-address.js';

describe('parseIssueUrl', () => {
  it.each([
    ['https://github.com/acme/web/issues/12', { owner: 'acme', repo: 'web', number: 12 }],
    ['https://ghe.corp.example/team/api/issues/3/', { owner: 'team', repo: 'api', number: 3 }],
    [' https://github.com/a/b/issues/1 ', { owner: 'a', repo: 'b', number: 1 }],
  ])('%s', (url, expected) => {
    expect(parseIssueUrl(url)).toMatchObject(expected);
  });

  it.each(['github.com/a/b/issues/1', 'https://github.com/a/b/pull/1', 'https://github.com/a/b/issues/x', 'https://github.com/a/issues/1', ''])('refuses %j', (url) => {
    expect(() => parseIssueUrl(url)).toThrow(/is not an issue URL/);
  });

  it('makes a Docker-safe key', () => {
    expect(issueKey(parseIssueUrl('https://github.com/Acme/Web.App/issues/7'))).toBe('acme.web.app-7');
  });
});

describe('issue keys', () => {
  // Owners: letters, digits, hyphens. Repositories: also dots and underscores.
  const owners = ['acme', 'acme-web', 'a', 'a-b', 'a-b-c', 'b-c'];
  const repos = ['app', 'web-app', 'b-c', 'c', 'b.c', 'x-1', 'x', '1', 'web_app', 'app-2'];
  const numbers = [1, 2, 12, 21];
  const issues = owners.flatMap((owner) => repos.flatMap((repo) => numbers.map((number) => ({ owner, repo, number }))));

  it('collision: two issues never share a key (acme-web/app and acme/web-app did)', () => {
    const keys = new Map<string, string>();
    for (const i of issues) {
      const key = issueKey(i);
      const other = keys.get(key);
      expect(other, `${i.owner}/${i.repo}#${i.number} and ${other} share "${key}"`).toBeUndefined();
      keys.set(key, `${i.owner}/${i.repo}#${i.number}`);
    }
    expect(issueKey({ owner: 'acme-web', repo: 'app', number: 1 })).not.toBe(issueKey({ owner: 'acme', repo: 'web-app', number: 1 }));
  });

  it('collision: two (pod, issue) pairs never share persisted volumes', () => {
    const pods = ['a', 'a-b', 'a.b', 'web', 'web-acme'];
    const names = new Set<string>();
    for (const pod of pods) for (const i of issues) names.add(issueVolumeKey(pod, i));
    expect(names.size).toBe(pods.length * issues.length);
    expect(issueVolumeKey('a-b', { owner: 'c', repo: 'd', number: 1 })).not.toBe(issueVolumeKey('a', { owner: 'b-c', repo: 'd', number: 1 }));
    for (const name of names) expect(name).toMatch(/^[a-z0-9][a-z0-9_.-]*$/);
  });
});
