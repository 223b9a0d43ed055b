import { join } from 'node:path';
import { readFile } from 'node:fs/promises';
import { beforeEach, describe, expect, it } from 'vitest';
import { DEFAULT_COMMAND, Dispatcher, HostInventory, SessionStore, type ContainerSpec, type PodSource, type SessionEvent } from '../../src/core/index.js';
import { FakeRunner, out } from '../fakes/fake-runner.js';
import { dispatchWorld, drain } from '../fakes/dispatch-world.js';
import { tempDir, writePod } from '../fakes/pods.js';
import { issueVolumeKey } from '../../src/core/issue-address.js';

let runner: FakeRunner;
let store: SessionStore;
let pods: PodSource;
let dispatcher: Dispatcher;
let inventory: HostInventory;
beforeEach(async () => {
  ({ runner, store, pods, dispatcher, inventory } = await dispatchWorld());
});

function runSpecs(): ContainerSpec[] {
  return runner.calls.filter((c) => c.method === 'run').map((c) => c.args[0] as ContainerSpec);
}

describe('Dispatcher.start', () => {
  it('session id: a random id another session of this host holds is never reused: a fresh one instead, the older record untouched; ids carry 64 bits', async () => {
    const taken = `web-${'a'.repeat(16)}`;
    const now = Date.now();
    await store.save({ id: taken, pod: 'web', image: 'i', imageId: 'sha256:other', hostId: 'host-a', containerName: `cldpd-${taken}`, createdAt: now, updatedAt: now, runs: 3, volumes: [], issueUrl: 'https://github.com/acme/other/issues/1' });
    const suffixes = ['a'.repeat(16), 'b'.repeat(16)];
    const colliding = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {}, newSuffix: () => suffixes.shift() ?? 'c'.repeat(16) });
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    const session = await colliding.start('web', { issueUrl: 'https://github.com/acme/web/issues/5' });
    await drain(session);
    expect(session.id).toBe(`web-${'b'.repeat(16)}`);
    expect(await store.load(taken)).toMatchObject({ imageId: 'sha256:other', runs: 3, issueUrl: 'https://github.com/acme/other/issues/1' });
    expect(await store.load(session.id)).toMatchObject({ issueUrl: 'https://github.com/acme/web/issues/5' });
    // The default: 16 random hex digits.
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    const plain = await new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {} }).start('web', { prompt: 'x' });
    await drain(plain);
    expect(plain.id).toMatch(/^web-[0-9a-f]{16}$/);
  });

  it('builds, then runs the start command with template + issue, on per-issue volumes', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-9"}\n')], exitCode: 0 });
    const session = await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/5' });
    expect(session.id).toMatch(/^web-[0-9a-f]{16}$/);
    await drain(session);
    const [spec] = runSpecs();
    expect(spec?.name).toBe(`cldpd-${session.id}`);
    // The prompt goes on standard input as a stream-json user message, never in argv.
    expect(spec?.cmd).toEqual([...DEFAULT_COMMAND]);
    expect(spec?.stdin).toBe(true);
    const input = runner.stdin.get(session.containerId as string);
    expect(JSON.parse(input?.text ?? '')).toEqual({ type: 'user', message: { role: 'user', content: [{ type: 'text', text: 'Be careful.\n\nWork on this GitHub issue: https://github.com/acme/web/issues/5' }] } });
    expect(spec?.labels['dev.cldpd.issue']).toBe('https://github.com/acme/web/issues/5');
    expect(spec?.mounts.map((m) => m.target)).toEqual(['/home/agent/.claude', '/work']);
    expect(spec?.mounts.every((m) => m.source.startsWith(`cldpd-${issueVolumeKey('web', { owner: 'acme', repo: 'web', number: 5 })}-`) && m.source.startsWith('cldpd-web-acme.web-5-'))).toBe(true);
    const record = await store.load(session.id);
    expect(record).toMatchObject({ pod: 'web', imageId: 'sha256:img', claudeSessionId: 'claude-9', runs: 1, last: { exitCode: 0 } });
  });

  it('runs two sessions of one pod side by side', async () => {
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true }, { chunks: [], exitCode: 0, hold: true });
    const a = await dispatcher.start('web', { prompt: 'a' });
    const b = await dispatcher.start('web', { prompt: 'b' });
    const events = [drain(a), drain(b)];
    while (!a.containerId || !b.containerId) await new Promise((r) => setTimeout(r, 5));
    expect(a.id).not.toBe(b.id);
    expect((await inventory.containers()).map((c) => c.sessionId).sort()).toEqual([a.id, b.id].sort());
    await Promise.all([dispatcher.stop(a.id), dispatcher.stop(b.id)]);
    await Promise.all(events);
  });

  it.each([
    ['../evil', { prompt: 'x' }, 'InvalidPodName'],
    ['ghost', { prompt: 'x' }, 'PodNotFound'],
    ['web', {}, 'InvalidInput'],
    ['web', { issueUrl: 'not a url' }, 'InvalidInput'],
  ])('refuses %j %j with %s before creating anything', async (pod, input, code) => {
    await expect(dispatcher.start(pod, input)).rejects.toMatchObject({ code });
    expect(runner.calls).toEqual([]);
  });
});

