import { PassThrough } from 'node:stream';
import type { BuildRequest, ContainerFile, ContainerInfo, ContainerSpec, FileRead, GatewayHandle, GatewaySpec, ImageInfo, OutputChunk, ProcessHandle, Runner, TerminalProcess, TerminalSize, VolumeInfo } from '../../src/core/index.js';
import { CldpdError } from '../../src/core/index.js';

/** What the next process (run or exec) does: print these chunks, then exit with this code, or wait to be stopped. */
export interface Script {
  chunks: OutputChunk[];
  exitCode: number;
  /** Keep running after the chunks until stopped. */
  hold?: boolean;
  /** Keep running this long after the chunks (unless stopped). */
  delayMs?: number;
  /** More output, printed once `after` resolves (before hold/delay apply). */
  then?: { after: Promise<void>; chunks: OutputChunk[] };
}

interface FakeContainer {
  info: { id: string; name: string; labels: Record<string, string>; state: string; createdAt: number };
  spec: ContainerSpec;
  stop: () => void;
}

export const out = (text: string): OutputChunk => ({ stream: 'stdout', data: Buffer.from(text) });
export const err = (text: string): OutputChunk => ({ stream: 'stderr', data: Buffer.from(text) });

/** A hand-written Runner: scripted builds and processes, with every call recorded. */
export class FakeRunner implements Runner {
  readonly calls: Array<{ method: string; args: unknown[] }> = [];
  readonly containers = new Map<string, FakeContainer>();
  readonly volumes = new Map<string, Record<string, string>>();
  readonly images = new Map<string, ImageInfo>();
  buildLines = ['Step 1/1 : FROM scratch', 'Successfully built 0123456789ab'];
  buildError: string | undefined;
  /** When set, the build waits for this before finishing (or for its abort signal). */
  buildGate: Promise<void> | undefined;
  scripts: Script[] = [];
  /** Used when `scripts` is empty. */
  defaultScript: Script = { chunks: [], exitCode: 0 };
  runError: Error | undefined;
  /** When set, run and attach take this long before the process exists (a slow container creation). */
  launchDelayMs: number | undefined;
  /** Each stop call takes the first of these, if any, and fails with it without stopping anything. */
  stopErrors: Error[] = [];
  private seq = 0;

  constructor(image: ImageInfo = { id: 'sha256:image1', user: 'agent', env: {}, workingDir: '/', labels: {} }) {
    this.images.set(image.id, image);
  }

  async preflight(): Promise<{ version: string; apiVersion: string }> {
    this.calls.push({ method: 'preflight', args: [] });
    return { version: 'fake', apiVersion: '1.41' };
  }

  async *build(request: BuildRequest): AsyncGenerator<string, string> {
    this.calls.push({ method: 'build', args: [request] });
    for (const line of this.buildLines) yield line;
    if (this.buildGate) {
      await Promise.race([
        this.buildGate,
        new Promise((_, reject) => request.signal?.addEventListener('abort', () => reject(request.signal?.reason))),
      ]);
    }
    if (this.buildError) throw new CldpdError('BuildFailed', this.buildError);
    const id = [...this.images.keys()][0] as string;
    this.images.set(request.tag, this.images.get(id) as ImageInfo);
    return id;
  }

  async inspectImage(ref: string): Promise<ImageInfo | undefined> {
    this.calls.push({ method: 'inspectImage', args: [ref] });
    return this.images.get(ref);
  }

  async ensureVolume(name: string, labels: Readonly<Record<string, string>>): Promise<boolean> {
    this.calls.push({ method: 'ensureVolume', args: [name, labels] });
    if (this.volumes.has(name)) return false;
    this.volumes.set(name, { ...labels });
    this.volumeCreatedAt.set(name, Date.now());
    return true;
  }

  /** Sizes listVolumes reports, by volume name; a volume not here has an unknown size. */
  readonly volumeSizes = new Map<string, number>();
  private readonly volumeCreatedAt = new Map<string, number>();

  private volumeInfo(name: string, sizeBytes: number | undefined): VolumeInfo {
    return { name, labels: { ...this.volumes.get(name) }, createdAt: this.volumeCreatedAt.get(name), sizeBytes };
  }

