import { describe, expect, it } from 'vitest';
import { engineLacks, isPodmanVersion, toCreateOptions } from '../../src/core/index.js';
import { podmanInternalNetwork } from '../../src/core/docker-gateway.js';
import { engineDetail } from '../../src/cli/run-cli.js';

const spec = { name: 'cldpd-p-00000000', image: 'img', cmd: ['x'], env: {}, workdir: undefined, labels: {}, mounts: [], memoryBytes: 1, cpus: 1, pids: 1, network: 'none', stopGraceSeconds: 1, stdin: false };

describe('the engine behind DOCKER_HOST', () => {
  it('Podman is told by a component of its /version, or its platform; Docker\'s /version is not Podman\'s', () => {
    expect(isPodmanVersion({ Components: [{ Name: 'Podman Engine', Version: '4.3.1' }, { Name: 'Conmon' }], Platform: { Name: 'linux/amd64/debian-12' } })).toBe(true);
    expect(isPodmanVersion({ Platform: { Name: 'Podman Engine' } })).toBe(true);
    expect(isPodmanVersion({ Components: [{ Name: 'Engine', Version: '26.1.5' }, { Name: 'containerd' }, { Name: 'runc' }], Platform: { Name: 'Docker Engine - Community' } })).toBe(false);
    expect(isPodmanVersion({})).toBe(false);
  });

  it('what it lacks: Podman has no enable_icc; a rootless engine on cgroup v1 sets no limits (Docker\'s too); rootful Docker lacks nothing', () => {
    expect(engineLacks('docker', false, '2')).toEqual([]);
    expect(engineLacks('docker', undefined, undefined)).toEqual([]);
    expect(engineLacks('podman', false, '2')).toEqual([expect.stringMatching(/enable_icc.*refused/)]);
    expect(engineLacks('podman', true, '1')).toEqual([expect.stringMatching(/enable_icc/), expect.stringMatching(/limits of pods are not enforced.*cgroup v2/)]);
    expect(engineLacks('docker', true, '1')).toEqual([expect.stringMatching(/limits of pods are not enforced/)]);
  });

  it('doctor\'s line names the engine, its version, rootful or rootless, the API and cgroup versions; a runner that does not tell says "engine"', () => {
    expect(engineDetail({ kind: 'podman', version: '4.3.1', apiVersion: '1.41', rootless: true, cgroupVersion: '1', lacks: [] })).toBe('Podman 4.3.1, rootless (API 1.41, cgroup v1)');
    expect(engineDetail({ kind: 'docker', version: '26.1.5', apiVersion: '1.45', rootless: false, cgroupVersion: '2', lacks: [] })).toBe('Docker 26.1.5, rootful (API 1.45, cgroup v2)');
    expect(engineDetail({ version: '1.0', apiVersion: '1.41' })).toBe('engine 1.0 (API 1.41)');
  });

  it('Podman: a container\'s log is bounded in one file of 256 MiB (no max-file there); Docker\'s in four of 64 MiB', () => {
    expect(toCreateOptions(spec).HostConfig?.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '64m', 'max-file': '4' } });
    expect(toCreateOptions(spec, 'podman').HostConfig?.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '256m' } });
    expect(toCreateOptions(spec, 'podman').HostConfig).toMatchObject({ Init: true, CapDrop: ['ALL'], SecurityOpt: ['no-new-privileges'] });
  });

  it('Podman: a run\'s internal network is internal, has no name server, and carries the run\'s labels', () => {
    const body = podmanInternalNetwork({ name: 'cldpd-web-1', labels: { 'dev.cldpd.gateway': 'cldpd-web-1' } } as never, { base: (10 << 24) + (213 << 16) + 16, prefix: 28 });
    expect(body).toEqual({ name: 'cldpd-web-1-egress', driver: 'bridge', internal: true, dns_enabled: false, subnets: [{ subnet: '10.213.0.16/28' }], labels: { 'dev.cldpd.gateway': 'cldpd-web-1' } });
  });
});