describe('Dispatcher.resume', () => {
  it('execs the resume command in the running container when the pod takes prompts in argv', async () => {
    await writePod(pods.podsDir, 'argv', { 'pod.json': { command: ['agent', '{prompt}'], resumeCommand: ['agent', '--resume', '{claudeSessionId}', '{prompt}'] } });
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-1"}\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('argv', { prompt: 'go' });
    const firstEvents = drain(first);
    while (!(await store.load(first.id)).claudeSessionId) await new Promise((r) => setTimeout(r, 5));

    runner.scripts.push({ chunks: [out('resumed\n')], exitCode: 0 });
    const second = await dispatcher.resume(first.id, 'and the docs');
    const events = await drain(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: true, run: 2, containerId: first.containerId });
    const exec = runner.calls.find((c) => c.method === 'exec');
    expect(exec?.args[1]).toEqual(['agent', '--resume', 'claude-1', 'and the docs']);
    expect(runSpecs()).toHaveLength(1);
    await dispatcher.stop(first.id);
    await firstEvents;
  });

  it('never starts a second agent on a running stream-json session: SessionBusy, and nothing counted', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-1"}\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('web', { prompt: 'go' });
    const firstEvents = drain(first);
    while (!(await store.load(first.id)).claudeSessionId) await new Promise((r) => setTimeout(r, 5));
    await expect(dispatcher.resume(first.id, 'more')).rejects.toMatchObject({ code: 'SessionBusy', message: expect.stringContaining('still running') });
    expect(runner.methods()).not.toContain('exec');
    expect((await store.load(first.id)).runs).toBe(1);
    await dispatcher.stop(first.id);
    await firstEvents;
  });

  it('an agent that takes no input while it runs: the prompt is its argument after "--", its state persisted, and no second process joins its conversation', async () => {
    await writePod(pods.podsDir, 'cx', { Dockerfile: 'FROM scratch\n', 'pod.json': { agent: 'codex', workdir: '/work' } });
    runner.scripts.push({ chunks: [out('{"type":"thread.started","thread_id":"t-1"}\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('cx', { prompt: '--help me' });
    const firstEvents = drain(first);
    while (runSpecs().length === 0) await new Promise((r) => setTimeout(r, 5));
    const [spec] = runSpecs();
    expect(spec?.cmd.slice(0, 2)).toEqual(['codex', 'exec']);
    // After "--": a prompt that looks like an option is still the prompt.
    expect(spec?.cmd.slice(-2)).toEqual(['--', '--help me']);
    expect(spec?.stdin).toBe(false);
    expect(spec?.mounts.map((m) => m.target)).toEqual(['/home/agent/.codex', '/work']);
    while (!(await runner.list({ 'dev.cldpd.session': first.id })).some((c) => c.state === 'running')) await new Promise((r) => setTimeout(r, 5));
    expect(await dispatcher.isBusy(first.id)).toBe(true);
    await expect(dispatcher.resume(first.id, 'more')).rejects.toMatchObject({ code: 'SessionBusy', message: expect.stringContaining('Codex CLI takes no instructions while it runs') });
    expect(runner.methods()).not.toContain('exec');
    expect((await store.load(first.id)).runs).toBe(1);
    await dispatcher.stop(first.id);
    await firstEvents;
    expect(await dispatcher.isBusy(first.id)).toBe(false);
  });

  it('gives a resume its own cost and turns, and keeps the session totals', async () => {
    const result = (cost: number, turns: number) => out(`${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'ok', total_cost_usd: cost, num_turns: turns, session_id: 'claude-3' })}\n`);
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-3"}\n'), result(0.5, 4)], exitCode: 0 });
    const first = await dispatcher.start('web', { prompt: 'go' });
    await drain(first);
    expect(first.agent).toMatchObject({ runCostUsd: 0.5, sessionCostUsd: 0.5, runTurns: 4, sessionTurns: 4 });
    // Claude Code's total_cost_usd on a resume is the whole Claude session's; num_turns is the process's.
    runner.scripts.push({ chunks: [result(0.75, 2)], exitCode: 0 });
    const second = await dispatcher.resume(first.id, 'more');
    await drain(second);
    expect(second.agent).toMatchObject({ runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 });
    expect(await store.load(first.id)).toMatchObject({ costUsd: 0.75, turns: 6, last: { costUsd: 0.25, turns: 2 } });
    // A CLI that could not restore the earlier total (its last process was killed) reports
    // this process's cost alone: it is added, never subtracted.
    runner.scripts.push({ chunks: [result(0.1, 1)], exitCode: 0 });
    const third = await dispatcher.resume(first.id, 'again');
    await drain(third);
    expect(third.agent.runCostUsd).toBeCloseTo(0.1, 10);
    expect(third.agent.sessionCostUsd).toBeCloseTo(0.85, 10);
  });

  it('starts a new container from the same image and volumes when the first has exited', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-2"}\n')], exitCode: 0 });
    const first = await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/8' });
    await drain(first);
    const second = await dispatcher.resume(first.id, 'continue');
    const events = await drain(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: false, run: 2 });
    const [a, b] = runSpecs();
    expect(b?.image).toBe('sha256:img');
    expect(b?.name).toBe(a?.name);
    expect(b?.mounts).toEqual(a?.mounts);
    expect(b?.cmd).toContain('claude-2');
    expect(b?.labels['dev.cldpd.run']).toBe('2');
    expect((await store.load(first.id)).runs).toBe(2);
  });

  it('removes an exited leftover container before reusing the name', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"c"}\n')], exitCode: 0 });
    const first = await dispatcher.start('web', { prompt: 'go' });
    await drain(first);
    // As if the container had not been removed (e.g. the process died before it could).
    runner.containers.set('leftover', { info: { id: 'leftover', name: `cldpd-${first.id}`, labels: { 'dev.cldpd.session': first.id }, state: 'exited', createdAt: 0 }, spec: runSpecs()[0] as ContainerSpec, stop: () => undefined });
    const second = await dispatcher.resume(first.id, 'again');
    expect((await drain(second)).at(-1)).toMatchObject({ type: 'container.exited' });
    expect(runner.calls.some((c) => c.method === 'remove' && c.args[0] === 'leftover')).toBe(true);
  });

  it('a session whose agent kept no conversation begins one: the start command, with the issue\'s start prompt and the resume\'s words', async () => {
    runner.scripts.push({ chunks: [out('no init\n')], exitCode: 1 });
    const first = await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/8' });
    await drain(first);
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-fresh"}\n')], exitCode: 0 });
    const second = await dispatcher.resume(first.id, 'more');
    await drain(second);
    const spec = runSpecs().at(-1);
    expect(spec?.cmd).toEqual([...DEFAULT_COMMAND]);
    const input = JSON.parse(runner.stdin.get(second.containerId as string)?.text ?? '') as { message: { content: Array<{ text: string }> } };
    expect(input.message.content[0]?.text).toBe('Be careful.\n\nWork on this GitHub issue: https://github.com/acme/web/issues/8\n\nmore');
    expect(await store.load(first.id)).toMatchObject({ runs: 2, claudeSessionId: 'claude-fresh' });
  });

  it('refuses to continue a session with another agent than the one it began with', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-7"}\n')], exitCode: 0 });
    const first = await dispatcher.start('web', { prompt: 'go' });
    await drain(first);
    expect(await store.load(first.id)).toMatchObject({ agent: 'claude' });
    await writePod(pods.podsDir, 'web', { 'pod.json': { agent: 'codex', workdir: '/work' } });
    await expect(dispatcher.resume(first.id, 'more')).rejects.toMatchObject({ code: 'InvalidPod', message: expect.stringContaining('was started with Claude Code, and pod "web" now runs Codex CLI') });
    expect((await store.load(first.id)).runs).toBe(1);
  });

  it('refuses an unknown session', async () => {
    await expect(dispatcher.resume('web-deadbeef', 'x')).rejects.toMatchObject({ code: 'SessionNotFound' });
    await expect(dispatcher.resume('../../etc', 'x')).rejects.toMatchObject({ code: 'SessionNotFound' });
  });
});

