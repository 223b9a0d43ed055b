import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCli, type CliContext } from '../../src/cli/run-cli.js';
import { Dispatcher, HostInventory, SessionStore } from '../../src/core/index.js';
import { FakeRunner } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';

/**
 * Bad input at the terminal: every case exits non-zero with a message that names the
 * problem, and nothing reaches Docker.
 */
let root: string;
let podsDir: string;

beforeAll(async () => {
  root = await tempDir();
  podsDir = join(root, 'pods');
  await mkdir(join(podsDir, 'no-dockerfile'), { recursive: true });
  const broken: Record<string, string | object> = {
    'malformed': '{ "image": ',
    'trailing-comma': '{ "cpus": 1, }',
    'not-object': '[1, 2]',
    'wrong-type-image': { image: 5 },
    'wrong-type-env': { env: ['A=1'] },
    'wrong-type-env-value': { env: { A: 1 } },
    'unknown-key': { imagee: 'x' },
    'negative-timeout': { timeoutSeconds: -1 },
    'negative-cpus': { cpus: -0.5 },
    'zero-pids': { pids: 0 },
    'fractional-pids': { pids: 2.5 },
    'negative-grace': { stopGraceSeconds: -3 },
    'bad-memory': { memory: '-4g' },
    'relative-mount': { mounts: [{ source: 'src', target: '/src' }] },
    'missing-mount': { mounts: [{ source: '/nonexistent/cldpd/path', target: '/src' }] },
    'relative-target': { mounts: [{ source: '/tmp', target: 'src' }] },
    'relative-workdir': { workdir: 'work' },
    'empty-command': { command: [] },
    'string-command': { command: 'claude -p' },
    'bad-persist': { persist: ['relative/path'] },
    'bad-inherit': { inheritEnv: ['NOT-A-NAME'] },
    'huge-timeout': { timeoutSeconds: 1e12 },
  };
  for (const [name, json] of Object.entries(broken)) await writePod(podsDir, name, { 'pod.json': json });
  await writePod(podsDir, 'good');
  await writeFile(join(podsDir, 'not-a-dir'), 'x');
});

async function run(argv: string[]): Promise<{ code: number; stderr: string; runner: FakeRunner }> {
  const runner = new FakeRunner();
  const store = new SessionStore(join(root, 'sessions'));
  const pods = { podsDir, homeDir: root };
  const context: CliContext = { runner, store, pods, dispatcher: new Dispatcher({ runner, pods, store, hostId: 'h', hostEnv: {} }), inventory: new HostInventory({ runner, store, hostId: 'h' }) };
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let text = '';
  stderr.on('data', (d: Buffer) => (text += d.toString()));
  stdout.resume();
  const code = await runCli(argv, () => context, { stdout, stderr, version: 't', onInterrupt: () => () => undefined });
  return { code, stderr: text, runner };
}

describe('bad pod names and pods at the terminal', () => {
  it.each([
    ['..', /not allowed/],
    ['../etc', /not allowed/],
    ['a/b', /not allowed/],
    ['/abs', /not allowed/],
    ['Upper', /not allowed/],
    ['pöd', /not allowed/],
    ['\u{1F680}', /not allowed/],
    ['a'.repeat(300), /300 characters long; the limit is 63/],
    ['.dot', /not allowed/],
    ['with space', /not allowed/],
    ['ghost', /Pod "ghost" not found: there is no directory .*cldpd pods/],
    ['not-a-dir', /Pod "not-a-dir" not found/],
    ['no-dockerfile', /has no Dockerfile: add .*Dockerfile/],
    ['malformed', /pod\.json is not valid JSON/],
    ['trailing-comma', /pod\.json is not valid JSON/],
    ['not-object', /must be a JSON object/],
    ['wrong-type-image', /field "image" must be of type string/],
    ['wrong-type-env', /field "env" must be of type record/],
    ['wrong-type-env-value', /field "env\.A" must be of type string/],
    ['unknown-key', /unknown field "imagee"; the known fields are/],
    ['negative-timeout', /field "timeoutSeconds" must be a number of seconds greater than 0/],
    ['negative-cpus', /field "cpus" must be greater than 0/],
    ['zero-pids', /field "pids" must be greater than 0/],
    ['fractional-pids', /field "pids" must be a whole number/],
    ['negative-grace', /field "stopGraceSeconds" must be 0 or more seconds/],
    ['bad-memory', /field "memory" must be a size like "512m"/],
    ['relative-mount', /"mounts\[0\]\.source" is "src"; use an absolute host path/],
    ['missing-mount', /"mounts\[0\]\.source" is \/nonexistent\/cldpd\/path, which does not exist on this host/],
    ['relative-target', /field "mounts\[0\]\.target" must be an absolute path/],
    ['relative-workdir', /field "workdir" must be an absolute path/],
    ['empty-command', /field "command" must name at least the program/],
    ['string-command', /field "command" must be of type array/],
    ['bad-persist', /field "persist\[0\]" must be an absolute container path/],
    ['bad-inherit', /field "inheritEnv\[0\]" must be an environment variable name/],
    ['huge-timeout', /field "timeoutSeconds" must be at most one week/],
  ])('start %j: a clear error, nothing started', async (pod, message) => {
    const { code, stderr, runner } = await run(['start', pod, '--prompt', 'x']);
    expect(code).toBe(1);
    expect(stderr).toMatch(message);
    expect(runner.calls).toEqual([]);
  });
});

describe('bad requests at the terminal', () => {
  it.each([
    [['start', 'good'], 2, /needs --issue <url> or --prompt <text>/],
    [['start', 'good', '--issue', 'github.com/a/b/issues/1'], 1, /is not an issue URL/],
    [['start', 'good', '--issue', 'https://github.com/a/b/pull/1'], 1, /is not an issue URL/],
    [['start', 'good', '--prompt', '   '], 1, /Nothing to do/],
    [['start', 'good', '--prompt', 'x'.repeat(600 * 1024)], 1, /the limit is 524288/],
    [['resume', 'good-00000000', '--prompt', 'x'], 1, /No session "good-00000000" on this host/],
    [['resume', '../../etc/passwd', '--prompt', 'x'], 1, /is not a session id/],
    [['stop', 'nope'], 1, /No session "nope" on this host/],
    [['start', '-dash', '--prompt', 'x'], 2, /Unknown option -d for "cldpd start"\. An argument that starts with "-" goes after "--"\./],
    [['start', '--prompt', 'x', '--', '-dash'], 1, /Pod name "-dash" is not allowed/],
    [['logs', 'good-ffffffff'], 1, /No session "good-ffffffff"/],
    [['start', 'good', '--prompt'], 2, /Option --prompt needs a value: --prompt <value>\./],
    [['frobnicate'], 2, /Unknown command "frobnicate"/],
    [['start', 'a', 'b', '--prompt', 'x'], 2, /needs exactly one pod name/],
  ])('%j → exit %d with a message', async (argv, expectedCode, message) => {
    const { code, stderr, runner } = await run(argv as string[]);
    expect(code).toBe(expectedCode);
    expect(stderr).toMatch(message);
    expect(runner.methods().filter((m) => m !== 'preflight')).toEqual([]);
  });
});
