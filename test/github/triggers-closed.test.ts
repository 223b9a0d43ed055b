import { beforeEach, describe, expect, it } from 'vitest';
import { MAX_EVENT_AGE_MS } from '../../src/github/triggers.js';
import type { IntakeJob } from '../../src/queue/contract.js';
import { alice, issue, recordingWebhookHandler, repository, type RecordingWebhookHandler } from './recording-webhook-handler.js';

const NOW = Date.parse('2026-11-23T12:00:00Z');
const iso = (t: number) => new Date(t).toISOString();

let jobs: IntakeJob[];
let warnings: string[];
let receive: RecordingWebhookHandler['receive'];

beforeEach(() => {
  ({ jobs, warnings, receive } = recordingWebhookHandler(NOW));
});

/** An issues.closed or issues.reopened delivery as GitHub sends it, `times` on its issue. */
function issueEvent(action: 'closed' | 'reopened', times: { closed_at?: string | null; updated_at?: string }, patch: object = {}): object {
  return { action, issue: { ...issue, ...times }, repository, installation: { id: 9 }, sender: alice, ...patch };
}

describe('the webhook handler: issues.closed and issues.reopened', () => {
  it('turns a close into an intake job of kind closed, at the issue\'s closed_at', async () => {
    const closedAt = NOW - 5000;
    const result = await receive('issues', issueEvent('closed', { closed_at: iso(closedAt), updated_at: iso(closedAt + 1000) }));
    expect(result).toBe('accepted');
    expect(jobs).toEqual([{
      deliveryId: 'body-sha256',
      githubDelivery: 'delivery-1',
      trigger: { kind: 'closed', at: closedAt },
      issue: { installationId: 9, owner: 'acme', repo: 'web', number: 3, url: issue.html_url, title: 'Bug', body: 'text' },
      sender: alice,
      receivedAt: expect.any(Number),
    }]);
    expect(warnings).toEqual([]);
  });

  it('takes the issue\'s updated_at for a close without closed_at', async () => {
    await receive('issues', issueEvent('closed', { closed_at: null, updated_at: iso(NOW - 2000) }));
    expect(jobs.map((j) => j.trigger)).toEqual([{ kind: 'closed', at: NOW - 2000 }]);
  });

  it('turns a reopen into an intake job of kind reopened, at the issue\'s updated_at (a stale closed_at is not its time)', async () => {
    const result = await receive('issues', issueEvent('reopened', { closed_at: iso(NOW - 60_000), updated_at: iso(NOW - 1000) }));
    expect(result).toBe('accepted');
    expect(jobs.map((j) => j.trigger)).toEqual([{ kind: 'reopened', at: NOW - 1000 }]);
  });

  it('keeps millisecond times as they are, so which came last is decided exactly', async () => {
    await receive('issues', issueEvent('closed', { closed_at: '2026-11-23T11:59:59.123Z' }));
    await receive('issues', issueEvent('reopened', { updated_at: '2026-11-23T11:59:59.124Z' }));
    expect(jobs.map((j) => j.trigger)).toEqual([
      { kind: 'closed', at: Date.parse('2026-11-23T11:59:59.123Z') },
      { kind: 'reopened', at: Date.parse('2026-11-23T11:59:59.124Z') },
    ]);
  });

  it.each([
    ['a bot', { login: 'stale[bot]', type: 'Bot' }],
    ['a stranger', { login: 'mallory', type: 'User' }],
  ])('accepts a close by %s: who closed it does not matter, and permissions are the intake\'s to check', async (_, sender) => {
    expect(await receive('issues', issueEvent('closed', { closed_at: iso(NOW - 1000) }, { sender }))).toBe('accepted');
    expect(jobs.map((j) => [j.trigger.kind, j.sender])).toEqual([['closed', sender]]);
  });

  it.each(['closed', 'reopened'] as const)('ignores a %s pull request quietly', async (action) => {
    const result = await receive('issues', issueEvent(action, { closed_at: iso(NOW - 1000), updated_at: iso(NOW - 1000) }, { issue: { ...issue, pull_request: {}, closed_at: iso(NOW - 1000), updated_at: iso(NOW - 1000) } }));
    expect(result).toBe('ignored');
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([]);
  });

  it.each([
    ['no installation', { installation: undefined }],
    ['no repository', { repository: undefined }],
    ['no sender', { sender: undefined }],
    ['an issue number that is a string', { issue: { ...issue, number: '3', closed_at: iso(NOW) } }],
  ])('ignores a delivery with %s, and says so', async (_, patch) => {
    for (const action of ['closed', 'reopened'] as const) {
      expect(await receive('issues', issueEvent(action, { closed_at: iso(NOW), updated_at: iso(NOW) }, patch))).toBe('ignored');
    }
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([
      'ignored an issues.closed delivery without the fields cldpd needs',
      'ignored an issues.reopened delivery without the fields cldpd needs',
    ]);
  });

  it.each([
    ['a close with no time at all', 'closed', {}],
    ['a close whose closed_at is not a time (no fallback to updated_at)', 'closed', { closed_at: 'yesterday', updated_at: iso(NOW) }],
    ['a reopen with no updated_at', 'reopened', { closed_at: iso(NOW) }],
    ['a reopen whose updated_at is empty', 'reopened', { updated_at: '' }],
  ] as const)('ignores %s, and says so', async (_, action, times) => {
    expect(await receive('issues', issueEvent(action, times))).toBe('ignored');
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([`ignored an issues.${action} delivery without its time`]);
  });

  it.each(['closed', 'reopened'] as const)('replay: ignores a %s of more than 7 days ago, and acts on one just inside', async (action) => {
    const at = (t: number) => issueEvent(action, { closed_at: iso(t), updated_at: iso(t) });
    expect(await receive('issues', at(NOW - MAX_EVENT_AGE_MS - 1000))).toBe('ignored');
    expect(jobs).toEqual([]);
    expect(warnings).toEqual([`ignored an issues.${action} of over 7 days ago (a replayed delivery?)`]);
    expect(await receive('issues', at(NOW - MAX_EVENT_AGE_MS + 60_000))).toBe('accepted');
    expect(jobs).toHaveLength(1);
  });

  it.each([
    ['issues', 'opened'],
    ['issues', 'edited'],
    ['issues', 'deleted'],
    ['issues', 'locked'],
    ['issue_comment', 'closed'],
    ['issue_comment', 'reopened'],
  ] as const)('routes nothing for %s.%s', async (event, action) => {
    expect(await receive(event, { ...issueEvent('closed', { closed_at: iso(NOW), updated_at: iso(NOW) }), action, comment: { id: 1, body: 'closing' } })).toBe('ignored');
    expect(jobs).toEqual([]);
  });
});