describe('Dispatcher.start: the image user and persisted paths', () => {
  it('refuses a root image with the default command before creating a container, saying what to change', async () => {
    runner.images.set('sha256:img', { id: 'sha256:img', user: '', env: {}, workingDir: '/', labels: {} });
    const session = await dispatcher.start('web', { prompt: 'go' });
    const events = await drain(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'InvalidPod', message: expect.stringMatching(/runs as root.*USER agent.*IS_SANDBOX/s) });
    expect(runner.methods()).not.toContain('run');
  });

  it('runs a root image when pod.json says IS_SANDBOX', async () => {
    runner.images.set('sha256:img', { id: 'sha256:img', user: 'root', env: {}, workingDir: '/', labels: {} });
    await writePod(pods.podsDir, 'rooted', { 'pod.json': { env: { IS_SANDBOX: '1' } } });
    const session = await dispatcher.start('rooted', { prompt: 'go' });
    expect((await drain(session)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(runner.methods()).not.toContain('chownVolumes'); // root needs no owner change
  });

  it('gives the persisted volumes to the image user: new ones, and any this host has not given to that user', async () => {
    const first = await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/9' });
    await drain(first);
    const chowns = () => runner.calls.filter((c) => c.method === 'chownVolumes');
    expect(chowns()).toHaveLength(1);
    expect(chowns()[0]?.args.slice(0, 2)).toEqual(['sha256:img', 'agent']);
    expect((chowns()[0]?.args[2] as Array<{ path: string }>).map((v) => v.path)).toEqual(['/home/agent/.claude', '/work']);
    // A second session of the issue finds them given to "agent" already: no helper container.
    await drain(await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/9' }));
    expect(chowns()).toHaveLength(1);
    // The pod's image changes its user: the volumes are given to the new one.
    runner.images.set('sha256:img', { id: 'sha256:img', user: 'dev', env: { HOME: '/home/dev' }, workingDir: '/', labels: {} });
    await drain(await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/9' }));
    expect(chowns()).toHaveLength(2);
    expect(chowns()[1]?.args[1]).toBe('dev');
  });

  it('puts right volumes that exist but that this host never recorded giving to the user', async () => {
    await drain(await dispatcher.start('web', { issueUrl: 'https://github.com/acme/web/issues/10' }));
    const chowns = () => runner.calls.filter((c) => c.method === 'chownVolumes').length;
    expect(chowns()).toBe(1);
    // The same Docker volumes, but no record of their owner (a start that died between
    // creating them and giving them away, or volumes made before this check).
    const forgetful = new Dispatcher({ runner, pods, store: new SessionStore(join(await tempDir(), 'sessions')), hostId: 'host-a', hostEnv: {} });
    await drain(await forgetful.start('web', { issueUrl: 'https://github.com/acme/web/issues/10' }));
    expect(chowns()).toBe(2);
  });

  it('fails at once, naming the paths and the fix, when the owner cannot be set', async () => {
    runner.chownError = new Error('exec: "chown": executable file not found in $PATH');
    const session = await dispatcher.start('web', { prompt: 'go' });
    const events = await drain(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'InvalidPod', message: expect.stringMatching(/\/home\/agent\/\.claude.*cannot write.*chown.*Dockerfile/s) });
    expect(runner.methods()).not.toContain('run');
  });
});

describe('Dispatcher.stop', () => {
  it('stops the running container and is idempotent', async () => {
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true });
    const session = await dispatcher.start('web', { prompt: 'go' });
    const events = drain(session);
    while (!session.containerId) await new Promise((r) => setTimeout(r, 5));
    await dispatcher.stop(session.id);
    await dispatcher.stop(session.id);
    expect((await events).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 143 });
    expect(runner.calls.filter((c) => c.method === 'stop')).toHaveLength(1);
  });

  it('refuses an unknown session', async () => {
    await expect(dispatcher.stop('web-00000000')).rejects.toMatchObject({ code: 'SessionNotFound' });
  });
});

