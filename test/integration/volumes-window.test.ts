import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dispatcher, LABELS, SessionStore, type RepoTokenSource } from '../../src/core/index.js';
import { TestWorld, collect, describeWithDocker, until } from './harness.js';

/** A token source that answers only when released: it holds a start between preparing its volumes and creating its container. */
function heldSource(): { source: RepoTokenSource; asked: () => boolean; release: () => void } {
  let release: () => void = () => undefined;
  let asked = false;
  const answer = new Promise<void>((resolve) => (release = resolve));
  const source: RepoTokenSource = {
    fullName: 'acme/web',
    repository: async () => ({ fullName: 'acme/web', cloneUrl: 'https://github.com/acme/web.git', defaultBranch: 'main' }),
    mint: async () => {
      asked = true;
      await answer;
      return { token: 'ghs_window0000000000000000000000000000', expiresAt: Date.now() + 3600_000 };
    },
  };
  return { source, asked: () => asked, release };
}

describeWithDocker('the window between preparing a run\'s volumes and starting its container', () => {
  const world = new TestWorld();
  const issueUrl = 'https://github.com/acme/web/issues/7';

  beforeAll(async () => {
    await world.init();
    await world.pod('it-window', { command: ['sh', '-c', 'echo kept > /work/note; echo done'], github: { contents: 'read' } });
  });

  afterAll(async () => {
    await world.close();
  });

  const volumesOf = async (sessionId: string) => (await world.docker.listVolumes({ filters: { label: [`${LABELS.session}=${sessionId}`] } })).Volumes ?? [];

  it('volumes window: a removal (gc, retention) meanwhile keeps the starting session, its labelled volumes and its record; the run then ends on record', async () => {
    const held = heldSource();
    const session = await world.dispatcher.start('it-window', { issueUrl, prompt: 'x' }, { github: held.source });
    await until('the start to wait between its volumes and its container', () => held.asked(), 60_000);
    expect(await volumesOf(session.id)).toHaveLength(1);

    const removal = await world.inventory.removeSessions([session.id]);
    expect(removal.removed).toEqual([]);
    expect(removal.kept).toEqual([{ sessionId: session.id, reason: expect.stringContaining('it is starting') }]);
    expect((await world.inventory.removeVolumes(session.id)).refused).toEqual([expect.objectContaining({ reason: expect.stringContaining(`Session ${session.id} is starting`) })]);

    held.release();
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    // The volume the run wrote to is the one cldpd made and labelled, and its record holds the run's end.
    const [volume] = await volumesOf(session.id);
    expect(volume?.Labels).toMatchObject({ [LABELS.session]: session.id, [LABELS.issue]: issueUrl, [LABELS.path]: '/work' });
    expect(await world.store.load(session.id)).toMatchObject({ volumes: [expect.objectContaining({ volume: volume?.Name })], last: { exitCode: 0 } });
    expect((await world.store.load(session.id)).startingUntil).toBeUndefined();
    // Once it has ended, a removal takes it all.
    expect((await world.inventory.removeSessions([session.id])).removed).toEqual([expect.objectContaining({ sessionId: session.id, volumes: [volume?.Name] })]);
  });

  it('volumes window: a stop from another process meanwhile (which finds no container to stop) is not lost: no container starts', async () => {
    const held = heldSource();
    const session = await world.dispatcher.start('it-window', { issueUrl, prompt: 'x' }, { github: held.source });
    await until('the start to wait between its volumes and its container', () => held.asked(), 60_000);
    // Another process's Dispatcher on this host, as `cldpd stop` is: the same store on disk, no Session in hand.
    const other = new Dispatcher({ runner: world.runner, pods: { podsDir: world.podsDir, homeDir: world.home }, store: new SessionStore(join(world.home, 'sessions')), hostId: world.hostId, hostEnv: {} });
    await other.stop(session.id);
    held.release();
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'Stopped' });
    expect(events.some((e) => e.type === 'container.started')).toBe(false);
    expect(await world.containersOf(session.id)).toEqual([]);
  });
});
