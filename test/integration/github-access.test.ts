import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { ContainerSpec, SessionEvent } from '../../src/core/index.js';
import { pino } from 'pino';
import { octokitComments } from '../../src/github/comments-api.js';
import { repoTokenSource } from '../../src/github/repo-tokens.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { localWriteBudget } from '../../src/github/write-budget-policy.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { FakeGitHub, fakeOctokit } from '../fakes/fake-github.js';
import { GitServer, describeWithGit, dockerGateway, tokenFingerprint } from '../fakes/git-server.js';
import { TestWorld, describeWithDocker } from './harness.js';

/** A Debian image with git (made by scripts/real-claude.sh, which .ci/run runs). */
const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';
const debianPresent = await new Docker().getImage(DEBIAN_IMAGE).inspect().then(() => true, () => false);
if (!debianPresent && process.env.CI === 'true') throw new Error(`${DEBIAN_IMAGE} is missing: .ci/run makes it with scripts/real-claude.sh`);
if (!debianPresent) console.warn(`\n[github-access] SKIPPED: ${DEBIAN_IMAGE} is missing. Run "bash scripts/real-claude.sh" to make it.\n`);

/** What the pod's agent does: clone with nothing but the credential helper, commit, push a branch; optionally wait and push again. */
const AGENT = `set -e
git clone -q "$CLDPD_REPO_URL" /tmp/w
cd /tmp/w
git checkout -q -b "$BRANCH"
push() { echo "$1" > "$1.txt"; git add "$1.txt"; git -c user.name=agent -c user.email=agent@example.com commit -qm "$1"; git push -q origin "$BRANCH"; echo "pushed $1"; }
push one
echo "the token in the env: $GH_TOKEN"
echo "the token file: $(cat "$CLDPD_GITHUB_TOKEN_FILE")"
if [ -n "$WAIT_SECONDS" ]; then sleep "$WAIT_SECONDS"; push two; fi
if [ -n "$API_PORT" ]; then
  # Opens a pull request through the API, as "gh pr create" would, with the live token,
  # through the run's gateway (the pod's only way out) as gh's proxy setting would.
  body='{"title":"Fix the parser","head":"'"$BRANCH"'","base":"main"}'
  proxy=\${HTTP_PROXY#http://}; proxy=\${proxy%/}
  exec 3<>"/dev/tcp/\${proxy%:*}/\${proxy#*:}"
  printf 'POST http://%s:%s/api/v3/repos/acme/web/pulls HTTP/1.1\r\nHost: %s:%s\r\nAuthorization: token %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "$API_HOST" "$API_PORT" "$API_HOST" "$API_PORT" "$(cat "$CLDPD_GITHUB_TOKEN_FILE")" "\${#body}" "$body" >&3
  head -1 <&3
fi
`;