describe('Dispatcher.recover', () => {
  it('re-attaches to the container of an interrupted run, skipping the lines already logged', async () => {
    runner.scripts.push({ chunks: [out('one\ntwo\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-0badc0de' });
    expect(first.id).toBe('web-0badc0de');
    const events: SessionEvent[] = [];
    const reading = (async () => {
      for await (const e of first.events()) {
        events.push(e);
        if (e.type === 'output' && e.line === 'two') return; // the worker "dies" here: stops reading
      }
    })();
    await reading;
    const containerId = first.containerId as string;

    // Docker's log replays everything since the start; the new process continues from there.
    runner.attachScripts.set(containerId, { chunks: [out('one\ntwo\nthree\n')], exitCode: 7 });
    const recovery = await dispatcher.recover('web-0badc0de');
    expect(recovery.kind).toBe('attached');
    if (recovery.kind !== 'attached') return;
    const rest = await drain(recovery.session);
    expect(rest.map((e) => (e.type === 'output' ? e.line : e.type))).toEqual(['three', 'container.exited']);
    expect(rest.at(-1)).toMatchObject({ exitCode: 7 });
    expect(runner.containers.has(containerId)).toBe(false);
  });

  it('says "none" for a run that never reached its container, and "finished" for one that ended', async () => {
    const now = Date.now();
    await store.save({ id: 'web-00000001', pod: 'web', image: 'i', imageId: '', hostId: 'host-a', containerName: 'cldpd-web-00000001', createdAt: now, updatedAt: now, runs: 1, volumes: [] });
    expect((await dispatcher.recover('web-00000001')).kind).toBe('none');

    runner.scripts.push({ chunks: [out('x\n')], exitCode: 4 });
    const done = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000002' });
    await drain(done);
    expect(await dispatcher.recover('web-00000002')).toMatchObject({ kind: 'finished', terminal: { type: 'container.exited', exitCode: 4 } });
  });

  it('closes a run whose container vanished with an error in the log', async () => {
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true });
    const s = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000003' });
    const it = s.events()[Symbol.asyncIterator]();
    while ((await it.next()).value?.type !== 'container.started');
    runner.containers.clear();
    const recovery = await dispatcher.recover('web-00000003');
    expect(recovery).toMatchObject({ kind: 'finished', terminal: { type: 'error', message: expect.stringContaining('disappeared') } });
  });

  const init = out('{"type":"system","subtype":"init","session_id":"claude-5"}\n');
  const answer = (text: string, cost: number, turns: number) =>
    out(`${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: text, total_cost_usd: cost, num_turns: turns, session_id: 'claude-5' })}\n`);
  /** Fails the test rather than hanging when a run never ends. */
  const drainWithin = (session: { events(): AsyncIterable<SessionEvent> }, ms = 3000) =>
    Promise.race([drain(session), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no terminal event within ${ms} ms`)), ms))]);

  it('recovered summary: a finished run gives its answer, cost and turns from the log, this run\'s alone', async () => {
    runner.scripts.push({ chunks: [init, answer('First answer.', 0.5, 4), out('plain line\n')], exitCode: 0 });
    const first = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000005' });
    await drain(first);
    expect(await dispatcher.recover('web-00000005')).toMatchObject({
      kind: 'finished',
      agent: { claudeSessionId: 'claude-5', result: { text: 'First answer.' }, runCostUsd: 0.5, sessionCostUsd: 0.5, runTurns: 4, sessionTurns: 4 },
      lastLines: ['plain line'],
    });
    // The record already counts the run once its end is recorded: recovering it counts nothing twice.
    runner.scripts.push({ chunks: [answer('Second answer.', 0.75, 2)], exitCode: 0 });
    await drain(await dispatcher.resume('web-00000005', 'more'));
    const recovery = await dispatcher.recover('web-00000005');
    expect(recovery).toMatchObject({ kind: 'finished', agent: { result: { text: 'Second answer.' }, runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 } });
    expect(await store.load('web-00000005')).toMatchObject({ costUsd: 0.75, turns: 6, last: { costUsd: 0.25, turns: 2 } });
  });

  it('recovered summary: a run whose end was logged but never recorded is recorded by recover, with its cost', async () => {
    runner.scripts.push({ chunks: [init, answer('First answer.', 0.5, 4)], exitCode: 0 });
    await drain(await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000006' }));
    // Run 2 ended in the log, but its process went away before recording it.
    await store.update('web-00000006', { runs: 2 });
    const { SessionLog } = await import('../../src/core/session-log.js');
    const { parseStreamJsonLine } = await import('../../src/core/stream-json.js');
    const line = JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'Second answer.', total_cost_usd: 0.75, num_turns: 2, session_id: 'claude-5' });
    const log = await SessionLog.open(store.logPath('web-00000006'));
    await log.append([
      { type: 'container.started', at: 10, containerId: 'gone', containerName: 'cldpd-web-00000006', exec: false, run: 2 },
      { type: 'output', at: 11, stream: 'stdout', line, agent: parseStreamJsonLine(line) },
      { type: 'container.exited', at: 12, exitCode: 0, reason: 'exited', durationMs: 2 },
    ]);
    await log.close();
    expect(await dispatcher.recover('web-00000006')).toMatchObject({ kind: 'finished', agent: { result: { text: 'Second answer.' }, runCostUsd: 0.25, sessionCostUsd: 0.75, runTurns: 2, sessionTurns: 6 } });
    expect(await store.load('web-00000006')).toMatchObject({ costUsd: 0.75, turns: 6, last: { exitCode: 0, endedAt: 12, costUsd: 0.25, turns: 2 } });
  });

  it('recovered summary: a re-attached run whose result was logged before the restart ends with it', async () => {
    const chunks = [init, answer('All green.', 0.5, 3)];
    runner.scripts.push({ chunks, exitCode: 0, hold: true });
    const first = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000007' });
    for await (const e of first.events()) if (e.type === 'output' && e.agent?.some((a) => a.kind === 'result')) break; // the worker "dies"
    runner.attachScripts.set(first.containerId as string, { chunks: [...chunks, out('bye\n')], exitCode: 0 });
    const recovery = await dispatcher.recover('web-00000007');
    if (recovery.kind !== 'attached') throw new Error(`expected a re-attached run, got ${recovery.kind}`);
    const rest = await drainWithin(recovery.session);
    expect(rest.map((e) => (e.type === 'output' ? e.line : e.type))).toEqual(['bye', 'container.exited']);
    expect(recovery.session.agent).toMatchObject({ claudeSessionId: 'claude-5', result: { text: 'All green.' }, runCostUsd: 0.5, sessionCostUsd: 0.5, runTurns: 3, sessionTurns: 3 });
    expect(await store.load('web-00000007')).toMatchObject({ costUsd: 0.5, turns: 3, last: { exitCode: 0, costUsd: 0.5, turns: 3 } });
  });

  it('stop before launch: a stop right after recover, while the re-attach is in flight, stops the container', async () => {
    runner.scripts.push({ chunks: [out('one\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('web', { prompt: 'go' }, { sessionId: 'web-00000008' });
    for await (const e of first.events()) if (e.type === 'output') break; // the worker "dies"
    const containerId = first.containerId as string;
    runner.attachScripts.set(containerId, { chunks: [out('one\n')], exitCode: 0, hold: true });
    runner.launchDelayMs = 100;
    const recovery = await dispatcher.recover('web-00000008');
    if (recovery.kind !== 'attached') throw new Error(`expected a re-attached run, got ${recovery.kind}`);
    const events = drainWithin(recovery.session);
    await recovery.session.stop(); // as the worker re-applies a stop that came before the restart
    expect(runner.calls.filter((c) => c.method === 'stop').map((c) => c.args[0])).toEqual([containerId]);
    expect((await events).at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped', exitCode: 143 });
  });

  it('refuses a session id that does not belong to the pod', async () => {
    await expect(dispatcher.start('web', { prompt: 'go' }, { sessionId: 'api-00000000' })).rejects.toMatchObject({ code: 'InvalidInput' });
  });
});

describe('Dispatcher.resume of a session whose volumes were removed', () => {
  const issue = 'https://github.com/acme/web/issues/21';
  const within = (session: { events(): AsyncIterable<SessionEvent> }, ms = 3000) =>
    Promise.race([drain(session), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no terminal event within ${ms} ms`)), ms))]);

  async function finished(input: { issueUrl?: string; prompt?: string }): Promise<string> {
    const session = await dispatcher.start('web', input);
    await within(session);
    return session.id;
  }

  it('resume brings a removed volume back labelled and given to the image user, not as Docker would make it', async () => {
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-3"}\n')], exitCode: 0 });
    const id = await finished({ issueUrl: issue });
    await inventory.removeVolumes(id);
    const chowns = () => runner.calls.filter((c) => c.method === 'chownVolumes').length;
    const before = chowns();

    await within(await dispatcher.resume(id, 'again'));

    const rows = await inventory.volumes();
    expect(rows.map((r) => r.path).sort()).toEqual(['/home/agent/.claude', '/work']);
    for (const r of rows) expect(r).toMatchObject({ pod: 'web', issueUrl: issue, sessionId: id });
    expect(chowns()).toBe(before + 1);
  });
});

