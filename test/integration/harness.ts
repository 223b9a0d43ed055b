import { copyFile, chmod, mkdir, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe } from 'vitest';
import { Dispatcher, DockerRunner, HostInventory, LABELS, SessionStore, type Session, type SessionEvent } from '../../src/core/index.js';
import { tempDir } from '../fakes/pods.js';

/** The static busybox the test pods are made of (Debian's busybox-static). */
export const BUSYBOX = process.env.CLDPD_TEST_BUSYBOX ?? '/bin/busybox';

async function probe(): Promise<string | undefined> {
  try {
    await new Docker().ping();
    return undefined;
  } catch (err) {
    return `Docker engine not reachable (${(err as Error).message})`;
  }
}

const unavailable = await probe();
if (unavailable && process.env.CI === 'true') {
  // In CI these tests must run: a missing engine is a failure, never a skip.
  throw new Error(`${unavailable}. CI runs the integration tests against a real Docker engine: .ci/run starts one.`);
}
if (unavailable) {
  console.warn(`\n[integration] SKIPPED: ${unavailable}. Start dockerd (bash .ci/run does) to run them.\n`);
}

/** `describe` that runs only where a Docker engine answers (always in CI, where its absence fails the run). */
export const describeWithDocker = unavailable ? describe.skip : describe;

/**
 * A fake `claude` for the pods: takes its prompt as the real CLI does with cldpd's default
 * command (a stream-json user message on stdin, echoed back as a replay) or after `-p`,
 * speaks stream-json, writes /work/note.txt on the first run and reads it on resume.
 */
export const FAKE_CLAUDE = `#!/bin/sh
prompt=""; resume=""; stdin=""
while [ $# -gt 0 ]; do
  case "$1" in
    -p) case "$2" in -*|"") stdin=1; shift ;; *) prompt="$2"; shift 2 ;; esac ;;
    --resume) resume="$2"; shift 2 ;;
    *) shift ;;
  esac
done
sid=\${resume:-fake-$CLDPD_SESSION_ID}
echo "{\\"type\\":\\"system\\",\\"subtype\\":\\"init\\",\\"session_id\\":\\"$sid\\"}"
if [ -n "$stdin" ]; then
  IFS= read -r line
  printf '%s\\n' "$line" | sed 's/^{/{"isReplay":true,/'
  prompt=$(printf '%s\\n' "$line" | sed -e 's/^.*"text":"//' -e 's/"}]}}$//' -e 's/\\\\n/\\n/g')
fi
mkdir -p /work
if [ -n "$resume" ]; then
  echo "resumed $resume; note: $(cat /work/note.txt 2>/dev/null || echo none)"
else
  echo "written by the first run" > /work/note.txt
fi
echo "prompt: $prompt"
case "$prompt" in *linger*) sleep 60 ;; *pause*) sleep 4 ;; esac
if [ -n "$resume" ]; then summary="resumed $resume, note: $(cat /work/note.txt 2>/dev/null || echo none)"; else summary="first run"; fi
echo "{\\"type\\":\\"result\\",\\"subtype\\":\\"success\\",\\"is_error\\":false,\\"result\\":\\"all done ($summary)\\",\\"num_turns\\":2,\\"total_cost_usd\\":0.0125,\\"duration_ms\\":40}"
`;

/** A Docker world for one test file: its own pods dir, data dir and host id, cleaned up by `close()`. */
export class TestWorld {
  readonly docker = new Docker();
  readonly runner = new DockerRunner(this.docker);
  readonly hostId = `it-${randomBytes(4).toString('hex')}`;
  dispatcher!: Dispatcher;
  inventory!: HostInventory;
  store!: SessionStore;
  podsDir!: string;
  home!: string;

