import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pino from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, SessionTakeover, type SessionEvent } from '../../src/core/index.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { PseudoTerminal } from '../real-claude/pty.js';
import { TestWorld, collect, describeWithDocker, until } from './harness.js';

const CLI = fileURLToPath(new URL('../../dist/main/cldpd.js', import.meta.url));
const SIZE = { columns: 80, rows: 24 };

/**
 * A stand-in for Claude Code's interactive UI, named `claude` (so the pod is Claude Code's):
 * without -p it shows what it was asked and echoes what is typed until end-of-file; with -p
 * it is the fake agent.
 */
const TUI = `#!/bin/sh
case " $* " in *" -p "*) exec /bin/claude "$@" ;; esac
echo "interactive: $*"
exec cat
`;

describeWithDocker('a person takes a session over, against a real Docker engine (busybox pods)', () => {
  const world = new TestWorld();
  let takeover: SessionTakeover;
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    const dir = await world.pod('it-takeover', {
      resumeCommand: ['/opt/tui/claude', '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--replay-user-messages', '--dangerously-skip-permissions', '--resume', '{claudeSessionId}'],
    }, 'COPY tui /opt/tui/claude');
    await writeFile(join(dir, 'tui'), TUI);
    await chmod(join(dir, 'tui'), 0o755);
    takeover = new SessionTakeover({ runner: world.runner, store: world.store, pods: { podsDir: world.podsDir, homeDir: world.home }, hostId: world.hostId, hostEnv: {} });
    env = { ...process.env, CLDPD_HOME: world.home, CLDPD_HOST_ID: world.hostId, CLDPD_PODS_DIR: world.podsDir, NO_COLOR: '1' };
  });
  afterAll(async () => {
    await world.close();
  });

  it('attach: refused while a run of the session goes, saying so and what to do; nothing is made', async () => {
    const session = await world.dispatcher.start('it-takeover', { prompt: 'linger a while' });
    const events: SessionEvent[] = [];
    const reading = collect(session, (e) => events.push(e));
    await until('the run is going', () => events.some((e) => e.type === 'output' && e.line.includes('prompt: linger')));
    const term = new PseudoTerminal([process.execPath, CLI, 'attach', session.id], env);
    try {
      expect(await term.exit(60_000)).toBe(1);
    } finally {
      term.kill();
    }
    expect(term.screen.replace(/\s+/g, ' ')).toMatch(new RegExp(`A run of session ${session.id} is going \\(its container cldpd-${session.id} is running\\).*"cldpd stop ${session.id}"`));
    const containers = await world.containersOf(session.id);
    expect(containers.map((c) => c.Labels[LABELS.attach])).toEqual([undefined]);
    await session.stop();
    await reading;
  });

  it('attach: a queued resume waits while a person is attached, and runs once they have left and their container is gone', async () => {
    const first = await world.dispatcher.start('it-takeover', { prompt: 'first' });
    expect((await collect(first)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    const attached = await takeover.attach(first.id, SIZE);
    let screen = '';
    attached.process.stream.on('data', (d: Buffer) => (screen += d.toString()));
    await until('the terminal shows its command', () => screen.includes(`interactive: --resume fake-${first.id}`));
    attached.process.stream.write('typed by a person\r');
    await until('the terminal echoes what is typed', () => screen.includes('typed by a person'));
    expect(await world.dispatcher.isBusy(first.id)).toBe(true);

    let looked = 0;
    const { dispatcher } = world;
    const runner = new CommandRunner({
      dispatcher: {
        start: dispatcher.start.bind(dispatcher), resume: dispatcher.resume.bind(dispatcher), recover: dispatcher.recover.bind(dispatcher),
        isBusy: (id: string) => (looked++, dispatcher.isBusy(id)),
      },
      state: new MemoryStores(), reporter: new RecordingReporter(), logger: pino({ level: 'silent' }), busyPollMs: 50,
    });
    const resumed = runner.run(command('acme.web-1', 2, { sessionId: first.id, pod: 'it-takeover', kind: 'resume', prompt: 'after the person' }));
    await until('the resume has looked three times', () => looked >= 3);
    expect((await world.containersOf(first.id)).map((c) => c.Names[0])).toEqual([`/cldpd-${first.id}-attach`]);

    await attached.leave();
    const left = Date.now();
    expect(await attached.process.wait()).not.toBe(0); // ended by the stop, not by itself
    await resumed;
    const record = await world.store.load(first.id);
    expect(record).toMatchObject({ runs: 2, last: { exitCode: 0 } });
    expect(record.last?.endedAt).toBeGreaterThan(left);
    expect(await world.containersOf(first.id)).toEqual([]);
  });

  it('attach: a terminal that goes away (its window closed: a hangup) takes its container with it', async () => {
    const first = await world.dispatcher.start('it-takeover', { prompt: 'first' });
    await collect(first);
    const term = new PseudoTerminal([process.execPath, CLI, 'attach', first.id], env);
    try {
      await term.waitFor(/interactive:--resume/, 30_000);
      term.type('hello\r');
      await term.waitFor(/hello.*hello/, 30_000); // the terminal's echo, then cat's
      expect(await world.dispatcher.isBusy(first.id)).toBe(true);
    } finally {
      term.kill();
    }
    await until('the container of the terminal that went away is gone', async () => (await world.containersOf(first.id)).length === 0, 30_000);
    expect(await world.dispatcher.isBusy(first.id)).toBe(false);
  });
});
