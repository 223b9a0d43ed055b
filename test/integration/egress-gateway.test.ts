import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Server } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CldpdError, DockerRunner, LABELS, type ContainerSpec, type GatewayHandle, type GatewaySpec } from '../../src/core/index.js';
import { formatIpv4, parseCidr } from '../../src/core/docker-gateway.js';
import { GATEWAY_PORT } from '../../src/gateway/config.js';
import { tempDir } from '../fakes/pods.js';
import { BUSYBOX, describeWithDocker } from './harness.js';

const STAND_IN = new URL('../fakes/gateway-stand-in.mjs', import.meta.url).pathname;
/** The gateway's real program, as the build leaves it (npm run build). */
const GATEWAY_PROGRAM = new URL('../../dist/gateway/gateway.mjs', import.meta.url).pathname;
const PROBE_IMAGE = 'cldpd-it-egress-probe:latest';

const docker = new Docker();
const hostId = `it-egress-${randomBytes(3).toString('hex')}`;
const runner = new DockerRunner(docker, { gatewayImage: { program: STAND_IN } });
const prefix = `cldpd-it-egress-${randomBytes(3).toString('hex')}`;
let serial = 0;

/** A name for one run's agent container, unique to this file. */
function runName(): string {
  serial++;
  return `${prefix}-${serial}`;
}

function specOf(name: string, overrides: Partial<GatewaySpec> = {}): GatewaySpec {
  return {
    name,
    labels: { [LABELS.gateway]: `sess-${name.slice(-6)}`, [LABELS.gatewayHost]: hostId },
    config: { port: GATEWAY_PORT, allow: { base: [], layers: [] } },
    outside: 'cldpd',
    ...overrides,
  };
}

/** Runs `script` in a busybox container named `name` on `network`, to its end (at most 60 s); its output. */
async function probe(name: string, network: string, script: string): Promise<string> {
  const spec: ContainerSpec = {
    name, image: PROBE_IMAGE, cmd: ['/bin/busybox', 'sh', '-c', script], env: { PATH: '/bin' }, workdir: undefined,
    labels: { [LABELS.host]: hostId }, mounts: [], memoryBytes: 64 * 1024 * 1024, cpus: 0.5, pids: 64, network,
    stopGraceSeconds: 1, stdin: false,
  };
  const handle = await runner.run(spec);
  let out = '';
  const reading = (async () => {
    for await (const chunk of handle.output) out += chunk.data.toString('utf8');
  })();
  const timer = setTimeout(() => void runner.remove(handle.containerId), 60_000);
  try {
    await reading;
    await handle.wait();
  } finally {
    clearTimeout(timer);
    await runner.remove(handle.containerId);
  }
  return out;
}

/** A shell line that tries a TCP connection and prints `<label>:open` or `<label>:closed`. */
function tcp(label: string, host: string, port: number): string {
  return `if echo x | timeout 5 nc -w 3 ${host} ${port} >/dev/null 2>&1; then echo ${label}:open; else echo ${label}:closed; fi`;
}

/** A shell line that sends one UDP datagram (a TFTP read request: busybox's nc has no UDP) to host:port. */
function udp(host: string, port: number, marker: string): string {
  return `timeout 2 tftp -g -r ${marker} -l /tmp/${marker} ${host} ${port} >/dev/null 2>&1`;
}

/** The verdicts `label:open|closed` a probe printed. */
function verdicts(output: string): Record<string, string> {
  return Object.fromEntries([...output.matchAll(/^([\w.-]+):(open|closed)$/gm)].map((m) => [m[1], m[2]]));
}

async function networkInfo(name: string): Promise<Docker.NetworkInspectInfo | undefined> {
  return (await docker.getNetwork(name).inspect().catch(() => undefined)) as Docker.NetworkInspectInfo | undefined;
}

async function containerExists(name: string): Promise<boolean> {
  return (await docker.getContainer(name).inspect().catch(() => undefined)) !== undefined;
}

function subnetOf(info: Docker.NetworkInspectInfo | undefined): string | undefined {
  return info?.IPAM?.Config?.[0]?.Subnet;
}

/** What the agent's container must never reach: servers on every address this host has. */
let tcpServer: Server;
let tcpPort: number;
const tcpSeen: string[] = [];
let udpServer: UdpSocket;
let udpPort: number;
const udpSeen: string[] = [];
let hostAddresses: Record<string, string>;
const opened: string[] = [];

