import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_EVENT_AGE_MS } from '../../src/github/triggers.js';
import type { IntakeJob } from '../../src/queue/contract.js';
import { alice, issue, recordingWebhookHandler, repository, type RecordingWebhookHandler } from './recording-webhook-handler.js';

let jobs: IntakeJob[];
let warnings: string[];
let receive: RecordingWebhookHandler['receive'];
const NOW = Date.parse('2026-11-23T12:00:00Z');

beforeEach(() => {
  ({ jobs, warnings, receive } = recordingWebhookHandler(NOW));
});

describe('the webhook handler', () => {
  it('turns a cldpd:<pod> label into an intake job keyed by the signed body, not the delivery id', async () => {
    await receive('issues', { action: 'labeled', label: { name: 'cldpd:web' }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs).toEqual([{
      deliveryId: 'body-sha256',
      githubDelivery: 'delivery-1',
      trigger: { kind: 'label', pod: 'web' },
      issue: { installationId: 9, owner: 'acme', repo: 'web', number: 3, url: issue.html_url, title: 'Bug', body: 'text' },
      sender: alice,
      receivedAt: expect.any(Number),
    }]);
  });

  it.each([
    ['other labels', 'issues', { action: 'labeled', label: { name: 'bug' } }],
    ['labels on pull requests', 'issues', { action: 'labeled', label: { name: 'cldpd:web' }, issue: { ...issue, pull_request: {} } }],
    ['label removal', 'issues', { action: 'unlabeled', label: { name: 'cldpd:web' } }],
    ['bots', 'issues', { action: 'labeled', label: { name: 'cldpd:web' }, sender: { login: 'renovate[bot]', type: 'Bot' } }],
    ['plain comments', 'issue_comment', { action: 'created', comment: { id: 1, body: 'LGTM' } }],
    ['comments that cannot hold a command', 'issue_comment', { action: 'created', comment: { id: 1, body: 'see /cl dpd and https://x.y/cldp/d' } }],
    ['the app\'s own comments', 'issue_comment', { action: 'created', comment: { id: 1, body: '/cldpd status' }, sender: { login: 'cldpd[bot]', type: 'Bot' } }],
    ['edited comments', 'issue_comment', { action: 'edited', comment: { id: 1, body: '/cldpd stop' } }],
  ] as const)('ignores %s quietly', async (_, name, patch) => {
    await receive(name, { issue, repository, installation: { id: 9 }, sender: alice, ...patch });
    expect(jobs).toEqual([]);
  });

  it('says what it did with each delivery, for the metrics: accepted when it queued a job, ignored otherwise', async () => {
    expect(await receive('issues', { action: 'labeled', label: { name: 'cldpd:web' }, issue, repository, installation: { id: 9 }, sender: alice })).toBe('accepted');
    expect(await receive('issues', { action: 'labeled', label: { name: 'bug' }, issue, repository, installation: { id: 9 }, sender: alice })).toBe('ignored');
    expect(await receive('issues', { action: 'labeled', label: { name: 'cldpd:web' } })).toBe('ignored'); // malformed
    expect(await receive('push', { ref: 'refs/heads/main' })).toBe('ignored');
    expect(jobs).toHaveLength(1);
  });

  it.each([
    '/cldpd resume and then\nthe tests',
    '/cldpd stop',
    '/cldpd nope',
    '> /cldpd stop', // quoted: the intake step finds no command in it
    '/cl<!-- -->dpd status',
  ])('queues the comment %j as written, for the intake step to read', async (body) => {
    await receive('issue_comment', { action: 'created', comment: { id: 5, body }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs.map((j) => j.trigger)).toEqual([{ kind: 'comment', commentId: 5, commentBody: body }]);
  });

  it('sanitize: a comment built to make sanitising slow is queued as written, not sanitised on the request path', async () => {
    const nest = (depth: number): string => depth === 0 ? '<!---->' : `<!${nest(depth - 1)}---->`;
    const body = `/cldpd status\n${'<a'.repeat(32_000)}${nest(10)}`;
    await receive('issue_comment', { action: 'created', comment: { id: 5, body }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs.map((j) => j.trigger)).toEqual([{ kind: 'comment', commentId: 5, commentBody: body }]);
  });

  it('replay: ignores a command in a comment written more than 7 days ago', async () => {
    const old = new Date(NOW - MAX_EVENT_AGE_MS - 60_000).toISOString();
    await receive('issue_comment', { action: 'created', comment: { id: 5, body: '/cldpd stop', created_at: old }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/written over 7 days ago/)]);
    await receive('issue_comment', { action: 'created', comment: { id: 5, body: '/cldpd stop', created_at: new Date(NOW - 5000).toISOString() }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs).toHaveLength(1);
  });

  it('replay: ignores a label on an issue last updated more than 7 days ago', async () => {
    const labeledAt = (t: number) => ({ action: 'labeled', label: { name: 'cldpd:web' }, issue: { ...issue, updated_at: new Date(t).toISOString() }, repository, installation: { id: 9 }, sender: alice });
    await receive('issues', labeledAt(NOW - MAX_EVENT_AGE_MS - 60_000));
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([expect.stringMatching(/last updated over 7 days ago/)]);
    await receive('issues', labeledAt(NOW - 2000));
    expect(jobs).toHaveLength(1);
  });

  it('routes only issues.labeled and issue_comment.created', async () => {
    await receive('push', { action: 'labeled', label: { name: 'cldpd:web' }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs).toEqual([]);
  });

  describe('on pull requests', () => {
    const pull = (patch: object = {}) => ({ number: 7, html_url: 'https://github.com/acme/web/pull/7', title: 'Fix', body: 'Closes #3', head: { ref: 'cldpd/issue-3', repo: { id: 1 } }, base: { repo: { id: 1 } }, ...patch });
    const at = new Date(NOW).toISOString();

    it('pull request: queues a command in a comment on a pull request, for the intake step to find its session', async () => {
      await receive('issue_comment', { action: 'created', comment: { id: 5, body: '/cldpd stop', created_at: at }, issue: { ...issue, number: 7, html_url: 'https://github.com/acme/web/pull/7', pull_request: {} }, repository, installation: { id: 9 }, sender: alice });
      expect(jobs).toEqual([expect.objectContaining({ trigger: { kind: 'comment', commentId: 5, commentBody: '/cldpd stop' }, issue: expect.objectContaining({ number: 7 }), pull: { number: 7, url: 'https://github.com/acme/web/pull/7' } })]);
    });

    it('pull request: queues every submitted review of a same-repository pull request (its line comments may hold the command), with its head', async () => {
      await receive('pull_request_review', { action: 'submitted', review: { id: 11, body: 'Looks fine', state: 'approved', submitted_at: at }, pull_request: pull(), repository, installation: { id: 9 }, sender: alice });
      expect(jobs).toEqual([expect.objectContaining({ trigger: { kind: 'review', reviewId: 11, body: 'Looks fine', state: 'approved' }, pull: { number: 7, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-3', sameRepo: true } })]);
    });

    it('pull request: queues failed checks on a session branch GitHub lists no pull request for (not open yet), by the branch', async () => {
      await receive('check_suite', {
        action: 'completed', check_suite: { id: 22, head_sha: 'b'.repeat(40), head_branch: 'cldpd/issue-3-x', conclusion: 'failure', updated_at: at, pull_requests: [] },
        repository: { ...repository, html_url: 'https://github.com/acme/web' }, installation: { id: 9 }, sender: { login: 'github-actions[bot]', type: 'Bot' },
      });
      expect(jobs).toEqual([expect.objectContaining({ trigger: { kind: 'checks', sha: 'b'.repeat(40), suiteId: 22, conclusion: 'failure', branch: 'cldpd/issue-3-x' }, issue: expect.objectContaining({ number: 3, url: 'https://github.com/acme/web/issues/3' }) })]);
      expect(jobs[0]?.pull).toBeUndefined();
    });

    it('pull request: of several pull requests a check suite lists, the session\'s', async () => {
      await receive('check_suite', {
        action: 'completed', check_suite: { id: 23, head_sha: 'c'.repeat(40), conclusion: 'failure', updated_at: at, pull_requests: [
          { number: 8, head: { ref: 'cldpd/issue-3', repo: { id: 1 } }, base: { repo: { id: 2 } } },
          { number: 9, head: { ref: 'stranger', repo: { id: 1 } }, base: { repo: { id: 1 } } },
          { number: 7, head: { ref: 'cldpd/issue-3', repo: { id: 1 } }, base: { repo: { id: 1 } } },
        ] },
        repository: { ...repository, html_url: 'https://github.com/acme/web' }, installation: { id: 9 }, sender: { login: 'github-actions[bot]', type: 'Bot' },
      });
      expect(jobs.map((j) => j.pull?.number)).toEqual([7]);
    });

    it('pull request: queues a reply in a review thread that may hold a command', async () => {
      await receive('pull_request_review_comment', { action: 'created', comment: { id: 12, body: '/cldpd resume rename it', in_reply_to_id: 10, pull_request_review_id: 13, created_at: at }, pull_request: pull(), repository, installation: { id: 9 }, sender: alice });
      expect(jobs.map((j) => j.trigger)).toEqual([{ kind: 'review-comment', commentId: 12, reviewId: 13, body: '/cldpd resume rename it' }]);
    });

    it('pull request: queues checks that failed on a same-repository pull request', async () => {
      const sha = 'a'.repeat(40);
      await receive('check_suite', {
        action: 'completed', check_suite: { id: 21, head_sha: sha, conclusion: 'failure', updated_at: at, pull_requests: [{ number: 7, head: { ref: 'cldpd/issue-3', repo: { id: 1 } }, base: { repo: { id: 1 } } }] },
        repository: { ...repository, html_url: 'https://github.com/acme/web' }, installation: { id: 9 }, sender: { login: 'github-actions[bot]', type: 'Bot' },
      });
      expect(jobs).toEqual([expect.objectContaining({ trigger: { kind: 'checks', sha, suiteId: 21, conclusion: 'failure' }, pull: { number: 7, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-3', sameRepo: true } })]);
    });

    it.each([
      ['a review by a bot', 'pull_request_review', { review: { id: 1, body: '/cldpd resume', submitted_at: at }, pull_request: pull(), sender: { login: 'renovate[bot]', type: 'Bot' } }],
      ['a review of a fork\'s pull request', 'pull_request_review', { review: { id: 1, body: '/cldpd resume', submitted_at: at }, pull_request: pull({ head: { ref: 'cldpd/issue-3', repo: { id: 2 } } }) }],
      ['a review of a pull request whose fork was deleted', 'pull_request_review', { review: { id: 1, body: '/cldpd resume', submitted_at: at }, pull_request: pull({ head: { ref: 'cldpd/issue-3', repo: null } }) }],
      ['a line comment of a review (read with its review)', 'pull_request_review_comment', { comment: { id: 1, body: '/cldpd resume', pull_request_review_id: 2, created_at: at }, pull_request: pull() }],
      ['a reply without a command', 'pull_request_review_comment', { comment: { id: 1, body: 'agreed', in_reply_to_id: 3, pull_request_review_id: 2, created_at: at }, pull_request: pull() }],
      ['checks that passed', 'check_suite', { check_suite: { id: 1, head_sha: 'a', conclusion: 'success', updated_at: at, pull_requests: [{ number: 7, head: { repo: { id: 1 } }, base: { repo: { id: 1 } } }] } }],
      ['failed checks of no pull request', 'check_suite', { check_suite: { id: 1, head_sha: 'a', conclusion: 'failure', updated_at: at, pull_requests: [] } }],
      ['failed checks of another branch without a pull request', 'check_suite', { check_suite: { id: 1, head_sha: 'a', head_branch: 'feature', conclusion: 'failure', updated_at: at, pull_requests: [] } }],
      ['failed checks of a fork\'s pull request', 'check_suite', { check_suite: { id: 1, head_sha: 'a', conclusion: 'failure', updated_at: at, pull_requests: [{ number: 7, head: { repo: { id: 2 } }, base: { repo: { id: 1 } } }] } }],
      ['a dismissed review', 'pull_request_review', { action: 'dismissed', review: { id: 1, body: '/cldpd resume', submitted_at: at }, pull_request: pull() }],
    ] as const)('pull request: ignores %s quietly', async (_, event, patch) => {
      expect(await receive(event, { action: event === 'check_suite' ? 'completed' : event === 'pull_request_review' ? 'submitted' : 'created', repository, installation: { id: 9 }, sender: alice, ...patch })).toBe('ignored');
      expect(jobs).toEqual([]);
      expect(warnings).toEqual([]);
    });

    it('pull request: ignores a review submitted over 7 days ago (a replayed delivery) and says so', async () => {
      const old = new Date(NOW - MAX_EVENT_AGE_MS - 60_000).toISOString();
      await receive('pull_request_review', { action: 'submitted', review: { id: 1, body: '/cldpd resume', submitted_at: old }, pull_request: pull(), repository, installation: { id: 9 }, sender: alice });
      expect(jobs).toEqual([]);
      expect(warnings).toEqual(['ignored a review submitted over 7 days ago (a replayed delivery?)']);
    });

    it('pull request: says so in the log when a review delivery lacks what cldpd reads', async () => {
      await receive('pull_request_review', { action: 'submitted', review: { id: 'x' }, pull_request: pull(), repository, installation: { id: 9 }, sender: alice });
      expect(warnings).toEqual(['ignored a pull_request_review.submitted delivery without the fields cldpd needs']);
    });
  });
});
