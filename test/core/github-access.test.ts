import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { GitHubAccess, TOKEN_FILE, credentialHelper, type RepoTokenSource } from '../../src/core/index.js';
import { tarOf } from '../../src/core/tar-files.js';

function source(lifetimeMs: number, fail = 0): RepoTokenSource & { asked: Array<Record<string, string>> } {
  let n = 0;
  let failures = fail;
  const asked: Array<Record<string, string>> = [];
  return {
    asked,
    fullName: 'acme/web',
    repository: async () => ({ fullName: 'acme/web', cloneUrl: 'https://ghe.example.com/acme/web.git', defaultBranch: 'trunk' }),
    mint: async (permissions) => {
      asked.push({ ...permissions });
      if (failures-- > 0) throw new Error('HTTP 502');
      n += 1;
      return { token: `ghs_token${n}`, expiresAt: Date.now() + lifetimeMs };
    },
  };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('GitHubAccess', () => {
  it('hands the token over as env, a credential helper scoped to the repository\'s host, and a file', async () => {
    const access = await GitHubAccess.open({ ...source(3600_000), ghHost: 'ghe.example.com' }, { contents: 'write' });
    expect(access.env()).toEqual({
      GH_TOKEN: 'ghs_token1', GITHUB_TOKEN: 'ghs_token1', GH_HOST: 'ghe.example.com',
      GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'credential.https://ghe.example.com.helper', GIT_CONFIG_VALUE_0: credentialHelper(),
      GIT_ASKPASS: '/run/cldpd/git-askpass', CLDPD_GITHUB_TOKEN_FILE: TOKEN_FILE, CLDPD_REPO: 'acme/web', CLDPD_REPO_URL: 'https://ghe.example.com/acme/web.git', CLDPD_DEFAULT_BRANCH: 'trunk',
    });
    expect(access.files()[0]).toEqual({ path: TOKEN_FILE, content: 'ghs_token1\n', mode: 0o444 });
    expect(access.files()[1]).toMatchObject({ path: '/run/cldpd/git-askpass', mode: 0o555 });
    access.close();
  });

  it('the credential helper answers git\'s "get" with the file\'s current token, and nothing else', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cldpd-cred-'));
    const file = join(dir, 'token');
    writeFileSync(file, 'ghs_first\n');
    const helper = credentialHelper(file).slice(1); // git runs "!…" helpers with sh, appending the action
    const run = (action: string) => execFileSync('sh', ['-c', `${helper} "$@"`, 'helper', action], { encoding: 'utf8' });
    expect(run('get')).toBe('username=x-access-token\npassword=ghs_first\n');
    writeFileSync(file, 'ghs_second\n');
    expect(run('get')).toBe('username=x-access-token\npassword=ghs_second\n');
    expect(run('store')).toBe('');
    expect(run('erase')).toBe('');
  });

  it('rewrites the token file before each token expires, keeps every token for hiding, and survives a failed mint', async () => {
    vi.useFakeTimers();
    const tokens = source(11 * 60_000, 0);
    const access = await GitHubAccess.open(tokens, { contents: 'read' });
    const writes: string[] = [];
    access.keepFresh(async (files) => void writes.push(files[0]?.content ?? ''));
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 - 1000);
    expect(writes).toEqual([]);
    await vi.advanceTimersByTimeAsync(2000); // half way through its 11 minutes (later than 10 minutes before its end)
    expect(writes).toEqual(['ghs_token2\n']);
    expect(access.secrets).toEqual(['ghs_token1', 'ghs_token2']);
    access.close();
    await vi.advanceTimersByTimeAsync(3600_000);
    expect(writes).toHaveLength(1);
    expect(tokens.asked.every((p) => p.contents === 'read')).toBe(true);
  });

  it('a refresh GitHub refuses is tried again, and the run is not ended by it', async () => {
    vi.useFakeTimers();
    const tokens = source(11 * 60_000);
    const access = await GitHubAccess.open(tokens, { contents: 'write' });
    let fail = 2;
    const writes: string[] = [];
    access.keepFresh(async (files) => {
      if (fail-- > 0) throw new Error('container busy');
      writes.push(files[0]?.content ?? '');
    });
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 + 2 * 30_000 + 1000);
    expect(writes.length).toBe(1);
    access.close();
  });

  it('an hour-long token is replaced ten minutes before its end; one that seems short-lived (a clock ahead of GitHub\'s) half way, not every second', async () => {
    vi.useFakeTimers();
    for (const [life, expected] of [[3600_000, 50 * 60_000], [5 * 60_000, 150_000]] as const) {
      const access = await GitHubAccess.open(source(life), { contents: 'read' });
      const writes: number[] = [];
      const start = Date.now();
      access.keepFresh(async () => void writes.push(Date.now() - start));
      await vi.advanceTimersByTimeAsync(expected + 10);
      access.close();
      expect(writes).toHaveLength(1);
      expect(writes[0]).toBeGreaterThanOrEqual(expected);
    }
  });

  it('revoke: a refresh whose mint GitHub never answers does not hold the run\'s end; the tokens minted before it are revoked', async () => {
    vi.useFakeTimers();
    const revoked: string[] = [];
    const base = source(11 * 60_000);
    const tokens: RepoTokenSource = {
      ...base,
      mint: async (permissions) => {
        const token = await base.mint(permissions);
        if (token.token === 'ghs_token2') await new Promise<never>(() => undefined);
        return token;
      },
      revoke: async (token) => void revoked.push(token),
    };
    const access = await GitHubAccess.open(tokens, { contents: 'write' }, pino({ level: 'silent' }));
    access.keepFresh(async () => undefined);
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 + 1000); // the mint of token 2 never answers
    let ended = false;
    const closed = access.close().then(() => (ended = true));
    await vi.advanceTimersByTimeAsync(11_000);
    await closed;
    expect(ended).toBe(true);
    expect(revoked).toEqual(['ghs_token1']);
    vi.useRealTimers();
  });

  it('revoke: close revokes every token minted for the run that has not expired, the refreshed ones and one a refresh mints meanwhile; a revoke that fails or hangs is logged, never thrown', async () => {
    vi.useFakeTimers();
    const asked: string[] = [];
    const revoked: string[] = [];
    let mintGate: (() => void) | undefined;
    const base = source(11 * 60_000);
    const tokens: RepoTokenSource = {
      ...base,
      mint: async (permissions) => {
        const token = await base.mint(permissions);
        // The third token is minted while the run ends: close must wait for it and revoke it too.
        if (token.token === 'ghs_token3') await new Promise<void>((resolve) => (mintGate = resolve));
        return token;
      },
      revoke: async (token) => {
        asked.push(token);
        if (token === 'ghs_token3') throw new Error('HTTP 502');
        revoked.push(token);
      },
    };
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const access = await GitHubAccess.open(tokens, { contents: 'write' }, logger);
    access.keepFresh(async () => undefined);
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 + 1000); // token 2 replaces token 1
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 + 1000); // the mint of token 3 is under way
    expect(mintGate).toBeDefined();
    const closed = access.close();
    const again = access.close();
    mintGate?.();
    await closed;
    await again;
    expect(access.secrets).toEqual(['ghs_token1', 'ghs_token2', 'ghs_token3']);
    // The first lived its 11 minutes out before the run ended: dead already, GitHub would refuse it.
    expect(asked.sort()).toEqual(['ghs_token2', 'ghs_token3']);
    expect(revoked).toEqual(['ghs_token2']);
    expect(warnings.join('')).toContain('could not revoke one of the run');
    expect(warnings.join('')).toContain('HTTP 502');
    expect(warnings.join('')).not.toContain('ghs_token');

    // A run that ends before any refresh: its one token.
    const short = await GitHubAccess.open({ ...source(3600_000), revoke: async (t) => void revoked.push(t) }, { contents: 'read' });
    await short.close();
    expect(revoked).toEqual(['ghs_token2', 'ghs_token1']);

    // One GitHub never answers: given up after a while, logged.
    const hanging = await GitHubAccess.open({ ...source(3600_000), revoke: () => new Promise<void>(() => undefined) }, { contents: 'read' }, logger);
    const closing = hanging.close();
    await vi.advanceTimersByTimeAsync(10_000);
    await closing;
    expect(warnings.join('')).toContain('no answer in 10 s');
  });

  it('revoke: an exec into a running container leaves the live token (its own run reads the shared file) and revokes the rest', async () => {
    vi.useFakeTimers();
    const revoked: string[] = [];
    const access = await GitHubAccess.open({ ...source(11 * 60_000), revoke: async (t) => void revoked.push(t) }, { contents: 'read' });
    access.keepFresh(async () => undefined);
    await vi.advanceTimersByTimeAsync(5.5 * 60_000 + 1000);
    await access.close({ keepLive: true });
    expect(revoked).toEqual(['ghs_token1']);
  });

  it('says what to grant when GitHub refuses the first token', async () => {
    await expect(GitHubAccess.open(source(3600_000, 1), { contents: 'write', workflows: 'write' })).rejects.toMatchObject({
      code: 'GitHubAccess',
      message: expect.stringMatching(/acme\/web with contents: write, workflows: write \(HTTP 502\)\. .*grant them to the GitHub App/),
    });
  });
});

