import { randomInt } from 'node:crypto';
import type Docker from 'dockerode';
import { GATEWAY_ENV, GATEWAY_PORT, parseNotice } from '../gateway/config.js';
import { demuxDockerStream } from './demux.js';
import { CldpdError, messageOf } from './errors.js';
import { libpodCall } from './engine.js';
import { ensureGatewayImage, type GatewayImageOptions } from './gateway-image.js';
import { LABELS } from './labels.js';
import { LineSplitter } from './line-splitter.js';
import type { GatewayHandle, GatewaySpec } from './runner.js';
import { keepEnd } from './text.js';
import { within } from './within.js';

/** The pool the runs' internal networks take their subnets from when none is configured. */
export const DEFAULT_GATEWAY_POOL = '10.213.0.0/16';

/** The size of each run's internal network: 16 addresses (the gateway is .2, the agent gets one of the rest). */
const SUBNET_PREFIX = 28;

/** How many subnets one open tries before it gives up (each refused one was taken meanwhile). */
const SUBNET_ATTEMPTS = 12;

/** How long a new gateway may take to say it listens. */
const LISTEN_TIMEOUT_MS = 15_000;

/** A gateway's limits: a proxy of a few connections at a time needs little. */
const GATEWAY_MEMORY_BYTES = 256 * 1024 * 1024;
const GATEWAY_PIDS = 256;

/** The gateway's log: its notices (one line per refused connection) are bounded like any container's output. */
const GATEWAY_LOG = Object.freeze({ Type: 'json-file', Config: Object.freeze({ 'max-size': '16m', 'max-file': '2' }) });

/** The bridge driver's switches: no address for the host on the bridge, and traffic between its containers on. */
const INHIBIT_IPV4 = 'com.docker.network.bridge.inhibit_ipv4';
const ICC_OPTION = 'com.docker.network.bridge.enable_icc';

/** The names of a run's gateway container and internal network, from its agent container's name. */
export function gatewayNames(name: string): { container: string; network: string } {
  return { container: `${name}-gw`, network: `${name}-egress` };
}

interface DockerApiError {
  statusCode?: number;
  json?: { message?: string };
  message?: string;
}

/** Whether a dockerode failure is the engine not answering (no socket, refused, cut). */
function isUnreachable(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' && ['ECONNREFUSED', 'ENOENT', 'EACCES', 'ECONNRESET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH'].includes(code);
}

function statusOf(err: unknown): number | undefined {
  return (err as DockerApiError | undefined)?.statusCode;
}

function detailOf(err: unknown): string {
  const e = err as DockerApiError | undefined;
  return (e?.json?.message ?? e?.message ?? String(err)).trim();
}

/** An IPv4 network: its first address as a number, and its prefix length. */
export interface Ipv4Net {
  readonly base: number;
  readonly prefix: number;
}

function ipv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

/** Pure: the dotted form of an IPv4 address held as a number. */
export function formatIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** Pure: an IPv4 CIDR (`10.213.0.0/16`), its host bits cleared; undefined for anything else (IPv6 included). */
export function parseCidr(text: string): Ipv4Net | undefined {
  const match = /^([\d.]+)\/(\d{1,2})$/.exec(text.trim());
  const address = match ? ipv4(match[1] as string) : undefined;
  const prefix = match ? Number(match[2]) : NaN;
  if (address === undefined || !(prefix >= 0 && prefix <= 32)) return undefined;
  const size = 2 ** (32 - prefix);
  return { base: address - (address % size), prefix };
}

function overlaps(a: Ipv4Net, b: Ipv4Net): boolean {
  const aEnd = a.base + 2 ** (32 - a.prefix);
  const bEnd = b.base + 2 ** (32 - b.prefix);
  return a.base < bEnd && b.base < aEnd;
}

/**
 * Pure: the /28 subnets of `pool` that overlap none of `taken`, in order. Throws
 * `InvalidInput` when `pool` is not an IPv4 CIDR of /28 or larger.
 */
