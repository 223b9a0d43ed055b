import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { isToolResultTurn, lastUserText, userTexts, type FakeBlock, type Script } from '../fakes/fake-anthropic.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { GitServer } from '../fakes/git-server.js';
import { until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CldpdProcess, deliver, freePort, processEnv, pullPayload, serverUp, webhookPayload } from '../e2e/processes.js';
import { RealClaudeWorld, describeWithRealClaude } from './harness.js';

const SECRET = 'real-claude-pull-loop';
const github = new FakeGitHub();
const git = new GitServer();

/** A Bash call that commits `file` with `text` on the run's branch in /workspace and pushes it. */
function commitAndPush(branch: string, file: string, text: string, subject: string): FakeBlock {
  const command = ['cd /workspace', `git checkout -q -B ${branch}`, `echo '${text}' >> ${file} && git add ${file}`, `git commit -qm '${subject}'`, `git push -q origin ${branch}`].join(' && ');
  return { type: 'tool_use', name: 'Bash', input: { command, description: subject } };
}

/**
 * The fake model: the issue's prompt → one commit pushed to the branch it was told (no pull
 * request: cldpd opens it); a review → a second commit on the pull request's branch; each tool
 * result → a short answer.
 */
const script: Script = (body) => {
  if (isToolResultTurn(body)) return { blocks: [{ type: 'text', text: 'Done: pushed.' }] };
  const prompt = lastUserText(body);
  const review = /Work on the pull request's branch `([^`]+)`/.exec(prompt);
  if (review) return { blocks: [{ type: 'text', text: 'Renaming as the review asks.' }, commitAndPush(review[1] as string, 'fix.txt', 'renamed to gizmo', 'Rename to gizmo')] };
  const branch = /on the branch (\S+) and push it/.exec(prompt)?.[1] ?? 'missing-branch';
  return { blocks: [{ type: 'text', text: 'Fixing the parser.' }, commitAndPush(branch, 'fix.txt', 'fixed', 'Fix the parser')] };
};

const world = new RealClaudeWorld(script);

describeWithRealClaude('the real Claude Code CLI, from an issue to a revised pull request', () => {
  describeWithRedis('through the real server and worker, Redis, a real git server and the fake GitHub API', () => {
    let redis: Redis;
    let port: number;
    let server: CldpdProcess;
    let worker: CldpdProcess;

    beforeAll(async () => {
      await world.init();
      await github.start();
      await git.start('127.0.0.1');
      await git.createRepo('acme', 'web', { files: { 'README.md': '# web\n' } });
      github.repos.set('acme/web', { cloneUrl: git.repoUrl('acme', 'web'), defaultBranch: 'main' });
      github.heads = (owner, repo) => git.branches(owner, repo);
      github.onToken = (t) => git.allow(t.token, { repo: 'acme/web', write: t.permissions?.contents === 'write' });
      github.roles.set('alice', 'write');
      github.issueStates.set('acme/web#9', 'open');
      await world.claudePod('claude', { checkout: true });
      const db = await testRedis(24);
      redis = db.redis;
      port = await freePort();
      const env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET });
      server = new CldpdProcess('serve', env, join(world.home, 'server.log'));
      worker = new CldpdProcess('worker', env, join(world.home, 'worker.log'));
      await serverUp(port);
    });

    afterAll(async () => {
      await worker?.stop();
      await server?.stop();
      redis?.disconnect();
      await world.close();
      await git.close();
      await github.close();
    });

    it('pull request: label → commit and push → cldpd opens a draft pull request → a review → the same conversation pushes a second commit to it', async () => {
      const label = webhookPayload('issues', 'labeled', { owner: 'acme', repo: 'web', installation: 7, issue: 9, body: 'The parser drops the last line.', label: 'cldpd:claude' });
      expect(await deliver(port, 'issues', label, { id: randomUUID(), secret: SECRET })).toBe(200);
      const finished = (on: string) => github.commentsOn(on).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body));
      await until('the first run\'s final comment', () => finished('acme/web#9').length === 1, 180_000);
      expect(finished('acme/web#9')[0]?.body).toContain('cldpd: finished');

      // cldpd opened the pull request: a draft from the run's branch into the default branch, closing the issue.
      expect(github.pulls).toEqual([expect.objectContaining({ repo: 'acme/web', head: 'cldpd/issue-9', base: 'main' })]);
      const opened = github.requests.find((r) => r.method === 'POST' && r.path === '/repos/acme/web/pulls');
      expect(opened?.body).toMatchObject({ draft: true, head: 'cldpd/issue-9', base: 'main' });
      expect(String(opened?.body.body)).toContain('Closes #9');
      const pull = github.pulls[0]?.number as number;
      expect(await git.readFile('acme', 'web', 'cldpd/issue-9', 'fix.txt')).toBe('fixed\n');

      // A review with a line comment carrying /cldpd resume.
      const reviewId = 881;
      github.reviews.set(`acme/web#${pull}/${reviewId}`, { body: '', state: 'CHANGES_REQUESTED', user: 'alice' });
      github.reviewComments.push({ pull: `acme/web#${pull}`, id: 882, reviewId, path: 'fix.txt', line: 1, diffHunk: '@@ -0,0 +1 @@\n+fixed', body: '/cldpd resume call it gizmo', user: 'alice' });
      const review = pullPayload('pull_request_review', 'submitted', { owner: 'acme', repo: 'web', installation: 7, pull, head: 'cldpd/issue-9', review: { id: reviewId, body: '', state: 'changes_requested' } });
      const requestsBefore = world.api.requests.length;
      expect(await deliver(port, 'pull_request_review', review, { id: randomUUID(), secret: SECRET })).toBe(200);
      await until('the review run\'s final comment on the pull request', () => finished(`acme/web#${pull}`).length === 1, 180_000);
      expect(finished(`acme/web#${pull}`)[0]?.body).toMatch(/cldpd: finished \(pod `claude`, resume 1\)/);

      // The same conversation: the model's request for the review carries the first run's turns.
      const reviewRequest = world.api.requests.slice(requestsBefore).find((r) => lastUserText(r.body as never).includes('Review of pull request'));
      expect(reviewRequest, 'the review reached the model').toBeDefined();
      const texts = userTexts(reviewRequest?.body as never).join('\n');
      expect(texts).toContain('The parser drops the last line.');
      expect(lastUserText(reviewRequest?.body as never)).toContain('`fix.txt`, line 1');
      expect(lastUserText(reviewRequest?.body as never)).toContain('@alice: /cldpd resume call it gizmo');

      // The second commit is on the same branch, and the same pull request is the only one.
      expect((await git.log('acme', 'web', 'cldpd/issue-9')).map((c) => c.subject).slice(0, 2)).toEqual(['Rename to gizmo', 'Fix the parser']);
      expect(await git.readFile('acme', 'web', 'cldpd/issue-9', 'fix.txt')).toBe('fixed\nrenamed to gizmo\n');
      expect(github.pulls).toHaveLength(1);
    }, 400_000);
  });
});
