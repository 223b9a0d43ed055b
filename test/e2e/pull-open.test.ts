import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueKeyOf } from '../../src/queue/contract.js';
import { PullRequestLinks } from '../../src/queue/pull-request-links.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { GitServer, describeWithGit, dockerGateway } from '../fakes/git-server.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from './processes.js';

const SECRET = 'e2e-pull-open-secret';
const OWNER = 'acme';
const REPO = 'web';
const INSTALLATION = 4243;

/** A Debian image with git (made by scripts/real-claude.sh, which .ci/run runs). */
const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';
const debianPresent = await new Docker().getImage(DEBIAN_IMAGE).inspect().then(() => true, () => false);
if (!debianPresent && process.env.CI === 'true') throw new Error(`${DEBIAN_IMAGE} is missing: .ci/run makes it with scripts/real-claude.sh`);
if (!debianPresent) console.warn(`\n[pull-open] SKIPPED: ${DEBIAN_IMAGE} is missing. Run "bash scripts/real-claude.sh" to make it.\n`);

/**
 * What the pod's agent does, start or resume: clones with nothing but cldpd's credential
 * helper, takes the issue's branch (named in its prompt) where it is or makes it, commits one
 * more file, pushes, and ends with a stream-json result whose text tries to close another
 * issue and notify someone.
 */
const AGENT = `set -e
branch=$(printf '%s' "$1" | grep -o 'cldpd/issue-[0-9]*' | head -1)
git clone -q "$CLDPD_REPO_URL" /tmp/w
cd /tmp/w
if git rev-parse -q --verify "origin/$branch" >/dev/null; then git checkout -q -b "$branch" "origin/$branch"; else git checkout -q -b "$branch"; fi
n=$(ls | grep -c '^work-' || true)
echo "$n" > "work-$n.txt"
git add .
git -c user.name=agent -c user.email=agent@example.com commit -qm "work $n"
git push -q origin "$branch"
echo "pushed work $n to $branch"
printf '%s\\n' '{"type":"result","subtype":"success","is_error":false,"result":"Fixed the parser (work '"$n"'). Thanks @octocat; closes #77.","num_turns":1,"total_cost_usd":0.01}'
`;

