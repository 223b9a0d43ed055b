import { createHash } from 'node:crypto';
import { LABELS, sessionLabels } from './labels.js';
import type { Pod } from './pod.js';
import { GATE_BREAKERS } from './pod-config.js';
import type { ContainerFile, ContainerSpec, ImageInfo, MountSpec } from './runner.js';
import type { GitHubAccess } from './github-access.js';
import type { PersistedVolume } from './session-store.js';

/** The container user's home in `image`: its HOME, else /root for root, else /home/<user>. */
export function imageHome(image: ImageInfo): string {
  if (image.env.HOME) return image.env.HOME;
  const user = image.user.split(':')[0] ?? '';
  return user === '' || user === 'root' || user === '0' ? '/root' : `/home/${user}`;
}

/**
 * Maps each persisted path of the pod to a named volume. `~` is the container user's home.
 * Volumes are keyed by `key` (pod and issue, or the session id when there is no issue), so
 * every run of a pod for one issue finds the same files.
 */
export function persistedVolumes(persist: readonly string[], image: ImageInfo, key: string): PersistedVolume[] {
  const home = imageHome(image);
  const paths = persist.map((p) => (p === '~' ? home : p.startsWith('~/') ? `${home}/${p.slice(2)}` : p));
  return [...new Set(paths)].map((path) => ({
    path,
    volume: `cldpd-${key}-${createHash('sha256').update(path).digest('hex').slice(0, 8)}`.slice(0, 200),
  }));
}

/** Labels of a persisted volume. */
export function volumeLabels(input: { sessionId: string; pod: string; hostId: string; issueUrl?: string | undefined; path: string }): Record<string, string> {
  return { ...sessionLabels(input), [LABELS.path]: input.path };
}

/** Inputs of {@link buildContainerSpec}. */
export interface ContainerSpecInput {
  readonly pod: Pod;
  readonly sessionId: string;
  readonly containerName: string;
  readonly image: string;
  readonly cmd: readonly string[];
  readonly hostId: string;
  readonly issueUrl?: string | undefined;
  readonly run: number;
  readonly volumes: readonly PersistedVolume[];
  /** The host's environment, read for the pod's inheritEnv names only. */
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  /** Open the process's standard input (the command takes its prompt there). */
  readonly stdin: boolean;
  /** Variables the agent needs beyond the pod's own (see agentEnvOf); the pod's env wins. */
  readonly agentEnv?: Readonly<Record<string, string>>;
  /** Files the agent needs in the container before it starts (see agentFilesOf). */
  readonly agentFiles?: readonly ContainerFile[];
  /** What hands the run its repository token (see GitHubAccess): wins over the pod's env, which cannot know the token. */
  readonly access?: Pick<GitHubAccess, 'env' | 'files'>;
  /**
   * The run's egress gateway, for a gated pod: the container joins `network` (and nothing
   * else), and `env` makes its last word on the environment (the proxy variables, the model
   * endpoint through the gateway, no model key).
   */
  readonly egress?: {
    readonly network: string;
    readonly env: (env: Record<string, string>) => Record<string, string>;
    /** The gateway's address: the container's name server, which answers nothing (no lookup leaves through Docker's DNS). */
    readonly dns: string;
  };
}

/** The environment of a pod's container: pod.json env, then the inherited host variables that are set. */
export function containerEnv(pod: Pod, hostEnv: Readonly<Record<string, string | undefined>>, sessionId: string): Record<string, string> {
  const env: Record<string, string> = { ...pod.config.env };
  for (const name of pod.config.inheritEnv) {
    const value = hostEnv[name];
    if (value !== undefined) env[name] = value;
  }
  env.CLDPD_SESSION_ID = sessionId;
  return env;
}

/** Pure: the container a session run needs, with labels, limits and mounts. */
export function buildContainerSpec(input: ContainerSpecInput): ContainerSpec {
  const { pod } = input;
  const gated = input.egress?.env ?? ((env: Record<string, string>) => env);
  const binds: MountSpec[] = pod.config.mounts.map((m) => ({ type: 'bind', source: m.source, target: m.target, readOnly: m.readOnly }));
  const volumes: MountSpec[] = input.volumes.map((v) => ({ type: 'volume', source: v.volume, target: v.path, readOnly: false }));
  return {
    name: input.containerName,
    image: input.image,
    cmd: [...input.cmd],
    env: gated({ ...input.agentEnv, ...containerEnv(pod, input.hostEnv, input.sessionId), ...input.access?.env() }),
    workdir: pod.config.workdir,
    labels: { ...sessionLabels({ sessionId: input.sessionId, pod: pod.name, hostId: input.hostId, issueUrl: input.issueUrl }), [LABELS.run]: String(input.run) },
    mounts: [...binds, ...volumes],
    memoryBytes: pod.config.memoryBytes,
    cpus: pod.config.cpus,
    pids: pod.config.pids,
    network: input.egress?.network ?? pod.config.network,
    // No IPv6 either: a gated container's one way out is its gateway.
    ...(input.egress ? { sysctls: { 'net.ipv6.conf.all.disable_ipv6': '1' }, dns: [input.egress.dns] } : {}),
    // A pod gated by its repository's list (it is open by its own) gives up what would route around the gateway.
    capAdd: input.egress ? pod.config.capAdd.filter((c) => !GATE_BREAKERS.includes(c)) : pod.config.capAdd,
    stopGraceSeconds: pod.config.stopGraceSeconds,
    stdin: input.stdin,
    ...(input.access || input.agentFiles?.length ? { files: [...(input.agentFiles ?? []), ...(input.access?.files() ?? [])] } : {}),
  };
}
