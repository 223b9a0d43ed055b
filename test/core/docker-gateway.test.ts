import Docker from 'dockerode';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DockerRunner, LABELS, toCreateOptions, type ContainerSpec, type GatewaySpec } from '../../src/core/index.js';
import { DEFAULT_GATEWAY_POOL, formatIpv4, freeSubnets, gatewayCreateOptions, gatewayNames, internalNetworkOptions, parseCidr } from '../../src/core/docker-gateway.js';
import { gatewayDockerfile, gatewayImageTag, librariesOf, nodeFiles } from '../../src/core/gateway-image.js';
import { tempDir } from '../fakes/pods.js';

const SPEC: GatewaySpec = {
  name: 'cldpd-claude-abc123',
  labels: { [LABELS.gateway]: 'abc123', [LABELS.gatewayHost]: 'host-1' },
  config: { port: 3128, allow: { base: [{ host: 'registry.npmjs.org', wildcard: false }], layers: [] } },
  outside: 'cldpd',
  hosts: { 'allowed.test': '172.18.0.1' },
};

describe('the subnets of the gateways\' pool', () => {
  it.each([
    ['10.213.0.0/16', { base: (10 * 256 + 213) * 65536, prefix: 16 }],
    ['10.213.7.9/28', { base: ((10 * 256 + 213) * 256 + 7) * 256, prefix: 28 }],
    ['0.0.0.0/0', { base: 0, prefix: 0 }],
  ])('parseCidr(%s)', (text, net) => {
    expect(parseCidr(text)).toEqual(net);
  });

  it.each(['10.213.0.0', '10.213.0.0/33', '10.256.0.0/16', 'fd00::/64', '10.213.0/16', ' /16', '1.2.3.4/-1'])('parseCidr(%j) is undefined', (text) => {
    expect(parseCidr(text)).toBeUndefined();
  });

  it('a /16 holds 4096 /28s; taken networks anywhere in it (larger, smaller, or other pools) are left out', () => {
    expect(freeSubnets(DEFAULT_GATEWAY_POOL, [])).toHaveLength(4096);
    const free = freeSubnets(DEFAULT_GATEWAY_POOL, ['10.213.0.0/28', '10.213.1.0/24', '10.213.2.5/32', '172.17.0.0/16', 'fd00::/64', 'garbage']);
    expect(free).toHaveLength(4096 - 1 - 16 - 1);
    expect(free.map((n) => formatIpv4(n.base))).not.toContain('10.213.0.0');
    expect(free.map((n) => formatIpv4(n.base))).not.toContain('10.213.1.240');
    expect(free.map((n) => formatIpv4(n.base))).not.toContain('10.213.2.0');
    expect(free.map((n) => formatIpv4(n.base))).toContain('10.213.0.16');
  });

  it('a network covering the whole pool leaves nothing free', () => {
    expect(freeSubnets('10.213.0.0/24', ['10.0.0.0/8'])).toEqual([]);
  });

  it.each(['10.213.0.0/29', 'fd00::/48', 'nonsense'])('a pool %j is refused, saying what a pool is', (pool) => {
    expect(() => freeSubnets(pool, [])).toThrow(/subnet pool .* is not an IPv4 network of \/28 or larger/);
    expect(() => new DockerRunner(new Docker({ socketPath: '/nonexistent' }), { gatewayPool: pool })).toThrow(/subnet pool/);
  });
});

