import { describe, expect, it } from 'vitest';
import { issueOfBranch, issueUrlBeside, onSessionIssue } from '../../src/github/pull-sessions.js';
import type { IntakeJob } from '../../src/queue/contract.js';
import { MemoryStores } from '../fakes/memory-stores.js';

describe('issueOfBranch', () => {
  it.each([
    ['cldpd/issue-5', 5],
    ['cldpd/issue-5-rename', 5],
    ['cldpd/issue-5/more', 5],
    ['cldpd/issue-50', 50],
    ['cldpd/issue-5x', undefined],
    ['cldpd/issue-05', undefined],
    ['cldpd/issue-', undefined],
    ['feature/cldpd/issue-5', undefined],
    ['cldpd/issue-99999999999', undefined],
    ['main', undefined],
  ])('session id: %s → %s', (ref, n) => {
    expect(issueOfBranch(ref)).toBe(n);
  });

  it('pull request: the issue beside a pull request', () => {
    expect(issueUrlBeside('https://github.com/acme/web/pull/7', 3)).toBe('https://github.com/acme/web/issues/3');
    expect(issueUrlBeside('https://ghe.example/acme/web/pull/7#x', 3)).toBe('https://ghe.example/acme/web/issues/3');
  });
});

describe('onSessionIssue', () => {
  const job = (pull: IntakeJob['pull']): IntakeJob => ({
    deliveryId: 'd', trigger: { kind: 'comment', commentId: 1, commentBody: '/cldpd status' }, sender: { login: 'alice', type: 'User' }, receivedAt: 0,
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: 7, url: 'https://github.com/acme/web/pull/7', title: 'PR', body: null }, ...(pull ? { pull } : {}),
  });
  const world = (head: { ref: string; repo: number } | undefined, session = true) => {
    const stores = new MemoryStores();
    if (session) void stores.set('acme.web-3', { sessionId: 'web-1', pod: 'web' });
    const asked: string[] = [];
    const octokit = async () => ({
      async request(route: string) {
        asked.push(route);
        if (!head) throw Object.assign(new Error('Not Found'), { status: 404 });
        return { data: { head: { ref: head.ref, repo: { id: head.repo } }, base: { repo: { id: 1 } } } };
      },
    });
    const links = new Map<string, string>();
    const recorded = new Map<string, { issue?: { number: number; url: string }; head: string }>();
    const state = Object.assign(stores, {
      issueOfPull: async (p: { number: number }) => links.get(String(p.number)),
      pullOf: async (_key: string, p: { number: number }) => recorded.get(String(p.number)),
    });
    return { deps: { state, octokit }, asked, links, recorded, stores };
  };

  it('pull request: a same-repository head cldpd/issue-<n> with a session moves the delivery onto issue n', async () => {
    const { deps, asked } = world({ ref: 'cldpd/issue-3', repo: 1 });
    const moved = await onSessionIssue(job({ number: 7, url: 'https://github.com/acme/web/pull/7' }), deps as never);
    expect(moved?.issue).toMatchObject({ number: 3, url: 'https://github.com/acme/web/issues/3' });
    expect(moved?.pull).toEqual({ number: 7, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-3', sameRepo: true });
    expect(asked).toEqual(['GET /repos/{owner}/{repo}/pulls/{pull_number}']);
  });

  it.each([
    ['a fork\'s head', { ref: 'cldpd/issue-3', repo: 2 }, true],
    ['another branch', { ref: 'feature', repo: 1 }, true],
    ['an issue without a session', { ref: 'cldpd/issue-3', repo: 1 }, false],
    ['a branch named after the pull request itself', { ref: 'cldpd/issue-7', repo: 1 }, true],
  ])('pull request: no session\'s for %s', async (_, head, session) => {
    const { deps } = world(head, session);
    expect(await onSessionIssue(job({ number: 7, url: 'https://github.com/acme/web/pull/7' }), deps as never)).toBeUndefined();
  });

  it('pull request: one recorded for a transferred issue reaches that issue\'s session, not the issue of the same number here', async () => {
    const { deps, links, recorded, stores } = world(undefined, false);
    // Issue a/x#5 (key a.x-5) moved to acme/web#12; its pull request acme/web#7 was recorded under the old key.
    await stores.set('a.x-5', { sessionId: 'web-1', pod: 'web' });
    links.set('7', 'a.x-5');
    recorded.set('7', { head: 'cldpd/issue-12', issue: { number: 12, url: 'https://github.com/acme/web/issues/12' } });
    const moved = await onSessionIssue(job({ number: 7, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-12', sameRepo: true }), deps as never);
    expect(moved?.issue).toMatchObject({ owner: 'acme', repo: 'web', number: 12 });
    // An older record without the issue: the key's number is not this repository's, so no guess.
    recorded.set('7', { head: 'cldpd/issue-12' });
    expect(await onSessionIssue(job({ number: 7, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-12', sameRepo: true }), deps as never)).toBeUndefined();
  });

  it('pull request: one cldpd recorded needs no API call, whatever its head', async () => {
    const { deps, asked, links } = world(undefined);
    links.set('7', 'acme.web-3');
    const moved = await onSessionIssue(job({ number: 7, url: 'https://github.com/acme/web/pull/7', head: 'anything', sameRepo: true }), deps as never);
    expect(moved?.issue.number).toBe(3);
    expect(asked).toEqual([]);
  });
});