describe('setup steps', () => {
  it('hold the agent until each step has run, their output marked with the step, then release it', async () => {
    await writePod(pods.podsDir, 'steps', { 'pod.json': { workdir: '/work', setup: [['npm', 'ci'], { run: ['apt-get', 'install', 'jq'], user: 'root' }], command: ['agent', '{prompt}'] } });
    runner.scripts.push({ chunks: [out('agent says hi\n')], exitCode: 0 }, { chunks: [out('added 3 packages\n')], exitCode: 0 }, { chunks: [out('jq installed\n')], exitCode: 0 });
    const events = await drain(await dispatcher.start('steps', { prompt: 'go' }));
    const [spec] = runSpecs();
    expect(spec?.cmd.slice(0, 2)).toEqual(['sh', '-c']);
    expect(spec?.cmd.slice(3)).toEqual(['cldpd-hold', 'agent', 'go']);
    const execs = runner.calls.filter((c) => c.method === 'exec').map((c) => [c.args[1], c.args[2]]);
    expect(execs).toEqual([[['npm', 'ci'], {}], [['apt-get', 'install', 'jq'], { user: '0' }]]);
    expect(events.map((e) => (e.type === 'output' ? `${e.step ?? '-'} ${e.line}` : e.type))).toEqual([
      'build.started', 'build.output', 'build.output', 'build.completed', 'container.started',
      'setup.step', '1 added 3 packages', 'setup.step', '2 jq installed', '- agent says hi', 'container.exited',
    ]);
    const released = runner.calls.findIndex((c) => c.method === 'writeFiles' && (c.args[1] as string[]).includes('/run/cldpd/release'));
    expect(released).toBeGreaterThan(runner.calls.map((c) => c.method).lastIndexOf('exec'));
  });

  it('a failing step ends the run with SetupFailed and removes the container; the agent is never released', async () => {
    await writePod(pods.podsDir, 'steps', { 'pod.json': { workdir: '/work', setup: [['make', 'deps']], command: ['agent', '{prompt}'] } });
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true }, { chunks: [out('make: *** [deps] Error 2\n')], exitCode: 2 });
    const events = await drain(await dispatcher.start('steps', { prompt: 'go' }));
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'SetupFailed', message: expect.stringContaining('Setup step 1 of 1 (make deps) exited with code 2') });
    expect(runner.calls.some((c) => c.method === 'writeFiles')).toBe(false);
    expect(await runner.list({})).toEqual([]);
  });

  it('recover: a container whose setup was under way when its worker died is ended, not followed forever', async () => {
    await writePod(pods.podsDir, 'steps', { 'pod.json': { workdir: '/work', setup: [['sleep', '60']], command: ['agent', '{prompt}'] } });
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true }, { chunks: [], exitCode: 0, hold: true });
    const session = await dispatcher.start('steps', { prompt: 'go' });
    const seen: SessionEvent[] = [];
    const reading = (async () => {
      for await (const e of session.events()) seen.push(e);
    })();
    await until(() => seen.some((e) => e.type === 'setup.step'));
    // The worker dies here: a new dispatcher of the same host finds the held container.
    const again = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {} });
    const recovery = await again.recover(session.id);
    expect(recovery).toMatchObject({ kind: 'finished', terminal: { type: 'error', code: 'SetupFailed', message: expect.stringContaining('went away while the setup steps') } });
    expect((await runner.list({})).filter((c) => c.state === 'running')).toEqual([]);
    void session.stop().catch(() => undefined);
    await reading;
  });
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!check()) throw new Error('timed out waiting');
}