(debianPresent ? describeWithDocker : describeWithDocker.skip)('the pull request opens itself, end to end', () => {
  describeWithRedis('server and worker processes, fake GitHub API, a real git server, real Docker and Redis', () => {
    describeWithGit('a pod that pushes the issue\'s branch', () => {
      const world = new TestWorld();
      const github = new FakeGitHub();
      const git = new GitServer();
      let redis: Redis | undefined;
      let port: number;
      let processes: { server: CldpdProcess; worker: CldpdProcess } | undefined;
      let env: NodeJS.ProcessEnv;
      let issueNumber = 1;

      const statusComments = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).filter((c) => c.body.startsWith('<!-- cldpd:status'));
      const finals = async (n: number, count = 1) => {
        await until(`${count} final status comment(s) on #${n}`, () => statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body)).length >= count, 120_000);
        return statusComments(n);
      };
      const label = (n: number, pod: string) => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: INSTALLATION, issue: n, body: 'The parser drops the last line.', label: `cldpd:${pod}` }), { id: randomUUID(), secret: SECRET });
      const comment = (n: number, text: string) => deliver(port, 'issue_comment', webhookPayload('issue_comment', 'created', { owner: OWNER, repo: REPO, installation: INSTALLATION, issue: n, body: 'The parser drops the last line.', comment: text }), { id: randomUUID(), secret: SECRET });
      const pullsFrom = (branch: string) => github.pulls.filter((p) => p.repo === `${OWNER}/${REPO}` && p.head === branch);
      const headOf = async (branch: string) => (await git.branches(OWNER, REPO)).find((b) => b.name === branch)?.sha;
      /** A new issue, open on the fake GitHub. */
      const newIssue = () => {
        const n = issueNumber++;
        github.issueStates.set(`${OWNER}/${REPO}#${n}`, 'open');
        return n;
      };

      async function pod(name: string, permissions: Record<string, string>): Promise<void> {
        const dir = join(world.podsDir, name);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nCOPY agent.sh /agent.sh\n`);
        await writeFile(join(dir, 'agent.sh'), AGENT);
        await writeFile(join(dir, 'pod.json'), JSON.stringify({ command: ['bash', '/agent.sh', '{prompt}'], resumeCommand: ['bash', '/agent.sh', '{prompt}'], stopGraceSeconds: 2, memory: '512m', github: permissions, env: { IS_SANDBOX: '1' } }));
      }

      beforeAll(async () => {
        if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
        await world.init();
        // The isolated network the pods run on must exist for its gateway to be known.
        await world.pod('warm', { command: ['true'] });
        await (await world.dispatcher.start('warm', { prompt: 'x' })).wait();
        const gateway = await dockerGateway('cldpd', undefined, { probeImage: DEBIAN_IMAGE });
        await pod('pr-pusher', { contents: 'write', pull_requests: 'write' });
        await pod('pr-no-write', { contents: 'write' });
        await github.start();
        await git.start();
        await git.createRepo(OWNER, REPO, { files: { 'README.md': 'hello\n' } });
        github.roles.set('alice', 'write');
        github.repos.set(`${OWNER}/${REPO}`, { cloneUrl: git.repoUrl(OWNER, REPO, gateway), defaultBranch: 'main' });
        github.heads = (owner, repo) => git.branches(owner, repo);
        github.onToken = (t) => git.allow(t.token, { repo: `${OWNER}/${REPO}`, write: t.permissions?.contents === 'write' });
        github.onRevoke = (token) => git.revoke(token);
        const db = await testRedis(19);
        redis = db.redis;
        port = await freePort();
        // A short job lock: a worker that dies leaves its job to the next one within seconds.
        env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_PUBLIC_URL: 'https://cldpd.example', CLDPD_JOB_LOCK_SECONDS: '4' } });
        processes = await startServerAndWorker(env, { logDir: world.home, port });
      }, 180_000);

      afterAll(async () => {
        await git.close();
        await stopSuite({ worker: processes?.worker, server: processes?.server, github, redis, world });
      });

      it('label → the pod pushes cldpd/issue-n → a draft pull request into the default branch with Closes #n, recorded in Redis; a second run that pushes more opens none and leaves the description alone', async () => {
        const n = newIssue();
        const branch = `cldpd/issue-${n}`;
        const key = issueKeyOf({ owner: OWNER, repo: REPO, number: n });
        expect(await label(n, 'pr-pusher')).toBe(200);
        const [first] = await finals(n);
        expect(first?.body, first?.body).toContain('exit code 0');

        const [pull] = pullsFrom(branch);
        expect(pullsFrom(branch)).toHaveLength(1);
        expect(pull).toMatchObject({ head: branch, base: 'main', draft: true, state: 'open', title: `Issue ${n}`, user: { type: 'Bot' } });
        expect(pull?.body).toContain(`\nCloses #${n}\n`);
        expect(pull?.body).toContain('Fixed the parser (work 0).');
        // The agent's words close nothing and notify no one: only cldpd's own reference is live.
        expect(pull?.body?.match(/(?:^|[^\w&])#\d+/g)).toEqual([' #' + n]);
        expect(pull?.body).not.toMatch(/(^|[^\w])@octocat/);
        expect(pull?.body).toMatch(/\[session `pr-pusher-[0-9a-f]{16}`\]\(https:\/\/cldpd\.example\/sessions\/pr-pusher-[0-9a-f]{16}\?exp=\d+&sig=[\w-]+\)/);
        expect(pull?.body).toContain('`/cldpd resume <what to do next>` on this pull request');
        expect(first?.body).toContain(`Pushed [${branch}](https://github.com/${OWNER}/${REPO}/tree/${branch}) → draft pull request [Issue ${n} (#&#8203;${pull?.number})](${pull?.html_url}), opened by cldpd`);

        // Recorded as the session's: from the pull request to the issue, with the head the agent pushed.
        const links = new PullRequestLinks(redis as Redis);
        const ref = { owner: OWNER, repo: REPO, number: pull?.number as number };
        expect(await links.issueOfPull(ref)).toBe(key);
        const firstHead = await headOf(branch);
        expect(await links.pullOf(key, ref)).toMatchObject({ head: branch, base: 'main', url: pull?.html_url, agentSha: firstHead, opened: true });

        // A person writes their own description; the next run pushes more.
        if (pull) pull.body = 'My own words about this change.';
        const patchesBefore = github.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/pulls')).length;
        expect(await comment(n, `/cldpd resume push more to ${branch}`)).toBe(200);
        const [, second] = await finals(n, 2);
        expect(second?.body, second?.body).toContain('exit code 0');
        expect(await git.readFile(OWNER, REPO, branch, 'work-1.txt')).toBe('1\n');
        expect(pullsFrom(branch)).toHaveLength(1);
        expect(pull?.body).toBe('My own words about this change.');
        expect(github.requests.filter((r) => r.method === 'PATCH' && r.path.includes('/pulls')).length).toBe(patchesBefore);
        expect(second?.body).toContain(`→ draft pull request [Issue ${n} (#&#8203;${pull?.number})](${pull?.html_url})`);
        expect(second?.body).not.toContain('opened by cldpd');
        const secondHead = await headOf(branch);
        expect(secondHead).not.toBe(firstHead);
        expect(await links.pullOf(key, ref)).toMatchObject({ agentSha: secondHead, opened: true });
        expect(github.rejected).toEqual([]);
      });

      it('a worker killed just after GitHub opened the pull request, before it answered: the next worker finishes the run, finds and records that one, and opens no second', async () => {
        const n = newIssue();
        const branch = `cldpd/issue-${n}`;
        github.pullAnswerDelayMs = 60_000;
        try {
          await label(n, 'pr-pusher');
          await until('the pull request opened', () => pullsFrom(branch).length === 1, 120_000);
          await processes?.worker.stop('SIGKILL');
        } finally {
          github.pullAnswerDelayMs = 0;
        }
        if (processes) processes.worker = new CldpdProcess('worker', env, join(world.home, 'worker-after-crash.log'));
        const [status] = await finals(n);
        expect(status?.body, status?.body).toContain('exit code 0');
        expect(statusComments(n)).toHaveLength(1);
        expect(pullsFrom(branch)).toHaveLength(1);
        // The next worker found what the run pushed, with the pull request GitHub had opened, and recorded it.
        expect(status?.body).toContain(`→ draft pull request [Issue ${n} (#&#8203;${pullsFrom(branch)[0]?.number})]`);
        const key = issueKeyOf({ owner: OWNER, repo: REPO, number: n });
        expect(await new PullRequestLinks(redis as Redis).pullOf(key, { owner: OWNER, repo: REPO, number: pullsFrom(branch)[0]?.number as number })).toMatchObject({ head: branch, agentSha: await headOf(branch) });
        // A later run of the session finds it again and opens no other.
        await comment(n, `/cldpd resume push more to ${branch}`);
        const [, second] = await finals(n, 2);
        expect(second?.body, second?.body).toContain(`→ draft pull request [Issue ${n} (#&#8203;${pullsFrom(branch)[0]?.number})]`);
        expect(pullsFrom(branch)).toHaveLength(1);
        const ref = { owner: OWNER, repo: REPO, number: pullsFrom(branch)[0]?.number as number };
        expect(await new PullRequestLinks(redis as Redis).issueOfPull(ref)).toBe(issueKeyOf({ owner: OWNER, repo: REPO, number: n }));
      });

      it('a worker killed after the run ended, before it looked for what the run pushed: the next worker finds the run finished, its pushed branch, and opens the pull request', async () => {
        const n = newIssue();
        const branch = `cldpd/issue-${n}`;
        const listed = () => github.requests.some((r) => r.method === 'GET' && r.path === `/repos/${OWNER}/${REPO}/pulls`);
        github.requests.length = 0;
        github.pullListDelayMs = 60_000;
        try {
          await label(n, 'pr-pusher');
          await until('the worker looking for the pull requests of what the run pushed', listed, 120_000);
          await processes?.worker.stop('SIGKILL');
        } finally {
          github.pullListDelayMs = 0;
        }
        expect(pullsFrom(branch)).toEqual([]);
        if (processes) processes.worker = new CldpdProcess('worker', env, join(world.home, 'worker-after-second-crash.log'));
        const [status] = await finals(n);
        expect(status?.body, status?.body).toContain('exit code 0');
        expect(pullsFrom(branch)).toHaveLength(1);
        expect(pullsFrom(branch)[0]).toMatchObject({ draft: true, base: 'main' });
        expect(status?.body).toContain(`Pushed [${branch}](https://github.com/${OWNER}/${REPO}/tree/${branch}) → draft pull request [Issue ${n} (#&#8203;${pullsFrom(branch)[0]?.number})]`);
        const key = issueKeyOf({ owner: OWNER, repo: REPO, number: n });
        expect(await new PullRequestLinks(redis as Redis).pullOf(key, { owner: OWNER, repo: REPO, number: pullsFrom(branch)[0]?.number as number })).toMatchObject({ agentSha: await headOf(branch), opened: true });
      });

      it('pullRequest: off in .github/cldpd.yml: the branch is pushed and no pull request is opened', async () => {
        const n = newIssue();
        github.settings.set(`${OWNER}/${REPO}`, 'pullRequest: off\n');
        try {
          await label(n, 'pr-pusher');
          const [status] = await finals(n);
          expect(status?.body, status?.body).toContain('exit code 0');
          expect(await headOf(`cldpd/issue-${n}`)).toBeDefined();
          expect(pullsFrom(`cldpd/issue-${n}`)).toEqual([]);
          expect(status?.body).toContain(`Pushed [cldpd/issue-${n}](https://github.com/${OWNER}/${REPO}/tree/cldpd/issue-${n}) (no pull request)`);
        } finally {
          github.settings.delete(`${OWNER}/${REPO}`);
        }
      });

      it('a pod without pull_requests: write: the branch is pushed and no pull request is opened', async () => {
        const n = newIssue();
        const posts = github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/pulls')).length;
        await label(n, 'pr-no-write');
        const [status] = await finals(n);
        expect(status?.body, status?.body).toContain('exit code 0');
        expect(await headOf(`cldpd/issue-${n}`)).toBeDefined();
        expect(pullsFrom(`cldpd/issue-${n}`)).toEqual([]);
        expect(github.requests.filter((r) => r.method === 'POST' && r.path.endsWith('/pulls')).length).toBe(posts);
        expect(status?.body).toContain('(no pull request)');
      });

      it('GitHub refusing to open it (403): the final comment says so, and the run is not failed', async () => {
        const n = newIssue();
        github.refusePulls = { status: 403, message: 'Resource not accessible by integration', times: 1 };
        try {
          await label(n, 'pr-pusher');
          const [status] = await finals(n);
          expect(status?.body, status?.body).toMatch(/cldpd: finished/);
          expect(status?.body).toContain('exit code 0');
          expect(status?.body).toContain(`Pushed [cldpd/issue-${n}](https://github.com/${OWNER}/${REPO}/tree/cldpd/issue-${n}) (no pull request: cldpd could not open one, GitHub refused (403: Resource not accessible by integration): the GitHub App needs the "Pull requests" permission`);
          expect(pullsFrom(`cldpd/issue-${n}`)).toEqual([]);
        } finally {
          github.refusePulls = undefined;
        }
      });
    });
  });
});