  async init(): Promise<this> {
    this.home = await tempDir('cldpd-it-');
    this.podsDir = join(this.home, 'pods');
    this.store = new SessionStore(join(this.home, 'sessions'));
    this.dispatcher = new Dispatcher({
      runner: this.runner,
      pods: { podsDir: this.podsDir, homeDir: this.home },
      store: this.store,
      hostId: this.hostId,
      hostEnv: { CLDPD_TEST_SECRET: 'from-the-host' },
    });
    this.inventory = new HostInventory({ runner: this.runner, store: this.store, hostId: this.hostId });
    return this;
  }

  /** Writes a busybox pod: FROM scratch, busybox with its applets, the fake claude, and extra Dockerfile lines. */
  async pod(name: string, podJson: object = {}, extraDockerfile = ''): Promise<string> {
    const dir = join(this.podsDir, name);
    await mkdir(dir, { recursive: true });
    await copyFile(BUSYBOX, join(dir, 'busybox'));
    await writeFile(join(dir, 'claude'), FAKE_CLAUDE);
    await chmod(join(dir, 'claude'), 0o755);
    await writeFile(
      join(dir, 'Dockerfile'),
      ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'COPY claude /bin/claude', 'ENV HOME=/root PATH=/bin', extraDockerfile, ''].join('\n'),
    );
    // The busybox pods run as root: IS_SANDBOX=1 says so, as a root pod with the default command must.
    const env = { IS_SANDBOX: '1', ...((podJson as { env?: Record<string, string> }).env ?? {}) };
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ persist: ['/work'], stopGraceSeconds: 2, memory: '256m', cpus: 1, pids: 128, ...podJson, env }));
    return dir;
  }

  /** Containers of one session (any state). */
  async containersOf(sessionId: string): Promise<Docker.ContainerInfo[]> {
    return this.docker.listContainers({ all: true, filters: { label: [`${LABELS.session}=${sessionId}`] } });
  }

  /** Removes every container and volume this world created. */
  async close(): Promise<void> {
    const filters = { label: [`${LABELS.host}=${this.hostId}`] };
    for (const c of await this.docker.listContainers({ all: true, filters })) {
      await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    }
    const { Volumes } = await this.docker.listVolumes({ filters });
    for (const v of Volumes ?? []) await this.docker.getVolume(v.Name).remove().catch(() => undefined);
    // The egress gateways of its gated runs, with their networks: a run a test left unfollowed
    // (a worker killed for good) leaves its gateway behind until a worker of this host sweeps it.
    const gateways = { label: [`${LABELS.gatewayHost}=${this.hostId}`] };
    for (const c of await this.docker.listContainers({ all: true, filters: gateways })) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    for (const n of await this.docker.listNetworks({ filters: gateways })) await this.docker.getNetwork(n.Id).remove().catch(() => undefined);
  }
}

/** Reads a session's events to the end, failing instead of hanging after `timeoutMs`. */
export async function collect(session: Session, onEvent?: (e: SessionEvent) => void, timeoutMs = 90_000): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  const reading = (async () => {
    for await (const e of session.events()) {
      events.push(e);
      onEvent?.(e);
    }
  })();
  try {
    await Promise.race([reading, new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`session ${session.id}: no terminal event within ${timeoutMs} ms`)), timeoutMs)))]);
  } finally {
    clearTimeout(timer);
  }
  return events;
}

/** Output lines of a run, as `stream:line`. */
export function outputLines(events: SessionEvent[]): string[] {
  return events.flatMap((e) => (e.type === 'output' ? [`${e.stream}:${e.line}`] : []));
}

/** Waits until `check` passes, failing after `timeoutMs`. */
export async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The gateway's program as the build leaves it ("npm run build" makes it; under vitest, core's default path points into src/, where no bundle is). */
export const GATEWAY_PROGRAM = new URL('../../dist/gateway/gateway.mjs', import.meta.url).pathname;

/** A TestWorld whose runner's gateways run the built gateway program; closing it also removes any gateway and network of its runs a failed test left behind. */
export class GatedWorld extends TestWorld {
  override readonly runner = new DockerRunner(this.docker, { gatewayImage: { program: GATEWAY_PROGRAM } });
}