export function freeSubnets(pool: string, taken: readonly string[]): Ipv4Net[] {
  const net = parseCidr(pool);
  if (!net || net.prefix > SUBNET_PREFIX) {
    throw new CldpdError('InvalidInput', `The gateways' subnet pool "${pool}" is not an IPv4 network of /${SUBNET_PREFIX} or larger (like ${DEFAULT_GATEWAY_POOL}).`);
  }
  const used = taken.flatMap((t) => parseCidr(t) ?? []).filter((t) => overlaps(t, net));
  const free: Ipv4Net[] = [];
  const step = 2 ** (32 - SUBNET_PREFIX);
  for (let base = net.base; base < net.base + 2 ** (32 - net.prefix); base += step) {
    const candidate = { base, prefix: SUBNET_PREFIX };
    if (!used.some((u) => overlaps(u, candidate))) free.push(candidate);
  }
  return free;
}

/**
 * Pure: Docker's create-container body of a run's gateway (see DockerGateways.open): on its
 * internal network at `address`, unprivileged, read-only, never routing a packet, limited.
 */
export function gatewayCreateOptions(spec: GatewaySpec, image: string, address: string): Docker.ContainerCreateOptions {
  const { container, network } = gatewayNames(spec.name);
  return {
    name: container,
    Image: image,
    // It listens on its run's network only: not on the outside one, where other containers might be.
    Env: [`${GATEWAY_ENV}=${JSON.stringify({ ...spec.config, listen: address })}`],
    Labels: { ...spec.labels },
    StopTimeout: 2,
    HostConfig: {
      // An init that passes SIGTERM on: node as process 1 would ignore it.
      Init: true,
      NetworkMode: network,
      ExtraHosts: Object.entries(spec.hosts ?? {}).map(([host, ip]) => `${host}:${ip}`),
      // Docker turns forwarding on in a container's namespace; off, the gateway routes no
      // packet between its two networks whatever a program in it would try.
      Sysctls: { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.forwarding': '0' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Memory: GATEWAY_MEMORY_BYTES,
      MemorySwap: GATEWAY_MEMORY_BYTES,
      PidsLimit: GATEWAY_PIDS,
      // A gateway that crashes comes back (its run's connections need it); one stopped on
      // purpose, or by a restart of the engine (which stops its agent too, never restarted),
      // stays down. A worker's restart does not touch containers: the gateway runs on, and
      // the worker finds it again by name (DockerGateways.find).
      RestartPolicy: { Name: 'on-failure', MaximumRetryCount: 5 },
      LogConfig: { Type: GATEWAY_LOG.Type, Config: { ...GATEWAY_LOG.Config } },
    },
    NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: address } } } },
  };
}

/** Pure: Docker's create-network body of a run's internal network on `subnet`. */
export function internalNetworkOptions(spec: GatewaySpec, subnet: Ipv4Net): Docker.NetworkCreateOptions {
  return {
    Name: gatewayNames(spec.name).network,
    Driver: 'bridge',
    Internal: true,
    CheckDuplicate: true,
    // inhibit_ipv4: the host takes no address on the bridge, so nothing on it reaches the
    // host; icc on: the agent reaches the gateway (the only other container there).
    Options: { [INHIBIT_IPV4]: 'true', [ICC_OPTION]: 'true' },
    IPAM: { Driver: 'default', Config: [{ Subnet: `${formatIpv4(subnet.base)}/${subnet.prefix}` }] },
    Labels: { ...spec.labels },
  };
}

/**
 * Pure: Podman's (libpod) create-network body of a run's internal network on `subnet`:
 * internal (no route out), no name server, labelled as Docker's is. Podman has no
 * inhibit_ipv4 and needs none: the bridge of an internal network gets no IPv4 address, so
 * nothing on it reaches the host.
 */
export function podmanInternalNetwork(spec: GatewaySpec, subnet: Ipv4Net): { name: string; driver: 'bridge'; internal: true; dns_enabled: false; subnets: Array<{ subnet: string }>; labels: Record<string, string> } {
  return {
    name: gatewayNames(spec.name).network,
    driver: 'bridge',
    internal: true,
    dns_enabled: false,
    subnets: [{ subnet: `${formatIpv4(subnet.base)}/${subnet.prefix}` }],
    labels: { ...spec.labels },
  };
}

/** What a {@link DockerGateways} is made with. */
export interface DockerGatewaysOptions {
  /** Makes sure the network a gateway reaches the outside by exists (see GatewaySpec `outside`). */
  readonly ensureOutside: (name: string) => Promise<unknown>;
  /** Whether the engine is Podman, whose runs' internal networks are made through its own API (see podmanInternalNetwork). */
  readonly isPodman?: () => Promise<boolean>;
  /** The IPv4 network the runs' internal networks are cut from, /28 each; {@link DEFAULT_GATEWAY_POOL} when absent. */
  readonly pool?: string;
  /** Where the gateway's image comes from: the node binary and the program (see ensureGatewayImage). */
  readonly image?: GatewayImageOptions;
}