describe('the gateway\'s network and container', () => {
  it('are named after the agent\'s container', () => {
    expect(gatewayNames('cldpd-x-1')).toEqual({ container: 'cldpd-x-1-gw', network: 'cldpd-x-1-egress' });
  });

  it('the network is internal, gives the host no address, lets its two containers talk, and is labelled', () => {
    const options = internalNetworkOptions(SPEC, { base: parseCidr('10.213.4.32/28')?.base as number, prefix: 28 });
    expect(options).toMatchObject({
      Name: 'cldpd-claude-abc123-egress',
      Driver: 'bridge',
      Internal: true,
      Options: { 'com.docker.network.bridge.inhibit_ipv4': 'true', 'com.docker.network.bridge.enable_icc': 'true' },
      IPAM: { Config: [{ Subnet: '10.213.4.32/28' }] },
      Labels: SPEC.labels,
    });
  });

  it('the container: its configuration in its environment, fixed address, no forwarding, no privileges, read-only, limited', () => {
    const options = gatewayCreateOptions(SPEC, 'cldpd-gateway:0123456789ab', '10.213.4.34');
    expect(options.name).toBe('cldpd-claude-abc123-gw');
    // It listens on its address on the run's network only.
    expect(options.Env).toEqual([`CLDPD_GATEWAY=${JSON.stringify({ ...SPEC.config, listen: '10.213.4.34' })}`]);
    expect(options.Labels).toEqual(SPEC.labels);
    expect(options.HostConfig).toMatchObject({
      NetworkMode: 'cldpd-claude-abc123-egress',
      ExtraHosts: ['allowed.test:172.18.0.1'],
      Sysctls: { 'net.ipv4.ip_forward': '0', 'net.ipv4.conf.all.forwarding': '0' },
      CapDrop: ['ALL'],
      SecurityOpt: ['no-new-privileges'],
      ReadonlyRootfs: true,
      Memory: 256 * 1024 * 1024,
      PidsLimit: 256,
      RestartPolicy: { Name: 'on-failure' },
    });
    expect(options.HostConfig?.CapAdd).toBeUndefined();
    expect(options.HostConfig?.Privileged).toBeUndefined();
    expect(options.NetworkingConfig?.EndpointsConfig?.['cldpd-claude-abc123-egress']).toEqual({ IPAMConfig: { IPv4Address: '10.213.4.34' } });
  });

  it('an agent\'s container on its own egress network has IPv6 off; elsewhere only the sysctls it asks for', () => {
    const base: ContainerSpec = {
      name: 'cldpd-claude-abc123', image: 'x', cmd: [], env: {}, workdir: undefined, labels: {}, mounts: [],
      memoryBytes: 1, cpus: 1, pids: 1, network: 'cldpd-claude-abc123-egress', stopGraceSeconds: 1, stdin: false,
    };
    expect(toCreateOptions(base).HostConfig?.Sysctls).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '1', 'net.ipv6.conf.default.disable_ipv6': '1' });
    expect(toCreateOptions({ ...base, network: 'cldpd' }).HostConfig?.Sysctls).toBeUndefined();
    expect(toCreateOptions({ ...base, network: 'someone-else-egress' }).HostConfig?.Sysctls).toBeUndefined();
    expect(toCreateOptions({ ...base, network: 'cldpd', sysctls: { 'net.ipv4.ping_group_range': '0 0' } }).HostConfig?.Sysctls).toEqual({ 'net.ipv4.ping_group_range': '0 0' });
  });
});

