import { StringDecoder } from 'node:string_decoder';
import type Docker from 'dockerode';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { keepEnd } from './text.js';
import { baseImages, contextDigest, contextFiles, packContext } from './build-context.js';
import { CldpdError, messageOf } from './errors.js';
import { demuxDockerStream } from './demux.js';
import { DockerGateways, gatewayNames } from './docker-gateway.js';
import { detectEngine, type EngineInfo } from './engine.js';
import type { GatewayImageOptions } from './gateway-image.js';
import { LABELS } from './labels.js';
import { LineSplitter } from './line-splitter.js';
import { firstFileOf, tarOf } from './tar-files.js';
import { within } from './within.js';
import { AGENT_CAPABILITIES, ISOLATED_NETWORK, type BuildRequest, type ContainerFile, type ContainerInfo, type ContainerSpec, type FileRead, type GatewayHandle, type GatewaySpec, type ImageInfo, type OutputChunk, type ProcessHandle, type ProcessInput, type Runner, type TerminalProcess, type TerminalSize, type VolumeInfo } from './runner.js';

/** How long the helper that sets the owner of new volumes may take. */
const CHOWN_TIMEOUT_MS = 60_000;

/** How long an exec whose output has ended may take to report its exit code. */
const EXEC_EXIT_WAIT_MS = 30_000;

/** The label and value that mark a network as cldpd's isolated one (see ISOLATED_NETWORK). */
const ISOLATED_LABEL = 'dev.cldpd.network';
const ISOLATED_VALUE = 'isolated';

/** The bridge driver's switch for traffic between its containers. */
const ICC_OPTION = 'com.docker.network.bridge.enable_icc';

/**
 * Docker's log of a container, bounded: json-file (a driver Docker reads back for `logs`,
 * whatever the engine's default), at most 4 files of 64 MiB. The trade-off: a worker that
 * restarts replays a running container's log from its start and skips, by count, the lines
 * cldpd's own log already has (see Session `reattach`). Docker reads rotated files back, so
 * a log under the bound replays whole; past it, the oldest lines are gone, the replay
 * starts later than the count assumes, and the recovered log misses as many lines (a gap,
 * never a duplicate). Telling that apart would take Docker's timestamps in cldpd's log,
 * which the attach stream does not give. 256 MiB of json-file (each line wrapped in JSON,
 * so about 200 MiB of output) is far beyond an agent's hour of stream-json, a live run
 * never reads this log, and the container is removed once its run ends: ample, and still a
 * bound on what a runaway process can write to the host's disk.
 */
const CONTAINER_LOG = Object.freeze({ Type: 'json-file', Config: Object.freeze({ 'max-size': '64m', 'max-file': '4' }) });

const UNREACHABLE = new Set(['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH']);

interface DockerApiError {
  statusCode?: number;
  code?: string;
  json?: { message?: string };
  message?: string;
}

function dockerStatusOf(err: unknown): number | undefined {
  return (err as DockerApiError | undefined)?.statusCode;
}

/** Translates a dockerode failure into a CldpdError that says what to do. */
export function dockerError(err: unknown, doing: string): CldpdError {
  const e = err as DockerApiError;
  if (e?.code && UNREACHABLE.has(e.code)) {
    return new CldpdError('DockerUnavailable', `The Docker engine does not answer (${e.code}) while trying to ${doing}. Start Docker, or point DOCKER_HOST at a running engine; "cldpd doctor" checks it.`, { cause: err });
  }
  const detail = e?.json?.message ?? e?.message ?? String(err);
  return new CldpdError('ContainerFailed', `Docker refused to ${doing}: ${detail.trim()}`, { cause: err });
}

/**
 * Podman's bound of the same log: it keeps one file (its json-file is its own k8s-file,
 * which takes max-size and no max-file), so the one file holds what Docker's four do.
 */
const PODMAN_CONTAINER_LOG = Object.freeze({ Type: 'json-file', Config: Object.freeze({ 'max-size': '256m' }) });

/**
 * Pure: Docker's create-container body for a spec. Every container gets an init, limits,
 * no-new-privileges, only the capabilities of {@link AGENT_CAPABILITIES} and the spec's
 * `capAdd`, and a bounded log (`engine` podman: bounded as Podman can, see PODMAN_CONTAINER_LOG).
 */
export function toCreateOptions(spec: ContainerSpec, engine: EngineInfo['kind'] = 'docker'): Docker.ContainerCreateOptions {
  const log = engine === 'podman' ? PODMAN_CONTAINER_LOG : CONTAINER_LOG;
  return {
    name: spec.name,
    Image: spec.image,
    Cmd: [...spec.cmd],
    Env: Object.entries(spec.env).map(([k, v]) => `${k}=${v}`),
    ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
    Labels: { ...spec.labels },
    // A person's terminal (see Runner createTerminal): one raw stream, not split by Docker.
    Tty: spec.tty === true,
    // StdinOnce: the process reads end-of-file once the client that attached closes its input.
    OpenStdin: spec.stdin,
    StdinOnce: spec.stdin,
    AttachStdin: spec.stdin,
    AttachStdout: true,
    AttachStderr: true,
    StopTimeout: spec.stopGraceSeconds,
    HostConfig: {
      Init: true,
      AutoRemove: false,
      Memory: spec.memoryBytes,
      MemorySwap: spec.memoryBytes,
      NanoCpus: Math.round(spec.cpus * 1e9),
      PidsLimit: spec.pids,
      NetworkMode: spec.network,
      SecurityOpt: ['no-new-privileges'],
      CapDrop: ['ALL'],
      CapAdd: [...new Set([...AGENT_CAPABILITIES, ...(spec.capAdd ?? [])])],
      LogConfig: { Type: log.Type, Config: { ...log.Config } },
      Mounts: spec.mounts.map((m) => ({ Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly })),
      ...(Object.keys(sysctlsOf(spec)).length > 0 ? { Sysctls: sysctlsOf(spec) } : {}),
      ...(spec.dns ? { Dns: [...spec.dns] } : {}),
    },
  };
}