/**
 * The egress gateways of one Docker engine (see Runner.openGateway): each run's internal
 * network, and the gateway container that is its only way out.
 */
export class DockerGateways {
  private image: Promise<string> | undefined;
  /** Opens under way in this process, by agent container name: a second open of one name waits for the first. */
  private readonly opening = new Map<string, Promise<GatewayHandle>>();
  /** Subnets being given to networks in this process, so opens at once do not pick the same. */
  private readonly reserved = new Set<number>();
  private readonly ensureOutside: (name: string) => Promise<unknown>;
  private readonly isPodman: () => Promise<boolean>;
  private readonly pool: string;

  constructor(private readonly docker: Docker, options: DockerGatewaysOptions) {
    this.ensureOutside = options.ensureOutside;
    this.isPodman = options.isPodman ?? (() => Promise.resolve(false));
    this.pool = options.pool ?? DEFAULT_GATEWAY_POOL;
    freeSubnets(this.pool, []); // a pool that is not one fails here, not at the first run
    this.imageOptions = options.image ?? {};
  }

  private readonly imageOptions: GatewayImageOptions;

  /** The gateway's image, built once per process (again after a failed build). */
  imageTag(): Promise<string> {
    if (!this.image) {
      this.image = ensureGatewayImage(this.docker, this.imageOptions);
      this.image.catch(() => { this.image = undefined; });
    }
    return this.image;
  }

  /** See Runner.openGateway. */
  open(spec: GatewaySpec): Promise<GatewayHandle> {
    let pending = this.opening.get(spec.name);
    if (!pending) {
      pending = this.openOnce(spec).finally(() => this.opening.delete(spec.name));
      this.opening.set(spec.name, pending);
    }
    return pending;
  }

  private async openOnce(spec: GatewaySpec): Promise<GatewayHandle> {
    const running = await this.find(spec.name);
    if (running) return running;
    const { container: containerName, network: networkName } = gatewayNames(spec.name);
    const fail = (what: string, err: unknown): CldpdError => {
      const unavailable = isUnreachable(err) || (err instanceof CldpdError && err.code === 'DockerUnavailable');
      return new CldpdError(unavailable ? 'DockerUnavailable' : 'ContainerFailed', `The egress gateway of ${spec.name} could not start: ${what} (${err instanceof CldpdError ? err.message : detailOf(err)}). ${unavailable ? 'Start Docker, or point DOCKER_HOST at a running engine, and try again.' : 'The run cannot go on without it; try again, and if it fails again check "docker ps -a" and "docker network ls" for what is in the way.'}`, { cause: err });
    };

    // A stopped gateway is replaced; its network stays when it is ours (an agent's container may be on it).
    await this.removeContainer(containerName);
    let image: string;
    try {
      image = await this.imageTag();
    } catch (err) {
      throw new CldpdError('ContainerFailed', `The egress gateway of ${spec.name} could not start: ${messageOf(err)}`, { cause: err });
    }
    try {
      await this.ensureOutside(spec.outside);
    } catch (err) {
      throw fail(`the network ${spec.outside} it reaches the outside by could not be made ready`, err);
    }
    let madeNetwork = false;
    let network: { id: string; subnet: Ipv4Net };
    try {
      const existing = await this.inspectNetwork(networkName);
      if (existing) {
        network = existing;
      } else {
        network = await this.createNetwork(spec);
        madeNetwork = true;
      }
    } catch (err) {
      throw err instanceof CldpdError ? err : fail(`its network ${networkName} could not be made`, err);
    }
    const address = formatIpv4(network.subnet.base + 2);
    let containerId: string | undefined;
    try {
      const container = await this.createContainer(spec, image, address);
      containerId = container.id;
      try {
        await this.docker.getNetwork(spec.outside).connect({ Container: container.id });
      } catch (err) {
        throw fail(`it could not join the network ${spec.outside}`, err);
      }
      await container.start();
      const port = await this.listening(container.id, spec);
      return { containerId: container.id, network: networkName, address, port };
    } catch (err) {
      if (containerId) await this.removeContainer(containerName);
      if (madeNetwork) await this.removeNetwork(networkName).catch(() => undefined);
      if (err instanceof CldpdError) throw err;
      throw fail(containerId ? 'its container did not start' : 'its container could not be created', err);
    }
  }