describe('the gateway\'s image', () => {
  it('librariesOf reads glibc\'s ldd: each library\'s path and the loader, never the vDSO', () => {
    const listing = [
      '\tlinux-vdso.so.1 (0x00007ffd5a9f2000)',
      '\tlibdl.so.2 => /lib/x86_64-linux-gnu/libdl.so.2 (0x00007f693c794000)',
      '\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6 (0x00007f693c400000)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f693c21e000)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f693c7ad000)',
      '',
    ].join('\n');
    expect(librariesOf(listing)).toEqual(['/lib/x86_64-linux-gnu/libdl.so.2', '/lib/x86_64-linux-gnu/libstdc++.so.6', '/lib/x86_64-linux-gnu/libc.so.6', '/lib64/ld-linux-x86-64.so.2']);
  });

  it('librariesOf reads musl\'s ldd (the loader listed as a library)', () => {
    const listing = '\t/lib/ld-musl-x86_64.so.1 (0x7f0c1a2b3000)\n\tlibstdc++.so.6 => /usr/lib/libstdc++.so.6 (0x7f0c1a000000)\n\tlibc.musl-x86_64.so.1 => /lib/ld-musl-x86_64.so.1 (0x7f0c1a2b3000)\n';
    expect(librariesOf(listing)).toEqual(['/lib/ld-musl-x86_64.so.1', '/usr/lib/libstdc++.so.6']);
  });

  it('a library ldd cannot find is an error naming it', () => {
    expect(() => librariesOf('\tlibicu.so.72 => not found\n')).toThrow(/needs libicu\.so\.72, which ldd cannot find/);
  });

  it('the running node needs itself, its libraries and the loader, each at the path ldd names', async () => {
    const files = await nodeFiles(process.execPath);
    expect(files[0]?.path).toMatch(/\/node$/);
    expect(files.some((f) => /\/libc\.so/.test(f.path) || /ld-musl/.test(f.path))).toBe(true);
    expect(files.some((f) => /\/ld-linux|ld-musl/.test(f.path))).toBe(true);
  });

  it('a statically linked binary needs only itself', async () => {
    const busybox = process.env.CLDPD_TEST_BUSYBOX ?? '/bin/busybox';
    const files = await nodeFiles(busybox);
    expect(files).toHaveLength(1);
  });

  it('a node that is not an ELF binary (a wrapper script) is refused, saying so', async () => {
    const dir = await tempDir('cldpd-node-');
    const script = join(dir, 'node');
    await writeFile(script, '#!/bin/sh\nexec /usr/bin/node "$@"\n');
    await chmod(script, 0o755);
    await expect(nodeFiles(script)).rejects.toMatchObject({ code: 'ContainerFailed', message: expect.stringContaining('not an ELF binary') });
  });

  it('a host without ldd is told to install it', async () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      await expect(nodeFiles(process.execPath)).rejects.toMatchObject({ code: 'ContainerFailed', message: expect.stringContaining('ldd is not installed') });
    } finally {
      process.env.PATH = path;
    }
  });

  it('the Dockerfile: nothing from a registry, an unprivileged user, node running the program', () => {
    const dockerfile = gatewayDockerfile('/usr/bin/node', ['/lib/x86_64-linux-gnu', '/lib64']);
    expect(dockerfile.split('\n')[0]).toBe('FROM scratch');
    expect(dockerfile).not.toMatch(/^(RUN|ADD)/m);
    expect(dockerfile).toContain('USER 65534:65534');
    expect(dockerfile).toContain('ENTRYPOINT ["/usr/bin/node","/gateway/gateway.mjs"]');
    expect(dockerfile).toContain('ENV LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/lib64');
  });

  it('the tag changes with the program and with node, and is the same for the same of both', async () => {
    const files = [{ path: process.execPath, source: process.execPath }];
    const one = await gatewayImageTag(files, Buffer.from('program one'));
    expect(one.tag).toMatch(/^cldpd-gateway:[0-9a-f]{12}$/);
    expect(one.digest.slice(7, 19)).toBe(one.tag.slice(-12));
    expect(await gatewayImageTag(files, Buffer.from('program one'))).toEqual(one);
    expect((await gatewayImageTag(files, Buffer.from('program two'))).tag).not.toBe(one.tag);
    expect((await gatewayImageTag(files, Buffer.from('program one'), 'v99.0.0')).tag).not.toBe(one.tag);
  });
});

describe('gateways without an engine', () => {
  const absent = new DockerRunner(new Docker({ socketPath: '/nonexistent/docker.sock' }));

  it.each([
    ['openGateway', () => absent.openGateway(SPEC)],
    ['findGateway', () => absent.findGateway(SPEC.name)],
    ['closeGateway', () => absent.closeGateway(SPEC.name)],
    ['removeStrayGateways', () => absent.removeStrayGateways('host-1', 0)],
  ])('%s fails with DockerUnavailable, not a hang', async (_, call) => {
    await expect(call()).rejects.toMatchObject({ code: 'DockerUnavailable' });
  });
});
