import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { TestWorld, collect, describeWithDocker, until } from './harness.js';

describeWithDocker('persisted volumes on a real Docker engine', () => {
  const world = new TestWorld();
  /** Volumes made here without cldpd's labels: TestWorld.close finds only labelled ones. */
  const foreign: string[] = [];

  beforeAll(async () => {
    await world.init();
    // Writes 64 KiB into its persisted /work, says so, then runs until stopped.
    await world.pod('it-persist', { command: ['sh', '-c', 'head -c 65536 /dev/zero > /work/data; echo written; exec sleep 120'], stopGraceSeconds: 1 });
    await world.pod('it-persist-quick', { command: ['sh', '-c', 'echo note > /work/note'] });
  });

  afterAll(async () => {
    for (const name of foreign) await world.docker.getVolume(name).remove().catch(() => undefined);
    await world.close();
  });

  const exists = (name: string): Promise<boolean> => world.docker.getVolume(name).inspect().then(() => true, () => false);

  it('lists a running session\'s volume with its size, refuses to remove it while the session runs, and removes it by session id once it has ended', async () => {
    const session = await world.dispatcher.start('it-persist', { prompt: 'x' });
    const lines: string[] = [];
    const done = collect(session, (e: SessionEvent) => {
      if (e.type === 'output') lines.push(e.line);
    });
    try {
      await until('the session to write into /work', () => lines.includes('written'), 60_000);
      const [volume] = (await world.store.load(session.id)).volumes;
      const name = volume?.volume as string;
      expect(volume?.path).toBe('/work');

      const row = (await world.inventory.volumes()).find((r) => r.name === name);
      expect(row).toMatchObject({ pod: 'it-persist', issueUrl: undefined, sessionId: session.id, sessions: [session.id], path: '/work', inUse: true });
      expect(row?.sizeBytes).toBeGreaterThanOrEqual(65_536);
      expect(row?.createdAt).toBeGreaterThan(Date.now() - 10 * 60_000);

      const refused = await world.inventory.removeVolumes(session.id);
      expect(refused).toEqual({ removed: [], refused: [{ name, path: '/work', reason: `Session ${session.id} is running; stop it first: cldpd stop ${session.id}` }] });
      expect(await exists(name)).toBe(true);
      // Docker's own refusal, as the runner reports it: which container, and what to do.
      await expect(world.runner.removeVolume(name)).rejects.toMatchObject({
        code: 'ContainerFailed',
        message: expect.stringContaining(`in use by container cldpd-${session.id} (session ${session.id}, running). Stop the session first: cldpd stop ${session.id}`),
      });
      expect(await exists(name)).toBe(true);

      await world.dispatcher.stop(session.id);
      expect((await done).at(-1)).toMatchObject({ type: 'container.exited' });
      await until('the session container to be removed', async () => (await world.containersOf(session.id)).length === 0);

      const result = await world.inventory.removeVolumes(session.id);
      expect(result).toEqual({ removed: [{ name, path: '/work', existed: true, sharedWith: [] }], refused: [] });
      expect(await exists(name)).toBe(false);
      expect((await world.inventory.volumes()).some((r) => r.name === name)).toBe(false);
      expect(await world.inventory.removeVolumes(session.id)).toEqual({ removed: [{ name, path: '/work', existed: false, sharedWith: [] }], refused: [] });
    } finally {
      await world.dispatcher.stop(session.id).catch(() => undefined);
      await done.catch(() => undefined);
    }
  });

  it('removes an issue\'s volume by name, and a second time is fine', async () => {
    const issueUrl = 'https://github.com/acme/it/issues/1';
    const session = await world.dispatcher.start('it-persist-quick', { issueUrl });
    expect((await collect(session)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    const [volume] = (await world.store.load(session.id)).volumes;
    const name = volume?.volume as string;
    expect((await world.inventory.volumes()).find((r) => r.name === name)).toMatchObject({ pod: 'it-persist-quick', issueUrl, sessionId: session.id, path: '/work', inUse: false });

    expect(await world.inventory.removeVolumes(name)).toEqual({ removed: [{ name, path: '/work', existed: true, sharedWith: [session.id] }], refused: [] });
    expect(await exists(name)).toBe(false);
    expect(await world.inventory.removeVolumes(name)).toEqual({ removed: [{ name, path: undefined, existed: false, sharedWith: [session.id] }], refused: [] });
    await expect(world.runner.removeVolume(name)).resolves.toBeUndefined();
  });

  it('never removes a volume that is not cldpd\'s, and never lists one', async () => {
    const name = `cldpd-looks-like-ours-${randomBytes(4).toString('hex')}`;
    foreign.push(name);
    await world.docker.createVolume({ Name: name });

    await expect(world.inventory.removeVolumes(name)).rejects.toMatchObject({ code: 'InvalidInput', message: expect.stringContaining("is not cldpd's") });
    expect(await exists(name)).toBe(true);
    expect((await world.inventory.volumes()).some((r) => r.name === name)).toBe(false);
  });
});