  /** Creates the gateway's container; builds the image again when it was removed since this process made it. */
  private async createContainer(spec: GatewaySpec, image: string, address: string): Promise<Docker.Container> {
    try {
      return await this.docker.createContainer(gatewayCreateOptions(spec, image, address));
    } catch (err) {
      if (statusOf(err) !== 404 || !/no such image/i.test(detailOf(err))) throw err;
      this.image = undefined;
      return await this.docker.createContainer(gatewayCreateOptions(spec, await this.imageTag(), address));
    }
  }

  /**
   * Waits, at most {@link LISTEN_TIMEOUT_MS}, for the gateway's `listening` notice on its
   * output; resolves with its port. Throws `ContainerFailed` with the end of its output when
   * it ends or is silent.
   */
  private async listening(containerId: string, spec: GatewaySpec): Promise<number> {
    let said = '';
    let stream: NodeJS.ReadableStream & { destroy?: () => void } | undefined;
    const read = (async (): Promise<number | undefined> => {
      stream = (await this.docker.getContainer(containerId).logs({ follow: true, stdout: true, stderr: true })) as NodeJS.ReadableStream;
      const lines = new LineSplitter(64 * 1024);
      for await (const chunk of demuxDockerStream(stream as AsyncIterable<Buffer>)) {
        for (const { line } of lines.push(chunk.data)) {
          const notice = parseNotice(line);
          if (notice?.event === 'listening') return notice.port;
          said = keepEnd(`${said}${line}\n`, 2000);
        }
      }
      return undefined;
    })();
    try {
      const port = await within(LISTEN_TIMEOUT_MS, read, () => new CldpdError('ContainerFailed', `The egress gateway of ${spec.name} did not say it listens within ${LISTEN_TIMEOUT_MS / 1000} s${said.trim() ? `; it said: ${said.trim()}` : ' (it said nothing)'}. A busy engine may be slow to start it: try again.`));
      if (port === undefined) {
        throw new CldpdError('ContainerFailed', `The egress gateway of ${spec.name} ended before it listened${said.trim() ? `; it said: ${said.trim()}` : ' without a word'}.`);
      }
      return port;
    } finally {
      stream?.destroy?.();
      read.catch(() => undefined);
    }
  }

  /** The network named `name` when it is a gateway's (internal, labelled): its id and subnet. Throws `ContainerFailed` for a network of that name that is not. */
  private async inspectNetwork(name: string): Promise<{ id: string; subnet: Ipv4Net } | undefined> {
    let info: Docker.NetworkInspectInfo;
    try {
      info = (await this.docker.getNetwork(name).inspect()) as Docker.NetworkInspectInfo;
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw err;
    }
    const subnet = parseCidr(info.IPAM?.Config?.[0]?.Subnet ?? '');
    // Podman has no inhibit_ipv4 (see podmanInternalNetwork): internal and labelled is what it can be.
    const hostless = info.Options?.[INHIBIT_IPV4] === 'true' || (await this.isPodman());
    if (!info.Internal || !info.Labels?.[LABELS.gateway] || !hostless || !subnet) {
      throw new CldpdError('ContainerFailed', `A Docker network named ${name} exists but is not an egress network cldpd made (internal, labelled ${LABELS.gateway}). Remove it ("docker network rm ${name}") and start again.`);
    }
    return { id: info.Id, subnet };
  }

