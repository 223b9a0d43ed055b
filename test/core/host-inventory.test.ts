import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { Dispatcher, HostInventory, SessionStore, type ContainerSpec, type PodSource, type SessionEvent } from '../../src/core/index.js';
import { FakeRunner } from '../fakes/fake-runner.js';
import { dispatchWorld, drain } from '../fakes/dispatch-world.js';
import { tempDir } from '../fakes/pods.js';

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

describe('HostInventory.volumes and removeVolumes', () => {
  const issue = 'https://github.com/acme/web/issues/21';
  const within = (session: { events(): AsyncIterable<SessionEvent> }, ms = 3000) =>
    Promise.race([drain(session), new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no terminal event within ${ms} ms`)), ms))]);

  /** Starts a session whose container keeps running until stopped; resolves once it runs. */
  async function running(input: { issueUrl?: string; prompt?: string }): Promise<{ id: string; done: Promise<SessionEvent[]> }> {
    runner.scripts.push({ chunks: [], exitCode: 0, hold: true });
    const session = await dispatcher.start('web', input);
    const done = within(session);
    while (!session.containerId) await new Promise((r) => setTimeout(r, 5));
    return { id: session.id, done };
  }

  async function finished(input: { issueUrl?: string; prompt?: string }): Promise<string> {
    const session = await dispatcher.start('web', input);
    await within(session);
    return session.id;
  }


  it('lists this host\'s persisted volumes: whose, which sessions used them, path, size, age, and whether a running container mounts them', async () => {
    const first = await finished({ issueUrl: issue });
    const live = await running({ issueUrl: issue });
    const alone = await finished({ prompt: 'go' });
    const [claudeDir] = (await store.load(alone)).volumes;
    runner.volumeSizes.set(claudeDir?.volume as string, 12_345);
    // Neither another host's volume nor a foreign one is listed.
    await runner.ensureVolume('cldpd-elsewhere', { 'dev.cldpd.session': 'web-99999999', 'dev.cldpd.pod': 'web', 'dev.cldpd.host': 'host-b', 'dev.cldpd.issue': '', 'dev.cldpd.path': '/work' });
    await runner.ensureVolume('cldpd-looks-like-ours', { 'dev.cldpd.host': 'host-a' });

    const rows = await inventory.volumes();

    expect(rows.map((r) => r.name).sort()).toEqual([...(await store.load(first)).volumes, ...(await store.load(alone)).volumes].map((v) => v.volume).sort());
    const shared = rows.filter((r) => r.issueUrl === issue);
    expect(shared.map((r) => r.path).sort()).toEqual(['/home/agent/.claude', '/work']);
    for (const r of shared) {
      expect(r).toMatchObject({ pod: 'web', sessionId: first, inUse: true, sizeBytes: undefined });
      expect([...r.sessions].sort()).toEqual([first, live.id].sort());
    }
    expect(rows.find((r) => r.name === claudeDir?.volume)).toMatchObject({ pod: 'web', issueUrl: undefined, sessionId: alone, sessions: [alone], path: '/home/agent/.claude', sizeBytes: 12_345, inUse: false, createdAt: expect.any(Number) });
    await dispatcher.stop(live.id);
    await live.done;
    expect((await inventory.volumes()).every((r) => !r.inUse)).toBe(true);
  });

  it('refuses every volume of a running session, then removes them once it has ended, forgetting their owner', async () => {
    const live = await running({ prompt: 'go' });
    const names = (await store.load(live.id)).volumes.map((v) => v.volume);

    const refused = await inventory.removeVolumes(live.id);

    expect(refused.removed).toEqual([]);
    expect(refused.refused.map((r) => r.name)).toEqual(names);
    for (const r of refused.refused) expect(r.reason).toBe(`Session ${live.id} is running; stop it first: cldpd stop ${live.id}`);
    expect(names.every((n) => runner.volumes.has(n))).toBe(true);

    await dispatcher.stop(live.id);
    await live.done;
    const result = await inventory.removeVolumes(live.id);

    expect(result.refused).toEqual([]);
    expect(result.removed).toEqual([
      { name: names[0], path: '/home/agent/.claude', existed: true, sharedWith: [] },
      { name: names[1], path: '/work', existed: true, sharedWith: [] },
    ]);
    expect(names.some((n) => runner.volumes.has(n))).toBe(false);
    expect(await store.volumeOwner(names[0] as string)).toBeUndefined();
    // Again: nothing left, and that is fine.
    expect((await inventory.removeVolumes(live.id)).removed.map((r) => r.existed)).toEqual([false, false]);
  });

  it('refuses a volume shared with a running session of the same issue, naming it; removes one shared with finished sessions and says so', async () => {
    const first = await finished({ issueUrl: issue });
    const live = await running({ issueUrl: issue });

    const refused = await inventory.removeVolumes(first);

    expect(refused.removed).toEqual([]);
    expect(refused.refused).toHaveLength(2);
    for (const r of refused.refused) expect(r.reason).toBe(`Shared with session ${live.id} of the same issue, which is running; stop it first: cldpd stop ${live.id}`);
    expect(refused.refused.every((r) => runner.volumes.has(r.name))).toBe(true);

    await dispatcher.stop(live.id);
    await live.done;
    const result = await inventory.removeVolumes(first);

    expect(result.refused).toEqual([]);
    expect(result.removed.map((r) => ({ existed: r.existed, sharedWith: r.sharedWith }))).toEqual([
      { existed: true, sharedWith: [live.id] },
      { existed: true, sharedWith: [live.id] },
    ]);
    expect(result.removed.some((r) => runner.volumes.has(r.name))).toBe(false);
  });

  it('removes a volume by name: only cldpd\'s, never while a running session mounts it, and twice is fine', async () => {
    const live = await running({ prompt: 'go' });
    const [claudeDir] = (await store.load(live.id)).volumes;
    const name = claudeDir?.volume as string;
    await runner.ensureVolume('cldpd-looks-like-ours', {});

    await expect(inventory.removeVolumes('cldpd-looks-like-ours')).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringMatching(/not cldpd's.*docker volume rm cldpd-looks-like-ours/) });
    expect(runner.volumes.has('cldpd-looks-like-ours')).toBe(true);
    expect(await inventory.removeVolumes(name)).toEqual({
      removed: [],
      refused: [{ name, path: '/home/agent/.claude', reason: `In use by running session ${live.id}; stop it first: cldpd stop ${live.id}` }],
    });

    await dispatcher.stop(live.id);
    await live.done;
    expect(await inventory.removeVolumes(name)).toEqual({ removed: [{ name, path: '/home/agent/.claude', existed: true, sharedWith: [live.id] }], refused: [] });
    expect(await inventory.removeVolumes(name)).toEqual({ removed: [{ name, path: undefined, existed: false, sharedWith: [live.id] }], refused: [] });
    expect(runner.methods().filter((m) => m === 'removeVolume')).toHaveLength(1);
  });

  it('keeps a volume Docker will not remove (a stopped container still holds it), with Docker\'s reason', async () => {
    const id = await finished({ prompt: 'go' });
    const spec = runSpecs()[0] as ContainerSpec;
    // As if the run's container had not been removed (its worker died before it could).
    runner.containers.set('leftover', { info: { id: 'leftover', name: spec.name, labels: { ...spec.labels }, state: 'exited', createdAt: 0 }, spec, stop: () => undefined });

    const result = await inventory.removeVolumes(id);

    expect(result.removed).toEqual([]);
    expect(result.refused.map((r) => r.reason)).toEqual([expect.stringContaining(`in use by container ${spec.name} (exited)`), expect.stringContaining(`in use by container ${spec.name} (exited)`)]);
  });

  it('finds a session\'s volumes by label when its record is gone, and says so for an unknown session', async () => {
    const id = await finished({ prompt: 'go' });
    const names = (await store.load(id)).volumes.map((v) => v.volume);
    const amnesiac = new HostInventory({ runner, store: new SessionStore(join(await tempDir(), 'sessions')), hostId: 'host-a' });

    expect((await amnesiac.removeVolumes(id)).removed.map((r) => r.name).sort()).toEqual([...names].sort());
    // An id nobody knows is taken as a volume name, and there is no such volume.
    expect(await amnesiac.removeVolumes('web-0badf00d')).toEqual({ removed: [{ name: 'web-0badf00d', path: undefined, existed: false, sharedWith: [] }], refused: [] });
  });
});

describe('HostInventory.sweepHelpers', () => {
  it('sweeps helpers and this host\'s stray egress gateways older than ten minutes, sparing the gateway of a session being started', async () => {
    const session = await dispatcher.start('web', { prompt: 'go' });
    await drain(session);
    await store.update(session.id, { startingUntil: Date.now() + 60_000 });
    const finished = await dispatcher.start('web', { prompt: 'go' });
    await drain(finished);

    await inventory.sweepHelpers();

    expect(runner.calls.find((c) => c.method === 'removeHelpers')?.args).toEqual([600_000]);
    const [hostId, olderThanMs, keep] = runner.calls.find((c) => c.method === 'removeStrayGateways')?.args as [string, number, (id: string) => Promise<boolean>];
    expect(hostId).toBe('host-a');
    expect(olderThanMs).toBe(600_000);
    expect(await keep(session.id)).toBe(true);
    expect(await keep(finished.id)).toBe(false);
    expect(await keep('not a session id')).toBe(false);
  });
});