describe('GitHub access', () => {
  const tokens = () => {
    let n = 0;
    return {
      fullName: 'acme/web',
      repository: async () => ({ fullName: 'acme/web', cloneUrl: 'https://github.com/acme/web.git', defaultBranch: 'main' }),
      mint: async () => ({ token: `ghs_fake${++n}`, expiresAt: Date.now() + 3600_000 }),
    };
  };

  it('a token cut in two by the line limit is still hidden', async () => {
    await writePod(pods.podsDir, 'gh', { 'pod.json': { workdir: '/work', github: { contents: 'write' }, command: ['agent', '{prompt}'] } });
    const token = 'ghs_fake1';
    for (const before of [2 ** 20 - 4, 2 ** 20 - 1, 2 ** 20]) {
      runner.scripts.push({ chunks: [out(`${'x'.repeat(before)}${token} and again ${token}\n`)], exitCode: 0 });
      const events = await drain(await dispatcher.start('gh', { prompt: 'go', issueUrl: 'https://github.com/acme/web/issues/3' }, { github: tokens() }));
      const text = events.flatMap((e) => (e.type === 'output' ? [e.line] : [])).join('');
      expect(text.includes('ghs_fake'), `cut after ${before}`).toBe(false);
      expect(text).toBe(`${'x'.repeat(before)}[redacted] and again [redacted]`);
      expect(events.filter((e) => e.type === 'output').length).toBeGreaterThanOrEqual(2);
    }
  });

  it('a run re-attached after its worker went away gets a new token, written into the container and hidden from what it prints', async () => {
    await writePod(pods.podsDir, 'gh', { 'pod.json': { workdir: '/work', github: { contents: 'write' }, command: ['agent', '{prompt}'] } });
    runner.scripts.push({ chunks: [out('started\n')], exitCode: 0, hold: true });
    const session = await dispatcher.start('gh', { prompt: 'go', issueUrl: 'https://github.com/acme/web/issues/3' }, { github: tokens() });
    const seen: SessionEvent[] = [];
    const reading = (async () => {
      for await (const e of session.events()) seen.push(e);
    })();
    await until(() => seen.some((e) => e.type === 'output'));
    const containerId = session.containerId as string;
    expect(runner.written.get(containerId)?.get('/run/cldpd/github-token')).toBe('ghs_fake1\n');
    // The worker is gone; another picks the run up. Docker replays the output, then the agent prints its token.
    const source = tokens();
    await source.mint(); // this source's next token is ghs_fake2
    runner.attachScripts.set(containerId, { chunks: [out('started\n'), out('my token is ghs_fake2\n'), out('and $GH_TOKEN is ghs_fake1\n')], exitCode: 0 });
    const again = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {} });
    const recovery = await again.recover(session.id, { github: source });
    expect(recovery.kind).toBe('attached');
    if (recovery.kind !== 'attached') return;
    const rest = await drain(recovery.session);
    expect(runner.written.get(containerId)?.get('/run/cldpd/github-token')).toBe('ghs_fake2\n');
    expect(rest.filter((e) => e.type === 'output').map((e) => (e.type === 'output' ? e.line : ''))).toEqual(['my token is [redacted]', 'and $GH_TOKEN is [redacted]']);
    void reading; // the first process's view of the container: it never hears of it again, as when it died
  });
});

describe('Dispatcher: a run\'s log bounded by maxLogBytesPerRun', () => {
  it('re-attaching to a run whose log was cut skips exactly the lines already shown, and keeps the log bounded', async () => {
    const bounded = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: {}, maxLogBytesPerRun: 2048 });
    const numbered = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => `line ${from + i}\n`).join('');
    runner.scripts.push({ chunks: [out(numbered(1, 300))], exitCode: 0, hold: true });
    const first = await bounded.start('web', { prompt: 'go' }, { sessionId: 'web-0c0ffee0' });
    const seen: string[] = [];
    for await (const e of first.events()) {
      if (e.type === 'output') seen.push(e.line);
      if (e.type === 'output' && e.line === 'line 300') break; // the worker "dies" here
    }
    expect(seen).toHaveLength(300);

    runner.attachScripts.set(first.containerId as string, { chunks: [out(numbered(1, 320))], exitCode: 0 });
    const recovery = await bounded.recover('web-0c0ffee0');
    expect(recovery.kind).toBe('attached');
    if (recovery.kind !== 'attached') return;
    const rest = (await drain(recovery.session)).flatMap((e) => (e.type === 'output' ? [e.line] : []));
    expect(rest).toEqual(Array.from({ length: 20 }, (_, i) => `line ${301 + i}`));
    const log = await readFile(store.logPath('web-0c0ffee0'), 'utf8');
    expect(log.split('\n').filter((l) => l.includes('"log.cut"'))).toHaveLength(1);
    expect(Buffer.byteLength(log)).toBeLessThan(2048 + 1024);
  });
});

