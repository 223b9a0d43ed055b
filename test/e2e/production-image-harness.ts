import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { describe } from 'vitest';
import { until } from '../integration/harness.js';

const run = promisify(execFile);

/** scripts/production-image.sh: builds the production image from the local base, cached by its inputs. */
export const IMAGE_SCRIPT = fileURLToPath(new URL('../../scripts/production-image.sh', import.meta.url));

/** The tag scripts/production-image.sh gives this checkout's image, and whether the engine has it; why not, when it cannot say. */
async function builtImage(): Promise<{ tag: string; missing?: string }> {
  try {
    const tag = execFileSync('bash', [IMAGE_SCRIPT, '--tag'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
    const present = await new Docker().getImage(tag).inspect().then(() => true, () => false);
    return present ? { tag } : { tag, missing: `the production image ${tag} (of this checkout's Dockerfile and sources) is not built` };
  } catch (err) {
    const said = `${(err as { stderr?: string }).stderr ?? ''}`.trim() || (err as Error).message;
    return { tag: '', missing: `the production image's tag is unknown (${said})` };
  }
}

const image = await builtImage();
if (image.missing && process.env.CI === 'true') {
  // In CI the image's tests must run: an image not built is a failure, never a skip.
  throw new Error(`${image.missing}. Run "bash scripts/production-image.sh" (.ci/run does, before the tests).`);
}
if (image.missing) console.warn(`\n[production-image] SKIPPED: ${image.missing}. Run "bash scripts/production-image.sh" to build it.\n`);

/** The production image under test: `cldpd-test/production:<hash of its inputs>`. */
export const IMAGE = image.tag;

/** `describe` that runs only where the production image is built (always in CI, where its absence fails the run). */
export const describeWithImage = image.missing ? describe.skip : describe;

/** The group that owns the Docker socket the tests' engine answers on: what compose's DOCKER_GID must be. */
export function dockerSocketGroup(socket = '/var/run/docker.sock'): number {
  return statSync(socket).gid;
}

/** What {@link ImageContainers.start} starts: the image's command and its settings. */
export interface ImageRun {
  /** `serve`, `worker` or `up` (the image's CMD). */
  readonly mode: string;
  readonly env: Readonly<Record<string, string>>;
  /** `user[:group]`; the image's own (node) when absent. */
  readonly user?: string;
  /** `source:target[:ro]`, as `docker run -v` takes them. */
  readonly binds?: readonly string[];
  /** `host`, `bridge` or a network's name. */
  readonly network: string;
  /** The working directory; the image's (/app) when absent. */
  readonly workdir?: string;
  /** Container port → this host's port (on 127.0.0.1). */
  readonly publish?: Readonly<Record<number, number>>;
}

/**
 * The containers of the production image one test file starts, all labelled with one id:
 * `close()` removes them (and the named volumes `volume()` made) whatever happened.
 */
export class ImageContainers {
  readonly docker = new Docker();
  readonly id = randomBytes(4).toString('hex');
  private readonly volumes: string[] = [];
  private readonly networks: string[] = [];

  /** A named volume of this file's own (`cldpd-image-<id>-<name>`), removed by `close()`. */
  volume(name: string): string {
    const full = `cldpd-image-${this.id}-${name}`;
    this.volumes.push(full);
    return full;
  }

  /** A bridge network of this file's own (`cldpd-image-<id>-<name>`), removed by `close()`; its name. */
  async network(name: string): Promise<string> {
    const full = `cldpd-image-${this.id}-${name}`;
    await this.docker.createNetwork({ Name: full, Driver: 'bridge', Labels: { 'dev.cldpd.test-image': this.id } });
    this.networks.push(full);
    return full;
  }

  /** Creates and starts `cldpd-image-<id>-<name>` running the image as `spec` says. */
  async start(name: string, spec: ImageRun): Promise<Docker.Container> {
    const container = await this.docker.createContainer({
      name: `cldpd-image-${this.id}-${name}`,
      Image: IMAGE,
      Cmd: [spec.mode],
      Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
      ...(spec.user ? { User: spec.user } : {}),
      ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
      ...(spec.publish ? { ExposedPorts: Object.fromEntries(Object.keys(spec.publish).map((p) => [`${p}/tcp`, {}])) } : {}),
      Labels: { 'dev.cldpd.test-image': this.id },
      HostConfig: {
        NetworkMode: spec.network, Binds: [...(spec.binds ?? [])],
        ...(spec.publish ? { PortBindings: Object.fromEntries(Object.entries(spec.publish).map(([p, host]) => [`${p}/tcp`, [{ HostIp: '127.0.0.1', HostPort: String(host) }]])) } : {}),
      },
    });
    await container.start();
    return container;
  }

  /** Runs `cmd` in a running container as its user; its stdout and stderr together, and its exit code. */
  async exec(container: Docker.Container, cmd: readonly string[]): Promise<{ output: string; code: number }> {
    try {
      const { stdout, stderr } = await run('docker', ['exec', container.id, ...cmd], { timeout: 30_000 });
      return { output: `${stdout}${stderr}`, code: 0 };
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; code?: number };
      return { output: `${e.stdout ?? ''}${e.stderr ?? ''}`, code: typeof e.code === 'number' ? e.code : -1 };
    }
  }

  /** The last `lines` lines a container printed (stdout and stderr). */
  async logs(container: Docker.Container | string, lines = 60): Promise<string> {
    const id = typeof container === 'string' ? container : container.id;
    return run('docker', ['logs', '--tail', String(lines), id], { timeout: 30_000, maxBuffer: 16 * 1024 * 1024 }).then(({ stdout, stderr }) => `${stdout}${stderr}`, (err: Error) => `(no logs: ${err.message})`);
  }

  /** The container's IPv4 address on `network`. */
  async address(container: Docker.Container, network = 'bridge'): Promise<string> {
    const info = await container.inspect();
    const address = info.NetworkSettings.Networks[network]?.IPAddress;
    if (!address) throw new Error(`container ${info.Name} has no address on ${network}`);
    return address;
  }

  /** Waits until `check` passes, failing after `timeoutMs` with the end of each of `containers`' logs. */
  async until(what: string, check: () => Promise<boolean> | boolean, timeoutMs: number, containers: ReadonlyArray<Docker.Container | string>): Promise<void> {
    try {
      await until(what, check, timeoutMs);
    } catch (err) {
      const logs = await Promise.all(containers.map(async (c) => `--- ${typeof c === 'string' ? c : c.id.slice(0, 12)}:\n${await this.logs(c)}`));
      throw new Error(`${(err as Error).message}\n${logs.join('\n')}`);
    }
  }

  /** Removes every container of this file (running or not), its volumes and its networks. */
  async close(): Promise<void> {
    for (const c of await this.docker.listContainers({ all: true, filters: { label: [`dev.cldpd.test-image=${this.id}`] } })) {
      await this.docker.getContainer(c.Id).remove({ force: true, v: true }).catch(() => undefined);
    }
    for (const v of this.volumes) await this.docker.getVolume(v).remove().catch(() => undefined);
    for (const n of this.networks) await this.docker.getNetwork(n).remove().catch(() => undefined);
  }
}
