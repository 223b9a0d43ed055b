import { pino } from 'pino';
import { Probot } from 'probot';
import { beforeEach, describe, expect, it } from 'vitest';
import { cldpdApp } from '../../src/github/app.js';
import type { IntakeJob } from '../../src/queue/contract.js';

const repository = { name: 'web', owner: { login: 'acme' } };
const issue = { number: 3, html_url: 'https://github.com/acme/web/issues/3', title: 'Bug', body: 'text' };
const alice = { login: 'alice', type: 'User' };

let jobs: IntakeJob[];
let probot: Probot;

beforeEach(async () => {
  jobs = [];
  probot = new Probot({ githubToken: 'test', log: pino({ level: 'silent' }) });
  await probot.load(cldpdApp({ intake: async (job) => void jobs.push(job) }));
});

const receive = (name: 'issues' | 'issue_comment', payload: object) => probot.receive({ id: 'delivery-1', name, payload } as never);

describe('the webhook handler', () => {
  it('turns a cldpd:<pod> label into an intake job keyed by the delivery', async () => {
    await receive('issues', { action: 'labeled', label: { name: 'cldpd:web' }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs).toEqual([{
      deliveryId: 'delivery-1',
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
    ['quoted commands', 'issue_comment', { action: 'created', comment: { id: 1, body: '> /cldpd stop' } }],
    ['the app\'s own comments', 'issue_comment', { action: 'created', comment: { id: 1, body: '/cldpd status' }, sender: { login: 'cldpd[bot]', type: 'Bot' } }],
    ['edited comments', 'issue_comment', { action: 'edited', comment: { id: 1, body: '/cldpd stop' } }],
    ['comments on pull requests', 'issue_comment', { action: 'created', comment: { id: 1, body: '/cldpd stop' }, issue: { ...issue, pull_request: {} } }],
  ] as const)('ignores %s quietly', async (_, name, patch) => {
    await receive(name, { issue, repository, installation: { id: 9 }, sender: alice, ...patch });
    expect(jobs).toEqual([]);
  });

  it.each([
    ['/cldpd resume and then\nthe tests', { kind: 'resume', prompt: 'and then\nthe tests', commentId: 5, commentBody: '/cldpd resume and then\nthe tests' }],
    ['/cldpd stop', { kind: 'stop', commentId: 5 }],
    ['/cldpd status', { kind: 'status', commentId: 5 }],
    ['/cldpd nope', { kind: 'invalid', problem: '`/cldpd nope` is not a command.', commentId: 5 }],
  ])('queues the command in %j', async (body, trigger) => {
    await receive('issue_comment', { action: 'created', comment: { id: 5, body }, issue, repository, installation: { id: 9 }, sender: alice });
    expect(jobs.map((j) => j.trigger)).toEqual([trigger]);
  });
});
