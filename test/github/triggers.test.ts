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
    ['comments on pull requests', 'issue_comment', { action: 'created', comment: { id: 1, body: '/cldpd stop' }, issue: { ...issue, pull_request: {} } }],
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
});
