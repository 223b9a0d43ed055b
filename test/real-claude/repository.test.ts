import { readFile } from 'node:fs/promises';
import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { octokitComments } from '../../src/github/comments-api.js';
import { repoTokenSource } from '../../src/github/repo-tokens.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { isToolResultTurn, lastUserText, type Script } from '../fakes/fake-anthropic.js';
import { FakeGitHub, fakeOctokit } from '../fakes/fake-github.js';
import { GitServer, tokenFingerprint } from '../fakes/git-server.js';
import { collect } from '../integration/harness.js';
import { EXAMPLE_POD_JSON, RealClaudeWorld, agentEvents, describeWithRealClaude } from './harness.js';

const github = new FakeGitHub();
const git = new GitServer();
let apiPort = 0;

/**
 * The fake model does what the start prompt offers: on the typed prompt, one Bash call that
 * commits on the issue's branch in the checked-out /workspace, pushes it, and opens a pull
 * request through the API with the live token (bash's /dev/tcp: the image has no curl or
 * gh); on its result, a short Markdown answer.
 */
const script: Script = (body) => {
  if (isToolResultTurn(body)) return { blocks: [{ type: 'text', text: '## Done\n\nPushed the fix and opened a pull request.' }] };
  const prompt = lastUserText(body);
  const branch = /on the branch (\S+) and push it/.exec(prompt)?.[1] ?? 'missing-branch';
  const command = [
    'cd /workspace',
    `git checkout -q -b ${branch}`,
    'echo fixed > fix.txt && git add fix.txt',
    'git commit -qm "Fix the parser"', // as the identity the pod's setup steps gave git
    `git push -q origin ${branch}`,
    `body='{"title":"Fix the parser","head":"${branch}","base":"main"}'`,
    `exec 3<>/dev/tcp/127.0.0.1/${apiPort}`,
    `printf 'POST /api/v3/repos/acme/web/pulls HTTP/1.1\\r\\nHost: api\\r\\nAuthorization: token %s\\r\\nContent-Type: application/json\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s' "$(cat "$CLDPD_GITHUB_TOKEN_FILE")" "\${#body}" "$body" >&3`,
    'head -1 <&3',
  ].join(' && ');
  return { blocks: [{ type: 'text', text: 'Committing the fix on the issue branch.' }, { type: 'tool_use', name: 'Bash', input: { command, description: 'commit, push, open a pull request' } }] };
};

const world = new RealClaudeWorld(script);

describeWithRealClaude('the real Claude Code CLI works on the issue\'s repository', () => {
  beforeAll(async () => {
    await world.init();
    await github.start();
    apiPort = github.port;
    await git.start('127.0.0.1');
    await git.createRepo('acme', 'web', { files: { 'README.md': '# web\n', 'src/parse.ts': 'export {};\n' } });
    // The pods run on the host's network here: the git server's loopback address is theirs.
    github.repos.set('acme/web', { cloneUrl: git.repoUrl('acme', 'web'), defaultBranch: 'main' });
    github.heads = (owner, repo) => git.branches(owner, repo);
    github.onToken = (t) => git.allow(t.token, { repo: 'acme/web', write: t.permissions?.contents === 'write' });
    // examples/pods/claude's pod.json as it is: its "github" permissions, its setup steps, the checkout on.
    await world.claudePod('repo', { checkout: true });
  });

  afterAll(async () => {
    await world.close();
    await git.close();
    await github.close();
  });

  it('checkout, commit, push and pull request: the final comment links the branch and the pull request, and no token is shown', async () => {
    expect(EXAMPLE_POD_JSON).toMatchObject({ github: { contents: 'write', pull_requests: 'write' }, checkout: true, workdir: '/workspace', setup: [expect.any(Array), expect.any(Array)] });
    const issue = { installationId: 7, owner: 'acme', repo: 'web', number: 9, url: 'https://github.com/acme/web/issues/9' };
    const access = repoTokenSource({ appOctokit: async () => fakeOctokit(github), installationOctokit: async () => fakeOctokit(github), installationId: 7, owner: 'acme', repo: 'web', branch: 'cldpd/issue-9' });
    const session = await world.dispatcher.start('repo', { issueUrl: issue.url }, { github: access });
    const events: SessionEvent[] = await collect(session);
    const lines = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
    expect(events.at(-1), lines).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(events.filter((e) => e.type === 'setup.step').map((e) => (e.type === 'setup.step' ? e.name : ''))).toEqual([
      'cloning acme/web', 'git config --global user.name Claude (cldpd)', 'git config --global user.email claude@cldpd.invalid',
    ]);

    // The model was told the branch and that it may push and open a pull request.
    const prompt = world.api.requests.map((r) => JSON.stringify(r.body)).find((b) => b.includes('cldpd/issue-9')) ?? '';
    expect(prompt).toContain('Commit your work on the branch cldpd/issue-9 and push it there');
    expect(prompt).toContain('You may open a pull request');

    // What landed, on the real git server: the branch, pushed with the run's token.
    expect(await git.readFile('acme', 'web', 'cldpd/issue-9', 'fix.txt')).toBe('fixed\n');
    expect((await git.log('acme', 'web', 'cldpd/issue-9'))[0]).toMatchObject({ subject: 'Fix the parser', authorName: 'Claude (cldpd)', authorEmail: 'claude@cldpd.invalid' });
    const minted = github.tokens.filter((t) => t.repositories).map((t) => t.token);
    expect(minted.length).toBeGreaterThan(0);
    expect(minted.map(tokenFingerprint)).toContain(git.pushes().at(-1)?.tokenFingerprint);
    expect(agentEvents(events).some((a) => a.kind === 'tool_result' && a.firstLine.startsWith('HTTP/1.1 201'))).toBe(true);

    // The final comment, from what the API says (not from the agent's answer).
    const work = await access.produced();
    const comments = octokitComments(async () => fakeOctokit(github));
    const posted = await comments.create(issue, 'queued');
    const command: RunCommand = { seq: 1, kind: 'start', issueKey: 'acme.web-9', pod: 'repo', sessionId: session.id, prompt: 'p', statusCommentId: posted.id, requestedBy: 'alice', enqueuedAt: 0, issue };
    const report = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 0, redactorFor: async () => (t: string) => t, logger: pino({ level: 'silent' }) }).forRun(command);
    for (const event of events) report.event(event, session.agent);
    await report.finish({ kind: 'exited', sessionId: session.id, terminal: events.at(-1) as Extract<SessionEvent, { type: 'container.exited' }>, agent: session.agent, ...(work ? { work } : {}) });
    const body = github.comments.find((c) => c.id === posted.id)?.body ?? '';
    expect(body).toContain('Pushed [cldpd/issue-9](https://github.com/acme/web/tree/cldpd/issue-9) → pull request [Fix the parser (#&#8203;1)](https://github.com/acme/web/pull/1)');
    expect(body).toContain('Pushed the fix and opened a pull request.');

    const log = await readFile(world.store.logPath(session.id), 'utf8');
    for (const token of minted) {
      for (const [where, text] of [['events', JSON.stringify(events)], ['log', log], ['comment', body], ['API requests', JSON.stringify(world.api.requests)]] as const) {
        expect(text.includes(token), `the token is in the ${where}`).toBe(false);
      }
    }
  });
});
