import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { runCli, type CliContext, type CliIO } from '../../src/cli/run-cli.js';
import { Dispatcher, HostInventory, SessionStore } from '../../src/core/index.js';
import { SessionLog } from '../../src/core/session-log.js';
import { FakeRunner, err, out } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';

let runner: FakeRunner;
let context: CliContext;
let interrupt: (() => void) | undefined;
let io: CliIO & { stdoutText: () => string; stderrText: () => string };

function capture(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

beforeEach(async () => {
  const root = await tempDir();
  const pods = { podsDir: join(root, 'pods'), homeDir: root };
  await writePod(pods.podsDir, 'web');
  await writePod(pods.podsDir, 'broken', { 'pod.json': '{' });
  runner = new FakeRunner();
  const store = new SessionStore(join(root, 'sessions'));
  context = { runner, store, pods, dispatcher: new Dispatcher({ runner, pods, store, hostId: 'h', hostEnv: {} }), inventory: new HostInventory({ runner, store, hostId: 'h' }) };
  const stdout = capture();
  const stderr = capture();
  interrupt = undefined;
  io = {
    stdout: stdout.stream, stderr: stderr.stream, version: '9.9.9', followIntervalMs: 5,
    onInterrupt: (handler) => {
      interrupt = handler;
      return () => (interrupt = undefined);
    },
    stdoutText: stdout.text, stderrText: stderr.text,
  };
});

const cli = (...argv: string[]) => runCli(argv, () => context, io);

describe('runCli', () => {
  it('start streams output and returns the container exit code', async () => {
    runner.scripts.push({ chunks: [out('hello\n'), err('careful\n')], exitCode: 4 });
    expect(await cli('start', 'web', '--prompt', 'go')).toBe(4);
    expect(io.stdoutText()).toBe('hello\n');
    expect(io.stderrText()).toContain('careful\n');
    expect(io.stderrText()).toContain('cldpd: building image cldpd-web:latest');
    expect(io.stderrText()).toMatch(/✗ exited with code 4 · \d+\.\d s\n {2}continue: cldpd resume web-[0-9a-f]{16} --prompt '<what next>'\n$/);
    // The session id is said once before the build, not again when the container starts.
    expect(io.stderrText().match(/web-[0-9a-f]{16}/g)?.length).toBe(3); // the note, the container's name, the resume command
    expect(io.stderrText()).not.toContain('\u001b'); // no colour unless asked for
    expect(interrupt).toBeUndefined(); // the signal handler is released afterwards
  });

  it('start --json prints one event per line, each naming the session', async () => {
    runner.scripts.push({ chunks: [out('x\n')], exitCode: 0 });
    expect(await cli('start', 'web', '--prompt', 'go', '--json')).toBe(0);
    const events = io.stdoutText().trim().split('\n').map((l) => JSON.parse(l) as { type: string; session: string });
    expect(events.map((e) => e.type)).toEqual(['build.started', 'build.output', 'build.output', 'build.completed', 'container.started', 'output', 'container.exited']);
    expect(new Set(events.map((e) => e.session)).size).toBe(1);
  });

  it('Ctrl+C stops the session and the container is removed', async () => {
    runner.scripts.push({ chunks: [out('working\n')], exitCode: 0, hold: true });
    const running = cli('start', 'web', '--prompt', 'go');
    while (runner.containers.size === 0) await new Promise((r) => setTimeout(r, 5));
    interrupt?.();
    expect(await running).toBe(143);
    expect(runner.containers.size).toBe(0);
    expect(io.stderrText()).toContain('stopping session');
  });

  it('a failed build exits 1 with the error', async () => {
    runner.buildError = 'boom in step 2';
    expect(await cli('start', 'web', '--prompt', 'go')).toBe(1);
    expect(io.stderrText()).toContain('boom in step 2');
  });

  it('a bad pod name exits 1 with a message, a bad command line exits 2 with the usage', async () => {
    expect(await cli('start', 'Bad/Name', '--prompt', 'x')).toBe(1);
    expect(io.stderrText()).toContain('is not allowed');
    expect(await cli('start')).toBe(2);
    expect(io.stderrText()).toContain('cldpd: "cldpd start" needs exactly one pod name.\nUsage: cldpd start <pod> --issue <url> | --prompt <text>\nRun "cldpd --help" for all commands and options.\n');
  });

  it('a typo gets a suggestion and two lines of help, not the whole usage', async () => {
    expect(await cli('strat', 'web')).toBe(2);
    expect(io.stderrText()).toBe('cldpd: Unknown command "strat". Did you mean "start"?\nRun "cldpd --help" for the commands and options.\n');
  });

  it('a pod name typo is answered with the pod meant', async () => {
    expect(await cli('start', 'wbe', '--prompt', 'x')).toBe(1);
    expect(io.stderrText()).toContain('Pod "wbe" not found');
    expect(io.stderrText()).toContain('Did you mean "web"?');
  });

  it('colour where the stream is a terminal: errors red, notes dim', async () => {
    io = { ...io, color: { stdout: false, stderr: true } };
    runner.scripts.push({ chunks: [out('hello\n')], exitCode: 0 });
    expect(await cli('start', 'web', '--prompt', 'go')).toBe(0);
    expect(io.stdoutText()).toBe('hello\n'); // the pipe gets the agent's output, plain
    expect(io.stderrText()).toContain('\u001b[2mcldpd: building image cldpd-web:latest\u001b[22m');
    expect(io.stderrText()).toContain('\u001b[32m✓ done');
    expect(await cli('start', 'nope', '--prompt', 'x')).toBe(1);
    expect(io.stderrText()).toContain('\u001b[31mcldpd: Pod "nope" not found');
  });

  it('pods lists each pod with its status and fails when one is invalid', async () => {
    expect(await cli('pods')).toBe(1);
    expect(io.stdoutText()).toMatch(/broken\s+invalid\s+Pod "broken"/);
    expect(io.stdoutText()).toMatch(/web\s+ok\s+Claude Code\s+model, GitHub\s+cldpd-web:latest/);
  });

  it('pods says which agent each pod runs and the limits its CLI lacks', async () => {
    await writePod(context.pods.podsDir, 'cx', { 'pod.json': { agent: 'codex' } });
    await writePod(context.pods.podsDir, 'gm', { 'pod.json': { agent: 'gemini', prices: { input: 1, output: 2 } } });
    await cli('pods');
    expect(io.stdoutText()).toMatch(/cx\s+ok\s+Codex CLI \(no turn or spending limit\)\s+model, GitHub/);
    expect(io.stdoutText()).toMatch(/gm\s+ok\s+Gemini CLI/);
    await cli('pods', '--json');
    const rows = io.stdoutText().split('\n').filter((l) => l.startsWith('{"name":"cx"') || l.startsWith('{"name":"web"')).map((l) => JSON.parse(l) as { name: string; agent: string; limits: unknown });
    expect(rows.find((r) => r.name === 'cx')).toMatchObject({ agent: 'codex', limits: { maxTurns: 'unsupported', maxBudgetUsd: 'unsupported' } });
    expect(rows.find((r) => r.name === 'web')).toMatchObject({ agent: 'claude', limits: { maxTurns: null, maxBudgetUsd: null } });
  });

  it('doctor checks Docker and every pod', async () => {
    expect(await cli('doctor', '--json')).toBe(1);
    const checks = io.stdoutText().trim().split('\n').map((l) => JSON.parse(l) as { check: string; ok: boolean });
    expect(checks.map((c) => [c.check, c.ok])).toEqual([['docker', true], ['pods directory', true], ['pod broken', false], ['pod web', true]]);
  });

  it('ps, logs and stop work on a finished session', async () => {
    runner.scripts.push({ chunks: [out('line one\n')], exitCode: 0 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    expect(await cli('ps', '--all', '--json')).toBe(0);
    expect(io.stdoutText()).toContain(`"session":"${id}","pod":"web","state":"exited (0)"`);
    const before = io.stderrText();
    expect(await cli('logs', id)).toBe(0);
    expect(io.stdoutText()).toContain('line one\n');
    // Everything on stdout: `cldpd logs X | less` sees the build and the notes too.
    expect(io.stdoutText()).toContain('cldpd: building image cldpd-web:latest\n');
    expect(io.stdoutText()).toContain('cldpd: run ended: exited with code 0 after');
    expect(io.stderrText()).toBe(before);
    expect(await cli('logs', '-f', id)).toBe(0); // ends: the run is over and no container runs
    expect(await cli('stop', id)).toBe(0);
    expect(await cli('logs', 'web-ffffffff')).toBe(1);
    expect(io.stderrText()).toContain('No session "web-ffffffff"');
  });

  it('session id: a new session\'s id carries 64 bits (16 hex); ps, logs and stop read a session an older cldpd made, whose id has 8', async () => {
    runner.scripts.push({ chunks: [out('new run\n')], exitCode: 0 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    expect(id).toMatch(/^web-[0-9a-f]{16}$/);
    // A session an older cldpd left on this host: its record and its log, with an 8-hex id.
    const old = 'web-0a1b2c3d';
    await context.store.save({ id: old, pod: 'web', image: 'cldpd-web:latest', imageId: 'sha256:old', hostId: 'h', containerName: `cldpd-${old}`, createdAt: 1, updatedAt: 2, runs: 1, volumes: [], last: { exitCode: 0, endedAt: 2 } });
    const log = await SessionLog.open(context.store.logPath(old));
    await log.append([{ type: 'container.started', at: 1, containerId: 'gone', containerName: `cldpd-${old}`, exec: false, run: 1 }, { type: 'output', at: 1, stream: 'stdout', line: 'from an older cldpd' }, { type: 'container.exited', at: 2, exitCode: 0, reason: 'exited', durationMs: 1 }]);
    await log.close();
    expect(await cli('ps', '--all', '--json')).toBe(0);
    expect(io.stdoutText()).toContain(`"session":"${old}"`);
    expect(io.stdoutText()).toContain(`"session":"${id}"`);
    const before = io.stdoutText().length;
    expect(await cli('logs', old)).toBe(0);
    expect(io.stdoutText().slice(before)).toContain('from an older cldpd\n');
    expect(await cli('stop', old)).toBe(0);
    // Neither shape with another length is a session id.
    expect(await cli('logs', 'web-0a1b2c3d4')).toBe(1);
    expect(io.stderrText()).toContain('"web-0a1b2c3d4" is not a session id (they look like my-pod-1a2b3c4d5e6f7a8b, or my-pod-1a2b3c4d from an older cldpd)');
  });

  it('logs says where a run\'s log was cut and how much it left out', async () => {
    runner.scripts.push({ chunks: [out('first\n')], exitCode: 0 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    const log = await SessionLog.open(context.store.logPath(id), { run: 2, maxRunBytes: 300 });
    await log.append([
      { type: 'container.started', at: 5, containerId: 'c2', containerName: `cldpd-${id}`, exec: false, run: 2 },
      ...Array.from({ length: 50 }, (_, i) => ({ type: 'output' as const, at: 6, stream: 'stdout' as const, line: `second run line ${i + 1}` })),
      { type: 'container.exited', at: 7, exitCode: 0, reason: 'exited', durationMs: 2 },
    ]);
    await log.close();
    const before = io.stdoutText().length;
    expect(await cli('logs', id)).toBe(0);
    const shown = io.stdoutText().slice(before);
    expect(shown).toContain('second run line 1\n');
    expect(shown).not.toContain('second run line 50\n');
    expect(shown).toMatch(/cldpd: the log of run 2 was cut here, at its bound of 300 B \(CLDPD_RUN_LOG_MAX_MB\)/);
    expect(shown).toMatch(/cldpd: run 2: 4\d output lines \([\d.]+ kB\) after the cut were not kept\n/);
    // The count comes once, before the run's end, not for every note in the log.
    expect(shown.indexOf('after the cut')).toBeLessThan(shown.lastIndexOf('run ended'));
    expect(shown.match(/after the cut/g)).toHaveLength(1);
    const jsonBefore = io.stdoutText().length;
    expect(await cli('logs', '--json', id)).toBe(0);
    const types = io.stdoutText().slice(jsonBefore).trim().split('\n').map((l) => (JSON.parse(l) as { type: string }).type);
    expect(types.filter((t) => t.startsWith('log.'))).toEqual(['log.cut', 'log.skipped']);
  });

  it('unicode: logs keeps a character whole that straddles a 256 KiB read', async () => {
    runner.scripts.push({ chunks: [out('first\n')], exitCode: 0 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    // A log whose second line has a 4-byte character across the first 256 KiB read.
    const emoji = '\u{1F600}'.repeat(70_000);
    const head = (pad: number) => `${JSON.stringify({ type: 'output', at: 1, stream: 'stdout', line: 'a'.repeat(pad) })}\n{"type":"output","at":2,"stream":"stdout","line":"`;
    const pad = [0, 1, 2, 3].find((p) => (256 * 1024 - Buffer.byteLength(head(p))) % 4 === 2) as number;
    const text = `${head(pad)}${emoji}"}\n`;
    expect(Buffer.from(text)[256 * 1024]! & 0xc0).toBe(0x80); // the read ends inside a character
    await writeFile(context.store.logPath(id), text);
    const before = io.stdoutText().length;
    expect(await cli('logs', '--json', id)).toBe(0);
    const lines = io.stdoutText().slice(before).split('\n').filter(Boolean).map((l) => (JSON.parse(l) as { line?: string }).line);
    expect(lines).toEqual(['a'.repeat(pad), emoji]);
  });

  it('warns about a root image with the default command in pods and doctor, and a missing bash in doctor', async () => {
    runner.images.set('cldpd-web:latest', { id: 'sha256:rootimg', user: '', env: {}, workingDir: '/', labels: {} });
    runner.paths.clear(); // no bash in the image
    expect(await cli('pods')).toBe(1);
    expect(io.stdoutText()).toMatch(/web\s+warning\s+Claude Code\s+model, GitHub\s+cldpd-web:latest — Pod "web": its image runs as root.*USER agent/);
    expect(await cli('doctor', '--json')).toBe(1);
    const checks = io.stdoutText().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { check: string; ok: boolean; warning?: boolean; detail: string });
    const web = checks.filter((c) => c.check === 'pod web' && c.warning);
    expect(web.map((c) => c.detail)).toEqual([expect.stringContaining('runs as root'), expect.stringContaining('has no bash')]);
    expect(web.every((c) => c.ok)).toBe(true); // warnings, not failures
  });

  it('pods warning: no root warning for a pod whose command is not Claude Code (the example hello), nor a missing bash; one for a Claude Code resume it sets itself', async () => {
    const hello = await readFile(new URL('../../examples/pods/hello/pod.json', import.meta.url), 'utf8');
    await writePod(context.pods.podsDir, 'hello', { 'pod.json': hello });
    await writePod(context.pods.podsDir, 'wrapped', { 'pod.json': { command: ['sh', '-c', 'echo hi'], resumeCommand: ['/usr/local/bin/claude', '-p', '{prompt}', '--dangerously-skip-permissions', '--resume', '{claudeSessionId}'] } });
    await rm(join(context.pods.podsDir, 'broken'), { recursive: true });
    const root = { id: 'sha256:rootimg', user: '', env: {}, workingDir: '/', labels: {} };
    for (const pod of ['hello', 'wrapped', 'web']) runner.images.set(`cldpd-${pod}:latest`, root);
    runner.paths.clear(); // no bash in any image
    expect(await cli('pods')).toBe(0);
    expect(io.stdoutText()).toMatch(/hello\s+ok\s+\S.*?\s+cldpd-hello:latest\n/);
    expect(io.stdoutText()).toMatch(/wrapped\s+warning\s+\S.*?\s+cldpd-wrapped:latest — Pod "wrapped": its image runs as root/);
    expect(io.stdoutText()).toMatch(/web\s+warning\s+\S.*?\s+cldpd-web:latest — Pod "web": its image runs as root/);
    expect(await cli('doctor', '--json')).toBe(0);
    const checks = io.stdoutText().trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { check: string; ok: boolean; warning?: boolean; detail: string });
    expect(checks.filter((c) => c.check === 'pod hello' && c.warning)).toEqual([]);
  });

  it('reads the prompt from a file or standard input', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'prompt.md'), '- from a file\n');
    runner.scripts.push({ chunks: [], exitCode: 0 }, { chunks: [], exitCode: 0 });
    expect(await cli('start', 'web', '--prompt-file', join(dir, 'prompt.md'))).toBe(0);
    const stdin = new PassThrough();
    stdin.end('- from stdin');
    expect(await runCli(['start', 'web', '--prompt-file', '-'], () => context, { ...io, stdin })).toBe(0);
    const written = [...runner.stdin.values()].map((w) => JSON.parse(w.text) as { message: { content: Array<{ text: string }> } });
    expect(written.map((w) => w.message.content[0]?.text)).toEqual(['- from a file', '- from stdin']);
    expect(await cli('start', 'web', '--prompt-file', join(dir, 'missing.md'))).toBe(1);
    expect(io.stderrText()).toContain('Cannot read the prompt from');
  });

  it('ps shows what the last run and the whole session cost', async () => {
    const result = (cost: number) => out(`${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', total_cost_usd: cost, num_turns: 2, session_id: 'c-1' })}\n`);
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"c-1"}\n'), result(0.5)], exitCode: 0 }, { chunks: [result(1.25)], exitCode: 0 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    expect(await cli('resume', id, '--prompt', 'more')).toBe(0);
    expect(io.stderrText()).toMatch(/✓ done · \d+\.\d s · \$0\.7500 \(\$1\.2500 for the session\)/);
    expect(await cli('ps', '--all', '--json')).toBe(0);
    const row = io.stdoutText().trim().split('\n').filter((l) => l.includes('"runs"')).map((l) => JSON.parse(l) as Record<string, unknown>).find((r) => r.session === id);
    expect(row).toMatchObject({ runs: 2, costUsd: 1.25, lastRunCostUsd: 0.75, turns: 4 });
    expect(await cli('ps', '--all')).toBe(0);
    expect(io.stdoutText()).toMatch(new RegExp(`${id}\\s+web\\s+exited \\(0\\) (just now|\\ds ago)\\s+2\\s+\\$0\\.75\\s+\\$1\\.25\\s+(just now|\\ds ago)`));
  });

  it('ps says how long ago, not when to the millisecond', async () => {
    runner.scripts.push({ chunks: [out('x\n')], exitCode: 3 });
    await cli('start', 'web', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    io = { ...io, now: () => Date.now() + 2 * 3600_000 + 5000 };
    expect(await cli('ps', '--all')).toBe(0);
    expect(io.stdoutText()).toMatch(new RegExp(`${id}\\s+web\\s+exited \\(3\\) 2h ago\\s+1\\s+-\\s+-\\s+2h ago`));
    expect(io.stdoutText()).not.toMatch(/\d{4}-\d\d-\d\dT/);
  });

  it('volumes lists what sessions keep, and rm removes a finished session\'s', async () => {
    await writePod(context.pods.podsDir, 'keeper', { 'pod.json': { persist: ['/data'] } });
    runner.scripts.push({ chunks: [out('x\n')], exitCode: 0 });
    await cli('start', 'keeper', '--prompt', 'go', '--json');
    const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
    const [volume] = [...runner.volumes.keys()];
    runner.volumeSizes.set(volume as string, 4096);
    expect(await cli('volumes')).toBe(0);
    expect(io.stdoutText()).toMatch(new RegExp(`VOLUME\\s+POD\\s+ISSUE / SESSION\\s+PATH\\s+SIZE\\s+CREATED\\s+IN USE\\n${volume}\\s+keeper\\s+${id}\\s+/data\\s+4\\.1 kB\\s+(just now|\\ds ago)\\s+no\\n`));
    expect(io.stderrText()).toContain('cldpd: 1 volume, 4.1 kB');
    expect(await cli('volumes', 'rm', id)).toBe(0);
    expect(io.stdoutText()).toContain(`removed  ${volume}  /data\n`);
    expect(runner.volumes.size).toBe(0);
    expect(await cli('volumes', 'rm', 'cldpd-not-there')).toBe(0);
    expect(io.stdoutText()).toContain('already gone  cldpd-not-there');
  });

  it('prints help and version', async () => {
    expect(await cli('--version')).toBe(0);
    expect(await cli('help')).toBe(0);
    expect(io.stdoutText()).toContain('9.9.9\n');
    expect(io.stdoutText()).toContain('Commands:');
  });
});
