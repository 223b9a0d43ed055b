import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:http';
import { join } from 'node:path';
import Docker from 'dockerode';
import type { NetworkInterfaceInfo } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUSYBOX, describeWithDocker, until } from '../integration/harness.js';
import { GitServer, describeWithGit, dockerGateway, inSubnet, tokenFingerprint } from './git-server.js';
import { tempDir } from './pods.js';

/** An image with git in it: Debian bookworm made by scripts/real-claude.sh (which .ci/run runs). */
const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';
/** A FROM-scratch busybox image this file builds, for wget. */
const PROBE_IMAGE = 'cldpd-it-git-probe:latest';

/** What a git command did. */
interface GitRun {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The credential helper cldpd gives pods: it reads the token from a file on every call, so a
 * token written there later is the one the next git command uses.
 */
function credentialHelper(tokenFile: string, user = 'x-access-token'): string {
  return `!f() { echo username=${user}; echo password=$(cat ${tokenFile}); }; f`;
}

/**
 * A git client as a pod runs one: no terminal to prompt on, its own HOME (no user config),
 * and, given a token file, the pods' credential helper; killed after 60 s.
 */
function gitClient(home: string, tokenFile?: string, user?: string) {
  return (args: readonly string[], cwd?: string): Promise<GitRun> =>
    new Promise((resolve, reject) => {
      const helper = tokenFile ? ['-c', `credential.helper=${credentialHelper(tokenFile, user)}`] : [];
      const identity = ['-c', 'user.name=Agent', '-c', 'user.email=agent@example.test'];
      const child = spawn('git', [...helper, ...identity, ...args], {
        cwd,
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home, GIT_TERMINAL_PROMPT: '0', GIT_CONFIG_NOSYSTEM: '1', LANG: 'C' },
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60_000,
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
      child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });
}

/** Fails with git's own words when a command that must work did not. */
function ok(run: GitRun): GitRun {
  if (run.code !== 0) throw new Error(`git failed (${run.code}): ${run.stderr}`);
  return run;
}

/** git's words when it could not authenticate: a refused credential, or none to give. */
const AUTH_FAILED = /Authentication failed for|could not read Username/;

describeWithGit('GitServer (git-http-backend, driven by the real git client)', () => {
  const server = new GitServer();
  let home: string;
  let tokenFile: string;
  let repos = 0;

  /** A fresh repository on the server, so tests share nothing but the server. */
  const freshRepo = async (files?: Record<string, string>): Promise<{ owner: string; repo: string; full: string; sha: string }> => {
    const repo = `widgets-${++repos}`;
    const sha = await server.createRepo('acme', repo, files ? { files } : {});
    return { owner: 'acme', repo, full: `acme/${repo}`, sha };
  };
  const setToken = (token: string): Promise<void> => writeFile(tokenFile, token);
  const workDir = async (): Promise<string> => join(await tempDir('cldpd-git-work-'), 'w');

  beforeAll(async () => {
    await server.start();
    home = await tempDir('cldpd-git-home-');
    tokenFile = join(home, 'token');
  });

  afterAll(async () => {
    await server.close();
  });

  it('clones with a valid token, which the credential helper reads from a file after the 401, with or without .git', async () => {
    // Arrange
    const { owner, repo, full, sha } = await freshRepo({ 'README.md': 'hello\n', 'src/a.txt': 'a\n' });
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full });
    await setToken(token);
    const git = gitClient(home, tokenFile);
    const [dir, bare] = [await workDir(), await workDir()];

    // Act
    ok(await git(['clone', '-q', server.repoUrl(owner, repo), dir]));
    ok(await git(['clone', '-q', `${server.url}/${full}`, bare]));

    // Assert
    expect(await readFile(join(dir, 'src/a.txt'), 'utf8')).toBe('a\n');
    expect(ok(await git(['rev-parse', 'HEAD', '--abbrev-ref', 'HEAD'], dir)).stdout.split('\n')).toEqual([sha, 'main', '']);
    expect(ok(await git(['rev-parse', 'HEAD'], bare)).stdout.trim()).toBe(sha);
    const mine = server.requests.filter((r) => r.repo === full);
    // git asks without credentials first; the 401's WWW-Authenticate sends it to the helper.
    expect(mine[0]).toMatchObject({ method: 'GET', service: 'git-upload-pack', auth: 'none', status: 401 });
    expect(mine.filter((r) => r.auth === 'ok').length).toBeGreaterThanOrEqual(2);
    expect(mine.filter((r) => r.auth === 'ok')).toEqual(mine.filter((r) => r.auth === 'ok').map((r) => expect.objectContaining({ ...r, user: 'x-access-token', tokenFingerprint: tokenFingerprint(token), status: 200 })));
    expect(JSON.stringify(server.requests)).not.toContain(token);
    expect(server.backendErrors).toEqual([]);
  });

  it('takes a push of a new branch, and records the token that made it', async () => {
    // Arrange
    const { owner, repo, full, sha } = await freshRepo();
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full, write: true });
    await setToken(token);
    const git = gitClient(home, tokenFile);
    const dir = await workDir();
    ok(await git(['clone', '-q', server.repoUrl(owner, repo), dir]));
    ok(await git(['checkout', '-q', '-b', 'cldpd/issue-7'], dir));
    await writeFile(join(dir, 'fix.txt'), 'fixed\n');
    ok(await git(['add', 'fix.txt'], dir));
    ok(await git(['commit', '-q', '-m', 'Fix the bug\n\nCloses #7'], dir));
    const head = ok(await git(['rev-parse', 'HEAD'], dir)).stdout.trim();
    const before = server.pushes().length;

    // Act
    ok(await git(['push', '-q', 'origin', 'cldpd/issue-7'], dir));

    // Assert
    expect(await server.branches(owner, repo)).toEqual([
      { name: 'cldpd/issue-7', sha: head },
      { name: 'main', sha },
    ]);
    expect(await server.readFile(owner, repo, 'cldpd/issue-7', 'fix.txt')).toBe('fixed\n');
    const [last, first] = await server.log(owner, repo, 'cldpd/issue-7');
    expect(last).toMatchObject({ sha: head, parents: [sha], authorName: 'Agent', authorEmail: 'agent@example.test', subject: 'Fix the bug', message: 'Fix the bug\n\nCloses #7' });
    expect(first).toMatchObject({ sha, parents: [], authorName: 'Fake GitHub', subject: 'Initial commit' });
    expect(server.pushes().slice(before)).toEqual([expect.objectContaining({ repo: full, user: 'x-access-token', tokenFingerprint: tokenFingerprint(token), auth: 'ok', status: 200 })]);
  });

  it.each([
    { name: 'no token (no credential helper)', token: undefined, grant: undefined, outcome: 'none' },
    { name: 'an empty token file', token: '', grant: undefined, outcome: 'unknown' },
    { name: 'a wrong token', token: 'ghs_wrong', grant: undefined, outcome: 'unknown' },
    { name: 'an expired token', token: 'ghs_expired', grant: { expiresAt: Date.now() - 1000 }, outcome: 'expired' },
    { name: 'a revoked token', token: 'ghs_revoked', grant: { revoked: true }, outcome: 'revoked' },
    { name: 'a token for another repository', token: 'ghs_other', grant: { repo: 'acme/elsewhere' }, outcome: 'other-repo' },
  ] as const)('refuses $name: clone and push fail with git\'s authentication error, nothing lands', async ({ token, grant, outcome }) => {
    // Arrange: a clone made with a good token, then the token swapped for the bad one.
    const { owner, repo, full } = await freshRepo();
    const good = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(good, { repo: full, write: true });
    await setToken(good);
    const dir = await workDir();
    ok(await gitClient(home, tokenFile)(['clone', '-q', server.repoUrl(owner, repo), dir]));
    ok(await gitClient(home, tokenFile)(['commit', '-q', '--allow-empty', '-m', 'change'], dir));
    const branches = await server.branches(owner, repo);
    const pushes = server.pushes().length;
    const seen = server.requests.length;
    if (token !== undefined) {
      await setToken(token);
      if (grant) server.allow(token, { repo: full, write: true, ...grant });
      if (grant && 'revoked' in grant) server.revoke(token);
    }
    const git = gitClient(home, token === undefined ? undefined : tokenFile);

    // Act
    const clone = await git(['clone', '-q', server.repoUrl(owner, repo), await workDir()]);
    const push = await git(['push', '-q', 'origin', 'HEAD:main'], dir);

    // Assert
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toMatch(AUTH_FAILED);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(AUTH_FAILED);
    expect(await server.branches(owner, repo)).toEqual(branches);
    expect(server.pushes().length).toBe(pushes);
    const refused = server.requests.slice(seen);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused.every((r) => r.status === 401)).toBe(true);
    expect(refused.map((r) => r.auth)).toContain(outcome);
    if (token) expect(JSON.stringify(server.requests)).not.toContain(token);
  });

  it('lets a read-only token clone, and refuses its push with 403', async () => {
    // Arrange
    const { owner, repo, full } = await freshRepo();
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full });
    await setToken(token);
    const git = gitClient(home, tokenFile);
    const dir = await workDir();
    const branches = await server.branches(owner, repo);

    // Act
    const clone = await git(['clone', '-q', server.repoUrl(owner, repo), dir]);
    ok(await git(['commit', '-q', '--allow-empty', '-m', 'change'], dir));
    const push = await git(['push', '-q', 'origin', 'HEAD:refs/heads/attempt'], dir);

    // Assert
    expect(clone.code).toBe(0);
    expect(push.code).not.toBe(0);
    expect(push.stderr).toMatch(/403/);
    expect(push.stderr).toContain(`Permission to ${full}.git denied to x-access-token`);
    expect(await server.branches(owner, repo)).toEqual(branches);
    expect(server.requests.filter((r) => r.repo === full && r.service === 'git-receive-pack')).toEqual([
      expect.objectContaining({ auth: 'none', status: 401 }),
      expect.objectContaining({ auth: 'read-only', status: 403, tokenFingerprint: tokenFingerprint(token) }),
    ]);
  });

  it('keeps working when the token file is rewritten between commands and the old token expires (rotation)', async () => {
    // Arrange
    const { owner, repo, full } = await freshRepo();
    const [first, second] = [`ghs_${randomBytes(12).toString('hex')}`, `ghs_${randomBytes(12).toString('hex')}`];
    server.allow(first, { repo: full, write: true });
    await setToken(first);
    const git = gitClient(home, tokenFile);
    const dir = await workDir();
    ok(await git(['clone', '-q', server.repoUrl(owner, repo), dir]));
    ok(await git(['commit', '-q', '--allow-empty', '-m', 'after rotation'], dir));

    // Act: a new token, written where the helper reads; the first one expires.
    server.allow(second, { repo: full, write: true, expiresAt: Date.now() + 3600_000 });
    await setToken(second);
    server.expire(first);
    const push = await git(['push', '-q', 'origin', 'HEAD:refs/heads/rotated'], dir);
    const fetch = await git(['fetch', '-q', 'origin'], dir);
    await setToken(first);
    const stale = await git(['fetch', '-q', 'origin'], dir);

    // Assert
    ok(push);
    ok(fetch);
    expect(stale.code).not.toBe(0);
    expect(stale.stderr).toMatch(AUTH_FAILED);
    expect((await server.branches(owner, repo)).map((b) => b.name)).toEqual(['main', 'rotated']);
    expect(server.pushes().filter((r) => r.repo === full).map((r) => r.tokenFingerprint)).toEqual([tokenFingerprint(second)]);
    expect(server.requests.filter((r) => r.repo === full).at(-1)).toMatchObject({ auth: 'expired', tokenFingerprint: tokenFingerprint(first), status: 401 });
  });

  it('takes a push bigger than 1 MB, which git sends as a chunked body', async () => {
    // Arrange
    const { owner, repo, full } = await freshRepo();
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full, write: true });
    await setToken(token);
    const git = gitClient(home, tokenFile);
    const dir = await workDir();
    ok(await git(['clone', '-q', server.repoUrl(owner, repo), dir]));
    // Random bytes do not compress: the pack stays over git's 1 MiB http.postBuffer.
    await writeFile(join(dir, 'big.bin'), randomBytes(3 * 1024 * 1024));
    ok(await git(['add', 'big.bin'], dir));
    ok(await git(['commit', '-q', '-m', 'A big file'], dir));
    const blob = ok(await git(['rev-parse', 'HEAD:big.bin'], dir)).stdout.trim();

    // Act
    ok(await git(['push', '-q', 'origin', 'HEAD:refs/heads/big'], dir));

    // Assert
    // Before a chunked body (which it cannot resend), git probes its credentials with a flush-pkt; that is no push.
    const posts = server.requests.filter((r) => r.repo === full && r.method === 'POST' && r.service === 'git-receive-pack');
    expect(posts.map((r) => ({ chunked: r.chunked, bodyBytes: r.bodyBytes }))).toEqual([{ chunked: false, bodyBytes: 4 }, { chunked: true, bodyBytes: expect.any(Number) }]);
    const pushes = server.pushes().filter((r) => r.repo === full);
    expect(pushes).toEqual([expect.objectContaining({ chunked: true, tokenFingerprint: tokenFingerprint(token), status: 200 })]);
    expect(pushes[0]?.bodyBytes).toBeGreaterThan(3 * 1024 * 1024);
    expect((await server.log(owner, repo, 'big'))[0]?.subject).toBe('A big file');
    const check = gitClient(home);
    expect(ok(await check(['--git-dir', server.repoDir(owner, repo), 'rev-parse', 'big:big.bin'])).stdout.trim()).toBe(blob);
    expect(ok(await check(['--git-dir', server.repoDir(owner, repo), 'fsck', '--no-progress'])).code).toBe(0);
    // And back: a fresh clone of the big branch.
    const again = await workDir();
    ok(await git(['clone', '-q', '-b', 'big', server.repoUrl(owner, repo), again]));
    // Digests, not the buffers: a deep equality of 3 MB byte by byte takes vitest seconds.
    const digest = async (path: string): Promise<string> => createHash('sha256').update(await readFile(path)).digest('hex');
    expect(await digest(join(again, 'big.bin'))).toBe(await digest(join(dir, 'big.bin')));
  });

  it('fetches many branches, whose negotiation git sends gzipped', async () => {
    // Arrange: 30 branches at 30 commits, so the clone's wants pass the 1 KB over which git gzips.
    const { owner, repo, full } = await freshRepo();
    for (let i = 0; i < 30; i++) await server.commit(owner, repo, { branch: `topic-${i}`, files: { [`topic-${i}.txt`]: `${i}\n` } });
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full });
    await setToken(token);
    const dir = await workDir();

    // Act
    ok(await gitClient(home, tokenFile)(['clone', '-q', '--mirror', server.repoUrl(owner, repo), dir]));

    // Assert
    expect(ok(await gitClient(home)(['--git-dir', dir, 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/'])).stdout).toBe(
      (await server.branches(owner, repo)).map((b) => `refs/heads/${b.name} ${b.sha}\n`).join(''),
    );
    expect(server.requests.filter((r) => r.repo === full && r.method === 'POST' && r.gzip)).toEqual([expect.objectContaining({ service: 'git-upload-pack', status: 200 })]);
    expect(server.backendErrors).toEqual([]);
  });

  it('accepts any username with a valid token, as GitHub does, and records it', async () => {
    // Arrange
    const { owner, repo, full } = await freshRepo();
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: full });
    await setToken(token);

    // Act
    const clone = await gitClient(home, tokenFile, 'cldpd[bot]')(['clone', '-q', server.repoUrl(owner, repo), await workDir()]);

    // Assert
    ok(clone);
    expect(server.requests.filter((r) => r.repo === full && r.auth === 'ok').map((r) => r.user)).toEqual(expect.arrayContaining(['cldpd[bot]']));
    expect(server.requests.filter((r) => r.repo === full && r.auth === 'ok').every((r) => r.user === 'cldpd[bot]')).toBe(true);
  });

  it('answers 404 for a repository that does not exist, after the token checks', async () => {
    // Arrange
    const token = `ghs_${randomBytes(12).toString('hex')}`;
    server.allow(token, { repo: 'acme/missing' });
    await setToken(token);

    // Act
    const clone = await gitClient(home, tokenFile)(['clone', '-q', server.repoUrl('acme', 'missing'), await workDir()]);

    // Assert
    expect(clone.code).not.toBe(0);
    expect(clone.stderr).toMatch(/Repository not found|404/);
    expect(server.requests.filter((r) => r.repo === 'acme/missing').at(-1)).toMatchObject({ auth: 'ok', status: 404 });
  });

  it('close() ends a push still streaming in, and removes the repositories', async () => {
    // Arrange: a push whose chunked body never ends, so git-http-backend waits on it.
    const own = await new GitServer().start('127.0.0.1');
    await own.createRepo('acme', 'hanging');
    own.allow('ghs_hanging', { repo: 'acme/hanging', write: true });
    const dir = own.repoDir('acme', 'hanging');
    const req = request(`${own.url}/acme/hanging.git/git-receive-pack`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from('x-access-token:ghs_hanging').toString('base64')}`, 'content-type': 'application/x-git-receive-pack-request' },
    });
    req.on('error', () => undefined);
    req.write('00');
    await until('the hanging push to reach the server', () => own.requests.length === 1, 10_000);

    // Act
    const closing = own.close();
    const closed = await Promise.race([closing.then(() => true), new Promise((r) => setTimeout(() => r(false), 10_000))]);

    // Assert
    expect(closed).toBe(true);
    expect(own.requests[0]).toMatchObject({ chunked: true, auth: 'ok' });
    expect(existsSync(dir)).toBe(false);
    req.destroy();
  });

  describeWithDocker('from containers', () => {
    const docker = new Docker();
    let gateway: string;

    beforeAll(async () => {
      const context = await tempDir('cldpd-git-probe-');
      await copyFile(BUSYBOX, join(context, 'busybox'));
      await writeFile(join(context, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'ENV PATH=/bin', ''].join('\n'));
      const stream = await docker.buildImage({ context, src: ['Dockerfile', 'busybox'] }, { t: PROBE_IMAGE, rm: true });
      const output = await new Promise<Array<{ error?: string }>>((resolve, reject) => docker.modem.followProgress(stream, (err: Error | null, res: Array<{ error?: string }>) => (err ? reject(err) : resolve(res))));
      const failed = output.find((o) => o.error);
      if (failed) throw new Error(`building ${PROBE_IMAGE}: ${failed.error}`);
      await rm(context, { recursive: true, force: true });
      gateway = await dockerGateway('bridge', docker, { probeImage: PROBE_IMAGE });
    });

    /** Runs `cmd` in a new container of `image` on Docker's default bridge; its exit code and output (killed after 90 s). */
    const run = async (image: string, cmd: string[], env: string[] = []): Promise<{ code: number; output: string }> => {
      const container = await docker.createContainer({ Image: image, Cmd: cmd, Env: env, Tty: true, HostConfig: { NetworkMode: 'bridge' } });
      try {
        await container.start();
        let timer: NodeJS.Timeout | undefined;
        const waited = (await Promise.race([
          container.wait(),
          new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`${image} ${cmd.join(' ')}: still running after 90 s`)), 90_000))),
        ]).finally(() => clearTimeout(timer))) as { StatusCode: number };
        return { code: waited.StatusCode, output: (await container.logs({ stdout: true, stderr: true })).toString('utf8') };
      } finally {
        await container.remove({ force: true }).catch(() => undefined);
      }
    };

    it('is reached from a busybox container on Docker\'s default bridge at dockerGateway()', async () => {
      // Act
      const probe = await run(PROBE_IMAGE, ['wget', '-q', '-O-', `${server.urlFrom(gateway)}/healthz`]);

      // Assert
      expect(gateway).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      expect(probe).toEqual({ code: 0, output: 'ok\r\n' });
    });

    it('serves clone and push to git in a Debian container, with the token-file helper cldpd gives pods', async (ctx) => {
      // Arrange
      const present = await docker.getImage(DEBIAN_IMAGE).inspect().then(() => true, () => false);
      if (!present) {
        if (process.env.CI === 'true') throw new Error(`${DEBIAN_IMAGE} is missing: .ci/run makes it with scripts/real-claude.sh`);
        console.warn(`\n[git-server] SKIPPED git in a container: ${DEBIAN_IMAGE} is missing. Run "bash scripts/real-claude.sh" to make it.\n`);
        ctx.skip();
      }
      const { owner, repo, full, sha } = await freshRepo();
      const token = `ghs_${randomBytes(12).toString('hex')}`;
      server.allow(token, { repo: full, write: true });
      const script = [
        'set -e',
        'export HOME=/tmp/home GIT_TERMINAL_PROMPT=0',
        'mkdir -p "$HOME"',
        'printf %s "$TOKEN" > /tmp/token',
        `helper='${credentialHelper('/tmp/token')}'`,
        'git -c credential.helper="$helper" clone -q "$URL" /tmp/w',
        'cd /tmp/w',
        'git checkout -q -b from-pod',
        'echo "written in a pod" > pod.txt',
        'git add pod.txt',
        'git -c user.name=Pod -c user.email=pod@example.test commit -q -m "From a pod"',
        'git -c credential.helper="$helper" push -q origin from-pod',
        'echo "head $(git rev-parse HEAD)"',
      ].join('\n');

      // Act
      const result = await run(DEBIAN_IMAGE, ['sh', '-c', script], [`TOKEN=${token}`, `URL=${server.repoUrl(owner, repo, gateway)}`]);

      // Assert
      expect(result.code, result.output).toBe(0);
      const head = /head ([0-9a-f]{40})/.exec(result.output)?.[1];
      expect(await server.branches(owner, repo)).toEqual([
        { name: 'from-pod', sha: head },
        { name: 'main', sha },
      ]);
      expect(await server.readFile(owner, repo, 'from-pod', 'pod.txt')).toBe('written in a pod\n');
      const [push] = server.pushes().filter((r) => r.repo === full);
      expect(push).toMatchObject({ user: 'x-access-token', tokenFingerprint: tokenFingerprint(token) });
      // It came from the container's own address on the bridge, not from this host's loopback.
      expect(push?.remoteAddress).not.toBe('127.0.0.1');
      expect(push?.remoteAddress?.split('.').slice(0, 2)).toEqual(gateway.split('.').slice(0, 2));
    });
  });
});

describe('dockerGateway', () => {
  /** A Docker client whose network `name` inspects as `ipam`. */
  const engine = (ipam: unknown) => ({ getNetwork: () => ({ inspect: async () => ({ IPAM: ipam }) }) }) as unknown as Docker;
  const iface = (address: string, family = 'IPv4') => ({ address, family, netmask: '', mac: '', internal: false, cidr: null }) as NetworkInterfaceInfo;
  const host = { lo: [iface('127.0.0.1')], eth0: [iface('10.0.2.15'), iface('fe80::1', 'IPv6')], docker0: [iface('172.17.0.1')] };

  it('takes the gateway the network lists', async () => {
    expect(await dockerGateway('bridge', engine({ Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }] }), { interfaces: () => ({}) })).toBe('172.17.0.1');
  });

  it('finds this host\'s address in the subnet when a just-installed engine lists only the subnet', async () => {
    expect(await dockerGateway('bridge', engine({ Config: [{ Subnet: '172.17.0.0/16' }] }), { interfaces: () => host })).toBe('172.17.0.1');
    expect(await dockerGateway('cldpd', engine({ Config: [{ Subnet: 'fd00::/64' }, { Subnet: '10.0.0.0/8' }] }), { interfaces: () => host })).toBe('10.0.2.15');
  });

  it('says which network and subnets when the host has no address there', async () => {
    await expect(dockerGateway('bridge', engine({ Config: [{ Subnet: '192.168.99.0/24' }] }), { interfaces: () => host })).rejects.toThrow(/bridge lists no IPv4 gateway.*192\.168\.99\.0\/24.*probeImage/);
    await expect(dockerGateway('none', engine({ Config: [] }), { interfaces: () => host })).rejects.toThrow(/none lists no IPv4 gateway.*lists none/);
  });

  it('tells subnets apart at their edges', () => {
    expect([inSubnet('172.17.255.255', '172.17.0.0/16'), inSubnet('172.18.0.1', '172.17.0.0/16'), inSubnet('10.1.2.3', '0.0.0.0/0'), inSubnet('10.0.0.1', '10.0.0.1/32')]).toEqual([true, false, true, true]);
  });
});
