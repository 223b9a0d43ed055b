import { describe, expect, it } from 'vitest';
import { toCreateOptions, type Pod } from '../../src/core/index.js';
import { buildContainerSpec, imageHome, persistedVolumes } from '../../src/core/container-spec.js';
import { resolvePodConfig } from '../../src/core/pod-config.js';

const pod: Pod = {
  name: 'web',
  dir: '/pods/web',
  dockerfile: '/pods/web/Dockerfile',
  template: undefined,
  config: resolvePodConfig('web', {
    env: { MODE: 'ci' },
    inheritEnv: ['TOKEN', 'UNSET'],
    workdir: '/work',
    mounts: [{ source: '/src', target: '/src', readOnly: true }],
    memory: '1g', cpus: 0.5, pids: 64, network: 'none', stopGraceSeconds: 3,
  }, '/home/me'),
};

describe('imageHome', () => {
  it.each([
    [{ HOME: '/home/agent' }, 'agent', '/home/agent'],
    [{}, '', '/root'],
    [{}, 'root', '/root'],
    [{}, '0:0', '/root'],
    [{}, 'node:node', '/home/node'],
  ])('env %j user %j → %s', (env, user, home) => {
    expect(imageHome({ id: 'x', env, user, workingDir: '/', labels: {} })).toBe(home);
  });
});

describe('persistedVolumes', () => {
  it('expands ~ with the image home and names volumes by key and path', () => {
    const volumes = persistedVolumes(['~/.claude', '/work', '~/.claude'], { id: 'i', env: {}, user: 'node', workingDir: '/', labels: {} }, 'web-acme-web-1');
    expect(volumes.map((v) => v.path)).toEqual(['/home/node/.claude', '/work']);
    expect(volumes[0]?.volume).toMatch(/^cldpd-web-acme-web-1-[0-9a-f]{8}$/);
    expect(volumes[0]?.volume).not.toBe(volumes[1]?.volume);
    // The same key and path give the same volume: that is what makes resume find the files.
    expect(persistedVolumes(['/work'], { id: 'j', env: {}, user: '', workingDir: '/', labels: {} }, 'web-acme-web-1')[0]?.volume).toBe(volumes[1]?.volume);
  });
});

describe('buildContainerSpec and toCreateOptions', () => {
  const input = {
    pod, sessionId: 'web-00112233', containerName: 'cldpd-web-00112233', image: 'sha256:abc', cmd: ['claude', '-p', 'hi'],
    hostId: 'host-a', issueUrl: 'https://github.com/a/b/issues/1', run: 2,
    volumes: [{ path: '/root/.claude', volume: 'cldpd-v1' }], hostEnv: { TOKEN: 's3cret', OTHER: 'x' }, stdin: true,
  };
  const spec = buildContainerSpec(input);
  const options = toCreateOptions(spec);

  it('labels the container so it can be found again', () => {
    expect(options.Labels).toEqual({
      'dev.cldpd.session': 'web-00112233', 'dev.cldpd.pod': 'web', 'dev.cldpd.host': 'host-a',
      'dev.cldpd.issue': 'https://github.com/a/b/issues/1', 'dev.cldpd.run': '2',
    });
    expect(options.name).toBe('cldpd-web-00112233');
  });

  it('passes pod env and only the inherited variables that are set', () => {
    expect(options.Env).toEqual(['MODE=ci', 'TOKEN=s3cret', 'CLDPD_SESSION_ID=web-00112233']);
  });

  it('runs with an init, limits and no-new-privileges', () => {
    expect(options.HostConfig).toMatchObject({
      Init: true, AutoRemove: false, Memory: 1024 ** 3, MemorySwap: 1024 ** 3, NanoCpus: 5e8, PidsLimit: 64,
      NetworkMode: 'none', SecurityOpt: ['no-new-privileges'],
    });
    expect(options.StopTimeout).toBe(3);
    expect(options.Tty).toBe(false);
    expect(options.WorkingDir).toBe('/work');
  });

  it('hardening: drops every capability but the agent set', () => {
    expect(options.HostConfig?.CapDrop).toEqual(['ALL']);
    expect(options.HostConfig?.CapAdd).toEqual(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'NET_BIND_SERVICE']);
    for (const dropped of ['NET_RAW', 'MKNOD', 'AUDIT_WRITE', 'SETFCAP', 'SYS_CHROOT', 'SETPCAP']) expect(options.HostConfig?.CapAdd).not.toContain(dropped);
  });

  it('hardening: adds the capabilities pod.json asks for, once each', () => {
    const withRaw: Pod = { ...pod, config: resolvePodConfig('web', { network: 'none', capAdd: ['NET_RAW', 'cap_chown'] }, '/h') };
    const created = toCreateOptions(buildContainerSpec({ ...input, pod: withRaw }));
    expect(created.HostConfig?.CapDrop).toEqual(['ALL']);
    expect(created.HostConfig?.CapAdd).toEqual(['CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'NET_BIND_SERVICE', 'NET_RAW']);
  });

  it('hardening: bounds Docker\'s json-file log of the container', () => {
    expect(options.HostConfig?.LogConfig).toEqual({ Type: 'json-file', Config: { 'max-size': '64m', 'max-file': '4' } });
  });

  it('mounts binds and persisted volumes', () => {
    expect(options.HostConfig?.Mounts).toEqual([
      { Type: 'bind', Source: '/src', Target: '/src', ReadOnly: true },
      { Type: 'volume', Source: 'cldpd-v1', Target: '/root/.claude', ReadOnly: false },
    ]);
  });

  it('passes the command as an argv array, never through a shell', () => {
    expect(options.Cmd).toEqual(['claude', '-p', 'hi']);
    expect(options.Entrypoint).toBeUndefined();
  });
});
