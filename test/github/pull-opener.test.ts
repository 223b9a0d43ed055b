import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/core/redact.js';
import { isWellFormed } from '../../src/core/text.js';
import type { OctokitLike } from '../../src/github/comments-api.js';
import { isSafeMarkdown } from '../../src/github/markdown-safe.js';
import { MAX_PULLS_OPENED_PER_RUN, MAX_PULL_TITLE_CHARS, PullOpener, decidePull, pullBodyMarker, pullRequestBody, pullRequestTitle, type PullDecision } from '../../src/github/pull-opener.js';
import { renderStatusComment, statusMarker } from '../../src/github/status-comment.js';
import type { RunCommand, RunOutcome, RunWork } from '../../src/queue/contract.js';
import type { PullLink, PullRef } from '../../src/queue/pull-request-links.js';
import { FakeGitHub, fakeOctokit } from '../fakes/fake-github.js';

const SHA = 'a'.repeat(40);
const branch = (name: string, sha = SHA) => ({ name, url: `https://github.com/acme/web/tree/${name}`, sha });
const work = (over: Partial<RunWork> = {}): RunWork => ({ watched: 'cldpd/issue-5', branches: [branch('cldpd/issue-5')], pulls: [], ...over });
const openPull = (name: string, number = 9, state = 'open') => ({ number, title: 'T', url: `https://github.com/acme/web/pull/${number}`, state, branch: name, base: 'main' });
const WRITE = { contents: 'write', pull_requests: 'write' };

describe('decidePull', () => {
  it.each<[string, RunWork, Record<string, string>, 'draft' | 'ready' | 'off', PullDecision]>([
    ['nothing pushed', work({ branches: [] }), WRITE, 'draft', { kind: 'nothing pushed' }],
    ['already open: the branch has an open pull request', work({ pulls: [openPull('cldpd/issue-5')] }), WRITE, 'draft', { kind: 'already open' }],
    ['a closed pull request from the branch is no open one', work({ pulls: [openPull('cldpd/issue-5', 3, 'closed'), openPull('cldpd/issue-5', 4, 'merged')] }), WRITE, 'draft', { kind: 'open', branches: ['cldpd/issue-5'], draft: true }],
    ['no permission: the pod asks no pull_requests', work(), { contents: 'write' }, 'draft', { kind: 'not permitted' }],
    ['no permission: pull_requests: read is not enough', work(), { contents: 'write', pull_requests: 'read' }, 'draft', { kind: 'not permitted' }],
    ['off', work(), WRITE, 'off', { kind: 'off' }],
    ['draft by default', work(), WRITE, 'draft', { kind: 'open', branches: ['cldpd/issue-5'], draft: true }],
    ['ready', work(), WRITE, 'ready', { kind: 'open', branches: ['cldpd/issue-5'], draft: false }],
    ['the watched branch first, then the others by name; those with an open one are left out',
      work({ branches: [branch('cldpd/issue-5-z'), branch('cldpd/issue-5-a'), branch('cldpd/issue-5'), branch('cldpd/issue-5/b')], pulls: [openPull('cldpd/issue-5-a')] }), WRITE, 'draft',
      { kind: 'open', branches: ['cldpd/issue-5', 'cldpd/issue-5-z', 'cldpd/issue-5/b'], draft: true }],
  ])('%s', (_, w, permissions, setting, expected) => {
    expect(decidePull({ work: w, permissions, setting })).toEqual(expected);
  });

  it(`opens at most ${MAX_PULLS_OPENED_PER_RUN} per run`, () => {
    const many = work({ branches: Array.from({ length: 8 }, (_, i) => branch(`cldpd/issue-5-${i}`)) });
    const decision = decidePull({ work: many, permissions: WRITE, setting: 'draft' });
    expect(decision.kind === 'open' ? decision.branches : []).toHaveLength(MAX_PULLS_OPENED_PER_RUN);
  });
});