  /**
   * Creates the run's internal network on a free subnet of the pool, picked at random among
   * those no network of the engine holds. A subnet the engine refuses as taken (another
   * process's network being made with it, not listed yet) is not tried again by this open,
   * and the next try waits a little longer, so opens from many processes at once spread out.
   */
  private async createNetwork(spec: GatewaySpec): Promise<{ id: string; subnet: Ipv4Net }> {
    let lastRefusal = '';
    const refused = new Set<number>();
    for (let attempt = 0; attempt < SUBNET_ATTEMPTS; attempt++) {
      if (attempt > 0) await new Promise((r) => setTimeout(r, Math.min(20 * 2 ** attempt, 500) * (0.5 + Math.random())));
      const taken = (await this.docker.listNetworks()).flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet ?? ''));
      const free = freeSubnets(this.pool, taken);
      if (free.length === 0) {
        throw new CldpdError('ContainerFailed', `The egress gateway of ${spec.name} could not start: every /${SUBNET_PREFIX} of the gateways' subnet pool ${this.pool} is taken (${taken.length} networks on this engine). Wait for runs to end, remove stray gateway networks ("docker network ls --filter label=${LABELS.gateway}"), or give the pool a larger network (CLDPD_EGRESS_SUBNETS).`);
      }
      const candidates = free.filter((s) => !this.reserved.has(s.base) && !refused.has(s.base));
      // Every free one is being taken by opens under way: once they are listed, the pool may be full.
      if (candidates.length === 0) {
        refused.clear();
        continue;
      }
      const subnet = candidates[randomInt(candidates.length)] as Ipv4Net;
      this.reserved.add(subnet.base);
      try {
        if (await this.isPodman()) return { id: await this.createPodmanNetwork(spec, subnet), subnet };
        const created = await this.docker.createNetwork(internalNetworkOptions(spec, subnet));
        return { id: created.id, subnet };
      } catch (err) {
        const detail = detailOf(err);
        if (statusOf(err) === 409) {
          const existing = await this.inspectNetwork(gatewayNames(spec.name).network);
          if (existing) return existing;
        }
        // Another process took that subnet between the listing and the create: pick again.
        if (!/overlap|conflict|in use|already/i.test(detail)) throw err;
        lastRefusal = detail;
        refused.add(subnet.base);
      } finally {
        this.reserved.delete(subnet.base);
      }
    }
    throw new CldpdError('ContainerFailed', `The egress gateway of ${spec.name} could not start: ${SUBNET_ATTEMPTS} times in a row the subnet of ${this.pool} it picked was taken as it asked for it (Docker: ${lastRefusal || 'every free one was being taken'}). Try again; if it keeps happening, give the pool a larger network (CLDPD_EGRESS_SUBNETS).`);
  }

  /**
   * Podman: the run's internal network through Podman's own API, which can leave out its
   * name server: through the compatible API Podman gives every network one (aardvark-dns on
   * the bridge's address), which would answer the agent's lookups past the gateway.
   */
  private async createPodmanNetwork(spec: GatewaySpec, subnet: Ipv4Net): Promise<string> {
    const body = podmanInternalNetwork(spec, subnet);
    try {
      const created = (await libpodCall(this.docker, 'POST', '/v4.0.0/libpod/networks/create', body, { 200: true, 201: true, 409: 'conflict', 500: 'server error' })) as { id?: string };
      return created.id ?? body.name;
    } catch (err) {
      // Podman says "already exists" with 409 or 500: as Docker's 409, for createNetwork's caller.
      if (/already (exists|used)/i.test(detailOf(err))) throw Object.assign(new Error(detailOf(err)), { statusCode: 409, json: { message: detailOf(err) } });
      throw err;
    }
  }

  /** See Runner.findGateway. */
  async find(name: string): Promise<GatewayHandle | undefined> {
    const { container, network } = gatewayNames(name);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(container).inspect();
    } catch (err) {
      if (statusOf(err) === 404) return undefined;
      throw new CldpdError(isUnreachable(err) ? 'DockerUnavailable' : 'ContainerFailed', `Docker did not say whether the egress gateway ${container} runs: ${detailOf(err)}`, { cause: err });
    }
    const endpoint = info.NetworkSettings?.Networks?.[network];
    if (!info.State?.Running || !endpoint?.IPAddress) return undefined;
    return { containerId: info.Id, network, address: endpoint.IPAddress, port: portOf(info.Config?.Env ?? []) };
  }

  /** See Runner.closeGateway. */
  async close(name: string): Promise<void> {
    const { container, network } = gatewayNames(name);
    await this.removeContainer(container);
    await this.removeNetwork(network);
  }

  /** Removes a container by name or id; gone already is fine. */
  private async removeContainer(nameOrId: string): Promise<void> {
    try {
      await this.docker.getContainer(nameOrId).remove({ force: true, v: true });
    } catch (err) {
      if (statusOf(err) === 404) return;
      // 409: its removal is under way already.
      if (statusOf(err) === 409 && /already in progress/i.test(detailOf(err))) return;
      throw new CldpdError(isUnreachable(err) ? 'DockerUnavailable' : 'ContainerFailed', `Docker refused to remove the egress gateway ${nameOrId}: ${detailOf(err)}. Remove it with "docker rm -f ${nameOrId}".`, { cause: err });
    }
  }

  /**
   * Removes a gateway network; gone already is fine. A container still on it (the agent's,
   * which should be gone first) is disconnected: it is left with no network at all, never
   * with a way out.
   */
  private async removeNetwork(name: string): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      let info: Docker.NetworkInspectInfo;
      try {
        info = (await this.docker.getNetwork(name).inspect()) as Docker.NetworkInspectInfo;
        if (!info.Labels?.[LABELS.gateway]) return; // not a gateway's: never cldpd's to remove
        for (const id of Object.keys(info.Containers ?? {})) {
          await this.docker.getNetwork(info.Id).disconnect({ Container: id, Force: true }).catch((err: unknown) => {
            if (statusOf(err) !== 404) throw err;
          });
        }
        await this.docker.getNetwork(info.Id).remove();
        return;
      } catch (err) {
        if (statusOf(err) === 404) return;
        // An endpoint the engine is still taking down: a moment later it is gone.
        if (attempt < 5 && /active endpoints/i.test(detailOf(err))) {
          await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
          continue;
        }
        throw new CldpdError(isUnreachable(err) ? 'DockerUnavailable' : 'ContainerFailed', `Docker refused to remove the egress network ${name}: ${detailOf(err)}. Stop and remove the containers on it ("docker network inspect ${name}"), then "docker network rm ${name}".`, { cause: err });
      }
    }
  }

  /**
   * Removes the gateways of host `hostId` (their LABELS.gatewayHost) that a process which died
   * left behind: each gateway container created more than `olderThanMs` ago whose agent
   * container is gone or has ended (with its network), and each gateway network as old with
   * no gateway container. `keep(sessionId)` (the session in LABELS.gateway) spares a gateway
   * whose run is starting: its agent's container may not be made yet. Resolves with the names
   * of the gateway containers and networks it removed.
   */
  async removeStray(options: { readonly hostId: string; readonly olderThanMs: number; readonly keep?: (sessionId: string) => boolean | Promise<boolean> }): Promise<string[]> {
    const before = Date.now() - options.olderThanMs;
    const keep = options.keep ?? (() => false);
    const removed: string[] = [];
    let gateways: Docker.ContainerInfo[];
    let networks: Docker.NetworkInspectInfo[];
    const label = [LABELS.gateway, `${LABELS.gatewayHost}=${options.hostId}`];
    try {
      [gateways, networks] = await Promise.all([
        this.docker.listContainers({ all: true, filters: { label } }),
        this.docker.listNetworks({ filters: { label } }),
      ]);
    } catch (err) {
      throw new CldpdError(isUnreachable(err) ? 'DockerUnavailable' : 'ContainerFailed', `Docker did not list the egress gateways: ${detailOf(err)}`, { cause: err });
    }
    const names = new Set<string>();
    for (const gateway of gateways) {
      const container = (gateway.Names[0] ?? '').replace(/^\//, '');
      if (!container.endsWith('-gw')) continue;
      const name = container.slice(0, -'-gw'.length);
      names.add(name);
      if (gateway.Created * 1000 > before || await keep(gateway.Labels?.[LABELS.gateway] ?? '')) continue;
      const agent = await this.docker.getContainer(name).inspect().catch((err: unknown) => {
        if (statusOf(err) === 404) return undefined;
        throw err;
      });
      if (agent && agent.State.Status !== 'exited' && agent.State.Status !== 'dead') continue;
      await this.close(name);
      removed.push(container, gatewayNames(name).network);
    }
    for (const network of networks) {
      if (!network.Name.endsWith('-egress') || removed.includes(network.Name)) continue;
      const name = network.Name.slice(0, -'-egress'.length);
      if (names.has(name) || Date.parse(network.Created) > before || await keep(network.Labels?.[LABELS.gateway] ?? '')) continue;
      await this.removeNetwork(network.Name);
      removed.push(network.Name);
    }
    return removed;
  }
}

/** The port a gateway listens on, from the configuration in its environment. */
function portOf(env: readonly string[]): number {
  const raw = env.find((e) => e.startsWith(`${GATEWAY_ENV}=`))?.slice(GATEWAY_ENV.length + 1);
  try {
    const port = raw ? (JSON.parse(raw) as { port?: unknown }).port : undefined;
    return typeof port === 'number' ? port : GATEWAY_PORT;
  } catch {
    return GATEWAY_PORT;
  }
}