  async listVolumes(labels: Readonly<Record<string, string | undefined>>, options: { readonly sizes?: boolean } = {}): Promise<VolumeInfo[]> {
    this.calls.push({ method: 'listVolumes', args: [labels, options] });
    return [...this.volumes.entries()]
      .filter(([, have]) => Object.entries(labels).every(([k, v]) => (v === undefined ? k in have : have[k] === v)))
      .map(([name]) => this.volumeInfo(name, options.sizes === false ? undefined : this.volumeSizes.get(name)));
  }

  async inspectVolume(name: string): Promise<VolumeInfo | undefined> {
    this.calls.push({ method: 'inspectVolume', args: [name] });
    return this.volumes.has(name) ? this.volumeInfo(name, undefined) : undefined;
  }

  /** Refuses, as Docker does, while a container (running or not) mounts the volume. */
  async removeVolume(name: string): Promise<void> {
    this.calls.push({ method: 'removeVolume', args: [name] });
    const users = [...this.containers.values()].filter((c) => c.spec.mounts.some((m) => m.type === 'volume' && m.source === name));
    if (users.length > 0) {
      throw new CldpdError('ContainerFailed', `The volume ${name} is in use by container ${users.map((c) => `${c.info.name} (${c.info.state})`).join(', ')}.`);
    }
    this.volumes.delete(name);
    this.volumeCreatedAt.delete(name);
  }

  /** When set, chownVolumes fails with this. */
  chownError: Error | undefined;
  /** Volume name → the owner chownVolumes gave it. */
  readonly owners = new Map<string, string>();

  async chownVolumes(image: string, user: string, volumes: readonly { volume: string; path: string }[]): Promise<void> {
    this.calls.push({ method: 'chownVolumes', args: [image, user, volumes] });
    if (this.chownError) throw this.chownError;
    for (const v of volumes) this.owners.set(v.volume, user);
  }

  async removeHelpers(olderThanMs: number): Promise<number> {
    this.calls.push({ method: 'removeHelpers', args: [olderThanMs] });
    return 0;
  }

  /** Paths imageHasPath reports as present. */
  readonly paths = new Set<string>(['/bin/bash']);

  async imageHasPath(image: string, path: string): Promise<boolean> {
    this.calls.push({ method: 'imageHasPath', args: [image, path] });
    return this.paths.has(path);
  }

  /** Everything written to each process's standard input, by container id; `ended` once closed. */
  readonly stdin = new Map<string, { text: string; ended: boolean }>();

  private process(containerId: string, onEnd: () => void): ProcessHandle & { stop: () => void } {
    const script = this.scripts.shift() ?? this.defaultScript;
    let stopped = false;
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const stop = (): void => {
      stopped = true;
      release();
    };
    const output = (async function* () {
      for (const chunk of script.chunks) {
        if (stopped) break;
        yield chunk;
      }
      if (script.then && !stopped) {
        await Promise.race([held, script.then.after]);
        for (const chunk of script.then.chunks) {
          if (stopped) break;
          yield chunk;
        }
      }
      if (script.delayMs && !stopped) await Promise.race([held, new Promise((r) => setTimeout(r, script.delayMs))]);
      if (script.hold && !stopped) await held;
      onEnd();
    })();
    const written = { text: '', ended: false };
    return {
      containerId, output, wait: async () => (stopped ? 143 : script.exitCode), stop,
      input: {
        write: async (text: string) => {
          if (!written.ended) written.text += text;
        },
        end: () => {
          written.ended = true;
        },
      },
      written,
    } as ProcessHandle & { stop: () => void; written: { text: string; ended: boolean } };
  }

  async run(spec: ContainerSpec): Promise<ProcessHandle> {
    this.calls.push({ method: 'run', args: [spec] });
    await this.launchDelay();
    if (this.runError) throw this.runError;
    if ([...this.containers.values()].some((c) => c.info.name === spec.name)) {
      throw new CldpdError('ContainerFailed', `Docker refused to create container ${spec.name}: name in use`);
    }
    const id = `c${++this.seq}`;
    const info = { id, name: spec.name, labels: { ...spec.labels }, state: 'running', createdAt: Date.now() + this.seq };
    const handle = this.process(id, () => {
      info.state = 'exited';
    }) as ProcessHandle & { stop: () => void; written: { text: string; ended: boolean } };
    this.containers.set(id, { info, spec, stop: handle.stop });
    if (spec.files?.length) this.written.set(id, new Map(spec.files.map((f) => [f.path, f.content])));
    if (!spec.stdin) return { containerId: handle.containerId, output: handle.output, wait: handle.wait };
    this.stdin.set(id, handle.written);
    return handle;
  }

