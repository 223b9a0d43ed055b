import { join } from 'node:path';
import { Dispatcher, HostInventory, SessionStore, type PodSource, type SessionEvent } from '../../src/core/index.js';
import { FakeRunner } from './fake-runner.js';
import { tempDir, writePod } from './pods.js';

/** A dispatcher and its host's inventory over one FakeRunner and a fresh store, with the pod `web`. */
export interface DispatchWorld {
  readonly runner: FakeRunner;
  readonly store: SessionStore;
  readonly pods: PodSource;
  readonly dispatcher: Dispatcher;
  readonly inventory: HostInventory;
}

let suffix = 0;

/**
 * A fresh world for one test: host `host-a`, the host's `SECRET=v` inherited by the pod `web`
 * (workdir /work, a template), session ids counting up so tests can name them.
 */
export async function dispatchWorld(): Promise<DispatchWorld> {
  const root = await tempDir();
  const pods = { podsDir: join(root, 'pods'), homeDir: root };
  const store = new SessionStore(join(root, 'sessions'));
  const runner = new FakeRunner({ id: 'sha256:img', user: 'agent', env: { HOME: '/home/agent' }, workingDir: '/', labels: {} });
  const dispatcher = new Dispatcher({ runner, pods, store, hostId: 'host-a', hostEnv: { SECRET: 'v' }, newSuffix: () => (++suffix).toString(16).padStart(16, '0') });
  const inventory = new HostInventory({ runner, store, hostId: 'host-a' });
  await writePod(pods.podsDir, 'web', { 'pod.json': { inheritEnv: ['SECRET'], workdir: '/work' }, 'template.md': 'Be careful.' });
  return { runner, store, pods, dispatcher, inventory };
}

/** Every event of `session`, to its end. */
export async function drain(session: { events(): AsyncIterable<SessionEvent> }): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const e of session.events()) events.push(e);
  return events;
}
