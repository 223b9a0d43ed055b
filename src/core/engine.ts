import type Docker from 'dockerode';

/**
 * The container engine behind DOCKER_HOST, as cldpd tells it apart: Docker, or Podman through
 * its Docker-compatible API, and what of cldpd's needs it cannot meet.
 */
export interface EngineInfo {
  /** `podman` when the engine's `/version` names a Podman component, otherwise `docker`. */
  readonly kind: 'docker' | 'podman';
  /** The engine's own version (Podman's, for Podman). */
  readonly version: string;
  /** The Docker API version it speaks. */
  readonly apiVersion: string;
  /** Whether it runs as an unprivileged user (rootless Docker or Podman); undefined when it does not say. */
  readonly rootless: boolean | undefined;
  /** The cgroup version of its host ('1' or '2'); undefined when it does not say. */
  readonly cgroupVersion: string | undefined;
  /** What cldpd cannot have on this engine, each a sentence that says what follows and what to do. */
  readonly lacks: readonly string[];
}

/** The version reply's parts cldpd reads (dockerode's type has no Components). */
interface VersionReply {
  readonly Version?: string;
  readonly ApiVersion?: string;
  readonly Components?: ReadonlyArray<{ readonly Name?: string; readonly Version?: string }>;
  readonly Platform?: { readonly Name?: string };
}

/** Pure: whether a `/version` reply is Podman's (its components, or its platform, name it). */
export function isPodmanVersion(reply: VersionReply): boolean {
  return (reply.Components ?? []).some((c) => /podman/i.test(c.Name ?? '')) || /podman/i.test(reply.Platform?.Name ?? '');
}

/** What Podman's libpod `/info` says that the compatible `/info` does not. */
interface LibpodInfo {
  readonly host?: { readonly security?: { readonly rootless?: boolean }; readonly cgroupVersion?: string };
}

/**
 * Pure: what cldpd lacks on an engine of this kind, rootless or not, on this cgroup version.
 * Each line says what does not work and what to do about it.
 */
export function engineLacks(kind: EngineInfo['kind'], rootless: boolean | undefined, cgroupVersion: string | undefined): string[] {
  const lacks: string[] = [];
  if (kind === 'podman') {
    lacks.push('Podman\'s networks have no switch for traffic between their containers (Docker\'s enable_icc): open pods on cldpd\'s shared network "cldpd" are refused; pods behind their egress gateway (the default), and open pods on a network pod.json "network" names, run');
  }
  if (rootless === true && cgroupVersion === '1') {
    lacks.push('memory, CPU and process limits of pods are not enforced: a rootless engine on cgroup v1 cannot set them; run the engine as root, or boot the host with cgroup v2 (systemd.unified_cgroup_hierarchy=1)');
  }
  return lacks;
}

/**
 * Asks the engine which it is: `/version` (Podman names itself in Components), then, for
 * Podman, libpod's `/info` (rootless, cgroup version), or for Docker the compatible `/info`
 * (a "name=rootless" security option). Throws what dockerode throws when `/version` fails;
 * a failed `/info` only leaves rootless and the cgroup version unknown.
 */
export async function detectEngine(docker: Docker): Promise<EngineInfo> {
  const v = (await docker.version()) as VersionReply;
  const kind = isPodmanVersion(v) ? 'podman' : 'docker';
  let rootless: boolean | undefined;
  let cgroupVersion: string | undefined;
  if (kind === 'podman') {
    const info = (await libpodGet(docker, '/v4.0.0/libpod/info').catch(() => undefined)) as LibpodInfo | undefined;
    rootless = info?.host?.security?.rootless;
    const cg = info?.host?.cgroupVersion;
    cgroupVersion = cg ? cg.replace(/^v/, '') : undefined;
  } else {
    const info = (await docker.info().catch(() => undefined)) as { SecurityOptions?: string[]; CgroupVersion?: string } | undefined;
    rootless = info ? (info.SecurityOptions ?? []).some((o) => o.split(',').includes('name=rootless')) : undefined;
    cgroupVersion = info?.CgroupVersion;
  }
  return { kind, version: v.Version ?? '?', apiVersion: v.ApiVersion ?? '?', rootless, cgroupVersion, lacks: engineLacks(kind, rootless, cgroupVersion) };
}

/** One call to Podman's own (libpod) API through dockerode's connection; resolves with its JSON body. */
export function libpodGet(docker: Docker, path: string): Promise<unknown> {
  return libpodCall(docker, 'GET', path, undefined, { 200: true });
}

/**
 * One call to Podman's own (libpod) API through dockerode's connection (the same
 * DOCKER_HOST, socket or TLS). `statusCodes` as docker-modem takes them: true for success,
 * a text for a failure it throws with that status.
 */
export function libpodCall(docker: Docker, method: 'GET' | 'POST', path: string, body: object | undefined, statusCodes: Record<number, boolean | string>): Promise<unknown> {
  const modem = (docker as unknown as { modem: { dial: (options: object, callback: (err: unknown, data: unknown) => void) => void } }).modem;
  return new Promise((resolve, reject) => {
    modem.dial({ path, method, options: body ?? {}, statusCodes, ...(body ? { headers: { 'Content-Type': 'application/json' } } : {}) }, (err, data) => (err ? reject(err) : resolve(data)));
  });
}
