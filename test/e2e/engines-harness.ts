import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { LABELS } from '../../src/core/index.js';

const run = promisify(execFile);

/** scripts/second-engine.sh: starts, stops and describes the second Docker engine of these tests. */
export const SECOND_ENGINE_SCRIPT = fileURLToPath(new URL('../../scripts/second-engine.sh', import.meta.url));

/** Where the second engine answers: its unix socket, its TLS TCP address, and the client certificates it takes. */
export interface SecondEngine {
  /** `unix:///run/cldpd-engine-b/docker.sock` */
  readonly socket: string;
  /** `tcp://127.0.0.1:<port>`: TLS only, a client certificate required. */
  readonly tcp: string;
  /** A directory of ca.pem, cert.pem and key.pem, as DOCKER_CERT_PATH names it. */
  readonly certPath: string;
  /** A dockerode client over its unix socket. */
  readonly docker: Docker;
  /** Whether this process started it (and so stops it), rather than finding it answering. */
  readonly startedHere: boolean;
}

function parseSettings(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

/** Whether the second engine answers on its socket now. */
export async function secondEngineAnswers(): Promise<boolean> {
  const settings = parseSettings((await run('bash', [SECOND_ENGINE_SCRIPT, 'env'])).stdout);
  return new Docker({ socketPath: (settings.ENGINE_B_SOCKET ?? '').slice('unix://'.length) }).ping().then(() => true, () => false);
}

/**
 * Starts the second engine (scripts/second-engine.sh start), or finds it answering (CI may
 * start it before the tests). Throws, naming the fix, where it cannot run: these tests need
 * root and dockerd.
 */
export async function startSecondEngine(): Promise<SecondEngine> {
  if (process.getuid?.() !== 0) throw new Error('The tests of several engines start a second dockerd: run them as root (CI does).');
  const before = await secondEngineAnswers();
  const started = await run('bash', [SECOND_ENGINE_SCRIPT, 'start'], { timeout: 90_000 }).catch((err: { stderr?: string; message: string }) => {
    throw new Error(`scripts/second-engine.sh start failed: ${err.stderr || err.message}`);
  });
  const settings = parseSettings(started.stdout);
  const socket = settings.ENGINE_B_SOCKET ?? '';
  return { socket, tcp: settings.ENGINE_B_TCP ?? '', certPath: settings.ENGINE_B_CERT_PATH ?? '', docker: new Docker({ socketPath: socket.slice('unix://'.length) }), startedHere: !before };
}

/** Stops the second engine (its data stays cached). */
export async function stopSecondEngine(): Promise<void> {
  await run('bash', [SECOND_ENGINE_SCRIPT, 'stop'], { timeout: 60_000 });
}

/** Containers on `docker` labelled for host `hostId`, any state. */
export async function containersOfHost(docker: Docker, hostId: string): Promise<Docker.ContainerInfo[]> {
  return docker.listContainers({ all: true, filters: { label: [`${LABELS.host}=${hostId}`] } });
}

/** Removes what hosts `hostIds` left on `docker`: containers, volumes, and gateways' networks. */
export async function cleanEngine(docker: Docker, hostIds: readonly string[]): Promise<void> {
  for (const hostId of hostIds) {
    for (const label of [`${LABELS.host}=${hostId}`, `${LABELS.gatewayHost}=${hostId}`]) {
      for (const c of await docker.listContainers({ all: true, filters: { label: [label] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
      for (const n of await docker.listNetworks({ filters: { label: [label] } })) await docker.getNetwork(n.Id).remove().catch(() => undefined);
      const { Volumes } = await docker.listVolumes({ filters: { label: [label] } });
      for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => undefined);
    }
  }
}

/** The containers `docker` created for session `sessionId` since `since` (Unix seconds), from the engine's own event log. */
export async function containersCreated(docker: Docker, sessionId: string, since: number): Promise<number> {
  // Until now (to the millisecond): an until in the future would hold the answer until then.
  const stream = await docker.getEvents({ since, until: (Date.now() / 1000).toFixed(3) as unknown as number, filters: { type: ['container'], event: ['create'], label: [`${LABELS.session}=${sessionId}`] } });
  let text = '';
  for await (const chunk of stream as AsyncIterable<Buffer>) text += chunk.toString('utf8');
  return text.split('\n').filter((l) => l.trim()).length;
}
