import { createConnection, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dispatcher, DockerRunner, LABELS, type SessionEvent } from '../../src/core/index.js';
import { TestWorld, collect, describeWithDocker, outputLines } from './harness.js';

/** The engine's socket: DOCKER_HOST's when it names one (Podman's, say), else Docker's. */
const ENGINE_SOCKET = process.env.DOCKER_HOST?.startsWith('unix://') ? process.env.DOCKER_HOST.slice('unix://'.length) : '/var/run/docker.sock';

/**
 * A TCP front for the Docker engine's socket, so a test can cut the connection an attach
 * stream runs on (as a network blip or an engine's proxy would) while the container runs.
 */
class EngineProxy {
  private server: Server | undefined;
  /** Client sockets whose requests included a container attach. */
  private readonly attaches = new Set<Socket>();
  cuts = 0;

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      const engine = createConnection(ENGINE_SOCKET);
      client.on('data', (data: Buffer) => {
        if (/^POST \S*\/containers\/\S+\/attach\?/m.test(data.toString('latin1'))) this.attaches.add(client);
      });
      client.pipe(engine);
      engine.pipe(client);
      const close = () => {
        client.destroy();
        engine.destroy();
        this.attaches.delete(client);
      };
      client.on('error', close).on('close', close);
      engine.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    return (this.server?.address() as AddressInfo).port;
  }

  /** Cuts every attach connection open now: `reset` sends a TCP reset (an error on the other side), else a clean close. */
  cutAttaches(reset: boolean): void {
    for (const client of this.attaches) {
      this.cuts += 1;
      if (reset) client.resetAndDestroy();
      else client.destroy();
    }
  }

  close(): void {
    this.server?.close();
  }
}

const LINES = 60;

describeWithDocker('an attach stream cut while the container runs', () => {
  const world = new TestWorld();
  const proxy = new EngineProxy();
  let dispatcher: Dispatcher;

  beforeAll(async () => {
    await world.init();
    // Numbered lines on stdout, every tenth on stderr too, slowly enough to be cut in the middle.
    await world.pod('it-attach-cut', { command: ['sh', '-c', `i=1; while [ $i -le ${LINES} ]; do echo "line $i"; [ $((i % 10)) -eq 0 ] && echo "err $i" >&2; i=$((i+1)); sleep 0.05; done`] });
    const port = await proxy.listen();
    dispatcher = new Dispatcher({ runner: new DockerRunner(new Docker({ host: '127.0.0.1', port, protocol: 'http' })), pods: { podsDir: world.podsDir, homeDir: world.home }, store: world.store, hostId: world.hostId, hostEnv: {} });
  });

  afterAll(async () => {
    proxy.close();
    await world.close();
  });

  it.each([
    ['closed cleanly', false],
    ['reset', true],
  ])('attach end: the connection %s mid-run, the output follows from the container\'s log where the attach stopped: every line once, in order; the run ends when the container does', async (_, reset) => {
    const session = await dispatcher.start('it-attach-cut', { prompt: 'x' });
    let runningAtCut: boolean | undefined;
    const cutsBefore = proxy.cuts;
    const events = await collect(session, (e: SessionEvent) => {
      if (e.type === 'output' && e.line === 'line 10') {
        proxy.cutAttaches(reset);
        void world.docker.listContainers({ filters: { label: [`${LABELS.session}=${session.id}`] } }).then((found) => (runningAtCut = found.some((c) => c.State === 'running')));
      }
    });
    expect(proxy.cuts).toBeGreaterThan(cutsBefore); // the attach was cut
    expect(runningAtCut).toBe(true); // …while the container ran
    const lines = outputLines(events);
    expect(lines.filter((l) => l.startsWith('stdout:'))).toEqual(Array.from({ length: LINES }, (_, i) => `stdout:line ${i + 1}`));
    expect(lines.filter((l) => l.startsWith('stderr:'))).toEqual(Array.from({ length: LINES / 10 }, (_, i) => `stderr:err ${(i + 1) * 10}`));
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });
    expect(events.filter((e) => e.type === 'container.started')).toHaveLength(1);
  });
});
