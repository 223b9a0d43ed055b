import type { EngineInfo } from './engine.js';
import type { GatewayConfig } from '../gateway/config.js';

/** A file the runner writes into a container (created or running) before the agent reads it. */
export interface ContainerFile {
  readonly path: string;
  readonly content: string;
  readonly mode: number;
  /** The numeric owner the file gets; root (0:0) when absent. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

/** A regular file as read out of a container: its bytes, owner and mode. */
export interface FileRead {
  readonly content: Buffer;
  readonly uid: number;
  readonly gid: number;
  readonly mode: number;
}

/** A terminal's window: columns and rows. */
export interface TerminalSize {
  readonly columns: number;
  readonly rows: number;
}

/**
 * A process on a terminal (a pseudo-terminal Docker allocates): `stream` carries its raw
 * bytes both ways (what is typed in, what the terminal shows out; one stream, not split into
 * stdout and stderr), `resize` sets its window, `wait()` resolves with its exit code.
 */
export interface TerminalProcess {
  readonly containerId: string;
  readonly stream: NodeJS.ReadWriteStream;
  resize(size: TerminalSize): Promise<void>;
  wait(): Promise<number>;
}

/** A piece of a process's output, as the container wrote it. */
export interface OutputChunk {
  readonly stream: 'stdout' | 'stderr';
  readonly data: Buffer;
}

/**
 * The standard input of a process. `write` resolves once the engine has taken the text (a
 * process that has ended takes nothing and it resolves all the same); `end` closes the
 * process's input (it reads end-of-file). Idempotent.
 */
export interface ProcessInput {
  write(text: string): Promise<void>;
  end(): void;
}

/**
 * A process running in a container: the container's main process or an exec.
 * `output` is single-use; reading it slowly slows the process down (back-pressure), it
 * never loses data. `wait()` resolves with the exit code once the process has ended.
 * `input` is there when the process was started with its standard input open.
 */
export interface ProcessHandle {
  readonly containerId: string;
  readonly output: AsyncIterable<OutputChunk>;
  readonly input?: ProcessInput;
  wait(): Promise<number>;
}

/** A mount of a container: a host directory or a named volume. */
export interface MountSpec {
  readonly type: 'bind' | 'volume';
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

/**
 * The network of a pod whose pod.json names none: a bridge network of cldpd's own, which
 * the runner creates when it is missing. Inter-container communication is off on it, so a
 * container reaches the outside world (and the host) but no other container, of this pod
 * or another; on Docker's default `bridge`, every container reaches every other.
 */
export const ISOLATED_NETWORK = 'cldpd';

/**
 * The Linux capabilities a pod's container keeps; every other one is dropped. Root in the
 * container can still install packages (apt drops to its own user: SETUID, SETGID; dpkg sets
 * owners and modes: CHOWN, FOWNER, FSETID, DAC_OVERRIDE), run git and build tools, signal its
 * own processes (KILL) and serve on a low port (NET_BIND_SERVICE). Of Docker's defaults it
 * loses NET_RAW (raw packets: spoofing on the network), MKNOD, AUDIT_WRITE, SETFCAP,
 * SYS_CHROOT and SETPCAP, which an agent does not need; pod.json `capAdd` gives them back one
 * by one.
 */
export const AGENT_CAPABILITIES: readonly string[] = Object.freeze([
  'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'NET_BIND_SERVICE',
]);

/** Everything needed to create a container; built by `buildContainerSpec`, pure data. */
export interface ContainerSpec {
  readonly name: string;
  readonly image: string;
  readonly cmd: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly workdir: string | undefined;
  readonly labels: Readonly<Record<string, string>>;
  readonly mounts: readonly MountSpec[];
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly pids: number;
  /** A Docker network mode or network name; {@link ISOLATED_NETWORK} is created when missing. */
  readonly network: string;
  /**
   * Linux capabilities (names without `CAP_`) the container gets beyond
   * {@link AGENT_CAPABILITIES}; every capability in neither is dropped. None when absent.
   */
  readonly capAdd?: readonly string[];
  readonly stopGraceSeconds: number;
  /**
   * The container's name servers (Docker's `--dns`), in place of the host's. A gated
   * container's is its gateway, which serves no DNS: Docker's own DNS server then has nothing
   * to forward a lookup to (engines before 26.0 forwarded an internal network's lookups to a
   * host resolver on loopback, CVE-2024-29018).
   */
  readonly dns?: readonly string[];
  /** Open the process's standard input (closed for good once the runner's `end()` is called). */
  readonly stdin: boolean;
  /** Give the process a terminal (see Runner `createTerminal`); none when absent. */
  readonly tty?: boolean;
  /** Files written into the container after it is created and before it starts (parent directories made). */
  readonly files?: readonly ContainerFile[];
  /**
   * Kernel settings of the container's own namespaces (Docker's `--sysctl`). A container on
   * its run's egress network (`<name>-egress`, see Runner.openGateway) gets IPv6 turned off
   * whether or not they say so.
   */
  readonly sysctls?: Readonly<Record<string, string>>;
}

/** What a run's egress gateway needs (see core/egress.ts and src/gateway). */
export interface GatewaySpec {
  /** The agent container's name: the gateway's container and its internal network are named after it. */
  readonly name: string;
  /** Labels of the gateway's container and network (see LABELS.gateway). */
  readonly labels: Readonly<Record<string, string>>;
  /** What the gateway enforces; it reaches its container as the CLDPD_GATEWAY variable. */
  readonly config: GatewayConfig;
  /** The network the gateway reaches the outside by: {@link ISOLATED_NETWORK} (created when missing) or one the operator names. */
  readonly outside: string;
  /** Names the gateway resolves to fixed addresses (Docker's ExtraHosts): for names no DNS server knows. */
  readonly hosts?: Readonly<Record<string, string>>;
}

/** A run's egress gateway, running. */
export interface GatewayHandle {
  readonly containerId: string;
  /** The run's internal network: the agent's container joins it and reaches the gateway there, and nothing else. */
  readonly network: string;
  /** The gateway's address on that network. */
  readonly address: string;
  readonly port: number;
}

/** A request to build an image from a directory holding a Dockerfile. */
export interface BuildRequest {
  readonly tag: string;
  readonly contextDir: string;
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly labels: Readonly<Record<string, string>>;
  /** Aborting it ends the build with `BuildFailed`. */
  readonly signal?: AbortSignal;
}

/** What cldpd needs to know of an image. */
export interface ImageInfo {
  readonly id: string;
  readonly user: string;
  readonly env: Readonly<Record<string, string>>;
  readonly workingDir: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A container found by label. */
export interface ContainerInfo {
  readonly id: string;
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Docker's state: created, running, paused, restarting, removing, exited or dead. */
  readonly state: string;
  readonly createdAt: number;
  /** The command it runs, as Docker shows it (`sh -c '…'`); absent when the runner cannot tell. */
  readonly command?: string;
  /** Names of the named volumes it mounts; absent when the runner cannot tell. */
  readonly volumes?: readonly string[];
}

/** A named volume found by label. */
export interface VolumeInfo {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** When the engine created it (epoch ms); undefined when the engine does not say. */
  readonly createdAt: number | undefined;
  /**
   * The bytes it holds, as the engine measured them when asked; undefined when the engine
   * does not report it (a volume driver that cannot tell, or the measuring failed). Never a
   * made-up 0.
   */
  readonly sizeBytes: number | undefined;
}

/**
 * The only seam that knows containers exist. Every method that talks to the engine throws
 * `DockerUnavailable` when it does not answer, and `ContainerFailed` when it refuses.
 */
export interface Runner {
  /** Checks the engine answers; resolves with its version and, where the runner tells, which engine it is (see EngineInfo). */
  preflight(): Promise<{ version: string; apiVersion: string } & Partial<EngineInfo>>;
  /** Builds an image, yielding its output line by line; throws `BuildFailed` on a build error or abort. Resolves with the image id. */
  build(request: BuildRequest): AsyncGenerator<string, string>;
  /** The image's user, env and working directory; undefined when there is no such image. */
  inspectImage(ref: string): Promise<ImageInfo | undefined>;
  /** Creates the named volume with these labels unless it exists; resolves true when it created it. */
  ensureVolume(name: string, labels: Readonly<Record<string, string>>): Promise<boolean>;
  /**
   * Volumes carrying every label of `labels` (an undefined value matches any value of that
   * label), with their sizes measured in one pass over the engine's disk usage, which can
   * take a while on a busy engine; `{ sizes: false }` skips it (every `sizeBytes` undefined).
   */
  listVolumes(labels: Readonly<Record<string, string | undefined>>, options?: { readonly sizes?: boolean }): Promise<VolumeInfo[]>;
  /** The named volume, without its size (`sizeBytes` undefined); undefined when there is none. */
  inspectVolume(name: string): Promise<VolumeInfo | undefined>;
  /**
   * Removes the named volume. Idempotent: a volume that is not there is fine. Throws
   * `ContainerFailed` when a container (running or not) still uses it, naming the
   * container(s) and saying what to do.
   */
  removeVolume(name: string): Promise<void>;
  /**
   * Creates a container, attaches to its output, then starts it: no output is missed. The
   * container keeps only the capabilities of the spec (see `capAdd`) and never gains more
   * (no-new-privileges). On {@link ISOLATED_NETWORK}, that network is created first when
   * missing; runs creating it at once end up sharing one.
   */
  run(spec: ContainerSpec): Promise<ProcessHandle>;
  /**
   * Re-attaches to an existing container (running or exited, not removed): its whole output
   * since it started, from Docker's log, following it until it exits; `wait()` gives its exit code.
   */
  attach(containerId: string): Promise<ProcessHandle>;
  /**
   * Writes files into a container, created or running, replacing what is there (parent
   * directories are made). The files never reach an image or a log.
   */
  writeFiles(containerId: string, files: readonly ContainerFile[]): Promise<void>;
  /**
   * Creates a container for a person's terminal from `spec` (`tty` set), without starting
   * it: files may be read and written into it first. Resolves with its id.
   */
  createTerminal(spec: ContainerSpec): Promise<string>;
  /**
   * Attaches to a container made by createTerminal, with its input open, then starts it at
   * `size`: nothing it shows is missed.
   */
  startTerminal(containerId: string, size: TerminalSize): Promise<TerminalProcess>;
  /**
   * One regular file of a container (created or running; its volumes included), with its
   * owner and mode; undefined when there is none. Throws `ContainerFailed` when it is not a
   * regular file or is larger than `maxBytes`.
   */
  readFile(containerId: string, path: string, maxBytes: number): Promise<FileRead | undefined>;
  /**
   * One regular file of the named volumes mounted in `image` (at their paths), read through
   * a helper container that is created, never started, and removed; as {@link readFile}.
   */
  readVolumeFile(image: string, volumes: readonly { readonly volume: string; readonly path: string }[], path: string, maxBytes: number): Promise<FileRead | undefined>;
  /** Whether `path` exists in the container's filesystem (created or running). */
  hasFile(containerId: string, path: string): Promise<boolean>;
  /** Runs a command inside a running container; as `user` (a name or uid) when given, else as the container's user. */
  exec(containerId: string, cmd: readonly string[], options: { env?: Readonly<Record<string, string>>; workdir?: string; user?: string }): Promise<ProcessHandle>;
  /**
   * Makes the named volumes' top directories owned by `user` (the image's user: a name or
   * uid[:gid]), by running `chown` as root in a short-lived container of `image` with the
   * volumes mounted, no network, at most a minute. Throws `ContainerFailed` when that cannot
   * be done (the image has no chown, the engine refuses, it takes too long).
   */
  chownVolumes(image: string, user: string, volumes: readonly { readonly volume: string; readonly path: string }[]): Promise<void>;
  /**
   * Removes helper containers (see chownVolumes, imageHasPath) created more than
   * `olderThanMs` ago: what a process that died while one was up left behind. Resolves with
   * how many it removed.
   */
  removeHelpers(olderThanMs: number): Promise<number>;
  /** Whether `path` exists in the image's filesystem (looked up in a created, never started, container). */
  imageHasPath(image: string, path: string): Promise<boolean>;
  /** SIGTERM, then SIGKILL after `graceSeconds`. Idempotent: a stopped or missing container is fine. */
  stop(containerId: string, graceSeconds: number): Promise<void>;
  /** Removes a container (never its volumes). Idempotent. */
  remove(containerId: string): Promise<void>;
  /** Containers (running or not) carrying every label of `labels`; an undefined value matches any value of that label. */
  list(labels: Readonly<Record<string, string | undefined>>): Promise<ContainerInfo[]>;
  /** Whether the container is running; undefined when it does not exist. */
  isRunning(containerId: string): Promise<boolean | undefined>;
  /** The environment the container was created with; empty when it does not exist. */
  containerEnv(containerId: string): Promise<Record<string, string>>;
  /** The container's output since `sinceMs` (epoch ms, whole seconds), as Docker's log driver kept it; follows a running container until it stops. */
  logs(containerId: string, sinceMs: number): AsyncIterable<OutputChunk>;
  /**
   * Starts the run's egress gateway (see GatewaySpec): a new internal network with no route
   * anywhere, not even to this host, and the gateway's container on it and on `outside`.
   * The gateway is listening when this resolves. Idempotent by `spec.name`: a gateway of that
   * name running already is returned as it is; a stopped one is replaced. Throws
   * `ContainerFailed`, saying why, when it cannot start one (and leaves nothing behind).
   */
  openGateway(spec: GatewaySpec): Promise<GatewayHandle>;
  /** The running gateway of the agent container `name`; undefined when there is none. */
  findGateway(name: string): Promise<GatewayHandle | undefined>;
  /** Removes the gateway of the agent container `name` and its network; idempotent. The agent's container must be gone (or be removed first). */
  closeGateway(name: string): Promise<void>;
  /**
   * Removes the gateways of host `hostId` (LABELS.gatewayHost) that a process which died left
   * behind: those created more than `olderThanMs` ago whose agent's container is gone or has
   * ended, with their networks, and gateway networks as old that have no gateway.
   * `keep(sessionId)` spares the gateway of a session (its LABELS.gateway) that is being
   * started. Resolves with what it removed (container and network names).
   */
  removeStrayGateways(hostId: string, olderThanMs: number, keep?: (sessionId: string) => boolean | Promise<boolean>): Promise<string[]>;
}