describe('tarOf', () => {
  it('is an archive tar reads back: the file at its path, its mode, owned by root', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cldpd-tar-'));
    writeFileSync(join(dir, 'a.tar'), tarOf([{ path: '/run/cldpd/github-token', content: 'ghs_x\n', mode: 0o444 }, { path: '/etc/x', content: 'é'.repeat(600), mode: 0o600 }]));
    const listing = execFileSync('tar', ['-tvf', join(dir, 'a.tar')], { encoding: 'utf8' });
    expect(listing).toMatch(/^-r--r--r-- root\/root\s+6 .* run\/cldpd\/github-token$/m);
    expect(listing).toMatch(/^-rw------- root\/root\s+1200 .* etc\/x$/m);
    execFileSync('tar', ['-xf', join(dir, 'a.tar'), '-C', dir, '--no-same-owner']);
    expect(readFileSync(join(dir, 'run/cldpd/github-token'), 'utf8')).toBe('ghs_x\n');
    expect(statSync(join(dir, 'run/cldpd/github-token')).mode & 0o777).toBe(0o444);
    expect(readFileSync(join(dir, 'etc/x'), 'utf8')).toBe('é'.repeat(600));
  });

  it('refuses paths that are not plain absolute paths', () => {
    for (const path of ['relative', '/a/../etc/passwd', '/a//b', `/${'x'.repeat(120)}`]) expect(() => tarOf([{ path, content: '', mode: 0o444 }])).toThrow(/not a path cldpd writes/);
  });
});
