import pino from 'pino';
import { beforeEach, describe, expect, it } from 'vitest';
import { CldpdError, LABELS, SessionTakeover, claudeProjectKey, interactiveCommand, type ContainerSpec, type Session } from '../../src/core/index.js';
import { TAKEOVER_LIFETIME_MS } from '../../src/core/session-takeover.js';
import { CommandRunner } from '../../src/queue/run-command.js';
import { Orphans } from '../../src/queue/orphans.js';
import { dispatchWorld, drain, type DispatchWorld } from '../fakes/dispatch-world.js';
import { writePod } from '../fakes/pods.js';
import { MemoryStores, command } from '../fakes/memory-stores.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';

const SIZE = { columns: 100, rows: 30 };
const ISSUE = 'https://github.com/acme/web/issues/1';

let world: DispatchWorld;
let takeover: SessionTakeover;

/** A finished session of pod `pod` whose agent reported the conversation `conv-1`. */
async function finishedSession(pod = 'web'): Promise<Session> {
  const session = await world.dispatcher.start(pod, { issueUrl: ISSUE, prompt: 'go' });
  await drain(session);
  await world.store.update(session.id, { claudeSessionId: 'conv-1' });
  return session;
}

/** The spec of the container a person's terminal was made from. */
function terminalSpec(): ContainerSpec {
  const call = [...world.runner.calls].reverse().find((c) => c.method === 'createTerminal');
  if (!call) throw new Error('no terminal was created');
  return call.args[0] as ContainerSpec;
}

beforeEach(async () => {
  world = await dispatchWorld();
  takeover = new SessionTakeover({ runner: world.runner, store: world.store, pods: world.pods, hostId: 'host-a', hostEnv: { TERM: 'screen-256color', SECRET: 'v' } });
});