  /** Output a re-attached container replays from its log, then its exit code. */
  attachScripts = new Map<string, Script>();

  async attach(containerId: string): Promise<ProcessHandle> {
    this.calls.push({ method: 'attach', args: [containerId] });
    await this.launchDelay();
    const container = this.containers.get(containerId);
    if (!container) throw new CldpdError('ContainerFailed', `no container ${containerId}`);
    const script = this.attachScripts.get(containerId) ?? { chunks: [], exitCode: 0 };
    this.scripts.unshift(script);
    const handle = this.process(containerId, () => {
      container.info.state = 'exited';
    });
    container.stop = handle.stop;
    return { containerId: handle.containerId, output: handle.output, wait: handle.wait };
  }

  /** What writeFiles wrote, by container id then path: the last content of each file. */
  readonly written = new Map<string, Map<string, string>>();

  async writeFiles(containerId: string, files: readonly ContainerFile[]): Promise<void> {
    this.calls.push({ method: 'writeFiles', args: [containerId, files.map((f) => f.path)] });
    if (!this.containers.has(containerId)) throw new CldpdError('ContainerFailed', `no container ${containerId}`);
    const byPath = this.written.get(containerId) ?? new Map<string, string>();
    for (const f of files) byPath.set(f.path, f.content);
    this.written.set(containerId, byPath);
  }

  /** Files readFile and readVolumeFile find, by path (any container). */
  readonly files = new Map<string, FileRead>();
  /** Terminals started, by container id: what was typed, and `leave()` ends the process with its code. */
  readonly terminals = new Map<string, { typed: string; sizes: TerminalSize[]; leave: (code?: number) => void }>();

  async createTerminal(spec: ContainerSpec): Promise<string> {
    this.calls.push({ method: 'createTerminal', args: [spec] });
    if ([...this.containers.values()].some((c) => c.info.name === spec.name)) {
      throw new CldpdError('ContainerFailed', `Docker refused to create container ${spec.name}: name in use`);
    }
    const id = `c${++this.seq}`;
    const info = { id, name: spec.name, labels: { ...spec.labels }, state: 'created', createdAt: Date.now() + this.seq };
    this.containers.set(id, { info, spec, stop: () => undefined });
    return id;
  }

  async startTerminal(containerId: string, size: TerminalSize): Promise<TerminalProcess> {
    this.calls.push({ method: 'startTerminal', args: [containerId, size] });
    const container = this.containers.get(containerId);
    if (!container) throw new CldpdError('ContainerFailed', `no container ${containerId}`);
    container.info.state = 'running';
    const stream = new PassThrough();
    const terminal = { typed: '', sizes: [size], leave: (_code?: number) => undefined as void };
    let exit: (code: number) => void = () => undefined;
    const exited = new Promise<number>((resolve) => (exit = resolve));
    const input = new PassThrough();
    input.on('data', (d: Buffer) => (terminal.typed += d.toString()));
    const end = (code: number): void => {
      if (container.info.state !== 'running') return;
      container.info.state = 'exited';
      stream.end();
      exit(code);
    };
    terminal.leave = (code = 0) => end(code);
    container.stop = () => end(137);
    this.terminals.set(containerId, terminal);
    // Writes go to `input` (what the person typed); reads come from `stream` (what the terminal shows).
    const duplex = Object.assign(stream, { write: input.write.bind(input) }) as unknown as NodeJS.ReadWriteStream;
    return {
      containerId, stream: duplex,
      resize: async (s) => void terminal.sizes.push(s),
      wait: () => exited,
    };
  }

  async readFile(containerId: string, path: string): Promise<FileRead | undefined> {
    this.calls.push({ method: 'readFile', args: [containerId, path] });
    return this.files.get(path);
  }

