import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from '../../src/cli/args.js';
import { continueCommands, exportCommand } from '../../src/cli/export-command.js';
import { shellWord } from '../../src/cli/stream-write.js';
import { SessionTakeover } from '../../src/core/index.js';
import { dispatchWorld, drain, type DispatchWorld } from '../fakes/dispatch-world.js';
import { tempDir } from '../fakes/pods.js';

describe('attach and export on the command line', () => {
  it.each([
    [['attach', 'web-0123456789abcdef'], { name: 'attach', session: 'web-0123456789abcdef' }],
    [['attach', 'web-0123456789abcdef', '--pods-dir', '/p'], { name: 'attach', session: 'web-0123456789abcdef', podsDir: '/p' }],
  ])('attach: parses %j', (argv, expected) => {
    expect(parseCommand(argv)).toEqual(expected);
  });

  it.each([
    [['export', 'web-0123456789abcdef'], { name: 'export', session: 'web-0123456789abcdef', portable: false }],
    [['export', 'web-0123456789abcdef', '--out', 'here', '--portable'], { name: 'export', session: 'web-0123456789abcdef', out: 'here', portable: true }],
  ])('export: parses %j', (argv, expected) => {
    expect(parseCommand(argv)).toEqual(expected);
  });

  it.each([
    [['attach'], /"cldpd attach" needs exactly one session id/],
    [['attach', 'a', 'b'], /needs exactly one session id, got 2/],
    [['attach', 'web-1', '--portable'], /"cldpd attach" takes no --portable option/],
    [['attch', 'web-1'], /Did you mean "attach"/],
  ])('attach: refuses %j, saying why', (argv, message) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
    expect(() => parseCommand(argv)).toThrow(message);
  });

  it.each([
    [['export', 'web-1', '--out', ' '], /"cldpd export --out" needs a directory/],
    [['export', 'web-1', '--out'], /Option --out needs a value/],
    [['export', '--portable'], /"cldpd export" needs exactly one session id/],
  ])('export: refuses %j, saying why', (argv, message) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
    expect(() => parseCommand(argv)).toThrow(message);
  });

  it.each([
    ['plain', 'plain'],
    ['/tmp/a b', `'/tmp/a b'`],
    [`it's`, `'it'\\''s'`],
    ['$(rm -rf ~)', `'$(rm -rf ~)'`],
  ])('export: shellWord(%s) quotes what a shell would read otherwise', (text, quoted) => {
    expect(shellWord(text)).toBe(quoted);
  });

  it('export: the commands clone in place (or fetch in a checkout), put a portable transcript in place, then resume', () => {
    const issueUrl = 'https://github.example.com/acme/web/issues/12';
    expect(continueCommands({ dir: '/home/me/web', claudeSessionId: 'c-1', issueUrl, portable: false, checkout: false })).toEqual([
      'cd /home/me/web', 'git init -q', 'git remote add origin https://github.example.com/acme/web.git', 'git fetch origin cldpd/issue-12', 'git checkout cldpd/issue-12', 'claude --resume c-1',
    ]);
    expect(continueCommands({ dir: '/home/me/my web', claudeSessionId: 'c-1', issueUrl, portable: false, checkout: true })).toEqual([
      `cd '/home/me/my web'`, 'git fetch origin cldpd/issue-12', 'git checkout cldpd/issue-12', 'claude --resume c-1',
    ]);
    const portable = continueCommands({ dir: '/x', claudeSessionId: 'c-1', issueUrl: undefined, portable: true, checkout: false });
    expect(portable[0]).toBe('cd /x');
    expect(portable.slice(1, 3).join('\n')).toContain(`.cldpd-export/c-1.jsonl`);
    expect(portable.at(-1)).toBe('claude --resume c-1');
  });
});