describe('a person takes a session over (cldpd attach), on a fake runner', () => {
  it('attach: the terminal runs Claude Code\'s own UI on the conversation in a takeover container of the session, with its volumes; gone when they leave', async () => {
    const session = await finishedSession();
    const record = await world.store.load(session.id);
    const attached = await takeover.attach(session.id, SIZE);
    const spec = terminalSpec();
    expect(spec).toMatchObject({ name: `cldpd-${session.id}-attach`, image: 'sha256:img', tty: true, stdin: true, cmd: ['claude', '--resume', 'conv-1'] });
    expect(spec.labels).toMatchObject({ [LABELS.session]: session.id, [LABELS.issue]: ISSUE, [LABELS.host]: 'host-a' });
    expect(spec.labels[LABELS.attach]).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(spec.labels[LABELS.run]).toBeUndefined(); // no run's container
    expect(spec.mounts.filter((m) => m.type === 'volume').map((m) => m.source)).toEqual(record.volumes.map((v) => v.volume));
    expect(spec.env).toMatchObject({ TERM: 'screen-256color', SECRET: 'v', CLDPD_SESSION_ID: session.id });
    expect(world.runner.terminals.get(attached.process.containerId)?.sizes).toEqual([SIZE]);

    await attached.leave();
    await attached.leave(); // idempotent
    expect(await world.runner.list({ [LABELS.session]: session.id })).toEqual([]);
    expect(await world.dispatcher.isBusy(session.id)).toBe(false);
  });

  it('attach: while a person is attached the session is busy: the queue waits, a resume is refused saying why, recovery and orphan sweeping leave the terminal alone', async () => {
    const session = await finishedSession();
    const attached = await takeover.attach(session.id, SIZE);
    expect(await world.dispatcher.isBusy(session.id)).toBe(true);
    await expect(world.dispatcher.resume(session.id, 'more')).rejects.toThrow(/A person is attached to session .*cldpd stop/);

    const recovery = await world.dispatcher.recover(session.id);
    expect(recovery.kind).toBe('finished');
    const stores = new MemoryStores();
    const asked: string[] = [];
    const orphans = new Orphans({
      inventory: world.inventory,
      dispatcher: { stop: async (id) => void asked.push(`stop ${id}`), recover: async (id) => (asked.push(`recover ${id}`), world.dispatcher.recover(id)) },
      state: stores,
      runner: { follows: () => false, follow: async () => { throw new Error('never followed'); }, finish: async () => undefined },
      reporter: new RecordingReporter(),
      logger: pino({ level: 'silent' }),
    });
    await orphans.reconcile();
    await new Promise((r) => setTimeout(r, 20));
    expect(asked).toEqual([]);
    expect(await world.runner.isRunning(attached.process.containerId)).toBe(true);
    await attached.leave();
  });

  it('attach: a queued resume waits while a person is attached and runs once they leave, never beside them', async () => {
    const session = await finishedSession();
    const attached = await takeover.attach(session.id, SIZE);
    const stores = new MemoryStores();
    let looked = 0;
    const { dispatcher } = world;
    const counting = {
      start: dispatcher.start.bind(dispatcher), resume: dispatcher.resume.bind(dispatcher), recover: dispatcher.recover.bind(dispatcher),
      isBusy: (id: string) => (looked++, dispatcher.isBusy(id)),
    };
    const runner = new CommandRunner({ dispatcher: counting, state: stores, reporter: new RecordingReporter(), logger: pino({ level: 'silent' }), busyPollMs: 5 });
    const running = runner.run(command('acme.web-1', 2, { sessionId: session.id, pod: 'web', kind: 'resume' }));
    // It has looked several times, and started nothing.
    for (let i = 0; i < 400 && looked < 5; i++) await new Promise((r) => setTimeout(r, 5));
    expect(looked).toBeGreaterThanOrEqual(5);
    expect(world.runner.methods().filter((m) => m === 'run')).toHaveLength(1); // the first run's only
    world.runner.terminals.get(attached.process.containerId)?.leave(0);
    await attached.leave();
    await running;
    const methods = world.runner.methods();
    expect(methods.filter((m) => m === 'run')).toHaveLength(2);
    const gone = world.runner.calls.findIndex((c) => c.method === 'remove' && c.args[0] === attached.process.containerId);
    expect(gone).toBeGreaterThan(-1);
    expect(methods.lastIndexOf('run')).toBeGreaterThan(gone);
  });

  it('attach: refused while a run of the session goes, while it starts, and while a person is attached already', async () => {
    world.runner.defaultScript = { chunks: [], exitCode: 0, hold: true };
    const session = await world.dispatcher.start('web', { prompt: 'go' });
    await world.store.update(session.id, { claudeSessionId: 'conv-1' });
    for (let i = 0; i < 200 && !world.runner.methods().includes('run'); i++) await new Promise((r) => setTimeout(r, 5));
    await expect(takeover.attach(session.id, SIZE)).rejects.toThrow(/A run of session .* is going \(its container cldpd-.* is running\).*cldpd stop/);
    await session.stop();
    await drain(session);

    await world.store.update(session.id, { startingUntil: Date.now() + 60_000 });
    await expect(takeover.attach(session.id, SIZE)).rejects.toMatchObject({ code: 'SessionBusy', message: expect.stringMatching(/it is starting/) });
    await world.store.update(session.id, { startingUntil: undefined });

    world.runner.defaultScript = { chunks: [], exitCode: 0 };
    const first = await takeover.attach(session.id, SIZE);
    await expect(takeover.attach(session.id, SIZE)).rejects.toThrow(/A person is attached to session .* already/);
    await first.leave();
    expect(world.runner.methods().filter((m) => m === 'createTerminal')).toHaveLength(1);
  });

  it('attach: the running container of a pod that resumes by exec is left to its runs: stop it, and the terminal gets a new one', async () => {
    await writePod(world.pods.podsDir, 'argv', { 'pod.json': { command: ['claude', '-p', '{prompt}'], resumeCommand: ['claude', '-p', '{prompt}', '--resume', '{claudeSessionId}'] } });
    world.runner.defaultScript = { chunks: [], exitCode: 0, hold: true };
    const session = await world.dispatcher.start('argv', { prompt: 'go' });
    await world.store.update(session.id, { claudeSessionId: 'conv-1' });
    for (let i = 0; i < 200 && !world.runner.methods().includes('run'); i++) await new Promise((r) => setTimeout(r, 5));
    await expect(takeover.attach(session.id, SIZE)).rejects.toThrow(/its pod resumes by exec, so it stays up between runs.*"cldpd stop .*new container/);
    await world.dispatcher.stop(session.id);
    await drain(session);
    world.runner.defaultScript = { chunks: [], exitCode: 0 };
    const attached = await takeover.attach(session.id, SIZE);
    expect(terminalSpec().cmd).toEqual(['claude', '--resume', 'conv-1']);
    await attached.leave();
  });

  it('attach: a terminal whose process died before starting it (created long ago, never started) holds the session no more, and goes', async () => {
    const session = await finishedSession();
    const first = await takeover.attach(session.id, SIZE);
    const container = world.runner.containers.get(first.process.containerId);
    if (!container) throw new Error('no container');
    container.info.state = 'created';
    container.info.createdAt = Date.now() - 60_000;
    expect(await world.dispatcher.isBusy(session.id)).toBe(true); // being started, perhaps
    container.info.createdAt = Date.now() - 300_000;
    expect(await world.dispatcher.isBusy(session.id)).toBe(false);
    const second = await takeover.attach(session.id, SIZE);
    expect(world.runner.containers.has(first.process.containerId)).toBe(false);
    await second.leave();
  });

  it('attach: a terminal lost past its lifetime (its cldpd attach killed outright) holds the session no more, and the host\'s sweep removes it', async () => {
    const session = await finishedSession();
    const first = await takeover.attach(session.id, SIZE);
    const container = world.runner.containers.get(first.process.containerId);
    if (!container) throw new Error('no container');
    expect(await world.dispatcher.isBusy(session.id)).toBe(true);
    expect(await world.inventory.sweepTakeovers()).toEqual([]);
    const since = new Date(Date.now() - TAKEOVER_LIFETIME_MS - 60_000).toISOString();
    (container.info.labels as Record<string, string>)[LABELS.attach] = since;
    expect(await world.dispatcher.isBusy(session.id)).toBe(false);
    expect(await world.inventory.sweepTakeovers()).toEqual([container.info.name]);
    expect(world.runner.containers.has(first.process.containerId)).toBe(false);
  });

  it('attach: a run that started while the terminal was being made wins; the terminal gives way and leaves nothing', async () => {
    const session = await finishedSession();
    const create = world.runner.createTerminal.bind(world.runner);
    world.runner.createTerminal = async (spec) => {
      const id = await create(spec);
      await world.store.update(session.id, { startingUntil: Date.now() + 60_000 });
      return id;
    };
    await expect(takeover.attach(session.id, SIZE)).rejects.toMatchObject({ code: 'SessionBusy' });
    expect(await world.runner.list({ [LABELS.session]: session.id })).toEqual([]);
  });

  it('attach: (and export) a pod whose agent is a command of its own is refused, saying so; so is a session without a conversation', async () => {
    await writePod(world.pods.podsDir, 'own', { 'pod.json': { command: ['sh', '-c', 'echo hi'] } });
    const own = await finishedSession('own');
    await expect(takeover.attach(own.id, SIZE)).rejects.toThrow(/a command of its own \(.*\), not Claude Code: cldpd can attach to Claude Code's conversations only/);
    await expect(takeover.exportConversation(own.id)).rejects.toThrow(/not Claude Code: cldpd can export Claude Code's conversations only/);

    await writePod(world.pods.podsDir, 'cx', { 'pod.json': { agent: 'codex' } });
    const codex = await finishedSession('cx');
    await expect(takeover.attach(codex.id, SIZE)).rejects.toThrow(/whose agent is Codex CLI: cldpd can attach to Claude Code's conversations only\. Continue it with "cldpd resume/);
    await expect(takeover.exportConversation(codex.id)).rejects.toMatchObject({ code: 'InvalidInput' });

    const none = await world.dispatcher.start('web', { prompt: 'go' });
    await drain(none);
    await expect(takeover.attach(none.id, SIZE)).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringMatching(/no Claude Code conversation on record/) });
    await expect(takeover.attach('web-0123456789abcdef', SIZE)).rejects.toMatchObject({ code: 'SessionNotFound' });
    expect(world.runner.methods()).not.toContain('createTerminal');
  });

  it('attach: Claude Code\'s onboarding is marked done in the session\'s state, keeping its owner, mode and settings; a settings file that is not JSON is left alone', async () => {
    const session = await finishedSession();
    world.runner.files.set('/home/agent/.claude/.claude.json', { content: Buffer.from('{"numStartups":3}'), uid: 1000, gid: 1000, mode: 0o600 });
    const attached = await takeover.attach(session.id, SIZE);
    expect(terminalSpec().env.CLAUDE_CONFIG_DIR).toBe('/home/agent/.claude');
    const written = world.runner.written.get(attached.process.containerId)?.get('/home/agent/.claude/.claude.json');
    expect(JSON.parse(written ?? '{}')).toEqual({ numStartups: 3, hasCompletedOnboarding: true });
    await attached.leave();

    world.runner.files.set('/home/agent/.claude/.claude.json', { content: Buffer.from('{"numStartups":'), uid: 1000, gid: 1000, mode: 0o600 });
    const again = await takeover.attach(session.id, SIZE);
    expect(world.runner.written.get(again.process.containerId)).toBeUndefined();
    await again.leave();
  });

  it('attach: a session whose Claude state volume is gone is refused before anything is made', async () => {
    const session = await finishedSession();
    const [volume] = (await world.store.load(session.id)).volumes;
    world.runner.volumes.delete(volume?.volume ?? '');
    await expect(takeover.attach(session.id, SIZE)).rejects.toThrow(/is gone .* cannot be taken over/);
    expect(world.runner.methods()).not.toContain('createTerminal');
  });
});

describe('export: the conversation read out of the session\'s Claude state', () => {
  it('export: reads the transcript where Claude Code keeps it for the agent\'s directory, up to its last whole line', async () => {
    const session = await finishedSession();
    world.runner.files.set('/home/agent/.claude/projects/-work/conv-1.jsonl', { content: Buffer.from('{"a":1}\n{"b":2}\n{"c":'), uid: 1000, gid: 1000, mode: 0o600 });
    const exported = await takeover.exportConversation(session.id);
    expect(exported).toMatchObject({ sessionId: session.id, claudeSessionId: 'conv-1', issueUrl: ISSUE, containerCwd: '/work', runGoing: false });
    expect(exported.transcript.toString()).toBe('{"a":1}\n{"b":2}\n');
    const [, volumes] = [...world.runner.calls].reverse().find((c) => c.method === 'readVolumeFile')?.args ?? [];
    expect(volumes).toEqual((await world.store.load(session.id)).volumes);
  });

  it('export: a session with no transcript there says so', async () => {
    const session = await finishedSession();
    await expect(takeover.exportConversation(session.id)).rejects.toThrow(/has no transcript at \/home\/agent\/\.claude\/projects\/-work\/conv-1\.jsonl/);
  });

  it('export: a pod that does not persist Claude Code\'s state has no conversation left, and says what to change', async () => {
    await writePod(world.pods.podsDir, 'bare', { 'pod.json': { persist: ['/work'] } });
    const session = await finishedSession('bare');
    await expect(takeover.exportConversation(session.id)).rejects.toThrow(/does not persist Claude Code's state .*"persist"/);
  });
});

describe('pure parts of a takeover', () => {
  it.each([
    ['the default resume command', ['claude', '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--replay-user-messages', '--dangerously-skip-permissions', '--max-turns', '5', '--resume', '{claudeSessionId}'], ['claude', '--resume', 'conv-1']],
    ['a pod\'s own, with a model and a prompt in argv', ['/usr/local/bin/claude', '--model', 'opus', '-p', '{prompt}', '--output-format=json', '-r', '{claudeSessionId}'], ['/usr/local/bin/claude', '--model', 'opus', '--resume', 'conv-1']],
    ['placeholders of the session', ['claude', '--append-system-prompt', 'session {sessionId}', '--print'], ['claude', '--append-system-prompt', 'session web-1', '--resume', 'conv-1']],
  ])('attach: interactiveCommand: %s', (_, resume, expected) => {
    expect(interactiveCommand(resume, { sessionId: 'web-1', claudeSessionId: 'conv-1' })).toEqual(expected);
  });

  it.each([
    ['/workspace', '-workspace'],
    ['/home/agent/my.repo_x', '-home-agent-my-repo-x'],
    ['/tmp/é', '-tmp--'],
    [`/${'a'.repeat(250)}`, `-${'a'.repeat(199)}-${Math.abs([...`/${'a'.repeat(250)}`].reduce((h, c) => ((h << 5) - h + c.charCodeAt(0)) | 0, 0)).toString(36)}`],
  ])('export: claudeProjectKey(%s) is where Claude Code keeps that directory\'s transcripts', (cwd, key) => {
    expect(claudeProjectKey(cwd)).toBe(key);
  });

  it('attach: errors are CldpdErrors a caller can match', async () => {
    world = await dispatchWorld();
    const err = await new SessionTakeover({ runner: world.runner, store: world.store, pods: world.pods, hostId: 'h', hostEnv: {} }).attach('nope', SIZE).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CldpdError);
  });
});