  async readVolumeFile(image: string, volumes: readonly { volume: string; path: string }[], path: string): Promise<FileRead | undefined> {
    this.calls.push({ method: 'readVolumeFile', args: [image, volumes, path] });
    return this.files.get(path);
  }

  async hasFile(containerId: string, path: string): Promise<boolean> {
    return this.written.get(containerId)?.has(path) ?? false;
  }

  async exec(containerId: string, cmd: readonly string[], options: { env?: Readonly<Record<string, string>>; workdir?: string; user?: string }): Promise<ProcessHandle> {
    this.calls.push({ method: 'exec', args: [containerId, cmd, options] });
    const container = this.containers.get(containerId);
    if (!container || container.info.state !== 'running') throw new CldpdError('ContainerFailed', `container ${containerId} is not running`);
    const handle = this.process(containerId, () => undefined);
    // As in Docker, stopping the container ends the processes exec'd in it too.
    const stopMain = container.stop;
    container.stop = () => {
      handle.stop();
      stopMain();
    };
    return { containerId: handle.containerId, output: handle.output, wait: handle.wait };
  }

  async stop(containerId: string, graceSeconds: number): Promise<void> {
    this.calls.push({ method: 'stop', args: [containerId, graceSeconds] });
    const failure = this.stopErrors.shift();
    if (failure) throw failure;
    const container = this.containers.get(containerId);
    if (!container) return;
    container.stop();
    container.info.state = 'exited';
  }

  async remove(containerId: string): Promise<void> {
    this.calls.push({ method: 'remove', args: [containerId] });
    this.containers.delete(containerId);
  }

  async list(labels: Readonly<Record<string, string | undefined>>): Promise<ContainerInfo[]> {
    return [...this.containers.values()]
      .filter(({ info }) => Object.entries(labels).every(([k, v]) => (v === undefined ? k in info.labels : info.labels[k] === v)))
      .map(({ info, spec }) => ({ ...info, command: spec.cmd.join(' '), volumes: spec.mounts.flatMap((m) => (m.type === 'volume' ? [m.source] : [])) }));
  }

  async containerEnv(containerId: string): Promise<Record<string, string>> {
    return { ...this.containers.get(containerId)?.spec.env };
  }

  async isRunning(containerId: string): Promise<boolean | undefined> {
    const c = this.containers.get(containerId);
    return c ? c.info.state === 'running' : undefined;
  }

  /** What every gateway's log holds: read by `logs`, which ends there (as if each gateway had closed at once). */
  gatewayLog: string[] = [];

  async *logs(containerId: string): AsyncGenerator<OutputChunk> {
    // The core reads a gateway's log only.
    if (!containerId.startsWith('gw-')) return;
    for (const line of this.gatewayLog) yield out(`${line}\n`);
  }

  /** Gateways open, by the agent container's name, with the spec each was opened with. */
  readonly gateways = new Map<string, { spec: GatewaySpec; handle: GatewayHandle }>();

  async openGateway(spec: GatewaySpec): Promise<GatewayHandle> {
    this.calls.push({ method: 'openGateway', args: [spec] });
    const open = this.gateways.get(spec.name);
    if (open) return open.handle;
    const handle = { containerId: `gw-${spec.name}`, network: `${spec.name}-egress`, address: '10.213.0.2', port: spec.config.port };
    this.gateways.set(spec.name, { spec, handle });
    return handle;
  }

  async findGateway(name: string): Promise<GatewayHandle | undefined> {
    return this.gateways.get(name)?.handle;
  }

  async closeGateway(name: string): Promise<void> {
    this.calls.push({ method: 'closeGateway', args: [name] });
    this.gateways.delete(name);
  }

  async removeStrayGateways(hostId: string, olderThanMs: number, keep?: (sessionId: string) => boolean | Promise<boolean>): Promise<string[]> {
    this.calls.push({ method: 'removeStrayGateways', args: [hostId, olderThanMs, keep] });
    return [];
  }

  private async launchDelay(): Promise<void> {
    if (this.launchDelayMs) await new Promise((resolve) => setTimeout(resolve, this.launchDelayMs));
  }

  /** Methods called, in order. */
  methods(): string[] {
    return this.calls.map((c) => c.method);
  }
}