describe('cldpd export, on a fake runner', () => {
  let world: DispatchWorld;
  let takeover: SessionTakeover;
  let root: string;
  let sessionId: string;
  let stdout: string;
  let stderr: string;
  const io = () => {
    const out = new PassThrough();
    const err = new PassThrough();
    out.on('data', (d: Buffer) => (stdout += d.toString()));
    err.on('data', (d: Buffer) => (stderr += d.toString()));
    return { stdout: out, stderr: err };
  };

  beforeEach(async () => {
    world = await dispatchWorld();
    takeover = new SessionTakeover({ runner: world.runner, store: world.store, pods: world.pods, hostId: 'host-a', hostEnv: {} });
    root = await tempDir();
    const session = await world.dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/3', prompt: 'go' });
    await drain(session);
    await world.store.update(session.id, { claudeSessionId: 'conv-1' });
    sessionId = session.id;
    world.runner.files.set('/home/agent/.claude/projects/-work/conv-1.jsonl', { content: Buffer.from('{"turn":1}\n'), uid: 1000, gid: 1000, mode: 0o600 });
    stdout = '';
    stderr = '';
  });

  it('export: the transcript goes where this user\'s Claude Code looks for the directory (relative --out from the working directory), with the README', async () => {
    const places = { cwd: root, claudeConfigDir: join(root, 'claude'), hostId: 'host-a' };
    expect(await exportCommand({ session: sessionId, out: 'web', portable: false }, takeover, places, io())).toBe(0);
    const dir = join(root, 'web');
    const key = dir.replace(/[^A-Za-z0-9]/g, '-');
    expect(await readFile(join(root, 'claude', 'projects', key, 'conv-1.jsonl'), 'utf8')).toBe('{"turn":1}\n');
    const readme = await readFile(join(dir, 'CLDPD-EXPORT.md'), 'utf8');
    expect(readme).toContain('`cldpd/issue-3` of acme/web');
    expect(readme).toContain(`host \`host-a\``);
    expect(stdout.trim().split('\n')).toEqual([`cd ${dir}`, 'git init -q', 'git remote add origin https://github.com/acme/web.git', 'git fetch origin cldpd/issue-3', 'git checkout cldpd/issue-3', 'claude --resume conv-1']);
    expect(stderr).not.toMatch(/is going/);
  });

  it('export: --portable keeps everything in the directory (default ./cldpd-<session>); a checkout there is fetched into, not cloned over', async () => {
    const dir = join(root, `cldpd-${sessionId}`);
    await mkdir(join(dir, '.git'), { recursive: true });
    await writeFile(join(dir, '.git', 'HEAD'), 'ref: refs/heads/main\n');
    expect(await exportCommand({ session: sessionId, portable: true }, takeover, { cwd: root, claudeConfigDir: join(root, 'claude'), hostId: 'h' }, io())).toBe(0);
    expect((await readdir(dir)).sort()).toEqual(['.cldpd-export', '.git', 'CLDPD-EXPORT.md']);
    expect(await readFile(join(dir, '.cldpd-export', 'conv-1.jsonl'), 'utf8')).toBe('{"turn":1}\n');
    expect(stdout).not.toContain('git init');
    expect(stdout).toContain('git fetch origin cldpd/issue-3');
  });

  it('export: a transcript someone went on with is never overwritten; the same one again is fine; a run going is said', async () => {
    const places = { cwd: root, claudeConfigDir: join(root, 'claude'), hostId: 'h' };
    await exportCommand({ session: sessionId, out: 'w', portable: true }, takeover, places, io());
    expect(await exportCommand({ session: sessionId, out: 'w', portable: true }, takeover, places, io())).toBe(0);
    await writeFile(join(root, 'w', '.cldpd-export', 'conv-1.jsonl'), '{"turn":1}\n{"turn":2}\n');
    await expect(exportCommand({ session: sessionId, out: 'w', portable: true }, takeover, places, io())).rejects.toThrow(/exists already, with another version of the conversation/);
    expect(await readFile(join(root, 'w', '.cldpd-export', 'conv-1.jsonl'), 'utf8')).toBe('{"turn":1}\n{"turn":2}\n');

    await world.store.update(sessionId, { startingUntil: Date.now() + 60_000 });
    await exportCommand({ session: sessionId, out: 'v', portable: true }, takeover, places, io());
    expect(stderr).toMatch(/a run of session .* is going: the transcript is as it is now/);
    expect(await readFile(join(root, 'v', 'CLDPD-EXPORT.md'), 'utf8')).toMatch(/A run of the session was going/);
  });
});