/**
 * The kernel settings of a spec's container: its own `sysctls`, and, for a container on its
 * run's egress network (see Runner.openGateway), IPv6 off: the host keeps a link-local IPv6
 * address on every bridge, which the gateway's network must not be a way to.
 */
function sysctlsOf(spec: ContainerSpec): Record<string, string> {
  return {
    ...(spec.network === gatewayNames(spec.name).network ? { 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' } : {}),
    ...spec.sysctls,
  };
}

/** The write side of a hijacked attach connection, as a ProcessInput. */
function inputOf(stream: NodeJS.ReadWriteStream): ProcessInput {
  const socket = stream as NodeJS.ReadWriteStream & { destroyed?: boolean; writableEnded?: boolean };
  // A process that has ended no longer reads; a write then fails, and that is no one's error.
  socket.on('error', () => undefined);
  return {
    write: (text) => new Promise<void>((resolve) => {
      if (socket.destroyed || socket.writableEnded) return resolve();
      socket.write(text, () => resolve());
    }),
    end: () => {
      if (!socket.destroyed && !socket.writableEnded) socket.end();
    },
  };
}

/** Epoch ms of a Docker timestamp (RFC 3339); undefined when there is none. */
function timeOf(text: unknown): number | undefined {
  const ms = typeof text === 'string' ? Date.parse(text) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * What of one stream of a process's output was handed on: its newlines, and the bytes
 * after the last one (a line not finished yet). Counted in lines, as a re-attach after a
 * restart counts what its log has, since Docker's log keeps every newline but may not keep
 * every byte as written (it stores text).
 */
interface Given {
  lines: number;
  tail: number;
}

function countGiven(given: Given, data: Buffer): void {
  const last = data.lastIndexOf(0x0a);
  if (last < 0) {
    given.tail += data.length;
    return;
  }
  for (let at = data.indexOf(0x0a); at >= 0 && at <= last; at = data.indexOf(0x0a, at + 1)) given.lines++;
  given.tail = data.length - last - 1;
}

/**
 * Pure: what of `data`, a piece of a stream replayed from its start, comes after what was
 * given already (`left`, counted down as it is skipped). The unfinished line's bytes are
 * skipped up to its end at most, so a line the log keeps shorter is still ended.
 */
export function afterGiven(left: Given, data: Buffer): Buffer {
  let at = 0;
  while (left.lines > 0 && at < data.length) {
    const nl = data.indexOf(0x0a, at);
    if (nl < 0) return Buffer.alloc(0);
    left.lines--;
    at = nl + 1;
  }
  if (left.lines === 0 && left.tail > 0 && at < data.length) {
    const nl = data.indexOf(0x0a, at);
    const skip = Math.min(left.tail, (nl < 0 ? data.length : nl) - at);
    at += skip;
    left.tail = nl >= 0 && at === nl ? 0 : left.tail - skip;
  }
  return data.subarray(at);
}

/** How often the output of one process is followed again from the log after its stream broke, at most. */
const MAX_FOLLOWS = 10;

function toVolumeInfo(v: Docker.VolumeInspectInfo, sizeBytes: number | undefined): VolumeInfo {
  // The engine sends CreatedAt (API 1.24+); the dockerode types do not declare it.
  return { name: v.Name, labels: v.Labels ?? {}, createdAt: timeOf((v as { CreatedAt?: unknown }).CreatedAt), sizeBytes };
}

/**
 * Pure: what to tell someone whose volume removal Docker refused because `users` (the
 * containers that mount it, as Docker lists them) still use it.
 */
function volumeInUseMessage(volume: string, users: readonly Pick<Docker.ContainerInfo, 'Names' | 'State' | 'Labels'>[], detail: string): string {
  if (users.length === 0) {
    return `The volume ${volume} is in use (Docker: ${detail.trim()}). Stop the session that uses it first ("cldpd ps" lists them), then remove the volume again.`;
  }
  const named = users.map((c) => {
    const name = (c.Names[0] ?? '').replace(/^\//, '');
    const session = c.Labels?.[LABELS.session];
    return { name, session, running: c.State === 'running', text: `${name} (${session ? `session ${session}, ` : ''}${c.State})` };
  });
  const steps: string[] = [];
  for (const c of named.filter((c) => c.running)) {
    steps.push(c.session ? `cldpd stop ${c.session}` : `docker stop ${c.name}`);
  }
  const stopped = named.filter((c) => !c.running);
  if (stopped.length > 0) steps.push(`docker rm ${stopped.map((c) => c.name).join(' ')}`);
  const first = named.some((c) => c.running) ? 'Stop the session first' : 'Remove the stopped container first';
  return `The volume ${volume} is in use by container${named.length > 1 ? 's' : ''} ${named.map((c) => c.text).join(', ')}. ${first}: ${steps.join('; ')}; then remove the volume again.`;
}

/** Pure: whether a failure is Podman's way (HTTP 500) of saying a network of that name exists already. */
function isPodmanNameTaken(err: unknown): boolean {
  const e = err as DockerApiError;
  return dockerStatusOf(err) === 500 && /network name .* already used|already exists/i.test(e?.json?.message ?? e?.message ?? '');
}

function labelFilters(labels: Readonly<Record<string, string | undefined>>): string[] {
  return Object.entries(labels).map(([k, v]) => (v === undefined ? k : `${k}=${v}`));
}

/** The Runner on a Docker engine, through dockerode. */
export class DockerRunner implements Runner {
  /** Network creations under way in this process, by name: runs at once share one. */
  private readonly creatingNetworks = new Map<string, Promise<boolean>>();

  private readonly gateways: DockerGateways;

  /** The engine behind the connection, asked once (see {@link DockerRunner.engine}). */
  private engineInfo: Promise<EngineInfo> | undefined;

  /**
   * `options.gatewayPool`: the IPv4 network the runs' egress networks are cut from (see
   * DEFAULT_GATEWAY_POOL); `options.gatewayImage`: what the gateway's image is made of (the
   * running node and dist/gateway/gateway.mjs by default).
   */
  constructor(private readonly docker: Docker, options: { readonly gatewayPool?: string; readonly gatewayImage?: GatewayImageOptions } = {}) {
    this.gateways = new DockerGateways(docker, {
      ensureOutside: (name) => (name === ISOLATED_NETWORK ? this.ensureIsolatedNetwork(name) : Promise.resolve(false)),
      isPodman: () => this.isPodman(),
      ...(options.gatewayPool ? { pool: options.gatewayPool } : {}),
      ...(options.gatewayImage ? { image: options.gatewayImage } : {}),
    });
  }

  removeStrayGateways(hostId: string, olderThanMs: number, keep?: (sessionId: string) => boolean | Promise<boolean>): Promise<string[]> {
    return this.gateways.removeStray({ hostId, olderThanMs, ...(keep ? { keep } : {}) });
  }

  openGateway(spec: GatewaySpec): Promise<GatewayHandle> {
    return this.gateways.open(spec);
  }

  findGateway(name: string): Promise<GatewayHandle | undefined> {
    return this.gateways.find(name);
  }

  closeGateway(name: string): Promise<void> {
    return this.gateways.close(name);
  }

  async preflight(): Promise<EngineInfo> {
    try {
      return await this.engine();
    } catch (err) {
      const e = dockerError(err, 'ask its version');
      throw e.code === 'DockerUnavailable' ? e : new CldpdError('DockerUnavailable', e.message, { cause: err });
    }
  }

  /**
   * Which engine answers on the connection (Docker, or Podman through its compatible API),
   * asked once and kept; asked again after a failure. Podman's differences are handled where
   * they matter, each behind {@link DockerRunner.isPodman}.
   */
  engine(): Promise<EngineInfo> {
    if (!this.engineInfo) {
      this.engineInfo = detectEngine(this.docker);
      this.engineInfo.catch(() => { this.engineInfo = undefined; });
    }
    return this.engineInfo;
  }

  /** Whether the engine is Podman; false when it cannot be asked (the call that needs it then fails on its own). */
  private async isPodman(): Promise<boolean> {
    return (await this.engineKind()) === 'podman';
  }

  /** The engine's kind; docker when it cannot be asked (the call that needs it then fails on its own). */
  private async engineKind(): Promise<EngineInfo['kind']> {
    return (await this.engine().catch(() => undefined))?.kind ?? 'docker';
  }

  /**
   * Podman: an open pod on cldpd's shared network would reach every other container on it,
   * since Podman's networks have no switch for traffic between their containers (Docker's
   * enable_icc); such a run is refused, saying what to do.
   */
  private async refuseSharedOnPodman(spec: ContainerSpec): Promise<void> {
    // Fails closed: an engine that cannot say what it is does not get an open pod on the shared network.
    if (spec.network !== ISOLATED_NETWORK) return;
    const engine = await this.engine().catch((err: unknown) => {
      throw dockerError(err, `ask the engine what it is before an open pod joins the shared network "${ISOLATED_NETWORK}"`);
    });
    if (engine.kind !== 'podman') return;
    throw new CldpdError('ContainerFailed', `${spec.name} is an open pod on cldpd's shared network "${ISOLATED_NETWORK}", which Podman cannot keep its containers apart on (its networks have no switch for traffic between containers, Docker's enable_icc). Give the pod an "egress" list instead of "open" in its pod.json so its run goes through its own egress gateway, or name a network whose containers may reach each other in pod.json "network" (like "podman"), or run it on Docker.`);
  }

  /**
   * Builds on the engine, unless the image tagged `request.tag` was built by cldpd from the
   * same context, build args, labels and base images: then that image is the result without
   * a build call, as Docker's cache would have made it.
   */
  async *build(request: BuildRequest): AsyncGenerator<string, string> {
    let stream: NodeJS.ReadableStream;
    let digest: string | undefined;
    try {
      const files = await contextFiles(request.contextDir);
      digest = await this.contextDigestOf(request, files);
      const current = digest ? await this.inspectImage(request.tag) : undefined;
      if (digest && current?.labels[LABELS.context] === digest) {
        yield `Nothing in the context, build args or base images changed since ${request.tag} (${current.id.slice(7, 19)}) was built: using it.`;
        return current.id;
      }
      stream = await this.docker.buildImage(
        await packContext(request.contextDir, files),
        {
          t: request.tag,
          buildargs: { ...request.buildArgs },
          labels: { ...request.labels, ...(digest ? { [LABELS.context]: digest } : {}) },
          rm: true,
          forcerm: true,
          ...(request.signal ? { abortSignal: request.signal } : {}),
        } as Docker.ImageBuildOptions,
      );
    } catch (err) {
      if (request.signal?.aborted) throw request.signal.reason;
      const e = dockerError(err, `build ${request.tag}`);
      throw e.code === 'DockerUnavailable' ? e : new CldpdError('BuildFailed', e.message, { cause: err });
    }
    const records = new LineSplitter();
    const text = new LineSplitter();
    let imageId: string | undefined;
    let failure: string | undefined;
    const lines: string[] = [];
    const take = (record: string): void => {
      if (!record.trim()) return;
      let message: { stream?: string; error?: string; errorDetail?: { message?: string }; aux?: { ID?: string }; status?: string };
      try {
        message = JSON.parse(record);
      } catch {
        lines.push(...text.push(Buffer.from(`${record}\n`)).map((l) => l.line));
        return;
      }
      if (message.error || message.errorDetail) failure = message.errorDetail?.message ?? message.error;
      if (message.aux?.ID) imageId = message.aux.ID;
      const out = message.stream ?? (message.status ? `${message.status}\n` : undefined);
      if (out) lines.push(...text.push(Buffer.from(out)).map((l) => l.line));
      const built = message.stream && /^Successfully built ([0-9a-f]+)/.exec(message.stream);
      if (built && !imageId) imageId = built[1];
    };
    try {
      for await (const piece of stream as AsyncIterable<Buffer>) {
        for (const r of records.push(piece)) take(r.line);
        while (lines.length > 0) yield lines.shift() as string;
      }
      for (const r of records.end()) take(r.line);
      lines.push(...text.end().map((l) => l.line));
      while (lines.length > 0) yield lines.shift() as string;
    } catch (err) {
      if (request.signal?.aborted) throw request.signal.reason;
      throw new CldpdError('BuildFailed', `The build of ${request.tag} was cut off: ${messageOf(err)}`, { cause: err });
    }
    // dockerode resolves even for a failed build: the failure is only in the stream.
    if (failure) throw new CldpdError('BuildFailed', `The build of ${request.tag} failed: ${failure.trim()}. Fix the pod's Dockerfile and start again.`);
    if (!imageId || !imageId.startsWith('sha256:')) {
      const info = await this.inspectImage(request.tag);
      if (!info) throw new CldpdError('BuildFailed', `The build of ${request.tag} ended without producing an image.`);
      imageId = info.id;
    }
    return imageId;
  }

  /** The digest a build of `request` would be cached under, or undefined when it cannot be told (see baseImages). */
  private async contextDigestOf(request: BuildRequest, files: readonly string[]): Promise<string | undefined> {
    if (!files.includes('Dockerfile')) return undefined;
    const bases = baseImages(await readFile(join(request.contextDir, 'Dockerfile'), 'utf8'));
    if (!bases) return undefined;
    const ids: string[] = [];
    for (const info of await Promise.all(bases.map((b) => this.inspectImage(b)))) {
      if (!info) return undefined;
      ids.push(info.id);
    }
    return contextDigest(request.contextDir, files, { tag: request.tag, buildArgs: request.buildArgs, labels: request.labels, bases: ids });
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    try {
      const info = await this.docker.getImage(ref).inspect();
      const env: Record<string, string> = {};
      for (const pair of info.Config?.Env ?? []) {
        const eq = pair.indexOf('=');
        if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1);
      }
      return { id: info.Id, user: info.Config?.User ?? '', env, workingDir: info.Config?.WorkingDir ?? '', labels: info.Config?.Labels ?? {} };
    } catch (err) {
      if (dockerStatusOf(err) === 404) return undefined;
      throw dockerError(err, `inspect image ${ref}`);
    }
  }

  async ensureVolume(name: string, labels: Readonly<Record<string, string>>): Promise<boolean> {
    try {
      await this.docker.getVolume(name).inspect();
      return false;
    } catch (err) {
      if (dockerStatusOf(err) !== 404) throw dockerError(err, `inspect volume ${name}`);
    }
    try {
      await this.docker.createVolume({ Name: name, Labels: { ...labels } });
      return true;
    } catch (err) {
      if (dockerStatusOf(err) !== 409) throw dockerError(err, `create volume ${name}`);
      return false;
    }
  }

  async listVolumes(labels: Readonly<Record<string, string | undefined>>, options: { readonly sizes?: boolean } = {}): Promise<VolumeInfo[]> {
    let found: Docker.VolumeInspectInfo[];
    try {
      found = (await this.docker.listVolumes({ filters: { label: labelFilters(labels) } })).Volumes ?? [];
    } catch (err) {
      throw dockerError(err, 'list volumes');
    }
    if (found.length === 0) return [];
    const sizes = options.sizes === false ? new Map<string, number>() : await this.volumeSizes();
    return found.map((v) => toVolumeInfo(v, sizes.get(v.Name)));
  }

  /**
   * The sizes of the engine's volumes, from one disk-usage call (`GET /system/df`): the
   * volume list carries none. Only sizes the engine reports (local volumes; other drivers
   * say -1) are in the map. Empty when the call fails: the engine runs one disk-usage
   * operation at a time and refuses a second, and a listing is worth more than its sizes.
   */
  private async volumeSizes(): Promise<Map<string, number>> {
    const sizes = new Map<string, number>();
    let usage: { Volumes?: Array<{ Name?: string; UsageData?: { Size?: number } | null }> | null } | undefined;
    try {
      usage = (await this.docker.df()) as typeof usage;
    } catch {
      return sizes;
    }
    for (const v of usage?.Volumes ?? []) {
      const size = v.UsageData?.Size;
      if (v.Name && typeof size === 'number' && size >= 0) sizes.set(v.Name, size);
    }
    return sizes;
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    try {
      return toVolumeInfo(await this.docker.getVolume(name).inspect(), undefined);
    } catch (err) {
      if (dockerStatusOf(err) === 404) return undefined;
      throw dockerError(err, `inspect volume ${name}`);
    }
  }

  async removeVolume(name: string): Promise<void> {
    try {
      await this.docker.getVolume(name).remove();
    } catch (err) {
      const status = dockerStatusOf(err);
      if (status === 404) return;
      if (status !== 409) throw dockerError(err, `remove volume ${name}`);
      const users = await this.docker.listContainers({ all: true, filters: { volume: [name] } }).catch(() => []);
      const e = err as DockerApiError;
      throw new CldpdError('ContainerFailed', volumeInUseMessage(name, users, e?.json?.message ?? e?.message ?? 'volume is in use'), { cause: err });
    }
  }

  async chownVolumes(image: string, user: string, volumes: readonly { readonly volume: string; readonly path: string }[]): Promise<void> {
    if (volumes.length === 0) return;
    // "name:" is the user's login group (GNU and busybox chown); a bare uid keeps the group,
    // since the image's group of that uid is not known here (it owns the path all the same).
    const owner = user.includes(':') || /^\d+$/.test(user) ? user : `${user}:`;
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        Image: image,
        Entrypoint: ['chown'],
        Cmd: ['--', owner, ...volumes.map((v) => v.path)],
        User: '0:0',
        Labels: { [LABELS.helper]: 'chown' },
        HostConfig: {
          NetworkMode: 'none',
          SecurityOpt: ['no-new-privileges'],
          // chown needs CHOWN; DAC_OVERRIDE lets root reach a path under a directory only its owner may enter.
          CapDrop: ['ALL'],
          CapAdd: ['CHOWN', 'DAC_OVERRIDE'],
          Memory: 64 * 1024 * 1024,
          PidsLimit: 16,
          Mounts: volumes.map((v) => ({ Type: 'volume' as const, Source: v.volume, Target: v.path, ReadOnly: false })),
        },
      });
    } catch (err) {
      throw dockerError(err, `create a container to set the owner of ${volumes.map((v) => v.path).join(', ')}`);
    }
    try {
      let stream: NodeJS.ReadableStream;
      try {
        stream = (await container.attach({ stream: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
        await container.start();
      } catch (err) {
        throw dockerError(err, `run chown in image ${image}`);
      }
      const done = (async () => {
        let said = '';
        const decoder = new StringDecoder('utf8');
        for await (const chunk of demuxDockerStream(stream as AsyncIterable<Buffer>)) said = keepEnd(said + decoder.write(chunk.data), 500);
        const { StatusCode } = (await container.wait()) as { StatusCode: number };
        return { said, StatusCode };
      })();
      const { said, StatusCode } = await within(CHOWN_TIMEOUT_MS, done, () => new CldpdError('ContainerFailed', `chown did not finish within ${CHOWN_TIMEOUT_MS / 1000} s`));
      if (StatusCode !== 0) throw new CldpdError('ContainerFailed', `chown ${owner} exited with ${StatusCode}${said.trim() ? `: ${said.trim()}` : ''}`);
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  async removeHelpers(olderThanMs: number): Promise<number> {
    let found: Docker.ContainerInfo[];
    try {
      found = await this.docker.listContainers({ all: true, filters: { label: [LABELS.helper] } });
    } catch (err) {
      throw dockerError(err, 'list helper containers');
    }
    const old = found.filter((c) => c.Created * 1000 < Date.now() - olderThanMs);
    for (const c of old) await this.docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    return old.length;
  }

  async imageHasPath(image: string, path: string): Promise<boolean> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({ Image: image, Entrypoint: ['/nonexistent'], Cmd: [], Labels: { [LABELS.helper]: 'stat' }, HostConfig: { NetworkMode: 'none' } });
    } catch (err) {
      throw dockerError(err, `look into image ${image}`);
    }
    try {
      await container.infoArchive({ path });
      return true;
    } catch (err) {
      if (dockerStatusOf(err) === 404) return false;
      throw dockerError(err, `look for ${path} in image ${image}`);
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  /**
   * Makes sure the bridge network `name` exists as cldpd's isolated network (no traffic
   * between its containers, labelled as cldpd's); resolves true when it was missing.
   * Safe to call at once from many runs and processes: all end up on one network. Throws
   * `ContainerFailed` when a network of that name exists that cldpd did not create isolated.
   * On Podman the network is made and checked by its label alone (Podman has no enable_icc):
   * there only gateways join it, each listening on its run's network, never on this one.
   */
  ensureIsolatedNetwork(name: string): Promise<boolean> {
    let pending = this.creatingNetworks.get(name);
    if (!pending) {
      pending = this.createIsolatedNetwork(name).finally(() => this.creatingNetworks.delete(name));
      this.creatingNetworks.set(name, pending);
    }
    return pending;
  }

  private async createIsolatedNetwork(name: string): Promise<boolean> {
    let found = await this.networksNamed(name);
    let created = false;
    if (found.length === 0) {
      try {
        await this.docker.createNetwork({
          Name: name,
          Driver: 'bridge',
          CheckDuplicate: true,
          Labels: { [ISOLATED_LABEL]: ISOLATED_VALUE },
          Options: { [ICC_OPTION]: 'false' },
        });
        created = true;
      } catch (err) {
        // 409: another process created it first, which is as good (Podman says so with a 500).
        if (dockerStatusOf(err) !== 409 && !isPodmanNameTaken(err)) throw dockerError(err, `create network ${name}`);
      }
      found = await this.networksNamed(name);
    }
    if (found.length > 1) {
      // Engines before API 1.44 check for an existing name racily: processes creating the
      // network at once can all succeed, and a name that matches two networks starts no
      // container. Each keeps the oldest and removes the rest, so all agree on one.
      const [, ...extra] = [...found].sort((a, b) => Date.parse(a.Created) - Date.parse(b.Created) || a.Id.localeCompare(b.Id));
      for (const n of extra) await this.docker.getNetwork(n.Id).remove().catch(() => undefined);
      found = await this.networksNamed(name);
    }
    const [network, ...more] = found;
    if (!network || more.length > 0) {
      throw new CldpdError('ContainerFailed', `Docker has ${found.length} networks named "${name}" and cldpd could not keep just one. Remove them ("docker network rm ${name}" for each id "docker network ls --filter name=${name}" lists) and start again.`);
    }
    // Podman keeps no enable_icc (see refuseSharedOnPodman): there the label is all there is to check.
    const apart = network.Options?.[ICC_OPTION] === 'false' || (await this.isPodman());
    if (network.Labels?.[ISOLATED_LABEL] !== ISOLATED_VALUE || !apart) {
      throw new CldpdError('ContainerFailed', `The Docker network "${name}" was not created by cldpd, and containers on it may reach each other. Remove it ("docker network rm ${name}") so cldpd creates its own, or name another network in the pod's pod.json "network".`);
    }
    return created;
  }

  /** Networks named exactly `name` (Docker's name filter also matches parts of names). */
  private async networksNamed(name: string): Promise<Docker.NetworkInspectInfo[]> {
    try {
      return (await this.docker.listNetworks({ filters: { name: [name] } })).filter((n) => n.Name === name);
    } catch (err) {
      throw dockerError(err, `list networks named ${name}`);
    }
  }

  async run(spec: ContainerSpec): Promise<ProcessHandle> {
    await this.refuseSharedOnPodman(spec);
    if (spec.network === ISOLATED_NETWORK) await this.ensureIsolatedNetwork(ISOLATED_NETWORK);
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer(toCreateOptions(spec, await this.engineKind()));
    } catch (err) {
      throw dockerError(err, `create container ${spec.name}`);
    }
    try {
      if (spec.files && spec.files.length > 0) await this.upload(container, spec.files);
      // Attach before start, so not a byte of output is missed.
      const stream = (await container.attach({ stream: true, stdout: true, stderr: true, ...(spec.stdin ? { stdin: true, hijack: true } : {}) })) as NodeJS.ReadWriteStream;
      await container.start();
      return {
        containerId: container.id,
        output: this.outputOf(container.id, stream as AsyncIterable<Buffer>),
        ...(spec.stdin ? { input: inputOf(stream) } : {}),
        wait: async () => {
          try {
            const result = (await container.wait()) as { StatusCode: number };
            return result.StatusCode;
          } catch (err) {
            throw dockerError(err, `wait for container ${spec.name}`);
          }
        },
      };
    } catch (err) {
      await container.remove({ force: true }).catch(() => undefined);
      throw dockerError(err, `start container ${spec.name}`);
    }
  }

  private async upload(container: Docker.Container, files: readonly ContainerFile[]): Promise<void> {
    await container.putArchive(tarOf(files), { path: '/' });
  }

  async writeFiles(containerId: string, files: readonly ContainerFile[]): Promise<void> {
    try {
      await this.upload(this.docker.getContainer(containerId), files);
    } catch (err) {
      throw dockerError(err, `write ${files.map((f) => f.path).join(', ')} into container ${containerId}`);
    }
  }

  async createTerminal(spec: ContainerSpec): Promise<string> {
    await this.refuseSharedOnPodman(spec);
    if (spec.network === ISOLATED_NETWORK) await this.ensureIsolatedNetwork(ISOLATED_NETWORK);
    try {
      return (await this.docker.createContainer(toCreateOptions({ ...spec, tty: true, stdin: true }, await this.engineKind()))).id;
    } catch (err) {
      throw dockerError(err, `create container ${spec.name}`);
    }
  }

  async startTerminal(containerId: string, size: TerminalSize): Promise<TerminalProcess> {
    const container = this.docker.getContainer(containerId);
    try {
      // Attach before start, so not a byte it shows is missed.
      const stream = (await container.attach({ stream: true, stdin: true, stdout: true, stderr: true, hijack: true })) as NodeJS.ReadWriteStream;
      stream.on('error', () => undefined); // a write after the process ended is no one's error
      await container.start();
      // Asked for at once, so the exit code is known even once the container is removed.
      const exited = container.wait().then((r: { StatusCode: number }) => r.StatusCode, (err: unknown) => {
        throw dockerError(err, `wait for container ${containerId}`);
      });
      exited.catch(() => undefined);
      const resize = async (s: TerminalSize): Promise<void> => {
        await container.resize({ h: s.rows, w: s.columns }).catch((err: unknown) => {
          // A container that has just ended has no window to set.
          if (dockerStatusOf(err) !== 404 && dockerStatusOf(err) !== 409 && dockerStatusOf(err) !== 500) throw dockerError(err, `resize the terminal of container ${containerId}`);
        });
      };
      await resize(size);
      return {
        containerId,
        stream,
        resize,
        wait: () => exited,
      };
    } catch (err) {
      throw dockerError(err, `start container ${containerId}`);
    }
  }

  async readFile(containerId: string, path: string, maxBytes: number): Promise<FileRead | undefined> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.getContainer(containerId).getArchive({ path });
    } catch (err) {
      if (dockerStatusOf(err) === 404) return undefined;
      throw dockerError(err, `read ${path} in container ${containerId}`);
    }
    const chunks: Buffer[] = [];
    let bytes = 0;
    // The archive of a file is the file and its headers: a few blocks more than the file.
    const bound = maxBytes + 64 * 1024;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      bytes += chunk.length;
      if (bytes > bound) {
        (stream as NodeJS.ReadableStream & { destroy?: () => void }).destroy?.();
        throw new CldpdError('ContainerFailed', `${path} in container ${containerId} is larger than ${maxBytes} bytes, more than cldpd reads.`);
      }
      chunks.push(chunk);
    }
    const found = firstFileOf(Buffer.concat(chunks));
    if ('kind' in found) throw new CldpdError('ContainerFailed', `${path} in container ${containerId} is ${found.kind}, not a regular file.`);
    if (found.content.length > maxBytes) throw new CldpdError('ContainerFailed', `${path} in container ${containerId} is larger than ${maxBytes} bytes, more than cldpd reads.`);
    return found;
  }

  async readVolumeFile(image: string, volumes: readonly { readonly volume: string; readonly path: string }[], path: string, maxBytes: number): Promise<FileRead | undefined> {
    let container: Docker.Container;
    try {
      container = await this.docker.createContainer({
        Image: image, Entrypoint: ['/nonexistent'], Cmd: [], Labels: { [LABELS.helper]: 'read' },
        HostConfig: { NetworkMode: 'none', Mounts: volumes.map((v) => ({ Type: 'volume' as const, Source: v.volume, Target: v.path, ReadOnly: true })) },
      });
    } catch (err) {
      throw dockerError(err, `create a container to read ${path} from image ${image}`);
    }
    try {
      return await this.readFile(container.id, path, maxBytes);
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  }

  async hasFile(containerId: string, path: string): Promise<boolean> {
    try {
      await this.docker.getContainer(containerId).infoArchive({ path });
      return true;
    } catch (err) {
      if (dockerStatusOf(err) === 404) return false;
      throw dockerError(err, `look for ${path} in container ${containerId}`);
    }
  }

  async attach(containerId: string): Promise<ProcessHandle> {
    const container = this.docker.getContainer(containerId);
    try {
      await container.inspect();
    } catch (err) {
      throw dockerError(err, `find container ${containerId}`);
    }
    return {
      containerId,
      output: this.outputOf(containerId, undefined),
      wait: async () => {
        try {
          const result = (await container.wait()) as { StatusCode: number };
          return result.StatusCode;
        } catch (err) {
          throw dockerError(err, `wait for container ${containerId}`);
        }
      },
    };
  }

  async exec(containerId: string, cmd: readonly string[], options: { env?: Readonly<Record<string, string>>; workdir?: string; user?: string }): Promise<ProcessHandle> {
    try {
      const exec = await this.docker.getContainer(containerId).exec({
        Cmd: [...cmd],
        AttachStdout: true,
        AttachStderr: true,
        Tty: false,
        ...(options.env ? { Env: Object.entries(options.env).map(([k, v]) => `${k}=${v}`) } : {}),
        ...(options.workdir ? { WorkingDir: options.workdir } : {}),
        ...(options.user ? { User: options.user } : {}),
      });
      const stream = (await exec.start({ hijack: true, stdin: false })) as NodeJS.ReadableStream;
      return {
        containerId,
        output: demuxDockerStream(stream as AsyncIterable<Buffer>),
        wait: async () => {
          // The stream has ended; Docker may take a moment to record the exit code.
          const deadline = Date.now() + EXEC_EXIT_WAIT_MS;
          for (let attempt = 0; Date.now() < deadline; attempt++) {
            const info = await exec.inspect().catch((err: unknown) => {
              throw dockerError(err, `read the exit code of an exec in ${containerId}`);
            });
            if (!info.Running && info.ExitCode !== null && info.ExitCode !== undefined) return info.ExitCode;
            await new Promise((r) => setTimeout(r, Math.min(10 * 2 ** attempt, 500)));
          }
          throw new CldpdError('ContainerFailed', `The exec in container ${containerId} closed its output but Docker reported no exit code within ${EXEC_EXIT_WAIT_MS / 1000} s.`);
        },
      };
    } catch (err) {
      throw dockerError(err, `exec in container ${containerId}`);
    }
  }

  async stop(containerId: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(containerId).stop({ t: graceSeconds });
    } catch (err) {
      const status = dockerStatusOf(err);
      if (status === 304 || status === 404) return;
      throw dockerError(err, `stop container ${containerId}`);
    }
  }

  async remove(containerId: string): Promise<void> {
    try {
      await this.docker.getContainer(containerId).remove({ force: true, v: false });
    } catch (err) {
      const status = dockerStatusOf(err);
      if (status === 404 || status === 409) return;
      throw dockerError(err, `remove container ${containerId}`);
    }
  }

  async list(labels: Readonly<Record<string, string | undefined>>): Promise<ContainerInfo[]> {
    try {
      const found = await this.docker.listContainers({ all: true, filters: { label: labelFilters(labels) } });
      return found.map((c) => ({
        id: c.Id,
        name: (c.Names[0] ?? '').replace(/^\//, ''),
        labels: c.Labels ?? {},
        state: c.State,
        createdAt: c.Created * 1000,
        command: c.Command,
        volumes: (c.Mounts ?? []).flatMap((m) => (m.Type === 'volume' && m.Name ? [m.Name] : [])),
      }));
    } catch (err) {
      throw dockerError(err, 'list containers');
    }
  }

  async containerEnv(containerId: string): Promise<Record<string, string>> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return Object.fromEntries((info.Config.Env ?? []).map((e) => [e.slice(0, Math.max(0, e.indexOf('='))), e.slice(e.indexOf('=') + 1)]));
    } catch (err) {
      if (dockerStatusOf(err) === 404) return {};
      throw dockerError(err, `inspect container ${containerId}`);
    }
  }

  async isRunning(containerId: string): Promise<boolean | undefined> {
    try {
      const info = await this.docker.getContainer(containerId).inspect();
      return info.State.Running;
    } catch (err) {
      if (dockerStatusOf(err) === 404) return undefined;
      throw dockerError(err, `inspect container ${containerId}`);
    }
  }

  /**
   * The output of a container's main process: `attached` (its attach stream; none: from its
   * log) and, when that ends or breaks while the container still runs (a connection cut,
   * an engine that closed it), the rest from the container's log, followed to its exit. The
   * log is read from the start, less what was given already (counted per stream, as a
   * re-attach after a restart counts it), so no output is lost or given twice, and the
   * output ends only once the container has.
   */
  private async *outputOf(containerId: string, attached: AsyncIterable<Buffer> | undefined): AsyncGenerator<OutputChunk> {
    const given: Record<OutputChunk['stream'], Given> = { stdout: { lines: 0, tail: 0 }, stderr: { lines: 0, tail: 0 } };
    for (let follows = 0; ; follows++) {
      const left = { stdout: { ...given.stdout }, stderr: { ...given.stderr } };
      let broke: unknown;
      try {
        const source = attached ? demuxDockerStream(attached) : this.logs(containerId, 0);
        attached = undefined;
        for await (const chunk of source) {
          const data = follows === 0 ? chunk.data : afterGiven(left[chunk.stream], chunk.data);
          if (data.length === 0) continue;
          countGiven(given[chunk.stream], data);
          yield data === chunk.data ? chunk : { stream: chunk.stream, data };
        }
      } catch (err) {
        broke = err;
      }
      // A stream that ended while the container still runs was cut, whatever it said.
      const running = await this.isRunning(containerId).catch(() => undefined);
      if (broke === undefined && running !== true) return;
      // Gone, or the engine does not answer: nothing to follow the output in.
      if (running === undefined) throw broke instanceof CldpdError ? broke : dockerError(broke, `read the output of container ${containerId}`);
      if (follows >= MAX_FOLLOWS) {
        throw new CldpdError('ContainerFailed', `The output of container ${containerId} was cut off ${follows + 1} times while it ran; Docker's log of it ("docker logs ${containerId}") has it whole.`);
      }
    }
  }

  async *logs(containerId: string, sinceMs: number): AsyncGenerator<OutputChunk> {
    let stream: NodeJS.ReadableStream;
    try {
      stream = (await this.docker.getContainer(containerId).logs({
        follow: true,
        stdout: true,
        stderr: true,
        since: Math.floor(sinceMs / 1000),
      })) as NodeJS.ReadableStream;
    } catch (err) {
      throw dockerError(err, `read the logs of container ${containerId}`);
    }
    yield* demuxDockerStream(stream as AsyncIterable<Buffer>);
  }
}