beforeAll(async () => {
  const dir = await tempDir('cldpd-egress-probe-');
  await copyFile(BUSYBOX, join(dir, 'busybox'));
  await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\n');
  const build = runner.build({ tag: PROBE_IMAGE, contextDir: dir, buildArgs: {}, labels: {} });
  for (let step = await build.next(); !step.done; step = await build.next());

  tcpServer = createServer((socket) => {
    tcpSeen.push(`${socket.remoteAddress}`);
    socket.end('host service\n');
  });
  await new Promise<void>((resolve) => tcpServer.listen(0, '::', resolve));
  tcpPort = (tcpServer.address() as { port: number }).port;
  udpServer = createSocket('udp4');
  udpServer.on('message', (msg) => udpSeen.push(msg.toString('latin1')));
  await new Promise<void>((resolve) => udpServer.bind(0, '0.0.0.0', resolve));
  udpPort = udpServer.address().port;

  await runner.ensureIsolatedNetwork('cldpd');
  const cldpd = await networkInfo('cldpd');
  const docker0 = await networkInfo('bridge');
  const outside = Object.entries(networkInterfaces()).flatMap(([name, list]) => (list ?? [])
    .filter((a) => a.family === 'IPv4' && !a.internal && !name.startsWith('br-') && !name.startsWith('docker') && !name.startsWith('veth'))
    .map((a) => a.address));
  hostAddresses = {
    eth: outside[0] ?? '192.0.2.2',
    cldpdBridge: cldpd?.IPAM?.Config?.[0]?.Gateway ?? '172.18.0.1',
    docker0: docker0?.IPAM?.Config?.[0]?.Gateway ?? '172.17.0.1',
    loopback: '127.0.0.1',
  };
});