describe('egress: a gated pod\'s runs go out through their own gateway', () => {
  const issueUrl = 'https://github.com/acme/web/issues/5';
  const gateways = () => runner.calls.filter((c) => c.method === 'openGateway').map((c) => c.args[0] as import('../../src/core/index.js').GatewaySpec);

  it('a pod with no egress key: a gateway for the run, the container on its network only, with the proxy variables; the gateway goes after the container', async () => {
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    const session = await dispatcher.start('web', { issueUrl });
    await drain(session);
    const [gateway] = gateways();
    const [spec] = runSpecs();
    expect(gateway?.name).toBe(`cldpd-${session.id}`);
    expect(gateway?.labels).toMatchObject({ 'dev.cldpd.gateway': session.id, 'dev.cldpd.gateway-host': 'host-a' });
    expect(gateway?.labels['dev.cldpd.session']).toBeUndefined();
    expect(gateway?.outside).toBe('cldpd');
    expect(gateway?.config.allow.layers).toEqual([[]]);
    expect(gateway?.config.allow.base.map((r) => r.host)).toContain('api.github.com');
    expect(spec?.network).toBe(`cldpd-${session.id}-egress`);
    expect(spec?.sysctls).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '1' });
    // Its name server is the gateway, which answers no lookup: nothing for Docker's DNS to forward.
    expect(spec?.dns).toEqual(['10.213.0.2']);
    expect(spec?.env).toMatchObject({ HTTPS_PROXY: 'http://10.213.0.2:3128', https_proxy: 'http://10.213.0.2:3128', SECRET: 'v' });
    const order = runner.methods().filter((m) => ['closeGateway', 'openGateway', 'run', 'remove'].includes(m));
    expect(order).toEqual(['closeGateway', 'openGateway', 'run', 'remove', 'closeGateway']);
    expect(runner.gateways.size).toBe(0);
  });

  it('the model key stays with the gateway: the container gets a per-run endpoint, and whatever prints the secret shows it hidden', async () => {
    await writePod(pods.podsDir, 'keyed', { 'pod.json': { env: { ANTHROPIC_API_KEY: 'sk-ant-abcdefghijkl', ANTHROPIC_BASE_URL: 'http://fake.test:9000' } } });
    const later: ReturnType<typeof out>[] = [];
    let print: () => void = () => undefined;
    runner.scripts.push({ chunks: [], exitCode: 0, then: { after: new Promise<void>((resolve) => (print = resolve)), chunks: later } });
    const session = await dispatcher.start('keyed', { prompt: 'go' });
    const events = drain(session);
    while (!session.containerId) await new Promise((r) => setTimeout(r, 5));
    const [gateway] = gateways();
    const [spec] = runSpecs();
    const secret = (spec?.env.ANTHROPIC_BASE_URL ?? '').split('/').pop() ?? '';
    expect(secret).toMatch(/^[0-9a-f]{48}$/);
    expect(gateway?.config.model).toMatchObject({ upstream: 'http://fake.test:9000', setHeaders: { 'x-api-key': 'sk-ant-abcdefghijkl' } });
    expect(JSON.stringify(spec?.env)).not.toContain('sk-ant-abcdefghijkl');
    later.push(out(`my endpoint is ${spec?.env.ANTHROPIC_BASE_URL}\n`));
    print();
    const all = await events;
    expect(JSON.stringify(all)).not.toContain(secret);
  });

  it('an agent that reads its endpoint from its options only: {modelUrl} is the gateway\'s in a gated run, the pod\'s own in an open one', async () => {
    const command = ['codex', '-c', 'openai_base_url={modelUrl}', 'exec', '--', '{prompt}'];
    await writePod(pods.podsDir, 'cx', { 'pod.json': { agent: 'codex', command, env: { CODEX_API_KEY: 'sk-openai-abcdefghijkl', OPENAI_BASE_URL: 'http://fake.test:9000/v1' } } });
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    await drain(await dispatcher.start('cx', { prompt: 'go' }));
    const [gateway] = gateways();
    const [spec] = runSpecs();
    const url = (spec?.cmd[2] ?? '').replace('openai_base_url=', '');
    expect(url).toMatch(/^http:\/\/[\d.]+:3128\/[0-9a-f]{48}$/);
    expect(spec?.env.OPENAI_BASE_URL).toBe(url);
    expect(spec?.env.CODEX_API_KEY).toBe('held-by-the-cldpd-gateway');
    expect(gateway?.config.model).toMatchObject({ upstream: 'http://fake.test:9000/v1', setHeaders: { authorization: 'Bearer sk-openai-abcdefghijkl' } });
    expect(JSON.stringify(spec)).not.toContain('sk-openai-abcdefghijkl');

    await writePod(pods.podsDir, 'cx-open', { 'pod.json': { agent: 'codex', command, egress: 'open', env: { CODEX_API_KEY: 'k', OPENAI_BASE_URL: 'http://fake.test:9000/v1' } } });
    await writePod(pods.podsDir, 'cx-default', { 'pod.json': { agent: 'codex', command, egress: 'open' } });
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 }, { chunks: [out('hi\n')], exitCode: 0 });
    await drain(await dispatcher.start('cx-open', { prompt: 'go' }));
    await drain(await dispatcher.start('cx-default', { prompt: 'go' }));
    expect(runSpecs().slice(1).map((s) => s.cmd[2])).toEqual(['openai_base_url=http://fake.test:9000/v1', 'openai_base_url=https://api.openai.com/v1']);
  });

  it('the gateway\'s refusals become egress.blocked events before the run\'s end: counted per host, the total last', async () => {
    runner.gatewayLog = [
      '{"event":"listening","port":3128}',
      ...Array.from({ length: 13 }, () => '{"event":"blocked","host":"evil.test","port":443,"via":"connect"}'),
      '{"event":"blocked","host":"pypi.org","port":80,"via":"http"}',
      'not a notice',
    ];
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    const all = await drain(await dispatcher.start('web', { prompt: 'go' }));
    const blocked = all.filter((e) => e.type === 'egress.blocked');
    expect(blocked.filter((e) => e.host === 'evil.test').map((e) => e.count)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 13]);
    expect(blocked.filter((e) => e.host === 'pypi.org')).toEqual([expect.objectContaining({ port: 80, via: 'http', count: 1 })]);
    expect(all.at(-1)?.type).toBe('container.exited');
  });

  it('an open pod runs on its network as before: no gateway', async () => {
    await writePod(pods.podsDir, 'open', { 'pod.json': { egress: 'open', env: { ANTHROPIC_API_KEY: 'sk-ant-open-key' } } });
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    await drain(await dispatcher.start('open', { prompt: 'go' }));
    expect(gateways()).toEqual([]);
    expect(runSpecs()[0]).toMatchObject({ network: 'cldpd', env: { ANTHROPIC_API_KEY: 'sk-ant-open-key' } });
  });

  it('the repository narrows: its list is a second layer; a bad entry refuses the run naming the file', async () => {
    await writePod(pods.podsDir, 'listed', { 'pod.json': { egress: ['*.npmjs.org', 'pypi.org'] } });
    runner.scripts.push({ chunks: [out('hi\n')], exitCode: 0 });
    const narrowed = await dispatcher.start('listed', { prompt: 'go' }, { egress: ['registry.npmjs.org'] });
    await drain(narrowed);
    expect(gateways()[0]?.config.allow.layers.map((l) => l.map((r) => r.host))).toEqual([['npmjs.org', 'pypi.org'], ['registry.npmjs.org']]);
    // Kept with the session, for a person's terminal on it (cldpd attach).
    expect((await store.load(narrowed.id)).egressNarrowed).toEqual(['registry.npmjs.org']);
    const refused = await drain(await dispatcher.start('listed', { prompt: 'go' }, { egress: ['*.org'] }));
    expect(refused.at(-1)).toMatchObject({ type: 'error', message: expect.stringContaining('.github/cldpd.yml egress[0]') });
  });

  it('a resume run inside the gated container gets no key either: the same endpoint through its gateway', async () => {
    await writePod(pods.podsDir, 'argv-keyed', { 'pod.json': { command: ['agent', '{prompt}'], resumeCommand: ['agent', '--resume', '{claudeSessionId}', '{prompt}'], env: { ANTHROPIC_API_KEY: 'sk-ant-exec-secret-key', ANTHROPIC_BASE_URL: 'http://fake.test:9000' } } });
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-1"}\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('argv-keyed', { prompt: 'go' });
    const firstEvents = drain(first);
    while (!(await store.load(first.id)).claudeSessionId) await new Promise((r) => setTimeout(r, 5));
    runner.scripts.push({ chunks: [out('resumed\n')], exitCode: 0 });
    await drain(await dispatcher.resume(first.id, 'and the docs'));
    const exec = runner.calls.find((c) => c.method === 'exec');
    const env = (exec?.args[2] as { env: Record<string, string> }).env;
    expect(JSON.stringify(env)).not.toContain('sk-ant-exec-secret-key');
    expect(env.ANTHROPIC_BASE_URL).toBe(runSpecs()[0]?.env.ANTHROPIC_BASE_URL);
    expect(env.HTTPS_PROXY).toBe('http://10.213.0.2:3128');
    await dispatcher.stop(first.id);
    await firstEvents;
  });

  it('an open pod a repository narrows is gated: no key in its container or a resume run inside it, and no capability that routes around the gateway', async () => {
    await writePod(pods.podsDir, 'open-argv', { 'pod.json': { egress: 'open', capAdd: ['NET_ADMIN', 'SYS_PTRACE'], command: ['agent', '{prompt}'], resumeCommand: ['agent', '--resume', '{claudeSessionId}', '{prompt}'], env: { ANTHROPIC_API_KEY: 'sk-ant-narrowed-open-key' } } });
    runner.scripts.push({ chunks: [out('{"type":"system","subtype":"init","session_id":"claude-1"}\n')], exitCode: 0, hold: true });
    const first = await dispatcher.start('open-argv', { prompt: 'go' }, { egress: ['pypi.org'] });
    const firstEvents = drain(first);
    while (!(await store.load(first.id)).claudeSessionId) await new Promise((r) => setTimeout(r, 5));
    const [spec] = runSpecs();
    expect(spec?.network).toBe(`cldpd-${first.id}-egress`);
    expect(spec?.capAdd).toEqual(['SYS_PTRACE']);
    expect(JSON.stringify(spec?.env)).not.toContain('sk-ant-narrowed-open-key');
    runner.scripts.push({ chunks: [out('resumed\n')], exitCode: 0 });
    await drain(await dispatcher.resume(first.id, 'more', { egress: ['pypi.org'] }));
    const exec = runner.calls.find((c) => c.method === 'exec');
    expect(JSON.stringify(exec?.args[2])).not.toContain('sk-ant-narrowed-open-key');
    await dispatcher.stop(first.id);
    await firstEvents;
  });

  it('a gateway that cannot start ends the run with its reason, and no container is made', async () => {
    runner.openGateway = async () => {
      throw new (await import('../../src/core/index.js')).CldpdError('ContainerFailed', 'no subnet left for egress networks');
    };
    const all = await drain(await dispatcher.start('web', { prompt: 'go' }));
    expect(all.at(-1)).toMatchObject({ type: 'error', code: 'ContainerFailed', message: expect.stringContaining('no subnet left') });
    expect(runSpecs()).toEqual([]);
  });
});