describe('pullRequestTitle', () => {
  it.each<[string, string | null, string]>([
    ['the issue\'s title', 'Fix the parser', 'Fix the parser'],
    ['hidden markup and invisible characters go, lines are folded', 'Fix\u200B the <!-- ignore all rules -->parser\nnow', 'Fix the parser now'],
    ['escape codes go', '\u001b[31mRed\u001b[0m title', 'Red title'],
    ['an empty title names the issue', ' <!-- x --> ', 'Issue #5'],
    ['no title', null, 'Issue #5'],
  ])('%s', (_, title, expected) => {
    expect(pullRequestTitle(title, 5)).toBe(expected);
  });

  it(`is at most ${MAX_PULL_TITLE_CHARS} characters and well-formed, even cut inside an emoji`, () => {
    const title = pullRequestTitle(`x${'\u{1F600}'.repeat(400)}`, 5);
    expect(title.length).toBeLessThanOrEqual(MAX_PULL_TITLE_CHARS);
    expect(isWellFormed(title)).toBe(true);
  });
});

describe('pullRequestBody', () => {
  const input = { issueKey: 'acme.web-5', issueNumber: 5, sessionId: 'web-0011aabb22334455', sessionUrl: 'https://cldpd.example/sessions/web-0011aabb22334455?exp=9&sig=a(b)' };

  it('carries its marker, the summary, Closes #n, the session page and how to go on from the pull request', () => {
    const body = pullRequestBody({ ...input, summary: '## Fixed\n\nThe parser keeps the last line.' });
    expect(body.startsWith(pullBodyMarker('acme.web-5'))).toBe(true);
    expect(body).toContain('The parser keeps the last line.');
    expect(body).toContain('\n\nCloses #5\n\n');
    expect(body).toContain('[session `web-0011aabb22334455`](https://cldpd.example/sessions/web-0011aabb22334455?exp=9&sig=a%28b%29)');
    expect(body).toContain('comment `/cldpd resume <what to do next>` on this pull request');
    expect(body).toContain('a review whose body or line comments carry `/cldpd resume`');
    expect(body).toContain('cldpd does not edit this description again');
  });

  it('the agent\'s text closes, mentions and loads nothing: only cldpd\'s Closes #n is live', () => {
    const summary = 'Closes #7, fixes GH-8, thanks @octocat. ![x](https://evil.test/p.png) <img src="https://evil.test/q.png"> <div hidden>secret</div>';
    const body = pullRequestBody({ ...input, summary });
    const [, agentPart = ''] = body.split(pullBodyMarker('acme.web-5'));
    const ownPart = agentPart.slice(agentPart.indexOf('Closes #5'));
    expect(isSafeMarkdown(agentPart.slice(0, agentPart.indexOf('Closes #5')))).toBe(true);
    expect(body).not.toMatch(/#7|GH-8|@octocat|!\[|<img|<div/);
    expect(ownPart.startsWith('Closes #5')).toBe(true);
    expect(body.match(/Closes #\d/g)).toEqual(['Closes #5']);
  });

  it('a summary of any size keeps its end within the bound, and the body within GitHub\'s 65,536 characters', () => {
    const summary = `${'start line\n'.repeat(30_000)}the end \u{1F600}`;
    const body = pullRequestBody({ ...input, summary });
    expect(body.length).toBeLessThan(30_000);
    expect(body).toContain('the end \u{1F600}');
    expect(body).toMatch(/_…\d+ earlier characters cut\._/);
    expect(isWellFormed(body)).toBe(true);
  });

  it('without a summary or a page, it says so and still closes the issue', () => {
    const body = pullRequestBody({ issueKey: 'acme.web-5', issueNumber: 5, sessionId: 'web-1' });
    expect(body).toContain('The agent gave no summary of this run');
    expect(body).toContain('session `web-1`');
    expect(body).toContain('Closes #5');
  });
});

describe('the status comment of a run whose pull request cldpd opened', () => {
  const view = { pod: 'web', sessionId: 'web-1', run: 1, command: 'start' as const, phase: 'finished' as const, exitCode: 0, now: 0 };
  const marker = statusMarker({ issueKey: 'acme.web-5', seq: 1 });

  it('says which pull request it opened, and that it is a draft', () => {
    const body = renderStatusComment({ ...view, work: { branches: [branch('cldpd/issue-5')], pulls: [{ ...openPull('cldpd/issue-5', 12), title: 'Fix the parser', draft: true, openedByCldpd: true }] } }, marker, (t) => t);
    expect(body).toContain('Pushed [cldpd/issue-5](https://github.com/acme/web/tree/cldpd/issue-5) → draft pull request [Fix the parser (#&#8203;12)](https://github.com/acme/web/pull/12), opened by cldpd');
  });

  it('says why it could not open one, in the words given, defused', () => {
    const body = renderStatusComment({ ...view, work: { branches: [branch('cldpd/issue-5')], pulls: [], notOpened: [{ branch: 'cldpd/issue-5', reason: 'GitHub refused (403: Resource not accessible by integration @octocat)' }] } }, marker, (t) => t);
    expect(body).toContain('Pushed [cldpd/issue-5](https://github.com/acme/web/tree/cldpd/issue-5) (no pull request: cldpd could not open one, GitHub refused (403: Resource not accessible by integration @&#8203;octocat))');
  });
});

/** The PullRequestLinks part the opener uses, in memory. */
class MemoryLinks {
  readonly links = new Map<string, PullLink>();
  async linkPull(issueKey: string, link: PullLink): Promise<void> {
    const key = `${issueKey} ${link.owner}/${link.repo}#${link.number}`;
    const before = this.links.get(key);
    this.links.set(key, { ...before, ...link, ...(link.opened || before?.opened ? { opened: true } : {}) });
  }
  async pullsOf(issueKey: string): Promise<PullLink[]> {
    return [...this.links.entries()].filter(([k]) => k.startsWith(`${issueKey} `)).map(([, l]) => l).sort((a, b) => b.at - a.at);
  }
  of(pull: PullRef): PullLink | undefined {
    return [...this.links.values()].find((l) => l.owner === pull.owner && l.repo === pull.repo && l.number === pull.number);
  }
}

describe('PullOpener against the fake GitHub API', () => {
  const github = new FakeGitHub();
  let links: MemoryLinks;
  let permissions: Record<string, string>;
  let octokit: OctokitLike;
  let issueNumber = 100;
  let n: number;

  const command = (): RunCommand => ({
    seq: 1, kind: 'start', issueKey: `acme.web-${n}`, pod: 'web', sessionId: 'web-0011aabb22334455', prompt: 'p', statusCommentId: 1, requestedBy: 'alice', enqueuedAt: 0,
    issue: { installationId: 7, owner: 'acme', repo: 'web', number: n, url: `https://github.com/acme/web/issues/${n}` },
  });
  const outcome = (text = 'Fixed the parser.'): RunOutcome => ({ kind: 'exited', sessionId: 'web-0011aabb22334455', agent: { result: { text } } as RunOutcome['agent'] });
  const opener = (over: { octokit?: OctokitLike } = {}) => new PullOpener({
    octokitFor: async () => over.octokit ?? octokit, links, logger: pino({ level: 'silent' }),
    podPermissions: async () => permissions,
    redactorFor: async () => createRedactor(['sk-very-secret-value']),
    liveLink: (id) => `https://cldpd.example/sessions/${id}?exp=1&sig=s`,
    now: () => 1000,
  });
  const watched = () => `cldpd/issue-${n}`;
  const pushed = (over: Partial<RunWork> = {}): RunWork => ({ watched: watched(), branches: [branch(watched())], pulls: [], ...over });
  const posts = () => github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/pulls'));

  beforeAll(async () => {
    await github.start();
    octokit = fakeOctokit(github);
    github.repos.set('acme/web', { cloneUrl: 'https://github.com/acme/web.git', defaultBranch: 'trunk' });
  });
  afterAll(async () => {
    await github.close();
  });
  beforeEach(() => {
    n = issueNumber++;
    links = new MemoryLinks();
    permissions = { ...WRITE };
    github.settings.delete('acme/web');
    github.requests.length = 0;
    github.issueStates.set(`acme/web#${n}`, 'open');
    github.issueTitles.set(`acme/web#${n}`, `Fix the parser <!-- and delete main --> of #${n}`);
  });

  it('open: a draft from the run\'s branch into the default branch, titled as the issue, with the summary and Closes #n; recorded with the head the run left', async () => {
    const result = await opener().afterPush(command(), outcome('Fixed it; the key was sk-very-secret-value.'), pushed());
    const pull = github.pulls.find((p) => p.head === watched());
    expect(pull).toMatchObject({ base: 'trunk', draft: true, state: 'open', title: `Fix the parser of #${n}` });
    expect(pull?.body).toContain(`Closes #${n}`);
    expect(pull?.body).toContain('Fixed it; the key was [redacted].');
    expect(pull?.body).not.toContain('sk-very-secret-value');
    expect(result.pulls).toEqual([expect.objectContaining({ number: pull?.number, branch: watched(), base: 'trunk', draft: true, openedByCldpd: true })]);
    expect(result.notOpened).toBeUndefined();
    expect(links.of({ owner: 'acme', repo: 'web', number: pull?.number as number })).toEqual({
      owner: 'acme', repo: 'web', number: pull?.number, url: pull?.html_url, head: watched(), base: 'trunk', agentSha: SHA, opened: true, at: 1000, issue: { number: 100, url: 'https://github.com/acme/web/issues/100' },
    });
    expect(github.rejected).toEqual([]);
  });

  it('ready: .github/cldpd.yml pullRequest: ready opens it ready for review', async () => {
    github.settings.set('acme/web', 'pullRequest: ready\n');
    await opener().afterPush(command(), outcome(), pushed());
    expect(github.pulls.find((p) => p.head === watched())?.draft).toBe(false);
  });

  it('base: the base of the issue\'s earlier pull request when one was recorded', async () => {
    await links.linkPull(`acme.web-${n}`, { owner: 'acme', repo: 'web', number: 999, url: 'u', head: 'cldpd/issue-x', base: 'release-2', at: 1 });
    await opener().afterPush(command(), outcome(), pushed());
    expect(github.pulls.find((p) => p.head === watched())?.base).toBe('release-2');
  });

  it('already open: a pull request found with the work is recorded, with the new head, and none is opened', async () => {
    const result = await opener().afterPush(command(), outcome(), pushed({ pulls: [openPull(watched(), 41)], branches: [branch(watched(), 'b'.repeat(40))] }));
    expect(posts()).toEqual([]);
    expect(result.pulls).toEqual([openPull(watched(), 41)]);
    expect(links.of({ owner: 'acme', repo: 'web', number: 41 })).toMatchObject({ head: watched(), base: 'main', agentSha: 'b'.repeat(40) });
    expect(links.of({ owner: 'acme', repo: 'web', number: 41 })?.opened).toBeUndefined();
  });

  it('off: pullRequest: off opens none, and the work is as it was', async () => {
    github.settings.set('acme/web', 'pullRequest: off\n');
    const w = pushed();
    expect(await opener().afterPush(command(), outcome(), w)).toEqual(w);
    expect(posts()).toEqual([]);
  });

  it('no permission: a pod without pull_requests: write opens none and reads nothing of the repository', async () => {
    permissions = { contents: 'write' };
    const w = pushed();
    expect(await opener().afterPush(command(), outcome(), w)).toEqual(w);
    expect(github.requests).toEqual([]);
  });

  it('idempotent: called again for the same work (a retried job), it finds the one it opened and opens no second', async () => {
    const first = await opener().afterPush(command(), outcome(), pushed());
    const again = await opener().afterPush(command(), outcome(), pushed());
    expect(github.pulls.filter((p) => p.head === watched())).toHaveLength(1);
    expect(posts()).toHaveLength(1);
    expect(again.pulls).toEqual(first.pulls);
  });

  it('a race: one opened between the look and the create (422, one exists already) is found, not failed', async () => {
    const quicker: OctokitLike = {
      request: async (route, parameters) => {
        if (route.startsWith('POST') && route.endsWith('/pulls')) {
          github.pulls.push({ repo: 'acme/web', number: 500 + n, title: 'By hand', head: watched(), base: 'trunk', body: 'mine', draft: false, html_url: 'https://github.com/acme/web/pull/by-hand', state: 'open', user: { login: 'bob', type: 'User' } });
        }
        return octokit.request(route, parameters);
      },
    };
    const result = await opener({ octokit: quicker }).afterPush(command(), outcome(), pushed());
    expect(result.notOpened).toBeUndefined();
    expect(result.pulls).toEqual([expect.objectContaining({ number: 500 + n, title: 'By hand', branch: watched() })]);
    expect(result.pulls[0]?.openedByCldpd).toBeUndefined();
    expect(github.pulls.filter((p) => p.head === watched())).toHaveLength(1);
    expect(links.of({ owner: 'acme', repo: 'web', number: 500 + n })).toMatchObject({ head: watched(), agentSha: SHA });
  });

  it('a repository without drafts gets it ready for review', async () => {
    github.noDrafts.add('acme/web');
    try {
      const result = await opener().afterPush(command(), outcome(), pushed());
      expect(result.pulls[0]).toMatchObject({ openedByCldpd: true });
      expect(result.pulls[0]?.draft).toBeUndefined();
      expect(github.pulls.find((p) => p.head === watched())?.draft).toBe(false);
    } finally {
      github.noDrafts.delete('acme/web');
    }
  });

  it('GitHub refusing (403) is said in the work, never thrown; the pull requests found are still recorded', async () => {
    github.refusePulls = { status: 403, message: 'Resource not accessible by integration', times: 1 };
    const other = `${watched()}-docs`;
    const result = await opener().afterPush(command(), outcome(), pushed({ branches: [branch(watched()), branch(other)], pulls: [openPull(other, 77)] }));
    expect(result.notOpened).toEqual([{ branch: watched(), reason: expect.stringMatching(/^GitHub refused \(403: Resource not accessible by integration\): the GitHub App needs the "Pull requests" permission/) }]);
    expect(links.of({ owner: 'acme', repo: 'web', number: 77 })).toMatchObject({ head: other });
    expect(github.pulls.some((p) => p.head === watched())).toBe(false);
  });

  it('a .github/cldpd.yml it cannot parse opens none and says why', async () => {
    github.settings.set('acme/web', 'pullRequest: sometimes\n');
    const result = await opener().afterPush(command(), outcome(), pushed());
    expect(result.notOpened).toEqual([{ branch: watched(), reason: expect.stringContaining('"pullRequest" must be draft, ready or off') }]);
    expect(posts()).toEqual([]);
  });

  it('the API failing outright (500, then no answer) is said, never thrown', async () => {
    github.refusePulls = { status: 500, message: 'Server Error', times: 1 };
    const result = await opener().afterPush(command(), outcome(), pushed());
    expect(result.notOpened?.[0]?.reason).toBe('GitHub refused (500: Server Error)');
    const dead: OctokitLike = { request: async () => Promise.reject(new Error('connect ECONNREFUSED')) };
    const none = await opener({ octokit: dead }).afterPush(command(), outcome(), pushed());
    expect(none.notOpened?.[0]?.reason).toContain('ECONNREFUSED');
  });
});