(debianPresent ? describeWithDocker : describeWithDocker.skip)('a run\'s GitHub token: minted for the repository, handed to git, kept fresh, never shown', () => {
  describeWithGit('against a real git server and the fake GitHub API', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const git = new GitServer();
    const specs: ContainerSpec[] = [];
    /** How long the git server lets each token work (GitHub says an hour; the fake may claim that while the server cuts it short). */
    let serverLifetimeMs = 3600_000;
    let gateway = '';

    beforeAll(async () => {
      await world.init();
      const run = world.runner.run.bind(world.runner);
      world.runner.run = async (spec) => {
        specs.push(spec);
        return run(spec);
      };
      await github.start('0.0.0.0');
      await git.start();
      // The isolated network the pods run on must exist for its gateway to be known.
      await world.pod('warm', { command: ['true'] });
      await (await world.dispatcher.start('warm', { prompt: 'x' })).wait();
      gateway = await dockerGateway('cldpd', undefined, { probeImage: specs[0]?.image });
      await git.createRepo('acme', 'web', { files: { 'README.md': 'hello\n' } });
      github.repos.set('acme/web', { cloneUrl: git.repoUrl('acme', 'web', gateway), defaultBranch: 'main' });
      github.heads = (owner, repo) => git.branches(owner, repo);
      github.onToken = (t) => git.allow(t.token, { repo: 'acme/web', write: t.permissions?.contents === 'write', expiresAt: Date.now() + serverLifetimeMs });
      // GitHub's revocation reaches git at once: the git server refuses a revoked token from then on.
      github.onRevoke = (token) => git.revoke(token);
    });

    afterAll(async () => {
      await git.close();
      await github.close();
      await world.close();
    });

    const source = (branch = 'cldpd/issue-1') => repoTokenSource({
      appOctokit: async () => fakeOctokit(github),
      installationOctokit: async () => fakeOctokit(github),
      installationId: 7, owner: 'acme', repo: 'web', branch,
      tokenOctokit: (token) => fakeOctokit(github, token),
    });

    /** Whether the git server lets `token` read acme/web now (as git's first request of a clone would). */
    async function gitTakes(token: string): Promise<boolean> {
      const res = await fetch(`${git.repoUrl('acme', 'web')}/info/refs?service=git-upload-pack`, { headers: { authorization: `Basic ${Buffer.from(`x-access-token:${token}`).toString('base64')}` } });
      await res.arrayBuffer();
      return res.ok;
    }

    async function pod(name: string, podJson: object): Promise<void> {
      const dir = join(world.podsDir, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nCOPY agent.sh /agent.sh\n`);
      await writeFile(join(dir, 'agent.sh'), AGENT);
      await writeFile(join(dir, 'pod.json'), JSON.stringify({ command: ['bash', '/agent.sh'], stopGraceSeconds: 2, memory: '512m', ...podJson, env: { IS_SANDBOX: '1', BRANCH: `cldpd/${name}`, ...(podJson as { env?: object }).env } }));
    }

    async function collect(run: Promise<import('../../src/core/index.js').Session>): Promise<SessionEvent[]> {
      const session = await run;
      const events: SessionEvent[] = [];
      for await (const e of session.events()) events.push(e);
      return events;
    }

    /** Every place a token could leak to on this host: the events, the session's log, the container's labels and env files, the image. */
    async function assertHidden(tokens: readonly string[], podName: string, events: SessionEvent[]): Promise<void> {
      expect(tokens.length).toBeGreaterThan(0);
      const sessionId = (await world.store.list()).find((r) => r.pod === podName)?.id as string;
      const log = await readFile(world.store.logPath(sessionId), 'utf8');
      const record = await readFile(join(world.home, 'sessions', sessionId, 'session.json'), 'utf8');
      const labels = JSON.stringify(specs.map((s) => s.labels));
      const image = JSON.stringify(await world.docker.getImage(`cldpd-${podName}:latest`).inspect());
      for (const token of tokens) {
        for (const [where, text] of [['events', JSON.stringify(events)], ['log', log], ['record', record], ['labels', labels], ['image', image], ['git server records', JSON.stringify(git.requests)]] as const) {
          expect(text.includes(token), `the token is in the ${where}`).toBe(false);
        }
      }
    }

    it('asks GitHub for exactly the repository and the permissions the pod names; git pushes with the credential helper alone; the token is shown nowhere', async () => {
      await pod('pusher', { github: { contents: 'write', pull_requests: 'write' } });
      const before = github.tokens.length;
      const events = await collect(world.dispatcher.start('pusher', { prompt: 'push' }, { github: source() }));
      const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
      expect(events.at(-1), output).toMatchObject({ type: 'container.exited', exitCode: 0 });

      const minted = github.tokens.slice(before);
      expect(minted.map((t) => ({ installationId: t.installationId, repositories: t.repositories, permissions: t.permissions }))).toEqual([
        { installationId: 7, repositories: ['web'], permissions: { contents: 'write', pull_requests: 'write' } },
      ]);
      const token = minted[0]?.token as string;
      expect((await git.branches('acme', 'web')).map((b) => b.name)).toContain('cldpd/pusher');
      expect(await git.readFile('acme', 'web', 'cldpd/pusher', 'one.txt')).toBe('one\n');
      const pushes = git.pushes();
      expect(pushes.at(-1)?.tokenFingerprint).toBe(tokenFingerprint(token));
      // The agent printed the token twice; the log and the events have it hidden.
      expect(output).toContain('the token in the env: [redacted]');
      expect(output).toContain('the token file: [redacted]');
      await assertHidden([token], 'pusher', events);
      // revoke: the run has ended, so has its token, at GitHub and at git.
      expect(github.revoked).toContain(token);
      expect(await gitTakes(token)).toBe(false);
      expect(git.requests.at(-1)?.auth).toBe('revoked');
    });

    it('the final comment links the branch the run pushed and the pull request it opened, found through the API', async () => {
      await pod('opener', { github: { contents: 'write', pull_requests: 'write' }, egress: [`${gateway}:${github.port}`], env: { API_HOST: gateway, API_PORT: String(github.port), BRANCH: 'cldpd/issue-8' } });
      // Someone else pushes to another branch while the run goes: not the run's work.
      github.onToken = ((previous) => (t: Parameters<NonNullable<typeof previous>>[0]) => {
        previous?.(t);
        void git.commit('acme', 'web', { branch: 'someone-else', files: { 'x.txt': t.token.slice(-6) } });
      })(github.onToken);
      const access = source('cldpd/issue-8');
      const events = await collect(world.dispatcher.start('opener', { prompt: 'open a pull request' }, { github: access }));
      const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
      expect(events.at(-1), output).toMatchObject({ type: 'container.exited', exitCode: 0 });
      expect(output).toContain('HTTP/1.1 201');
      const work = await access.produced();
      // Only what changed during the run: main and the earlier tests' branches are not the run's.
      expect(work?.branches.map((b) => b.name)).toEqual(['cldpd/issue-8']);
      expect(work?.pulls).toEqual([{ number: 1, title: 'Fix the parser', url: 'https://github.com/acme/web/pull/1', state: 'open', branch: 'cldpd/issue-8', base: 'main' }]);
      expect(work?.branches[0]?.sha).toBe((await git.branches('acme', 'web')).find((b) => b.name === 'cldpd/issue-8')?.sha);
      expect((await git.branches('acme', 'web')).map((b) => b.name)).toContain('someone-else');

      const comments = octokitComments(async () => fakeOctokit(github));
      const issue = { installationId: 7, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' };
      const posted = await comments.create(issue, 'queued');
      const sessionId = (await world.store.list()).find((r) => r.pod === 'opener')?.id as string;
      const command: RunCommand = { seq: 1, kind: 'start', issueKey: 'acme.web-1', pod: 'opener', sessionId, prompt: 'p', statusCommentId: posted.id, requestedBy: 'alice', enqueuedAt: 0, issue };
      const report = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 0, redactorFor: async () => (t: string) => t, logger: pino({ level: 'silent' }) }).forRun(command);
      const terminal = events.at(-1) as Extract<SessionEvent, { type: 'container.exited' }>;
      await report.finish({ kind: 'exited', sessionId, terminal, ...(work ? { work } : {}) });
      const body = github.comments.find((c) => c.id === posted.id)?.body ?? '';
      expect(body).toContain('Pushed [cldpd/issue-8](https://github.com/acme/web/tree/cldpd/issue-8) → pull request [Fix the parser (#&#8203;1)](https://github.com/acme/web/pull/1)');
      expect(body).not.toContain('someone-else');
      await assertHidden(github.tokens.filter((t) => t.repositories).map((t) => t.token), 'opener', events);
      for (const token of github.tokens.map((t) => t.token)) expect(body.includes(token)).toBe(false);
    });

    /** A pod whose agent runs as a non-root user after a checkout and setup steps (one as root). */
    async function setupPod(name: string, setup: unknown[]): Promise<void> {
      const dir = join(world.podsDir, name);
      await mkdir(dir, { recursive: true });
      await writeFile(join(dir, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nRUN useradd --create-home agent && mkdir /workspace && chown agent /workspace\nCOPY agent.sh /agent.sh\nUSER agent\nWORKDIR /workspace\n`);
      await writeFile(join(dir, 'agent.sh'), [
        'cd /workspace',
        'echo "agent uid $(id -u)"',
        'echo "the root step ran as $(cat /tmp/root-step 2>/dev/null || echo nobody)"',
        'test -f README.md && echo "the clone is here: $(git log --format=%s -1)"',
        'test -f agent-was-here && echo "found my earlier work"',
        'touch agent-was-here',
      ].join('\n'));
      await writeFile(join(dir, 'pod.json'), JSON.stringify({
        command: ['bash', '/agent.sh'], resumeCommand: ['bash', '/agent.sh'], stopGraceSeconds: 2, memory: '512m', workdir: '/workspace',
        github: { contents: 'write' }, checkout: true, setup,
      }));
    }

    it('checkout and setup: the repository is cloned, each step reported as it runs, root steps as root, the agent as its user; a resume fetches into the same workspace', async () => {
      await setupPod('builder', [['sh', '-c', 'echo installing dependencies'], { run: ['sh', '-c', 'id -u > /tmp/root-step; echo as root'], user: 'root' }]);
      const issueUrl = 'https://github.com/acme/web/issues/5';
      // The issue's branch exists already (an earlier session pushed it): the checkout takes it.
      await git.commit('acme', 'web', { branch: 'cldpd/issue-5', files: { 'README.md': 'wip\n' }, message: 'Work in progress' });
      const events = await collect(world.dispatcher.start('builder', { issueUrl }, { github: source() }));
      const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
      expect(events.at(-1), output).toMatchObject({ type: 'container.exited', exitCode: 0 });
      const steps = events.filter((e) => e.type === 'setup.step').map((e) => (e.type === 'setup.step' ? `${e.step}/${e.of} ${e.name}` : ''));
      expect(steps).toEqual(['1/3 cloning acme/web', '2/3 sh -c echo installing dependencies', '3/3 sh -c id -u > /tmp/root-step; echo as root']);
      // Each step's output follows its announcement; the agent's comes after the last step.
      const order = events.map((e) => (e.type === 'setup.step' ? `step ${e.step}` : e.type === 'output' ? e.line : e.type));
      expect(order.indexOf('installing dependencies')).toBeGreaterThan(order.indexOf('step 2'));
      expect(order.indexOf('as root')).toBeGreaterThan(order.indexOf('step 3'));
      expect(order.findIndex((l) => l.startsWith('agent uid'))).toBeGreaterThan(order.indexOf('as root'));
      expect(output).toMatch(/agent uid [1-9]\d*/); // not root
      expect(output).toContain('the root step ran as 0');
      expect(output).toContain("on the issue's branch cldpd/issue-5");
      expect(output).toContain('the clone is here: Work in progress');
      expect(output).not.toContain('found my earlier work');

      const sessionId = (await world.store.list()).find((r) => r.pod === 'builder')?.id as string;
      const resumed = await collect(world.dispatcher.resume(sessionId, 'more', { github: source() }));
      const again = resumed.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
      expect(resumed.at(-1), again).toMatchObject({ type: 'container.exited', exitCode: 0 });
      expect(resumed.filter((e) => e.type === 'setup.step').map((e) => (e.type === 'setup.step' ? e.name : ''))[0]).toBe('fetching acme/web');
      expect(again).toContain('found my earlier work'); // the persisted workspace, fetched into, not cloned again
      expect(git.requests.filter((r) => r.service === 'git-upload-pack').length).toBeGreaterThanOrEqual(2);
    });

    it('checkout and setup: a failing step ends the run saying which, with its output, and leaves no container', async () => {
      await setupPod('broken', [['sh', '-c', 'echo fine'], ['sh', '-c', 'echo "npm ERR! missing lockfile" >&2; exit 3']]);
      const events = await collect(world.dispatcher.start('broken', { issueUrl: 'https://github.com/acme/web/issues/6' }, { github: source() }));
      const end = events.at(-1);
      expect(end).toMatchObject({ type: 'error', code: 'SetupFailed' });
      expect((end as { message: string }).message).toContain('Setup step 3 of 3 (sh -c echo "npm ERR! missing lockfile" >&2; exit 3) exited with code 3, so the agent did not run');
      expect(events.some((e) => e.type === 'output' && e.line === 'npm ERR! missing lockfile')).toBe(true);
      expect(events.some((e) => e.type === 'output' && e.line.startsWith('agent uid'))).toBe(false);
      const sessionId = (await world.store.list()).find((r) => r.pod === 'broken')?.id as string;
      expect(await world.containersOf(sessionId)).toEqual([]);
    });

    it('a pod that asks for no permissions gets no token and no credential helper', async () => {
      await pod('plain', {});
      const before = github.tokens.length;
      specs.length = 0;
      const events = await collect(world.dispatcher.start('plain', { prompt: 'push' }, { github: source() }));
      expect(events.at(-1)).toMatchObject({ type: 'container.exited' });
      expect((events.at(-1) as { exitCode: number }).exitCode).not.toBe(0); // its clone is refused: no token
      expect(github.tokens.slice(before)).toEqual([]);
      const env = specs.at(-1)?.env ?? {};
      expect(Object.keys(env).filter((k) => /TOKEN|GIT_CONFIG|CLDPD_REPO/.test(k))).toEqual([]);
    });

    it('a run outliving its first token still pushes: the token file is rewritten with a new one before the old one ends', async () => {
      // Tokens that live 6 s (cldpd replaces each half way through); the second push, 12 s in,
      // needs one minted long after the first expired.
      github.tokenLifetimeMs = 6000;
      serverLifetimeMs = 6000;
      try {
        await pod('long', { github: { contents: 'write' }, env: { WAIT_SECONDS: '12' } });
        const before = github.tokens.length;
        const events = await collect(world.dispatcher.start('long', { prompt: 'push twice' }, { github: source() }));
        const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
        expect(events.at(-1), output).toMatchObject({ type: 'container.exited', exitCode: 0 });
        expect(output).toContain('pushed two');
        const minted = github.tokens.slice(before).map((t) => t.token);
        expect(minted.length).toBeGreaterThanOrEqual(2);
        const last = git.pushes().at(-1);
        expect(last?.tokenFingerprint).not.toBe(tokenFingerprint(minted[0] as string));
        expect(minted.map(tokenFingerprint)).toContain(last?.tokenFingerprint);
        await assertHidden(minted, 'long', events);
      } finally {
        github.tokenLifetimeMs = 3600_000;
        serverLifetimeMs = 3600_000;
      }
    });

    it('revoke: when a run ends, every token minted for it that has not expired, the refreshed ones too, is revoked at GitHub, and git refuses each', async () => {
      // Tokens that live 4 s, replaced half way: a run of 5 s and more is given at least two.
      github.tokenLifetimeMs = 4000;
      serverLifetimeMs = 4000;
      try {
        await pod('revoked', { github: { contents: 'write' }, env: { WAIT_SECONDS: '5' } });
        const before = github.tokens.length;
        const events = await collect(world.dispatcher.start('revoked', { prompt: 'push twice' }, { github: source() }));
        const output = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('\n');
        expect(events.at(-1), output).toMatchObject({ type: 'container.exited', exitCode: 0 });
        const minted = github.tokens.slice(before).filter((t) => t.repositories);
        expect(minted.length).toBeGreaterThanOrEqual(2);
        // Each one is revoked, or had expired when the run ended (GitHub refuses to revoke those).
        const now = Date.now();
        for (const t of minted) expect(github.revoked.includes(t.token) || t.expiresAt <= now, `token ${minted.indexOf(t) + 1} of ${minted.length}`).toBe(true);
        expect(github.revoked).toContain(minted.at(-1)?.token);
        for (const t of minted) expect(await gitTakes(t.token)).toBe(false);
        expect(git.requests.at(-1)?.auth).toMatch(/^(revoked|expired)$/);
      } finally {
        github.tokenLifetimeMs = 3600_000;
        serverLifetimeMs = 3600_000;
      }
    });

    it('GitHub refusing the permissions ends the run before any container, saying what to grant', async () => {
      await pod('greedy', { github: { contents: 'write', workflows: 'write' } });
      github.refuseTokens = 1;
      specs.length = 0;
      const events = await collect(world.dispatcher.start('greedy', { prompt: 'x' }, { github: source() }));
      const end = events.at(-1);
      expect(end).toMatchObject({ type: 'error', code: 'GitHubAccess' });
      expect((end as { message: string }).message).toMatch(/acme\/web with contents: write, workflows: write .*grant them to the GitHub App/);
      expect(specs).toEqual([]); // no container was created
    });
  });
});