afterAll(async () => {
  for (const name of opened) await runner.closeGateway(name).catch(() => undefined);
  for (const c of await docker.listContainers({ all: true, filters: { label: [`${LABELS.host}=${hostId}`] } })) {
    await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
  tcpServer?.close();
  udpServer?.close();
});

async function open(name: string, overrides: Partial<GatewaySpec> = {}): Promise<GatewayHandle> {
  opened.push(name);
  return runner.openGateway(specOf(name, overrides));
}

describeWithDocker('a run\'s egress gateway (real Docker)', () => {
  it('a normal container on the cldpd network reaches the host\'s servers (what the gateway\'s network must not)', async () => {
    const before = tcpSeen.length;
    const out = await probe(runName(), 'cldpd', [
      tcp('bridge', hostAddresses.cldpdBridge as string, tcpPort),
      udp(hostAddresses.cldpdBridge as string, udpPort, 'control'),
    ].join('\n'));
    expect(verdicts(out).bridge).toBe('open');
    expect(tcpSeen.length).toBeGreaterThan(before);
    await expect.poll(() => udpSeen.some((d) => d.includes('control')), { timeout: 5000 }).toBe(true);
  });

  it('the agent reaches its gateway\'s port and nothing else: no host address, no other gateway, no name, no UDP', async () => {
    const [a, b] = [runName(), runName()];
    const [gwA, gwB] = await Promise.all([open(a), open(b)]);
    expect(gwA.network).toBe(`${a}-egress`);
    expect(gwA.address).toMatch(/^10\.213\.\d+\.\d+$/);
    expect(gwA.port).toBe(GATEWAY_PORT);
    const [netA, netB] = [await networkInfo(gwA.network), await networkInfo(gwB.network)];
    expect(subnetOf(netA)).not.toBe(subnetOf(netB));
    expect(netA?.Internal).toBe(true);
    expect(netA?.Options?.['com.docker.network.bridge.inhibit_ipv4']).toBe('true');
    const gwInfo = await docker.getContainer(gwA.containerId).inspect();
    const gwOutside = gwInfo.NetworkSettings.Networks.cldpd?.IPAddress as string;
    expect(gwOutside).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    expect(gwInfo.HostConfig.Sysctls).toMatchObject({ 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.forwarding': '0' });
    expect(gwInfo.HostConfig.ReadonlyRootfs).toBe(true);
    expect(gwInfo.Config.User).toBe('65534:65534');
    const bridgeOne = formatIpv4((parseCidr(subnetOf(netA) as string)?.base as number) + 1);
    const tcpBefore = tcpSeen.length;

    // All at once (each in the background), so the ones that time out do not add up.
    const out = await probe(a, gwA.network, [
      `echo x | timeout 5 nc -w 3 ${gwA.address} ${gwA.port}`,
      tcp('gateway', gwA.address, gwA.port),
      ...Object.entries(hostAddresses).map(([label, address]) => tcp(label, address, tcpPort)),
      tcp('bridgeOne', bridgeOne, tcpPort),
      tcp('gatewayOutside', gwOutside, gwA.port),
      tcp('otherGateway', gwB.address, gwB.port),
      tcp('public', '1.1.1.1', 443),
      ...Object.entries(hostAddresses).map(([label, address]) => udp(address, udpPort, `agent-${label}`)),
      'if timeout 10 nslookup example.com >/dev/null 2>&1; then echo dns-public:open; else echo dns-public:closed; fi',
      'if timeout 10 nslookup other.test >/dev/null 2>&1; then echo dns-other:open; else echo dns-other:closed; fi',
    ].map((line) => `( ${line} ) &`).concat(['cat /proc/sys/net/ipv6/conf/all/disable_ipv6 | sed s/^/ipv6off=/', 'wait']).join('\n'));
    expect(out).toContain('stand-in gateway');
    expect(verdicts(out)).toEqual({
      gateway: 'open', eth: 'closed', cldpdBridge: 'closed', docker0: 'closed', loopback: 'closed', bridgeOne: 'closed',
      gatewayOutside: 'closed', otherGateway: 'closed', public: 'closed', 'dns-public': 'closed', 'dns-other': 'closed',
    });
    expect(out).toContain('ipv6off=1');
    expect(tcpSeen.length).toBe(tcpBefore);
    expect(udpSeen.filter((d) => d.includes('agent'))).toEqual([]);

    // And the other way round: b's agent does not reach a's gateway.
    const outB = await probe(b, gwB.network, [tcp('mine', gwB.address, gwB.port), tcp('theirs', gwA.address, gwA.port)].join('\n'));
    expect(verdicts(outB)).toEqual({ mine: 'open', theirs: 'closed' });
  });

  it('the agent cannot reach the host by the bridge\'s link-local IPv6 address', async () => {
    const name = runName();
    const gw = await open(name);
    const bridge = `br-${(await networkInfo(gw.network))?.Id.slice(0, 12)}`;
    const linkLocal = (networkInterfaces()[bridge] ?? []).find((a) => a.family === 'IPv6')?.address;
    const before = tcpSeen.length;
    const out = await probe(name, gw.network, [
      linkLocal ? tcp('linklocal', `${linkLocal}%eth0`, tcpPort) : 'echo linklocal:closed',
      tcp('allnodes', 'ff02::1%eth0', tcpPort),
    ].join('\n'));
    expect(verdicts(out)).toEqual({ linklocal: 'closed', allnodes: 'closed' });
    expect(tcpSeen.length).toBe(before);
  });

  it('opening one name twice, at once or after, gives one gateway', async () => {
    const name = runName();
    const [first, second] = await Promise.all([open(name), open(name)]);
    const third = await open(name);
    expect(second.containerId).toBe(first.containerId);
    expect(third).toEqual(first);
    expect(await runner.findGateway(name)).toEqual(first);
    expect((await docker.listContainers({ all: true, filters: { name: [`${name}-gw`] } })).length).toBe(1);
    // A worker that restarted (a new process, a new runner) finds it by name, and opening it again gives it.
    const restarted = new DockerRunner(docker, { gatewayImage: { program: STAND_IN } });
    expect(await restarted.findGateway(name)).toEqual(first);
    expect(await restarted.openGateway(specOf(name))).toEqual(first);
  });

  it('a gateway whose process dies comes back by itself, where its run finds it', async () => {
    const name = runName();
    const gw = await open(name);
    const out = await probe(name, gw.network, `echo crash | timeout 5 nc -w 3 ${gw.address} ${gw.port}; echo sent`);
    expect(out).toContain('sent');
    await expect.poll(async () => (await docker.getContainer(gw.containerId).inspect()).RestartCount, { timeout: 20_000 }).toBeGreaterThan(0);
    await expect.poll(async () => runner.findGateway(name), { timeout: 20_000 }).toEqual(gw);
    const again = await probe(name, gw.network, `sleep 1; echo x | timeout 5 nc -w 3 ${gw.address} ${gw.port}`);
    expect(again).toContain('stand-in gateway');
  });

  it('a stopped gateway is replaced on its own network; find does not return it', async () => {
    const name = runName();
    const first = await open(name);
    await docker.getContainer(first.containerId).stop({ t: 1 });
    expect(await runner.findGateway(name)).toBeUndefined();
    const again = await open(name);
    expect(again.containerId).not.toBe(first.containerId);
    expect(again.network).toBe(first.network);
    expect(again.address).toBe(first.address);
  });

  it('close removes the gateway and its network, even with the agent\'s container still on it; twice is fine', async () => {
    const name = runName();
    const gw = await open(name);
    const agent = await docker.createContainer({ name, Image: PROBE_IMAGE, Cmd: ['/bin/busybox', 'true'], Labels: { [LABELS.host]: hostId }, HostConfig: { NetworkMode: gw.network } });
    await runner.closeGateway(name);
    expect(await containerExists(`${name}-gw`)).toBe(false);
    expect(await networkInfo(gw.network)).toBeUndefined();
    await runner.closeGateway(name);
    await agent.remove({ force: true });
    expect(await runner.findGateway(name)).toBeUndefined();
    await runner.closeGateway(`${prefix}-never-opened`);
  });

  it('a failed open leaves nothing behind and says what failed', async () => {
    const name = runName();
    const err = await open(name, { outside: `${prefix}-no-such-network` }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CldpdError);
    expect((err as CldpdError).code).toBe('ContainerFailed');
    expect((err as CldpdError).message).toContain(`${prefix}-no-such-network`);
    expect(await containerExists(`${name}-gw`)).toBe(false);
    expect(await networkInfo(`${name}-egress`)).toBeUndefined();
  });

  it('a gateway that ends before it listens fails the open with what it said, and leaves nothing behind', async () => {
    const dir = await tempDir('cldpd-egress-broken-');
    const program = join(dir, 'gateway.mjs');
    await mkdir(dir, { recursive: true });
    await writeFile(program, "console.error('no configuration I can use'); process.exit(0);\n");
    const broken = new DockerRunner(docker, { gatewayImage: { program } });
    const name = runName();
    opened.push(name);
    const err = await broken.openGateway(specOf(name)).catch((e: unknown) => e);
    expect((err as CldpdError).code).toBe('ContainerFailed');
    expect((err as CldpdError).message).toContain('no configuration I can use');
    expect(await containerExists(`${name}-gw`)).toBe(false);
    expect(await networkInfo(`${name}-egress`)).toBeUndefined();
  });

  it('a gateway whose agent is gone (its process killed) is swept with its network; one whose agent runs, or that is starting, is kept', async () => {
    const [gone, running, starting, bare] = [runName(), runName(), runName(), runName()];
    await Promise.all([open(gone), open(running), open(starting), open(bare)]);
    const agent = await docker.createContainer({ name: running, Image: PROBE_IMAGE, Cmd: ['/bin/busybox', 'sleep', '60'], Labels: { [LABELS.host]: hostId }, HostConfig: { NetworkMode: `${running}-egress` } });
    await agent.start();
    const dead = await docker.createContainer({ name: gone, Image: PROBE_IMAGE, Cmd: ['/bin/busybox', 'true'], Labels: { [LABELS.host]: hostId }, HostConfig: { NetworkMode: `${gone}-egress` } });
    await dead.remove({ force: true });
    // A network whose gateway container went (a process killed between the two).
    await docker.getContainer(`${bare}-gw`).remove({ force: true });
    const startingSession = specOf(starting).labels[LABELS.gateway];

    // Another host's gateway whose agent is gone too: not this host's to remove.
    const elsewhere = runName();
    await open(elsewhere, { labels: { [LABELS.gateway]: 'sess-elsewhere', [LABELS.gatewayHost]: `${hostId}-other` } });

    const removed = await runner.removeStrayGateways(hostId, 0, (session) => session === startingSession);

    expect(removed).toEqual(expect.arrayContaining([`${gone}-gw`, `${gone}-egress`, `${bare}-egress`]));
    expect(removed.some((r) => r.startsWith(running) || r.startsWith(starting))).toBe(false);
    expect(await containerExists(`${gone}-gw`)).toBe(false);
    expect(await networkInfo(`${gone}-egress`)).toBeUndefined();
    expect(await networkInfo(`${bare}-egress`)).toBeUndefined();
    expect(await runner.findGateway(running)).toBeDefined();
    expect(await runner.findGateway(starting)).toBeDefined();
    expect(await runner.findGateway(elsewhere)).toBeDefined();
    // Nothing is old enough to go when the bound is long.
    expect(await runner.removeStrayGateways(hostId, 3600_000)).toEqual([]);
    await agent.remove({ force: true });
  });

  it('twelve opens at once all start, each on its own subnet', async () => {
    const names = Array.from({ length: 12 }, () => runName());
    const handles = await Promise.all(names.map((n) => open(n)));
    const subnets = await Promise.all(handles.map(async (h) => subnetOf(await networkInfo(h.network))));
    expect(new Set(subnets).size).toBe(12);
    expect(new Set(handles.map((h) => h.address)).size).toBe(12);
    await Promise.all(names.map((n) => runner.closeGateway(n)));
    for (const h of handles) expect(await networkInfo(h.network)).toBeUndefined();
  });

  it('through the real gateway: CONNECT and a plain request reach a host service by an allowed name; another name is refused 403 and noted', async () => {
    const real = new DockerRunner(docker, { gatewayImage: { program: GATEWAY_PROGRAM } });
    const web = createHttpServer((req, res) => res.end(`hello from allowed.test ${req.url}\n`));
    await new Promise<void>((resolve) => web.listen(0, '0.0.0.0', resolve));
    const port = (web.address() as { port: number }).port;
    try {
      const name = runName();
      opened.push(name);
      const gw = await real.openGateway(specOf(name, {
        config: { port: GATEWAY_PORT, allow: { base: [{ host: 'allowed.test', wildcard: false, port }], layers: [] } },
        // The host as the outside network reaches it: the cldpd bridge's address.
        hosts: { 'allowed.test': hostAddresses.cldpdBridge as string },
      }));
      expect((await docker.getContainer(gw.containerId).inspect()).Config.Image).toMatch(/^cldpd-gateway:[0-9a-f]{12}$/);
      // Its input held open a while: busybox nc closes the connection as its input ends.
      const ask = (label: string, request: string): string => `( { printf '${request.replace(/\r\n/g, '\\r\\n')}'; sleep 3; } | timeout 10 nc -w 5 ${gw.address} ${gw.port} | sed 's/^/${label}> /' ) &`;
      const out = await probe(name, gw.network, [
        ask('connect', `CONNECT allowed.test:${port} HTTP/1.1\r\nHost: allowed.test:${port}\r\n\r\nGET /tunnelled HTTP/1.0\r\nHost: allowed.test\r\n\r\n`),
        ask('plain', `GET http://allowed.test:${port}/plain HTTP/1.1\r\nHost: allowed.test:${port}\r\nConnection: close\r\n\r\n`),
        ask('other', `CONNECT other.test:${port} HTTP/1.1\r\nHost: other.test:${port}\r\n\r\n`),
        ask('otherport', `CONNECT allowed.test:${port + 1} HTTP/1.1\r\nHost: allowed.test\r\n\r\n`),
        tcp('direct', hostAddresses.cldpdBridge as string, port),
        'wait',
      ].join('\n'));
      expect(out).toMatch(/^connect> HTTP\/1\.1 200/m);
      expect(out).toContain('connect> hello from allowed.test /tunnelled');
      expect(out).toContain('plain> hello from allowed.test /plain');
      expect(out).toMatch(/^other> HTTP\/1\.1 403/m);
      expect(out).toMatch(/^otherport> HTTP\/1\.1 403/m);
      expect(out).not.toMatch(/^other(port)?> hello/m);
      expect(verdicts(out).direct).toBe('closed');
      let logs = '';
      for await (const chunk of runner.logs(gw.containerId, 0)) {
        logs += chunk.data.toString('utf8');
        if (logs.includes('"other.test"')) break;
      }
      expect(logs).toContain(JSON.stringify({ event: 'blocked', host: 'other.test', port, via: 'connect' }));
    } finally {
      web.close();
    }
  });

  it('two processes sharing a small pool at once get distinct subnets; a full pool is an error that says so and leaves nothing behind', async () => {
    // Two runners stand for two worker processes: neither knows what the other is picking.
    const pool = '10.214.250.0/26';
    const [one, two] = [0, 1].map(() => new DockerRunner(docker, { gatewayPool: pool, gatewayImage: { program: STAND_IN } }));
    const names = [runName(), runName(), runName(), runName()];
    opened.push(...names);
    const handles = await Promise.all(names.map((n, i) => ((i % 2 === 0 ? one : two) as DockerRunner).openGateway(specOf(n))));
    const subnets = await Promise.all(handles.map(async (h) => subnetOf(await networkInfo(h.network))));
    expect(new Set(subnets)).toEqual(new Set(['10.214.250.0/28', '10.214.250.16/28', '10.214.250.32/28', '10.214.250.48/28']));

    const full = runName();
    opened.push(full);
    const err = await (one as DockerRunner).openGateway(specOf(full)).catch((e: unknown) => e);
    expect((err as CldpdError).code).toBe('ContainerFailed');
    expect((err as CldpdError).message).toMatch(/every \/28 of the gateways' subnet pool 10\.214\.250\.0\/26 is taken/);
    expect(await containerExists(`${full}-gw`)).toBe(false);
    expect(await networkInfo(`${full}-egress`)).toBeUndefined();

    await runner.closeGateway(names[0] as string);
    expect((await (two as DockerRunner).openGateway(specOf(full))).address).toBe(handles[0]?.address);
    await Promise.all([...names, full].map((n) => runner.closeGateway(n)));
  });
});
