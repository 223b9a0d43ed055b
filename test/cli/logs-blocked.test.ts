import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { beforeEach, describe, expect, it } from 'vitest';
import { TranscriptPrinter } from '../../src/cli/render.js';
import { runCli, type CliContext, type CliIO } from '../../src/cli/run-cli.js';
import { Dispatcher, HostInventory, SessionStore, scanRun, type SessionEvent } from '../../src/core/index.js';
import { SessionLog } from '../../src/core/session-log.js';
import { FakeRunner, out } from '../fakes/fake-runner.js';
import { tempDir, writePod } from '../fakes/pods.js';

let context: CliContext;
let runner: FakeRunner;
let io: CliIO & { stdoutText: () => string };

beforeEach(async () => {
  const root = await tempDir();
  const pods = { podsDir: join(root, 'pods'), homeDir: root };
  await writePod(pods.podsDir, 'web');
  runner = new FakeRunner();
  const store = new SessionStore(join(root, 'sessions'));
  context = { runner, store, pods, dispatcher: new Dispatcher({ runner, pods, store, hostId: 'h', hostEnv: {} }), inventory: new HostInventory({ runner, store, hostId: 'h' }) };
  const stdout = new PassThrough();
  let text = '';
  stdout.on('data', (d: Buffer) => (text += d.toString()));
  io = { stdout, stderr: new PassThrough(), version: '9.9.9', followIntervalMs: 5, onInterrupt: () => () => undefined, stdoutText: () => text };
});

const cli = (...argv: string[]) => runCli(argv, () => context, io);
const blocked = (host: string, count: number, port = 443): SessionEvent => ({ type: 'egress.blocked', at: 6, host, port, via: 'connect', count });

/** A session that ran once, whose log then gets `events` as a second run. */
async function sessionWith(events: readonly SessionEvent[], maxRunBytes?: number): Promise<string> {
  runner.scripts.push({ chunks: [out('first\n')], exitCode: 0 });
  await cli('start', 'web', '--prompt', 'go', '--json');
  const id = (JSON.parse(io.stdoutText().split('\n')[0] as string) as { session: string }).session;
  const log = await SessionLog.open(context.store.logPath(id), { run: 2, ...(maxRunBytes ? { maxRunBytes } : {}) });
  await log.append([
    { type: 'container.started', at: 5, containerId: 'c2', containerName: `cldpd-${id}`, exec: false, run: 2 },
    ...events,
    { type: 'container.exited', at: 7, exitCode: 0, reason: 'exited', durationMs: 2 },
  ]);
  await log.close();
  return id;
}

describe('refusals of the egress gateway in a session\'s log', () => {
  it('cldpd logs shows a refused host as a note, the first and every tenth; --json gives the events as stored', async () => {
    const id = await sessionWith([blocked('evil.example', 1), blocked('evil.example', 2), blocked('pypi.org', 1, 8080), ...Array.from({ length: 8 }, (_, i) => blocked('evil.example', i + 3))]);
    const before = io.stdoutText().length;
    expect(await cli('logs', id)).toBe(0);
    const shown = io.stdoutText().slice(before);
    expect(shown).toContain('cldpd: blocked: evil.example:443 is not in the pod\'s egress list (add "evil.example" to pod.json "egress" to allow it)');
    expect(shown).toContain('cldpd: blocked: pypi.org:8080 is not');
    expect(shown).toContain('cldpd: blocked: evil.example:443 ×10 is not');
    expect(shown.match(/blocked: evil\.example/g)).toHaveLength(2);
    expect(shown).toContain('run ended');
    const jsonBefore = io.stdoutText().length;
    expect(await cli('logs', '--json', id)).toBe(0);
    const events = io.stdoutText().slice(jsonBefore).trim().split('\n').map((l) => JSON.parse(l) as { type: string; host?: string; count?: number });
    expect(events.filter((e) => e.type === 'egress.blocked')).toHaveLength(11);
    expect(events.find((e) => e.type === 'egress.blocked' && e.count === 10)).toMatchObject({ host: 'evil.example' });
  });

  it('a refused name with terminal escapes reaches the terminal without them', async () => {
    const id = await sessionWith([blocked('\u001b]0;pwned\u0007\u001b[2Jevil\r\n.example', 1)]);
    const before = io.stdoutText().length;
    expect(await cli('logs', id)).toBe(0);
    const shown = io.stdoutText().slice(before);
    expect(shown).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
    expect(shown).toContain('blocked: ');
  });

  it('an event a newer cldpd may log is passed over, not a failure of cldpd logs', async () => {
    const id = await sessionWith([{ type: 'gateway.future', at: 6, what: 'x' } as unknown as SessionEvent, blocked('evil.example', 1)]);
    const before = io.stdoutText().length;
    expect(await cli('logs', id)).toBe(0);
    expect(io.stdoutText().slice(before)).toContain('blocked: evil.example:443');
    expect(new TranscriptPrinter({ sessionId: id, mode: 'log', verbose: false }).event({ type: 'gateway.future', at: 1 } as unknown as SessionEvent)).toEqual([]);
  });

  it('past the run\'s log bound refusals are counted, not written: a container that knocks without end does not grow the log', async () => {
    const id = await sessionWith(Array.from({ length: 20_000 }, (_, i) => blocked(`h${i}.evil.example`, 1)), 4096);
    const log = context.store.logPath(id);
    expect((await stat(log)).size).toBeLessThan(16_384);
    const text = await readFile(log, 'utf8');
    expect(text).toContain('"type":"log.cut"');
    // What the run's log says of it stays readable: it started and ended.
    const state = await scanRun(log, 2);
    expect(state).toMatchObject({ started: true, terminal: { type: 'container.exited', exitCode: 0 }, log: { cut: true } });
    expect(state.log.skipped.bytes).toBeGreaterThan(1_000_000);
  });

  it('a run read back after a restart knows its refusals do not count as output lines', async () => {
    const id = await sessionWith([{ type: 'output', at: 6, stream: 'stdout', line: 'a' }, blocked('evil.example', 1), { type: 'output', at: 6, stream: 'stdout', line: 'b' }]);
    const state = await scanRun(context.store.logPath(id), 2);
    expect(state.lines).toEqual({ stdout: 2, stderr: 0 });
    expect(state.tail).toEqual(['a', 'b']);
  });
});
