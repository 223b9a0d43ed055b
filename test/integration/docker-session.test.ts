import { randomInt } from 'node:crypto';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dispatcher, DockerRunner, scanRun, type EngineInfo, type Session, type SessionEvent } from '../../src/core/index.js';
import { parseLogLine } from '../fakes/session-log.js';
import { AGENT_CAPABILITIES, ISOLATED_NETWORK } from '../../src/core/runner.js';
import { libpodCall } from '../../src/core/engine.js';
import { BUSYBOX, TestWorld, collect, describeWithDocker, outputLines, until } from './harness.js';

describeWithDocker('sessions on a real Docker engine', () => {
  const world = new TestWorld();
  /** The engine (Docker, or Podman with DOCKER_HOST at its socket: test/podman runs this file so). */
  let engine: EngineInfo;
  const podman = (): boolean => engine.kind === 'podman';

  beforeAll(async () => {
    await world.init();
    engine = await world.runner.engine();
    await world.pod('it-exit', { command: ['sh', '-c', 'echo "to stdout"; echo "to stderr" >&2; echo "secret=$CLDPD_TEST_SECRET"; exit ${CODE:-0}'], inheritEnv: ['CLDPD_TEST_SECRET'] });
    await world.pod('it-exit-3', { command: ['sh', '-c', 'echo bye; exit 3'] });
    await world.pod('it-lines', { command: ['seq', '1', '200000'] });
    await world.pod('it-broken', {}, 'RUN ["/bin/sh", "-c", "echo about to fail; exit 7"]');
    await world.pod('it-sleep', { command: ['sleep', '60'], timeoutSeconds: 1, stopGraceSeconds: 1 });
    await world.pod('it-stubborn', { command: ['sh', '-c', "trap '' TERM; echo ready; while true; do sleep 1; done"], stopGraceSeconds: 1 });
    await world.pod('it-claude');
    // A pod whose commands take the prompt as an argument: a resume of a running session is an exec.
    await world.pod('it-claude-argv', {
      command: ['claude', '-p', '{prompt}', '--output-format', 'stream-json'],
      resumeCommand: ['claude', '-p', '{prompt}', '--resume', '{claudeSessionId}', '--output-format', 'stream-json'],
    });
  });

  afterAll(async () => {
    await world.close();
  });

  it('passes exit code 0 through and keeps stdout and stderr apart', async () => {
    const session = await world.dispatcher.start('it-exit', { prompt: 'x' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });
    // Order is kept within a stream; between stdout and stderr Docker promises none.
    const lines = outputLines(events);
    expect(lines.filter((l) => l.startsWith('stdout:'))).toEqual(['stdout:to stdout', 'stdout:secret=from-the-host']);
    expect(lines.filter((l) => l.startsWith('stderr:'))).toEqual(['stderr:to stderr']);
    expect(await session.wait()).toBe(0);
    expect(await world.containersOf(session.id)).toEqual([]); // removed once read
  });

  it('passes a non-zero exit code through as data', async () => {
    const session = await world.dispatcher.start('it-exit-3', { prompt: 'x' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 3 });
    expect(await session.wait()).toBe(3);
  });

  it('follows the event ordering contract', async () => {
    const session = await world.dispatcher.start('it-exit-3', { prompt: 'x' });
    const types = (await collect(session)).map((e) => e.type);
    const collapsed = types.filter((t, i) => t !== types[i - 1]);
    expect(collapsed).toEqual(['build.started', 'build.output', 'build.completed', 'container.started', 'output', 'container.exited']);
  });

  it('delivers 200,000 lines, every one in order, and logs every one', async () => {
    const session = await world.dispatcher.start('it-lines', { prompt: 'x' });
    let expected = 1;
    let outOfOrder = 0;
    const events = await collect(session, (e) => {
      if (e.type !== 'output') return;
      if (e.line !== String(expected)) outOfOrder += 1;
      expected += 1;
    });
    expect(outOfOrder).toBe(0);
    expect(expected - 1).toBe(200_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    const logged = (await readFile(world.store.logPath(session.id), 'utf8')).split('\n').map(parseLogLine).filter((e): e is SessionEvent => !!e);
    const loggedLines = logged.flatMap((e) => (e.type === 'output' ? [e.line] : []));
    expect(loggedLines).toHaveLength(200_000);
    expect(loggedLines.every((line, i) => line === String(i + 1))).toBe(true);
  });

  it('a bounded run log: all 200,000 lines are still shown, the log on disk stays within its bound and counts the rest', async () => {
    const bound = 64 * 1024;
    const bounded = new Dispatcher({ runner: world.runner, pods: { podsDir: world.podsDir, homeDir: world.home }, store: world.store, hostId: world.hostId, hostEnv: {}, maxLogBytesPerRun: bound });
    const session = await bounded.start('it-lines', { prompt: 'x' });
    let expected = 1;
    let outOfOrder = 0;
    await collect(session, (e) => {
      if (e.type !== 'output') return;
      if (e.line !== String(expected)) outOfOrder += 1;
      expected += 1;
    });
    expect(outOfOrder).toBe(0);
    expect(expected - 1).toBe(200_000);
    const path = world.store.logPath(session.id);
    expect((await stat(path)).size).toBeLessThan(bound + 2048);
    const state = await scanRun(path, 1);
    expect(state.log.cut).toBe(true);
    expect(state.lines.stdout).toBe(200_000);
    expect(state.terminal).toMatchObject({ type: 'container.exited', exitCode: 0 });
  });

  it('log bound: 40 result-shaped lines of 1 MB from a container keep a 1 MiB-bounded log within about 1.2 MiB more, and the last result is read back from it', async () => {
    await world.pod('it-results', { command: ['sh', '-c', 'big=$(head -c 1000000 /dev/zero | tr "\\0" R); i=1; while [ $i -le 40 ]; do printf \'{"type":"result","subtype":"success","is_error":false,"result":"%s answer %s","num_turns":%s,"total_cost_usd":0.5}\\n\' "$big" $i $i; i=$((i+1)); done'] });
    const bound = 1024 * 1024;
    const bounded = new Dispatcher({ runner: world.runner, pods: { podsDir: world.podsDir, homeDir: world.home }, store: world.store, hostId: world.hostId, hostEnv: {}, maxLogBytesPerRun: bound });
    const session = await bounded.start('it-results', { prompt: 'x' });
    const events = await collect(session);
    expect(events.filter((e) => e.type === 'output' && e.agent?.some((a) => a.kind === 'result'))).toHaveLength(40);
    const path = world.store.logPath(session.id);
    expect((await stat(path)).size).toBeLessThan(bound + 1.25 * 1024 * 1024);
    const state = await scanRun(path, 1);
    expect(state.log.cut).toBe(true);
    expect(state.agent.result?.text?.endsWith(' answer 40')).toBe(true);
    expect(state.agent.runTurns).toBe(40);
    expect(state.lines.stdout).toBe(40);
  });

  it('reports a failed build as build.started → build.output* → error with the build error', async () => {
    const session = await world.dispatcher.start('it-broken', { prompt: 'x' });
    const events = await collect(session);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('build.started');
    expect(types.slice(1, -1).every((t) => t === 'build.output')).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'BuildFailed', message: expect.stringMatching(podman() ? /while running runtime: exit status 7/ : /returned a non-zero code: 7/) });
    expect(events.some((e) => e.type === 'build.output' && e.line.includes('about to fail'))).toBe(true);
    await expect(session.wait()).rejects.toMatchObject({ code: 'BuildFailed' });
    expect(await world.containersOf(session.id)).toEqual([]);
  });

  it('builds an unchanged pod once; a changed file or base image builds it again', async () => {
    const built = async (pod: string): Promise<{ imageId: string; lines: string[] }> => {
      const session = await world.dispatcher.start(pod, { prompt: 'x' });
      const events = await collect(session);
      expect(await session.wait()).toBe(0);
      const completed = events.find((e) => e.type === 'build.completed');
      if (completed?.type !== 'build.completed') throw new Error(`no build.completed in ${JSON.stringify(events)}`);
      return { imageId: completed.imageId, lines: events.flatMap((e) => (e.type === 'build.output' ? [e.line] : [])) };
    };
    // Images outlive test runs: start from none, whatever an earlier run left.
    for (const tag of ['cldpd-it-cache-child:latest', 'cldpd-it-cache-base:latest']) await world.docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    const base = await world.pod('it-cache-base', { command: ['true'] });
    const child = join(world.podsDir, 'it-cache-child');
    await mkdir(child, { recursive: true });
    await writeFile(join(child, 'Dockerfile'), 'FROM cldpd-it-cache-base:latest\nCOPY note.txt /note.txt\n');
    await writeFile(join(child, 'note.txt'), 'one');
    await writeFile(join(child, 'pod.json'), JSON.stringify({ command: ['cat', '/note.txt'] }));

    const baseImage = (await built('it-cache-base')).imageId;
    const first = await built('it-cache-child');
    expect(first.lines.some((l) => /^(Step|STEP) \d/.test(l))).toBe(true);
    const again = await built('it-cache-child');
    expect(again.imageId).toBe(first.imageId);
    expect(again.lines).toEqual([expect.stringMatching(/^Nothing in the context, build args or base images changed/)]);

    await writeFile(join(child, 'note.txt'), 'two');
    const edited = await built('it-cache-child');
    expect(edited.lines.some((l) => /^(Step|STEP) \d/.test(l))).toBe(true);
    expect(edited.imageId).not.toBe(first.imageId);

    await writeFile(join(base, 'extra.txt'), 'changes the base');
    await writeFile(join(base, 'Dockerfile'), `${await readFile(join(base, 'Dockerfile'), 'utf8')}COPY extra.txt /extra.txt\n`);
    expect((await built('it-cache-base')).imageId).not.toBe(baseImage);
    const rebased = await built('it-cache-child');
    expect(rebased.lines.some((l) => /^(Step|STEP) \d/.test(l))).toBe(true);
    expect(rebased.imageId).not.toBe(edited.imageId);
  });

  it('stops a container that outlives its timeout and says so', async () => {
    const session = await world.dispatcher.start('it-sleep', { prompt: 'x' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'timeout' });
    expect(await world.containersOf(session.id)).toEqual([]);
  });

  it('stop is idempotent and kills a container that ignores SIGTERM after the grace period', async () => {
    const session = await world.dispatcher.start('it-stubborn', { prompt: 'x' });
    const events = collect(session);
    await until('the container to be running', async () => (await world.containersOf(session.id)).some((c) => c.State === 'running'));
    await Promise.all([session.stop(), session.stop(), world.dispatcher.stop(session.id)]);
    await session.stop();
    const done = await events;
    expect(done.at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped', exitCode: 137 });
    await world.dispatcher.stop(session.id);
    expect(await world.containersOf(session.id)).toEqual([]);
  });

  it('runs two sessions of one pod at the same time', async () => {
    const a = await world.dispatcher.start('it-claude', { prompt: 'linger a' });
    const b = await world.dispatcher.start('it-claude', { prompt: 'linger b' });
    // Each has printed its prompt before the stop (a busy engine may start a container well before its agent writes).
    const printed = new Set<string>();
    const note = (e: SessionEvent) => (e.type === 'output' ? printed.add(e.line) : undefined);
    const reading = [collect(a, note), collect(b, note)];
    await until('both agents printing', () => printed.has('prompt: linger a') && printed.has('prompt: linger b'));
    const running = await world.inventory.containers();
    expect(running.map((c) => c.sessionId).sort()).toEqual([a.id, b.id].sort());
    await Promise.all([a.stop(), b.stop()]);
    const [ea, eb] = await Promise.all(reading);
    expect(outputLines(ea ?? [])).toContain('stdout:prompt: linger a');
    expect(outputLines(eb ?? [])).toContain('stdout:prompt: linger b');
  });

  it('refuses to start a second agent on a running session whose agent takes live input', async () => {
    const first = await world.dispatcher.start('it-claude', { prompt: 'linger here' });
    const firstEvents = collect(first);
    await until('the Claude session id', async () => !!(await world.store.load(first.id)).claudeSessionId);
    await expect(world.dispatcher.resume(first.id, 'one more thing')).rejects.toMatchObject({ code: 'SessionBusy' });
    await first.stop();
    expect((await firstEvents).filter((e) => e.type === 'container.started')).toHaveLength(1);
  });

  it('resumes a running session by exec in the same container when the pod takes prompts in argv', async () => {
    const first = await world.dispatcher.start('it-claude-argv', { prompt: 'linger here' });
    const firstEvents = collect(first);
    await until('the Claude session id', async () => !!(await world.store.load(first.id)).claudeSessionId);

    const second = await world.dispatcher.resume(first.id, 'one more thing');
    const events = await collect(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: true, run: 2, containerId: first.containerId });
    expect(outputLines(events)).toContain(`stdout:resumed fake-${first.id}; note: written by the first run`);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect((await world.containersOf(first.id)).filter((c) => c.State === 'running')).toHaveLength(1);

    await world.dispatcher.stop(first.id);
    expect((await firstEvents).at(-1)).toMatchObject({ type: 'container.exited' });
    expect(await world.containersOf(first.id)).toEqual([]);
  });

  it('resumes an exited session in a new container that sees the persisted files and gets the Claude session id', async () => {
    const issueUrl = 'https://github.com/acme/web/issues/42';
    const first = await world.dispatcher.start('it-claude', { issueUrl });
    const firstEvents = await collect(first);
    expect(outputLines(firstEvents)).toContain(`stdout:prompt: Work on this GitHub issue: ${issueUrl}`);
    expect(first.agent).toMatchObject({ claudeSessionId: `fake-${first.id}`, result: { text: 'all done (first run)', turns: 2, costUsd: 0.0125 } });
    expect(await world.containersOf(first.id)).toEqual([]);

    const second = await world.dispatcher.resume(first.id, 'carry on');
    const events = await collect(second);
    expect(events[0]).toMatchObject({ type: 'container.started', exec: false, run: 2 });
    expect(outputLines(events)).toContain(`stdout:resumed fake-${first.id}; note: written by the first run`);
    expect(outputLines(events)).toContain('stdout:prompt: carry on');
    expect(await world.containersOf(first.id)).toEqual([]);
  });

  it('puts labels, limits, an init and no-new-privileges on the container, on its run\'s own network with IPv6 off', async () => {
    // An issue of its own: a volume an earlier run on this engine left for issue 1 (another host's) is not this one's.
    const issueUrl = `https://github.com/acme/web/issues/${randomInt(1_000_000, 9_999_999)}`;
    const session = await world.dispatcher.start('it-claude', { prompt: 'linger', issueUrl });
    const reading = collect(session);
    await until('the container', () => !!session.containerId);
    const info = await world.docker.getContainer(session.containerId as string).inspect();
    expect(info.Config.Labels).toMatchObject({ 'dev.cldpd.session': session.id, 'dev.cldpd.pod': 'it-claude', 'dev.cldpd.host': world.hostId, 'dev.cldpd.issue': issueUrl });
    if (podman()) {
      // Podman shows capabilities as its defaults less the dropped ones (the set itself is checked by CapBnd below),
      // its log bound in its own inspect, and no limits at all where it cannot set them (rootless on cgroup v1).
      // Its NetworkMode says "bridge" for any bridge network: the network itself is checked below.
      expect(info.HostConfig).toMatchObject({ Init: true, SecurityOpt: ['no-new-privileges'], LogConfig: { Type: 'json-file' } });
      const limited = !(engine.rootless && engine.cgroupVersion === '1');
      expect(info.HostConfig).toMatchObject(limited ? { Memory: 256 * 1024 ** 2, NanoCpus: 1e9, PidsLimit: 128 } : { Memory: 0, NanoCpus: 0 });
      if (!limited) expect(engine.lacks).toEqual(expect.arrayContaining([expect.stringMatching(/limits of pods are not enforced/)]));
      expect(await podmanLogSize(session.containerId as string)).toBe('256MB');
    } else {
      expect(info.HostConfig).toMatchObject({
        Init: true, Memory: 256 * 1024 ** 2, NanoCpus: 1e9, PidsLimit: 128, SecurityOpt: ['no-new-privileges'],
        CapDrop: ['ALL'], CapAdd: [...AGENT_CAPABILITIES], NetworkMode: `cldpd-${session.id}-egress`,
        Sysctls: expect.objectContaining({ 'net.ipv6.conf.all.disable_ipv6': '1' }),
        LogConfig: { Type: 'json-file', Config: { 'max-size': '64m', 'max-file': '4' } },
      });
    }
    expect(Object.keys(info.NetworkSettings.Networks)).toEqual([`cldpd-${session.id}-egress`]);
    const volume = info.Mounts.find((m) => m.Destination === '/work');
    expect(volume?.Type).toBe('volume');
    const labels = (await world.docker.getVolume(volume?.Name as string).inspect()).Labels;
    expect(labels).toMatchObject({ 'dev.cldpd.pod': 'it-claude', 'dev.cldpd.path': '/work', 'dev.cldpd.host': world.hostId });
    await session.stop();
    await reading;
  });

  /** Podman's log bound of a container, from its own inspect (the compatible one does not show it). */
  const podmanLogSize = async (containerId: string): Promise<string | undefined> => {
    const body = await libpodCall(world.docker, 'GET', `/v4.0.0/libpod/containers/${containerId}/json`, undefined, { 200: true });
    return (body as { HostConfig?: { LogConfig?: { Size?: string } } }).HostConfig?.LogConfig?.Size;
  };

  /** Starts a session of `pod` and waits until its output has a line matching `ready`. */
  const startUntil = async (pod: string, ready: RegExp): Promise<{ session: Session; reading: Promise<SessionEvent[]>; lines: () => string[] }> => {
    const session = await world.dispatcher.start(pod, { prompt: 'x' });
    const seen: SessionEvent[] = [];
    const reading = collect(session, (e) => seen.push(e));
    await until(`${pod} to print ${ready}`, () => outputLines(seen).some((l) => ready.test(l)));
    return { session, reading, lines: () => outputLines(seen) };
  };

  it('hardening: drops every capability but the agent set, adds what pod.json capAdd asks, and bounds the log', async () => {
    const show = ['sh', '-c', 'grep ^CapBnd: /proc/self/status; sleep 60'];
    await world.pod('it-caps', { command: show });
    // Open pods on Podman name a network of their own (see the next test).
    await world.pod('it-caps-raw', { command: show, capAdd: ['NET_RAW'], egress: 'open', ...(podman() ? { network: 'bridge' } : {}) });
    for (const [pod, capAdd, bounding] of [
      ['it-caps', [...AGENT_CAPABILITIES], '00000000000004fb'], // CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID NET_BIND_SERVICE
      ['it-caps-raw', [...AGENT_CAPABILITIES, 'NET_RAW'], '00000000000024fb'],
    ] as const) {
      const { session, reading, lines } = await startUntil(pod, /^stdout:CapBnd:/);
      const info = await world.docker.getContainer(session.containerId as string).inspect();
      if (podman()) {
        expect(info.HostConfig).toMatchObject({ SecurityOpt: ['no-new-privileges'], LogConfig: { Type: 'json-file' } });
        expect(await podmanLogSize(session.containerId as string)).toBe('256MB');
      } else {
        expect(info.HostConfig).toMatchObject({ CapDrop: ['ALL'], CapAdd: capAdd, SecurityOpt: ['no-new-privileges'], LogConfig: { Type: 'json-file', Config: { 'max-size': '64m', 'max-file': '4' } } });
      }
      expect(lines()).toContain(`stdout:CapBnd:\t${bounding}`);
      await session.stop();
      await reading;
    }
  });

  it('hardening: open pods on the default network cannot reach each other, only the outside; on Docker\'s bridge they can', async () => {
    const serve = ['sh', '-c', 'echo listening; while true; do echo pong | nc -l -p 8080; done'];
    await world.pod('it-net-server', { command: serve, egress: 'open' });
    await world.pod('it-net-server-bridge', { command: serve, network: 'bridge' });
    /** What a container of a new pod on `network` gets from host:port: "reached" (it read pong) or "blocked". */
    const probe = async (pod: string, network: string | undefined, host: string, port: number): Promise<string[]> => {
      await world.pod(pod, { command: ['sh', '-c', `if nc -w 3 ${host} ${port} </dev/null | grep -q pong; then echo reached; else echo blocked; fi`], ...(network ? { network } : { egress: 'open' }) });
      const session = await world.dispatcher.start(pod, { prompt: 'x' });
      return outputLines(await collect(session)).filter((l) => l.startsWith('stdout:'));
    };
    if (podman()) {
      // Podman's networks have no enable_icc: an open pod on the shared network is refused, saying what to do.
      const refused = await collect(await world.dispatcher.start('it-net-server', { prompt: 'x' }));
      expect(refused.at(-1)).toMatchObject({ type: 'error', code: 'ContainerFailed', message: expect.stringMatching(/open pod on cldpd's shared network "cldpd", which Podman cannot keep its containers apart on.*Give the pod an "egress" list instead of "open"/s) });
      expect(refused.some((e) => e.type === 'container.started')).toBe(false);
      expect(engine.lacks).toEqual(expect.arrayContaining([expect.stringMatching(/enable_icc/)]));
      // An open pod on a network it names runs, and its peers there reach it, as on Docker's bridge.
      const shared = await startUntil('it-net-server-bridge', /^stdout:listening$/);
      try {
        const address = Object.values((await world.docker.getContainer(shared.session.containerId as string).inspect()).NetworkSettings.Networks)[0]?.IPAddress;
        expect(await probe('it-net-client-bridge', 'bridge', address as string, 8080)).toEqual(['stdout:reached']);
      } finally {
        await shared.session.stop();
        await shared.reading;
      }
      return;
    }
    const isolated = await startUntil('it-net-server', /^stdout:listening$/);
    const shared = await startUntil('it-net-server-bridge', /^stdout:listening$/);
    // The host, beyond the gateway, stands for the outside world (no internet here).
    const host = createServer((socket) => socket.end('pong\n'));
    await new Promise<void>((resolve) => host.listen(0, '0.0.0.0', resolve));
    try {
      const on = async (s: Session, network: string) => (await world.docker.getContainer(s.containerId as string).inspect()).NetworkSettings.Networks[network];
      const server = await on(isolated.session, ISOLATED_NETWORK);
      expect(server?.IPAddress).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
      const isolatedNet = await world.docker.getNetwork(ISOLATED_NETWORK).inspect();
      expect(isolatedNet.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
      expect(isolatedNet.Labels).toMatchObject({ 'dev.cldpd.network': 'isolated' });

      expect(await probe('it-net-client', undefined, server?.IPAddress as string, 8080)).toEqual(['stdout:blocked']);
      expect(await probe('it-net-client', undefined, server?.Gateway as string, (host.address() as AddressInfo).port)).toEqual(['stdout:reached']);
      // The control: the same probe between two containers on Docker's default bridge connects.
      const bridged = await on(shared.session, 'bridge');
      expect(await probe('it-net-client-bridge', 'bridge', bridged?.IPAddress as string, 8080)).toEqual(['stdout:reached']);
    } finally {
      host.close();
      await Promise.all([isolated.session.stop(), shared.session.stop()]);
      await Promise.all([isolated.reading, shared.reading]);
    }
  });

  it('hardening: runs creating the isolated network at once, from several processes, end up on one', async () => {
    const name = `cldpd-it-${world.hostId}`;
    const exactly = async (): Promise<Docker.NetworkInspectInfo[]> => (await world.docker.listNetworks({ filters: { name: [name] } })).filter((n) => n.Name === name);
    try {
      // A runner per "process": one process's runs already share a single creation.
      const created = await Promise.all(Array.from({ length: 8 }, () => new DockerRunner(new Docker()).ensureIsolatedNetwork(name)));
      expect(created).toContain(true);
      const networks = await exactly();
      expect(networks).toHaveLength(1);
      // Podman keeps no enable_icc: its open pods are refused the network instead (see the test above).
      if (!podman()) expect(networks[0]?.Options).toMatchObject({ 'com.docker.network.bridge.enable_icc': 'false' });
      expect(await world.runner.ensureIsolatedNetwork(name)).toBe(false);
      // The name resolves to one network: a container starts on it.
      const container = await world.docker.createContainer({ Image: 'cldpd-it-exit-3:latest', Cmd: ['true'], Labels: { 'dev.cldpd.host': world.hostId }, HostConfig: { NetworkMode: name } });
      await container.start();
      expect(((await container.wait()) as { StatusCode: number }).StatusCode).toBe(0);
      await container.remove();
    } finally {
      for (const n of await exactly()) await world.docker.getNetwork(n.Id).remove().catch(() => undefined);
    }
  });

  it('hardening: refuses a network of the isolated name that cldpd did not create', async () => {
    const name = `cldpd-it-foreign-${world.hostId}`;
    await world.docker.createNetwork({ Name: name, CheckDuplicate: true });
    try {
      await expect(world.runner.ensureIsolatedNetwork(name)).rejects.toMatchObject({ code: 'ContainerFailed', message: expect.stringMatching(/not created by cldpd.*docker network rm/) });
    } finally {
      await world.docker.getNetwork(name).remove().catch(() => undefined);
    }
  });

  it('gives a new persisted volume to a non-root image user, and looks into an image for a path', async () => {
    await world.pod('it-user', { command: ['sh', '-c', 'touch /work/mine && stat -c %u:%g /work && id -u'] }, 'USER 1000:1000');
    const session = await world.dispatcher.start('it-user', { prompt: 'x' });
    const events = await collect(session);
    // Without the owner change, uid 1000 could not write the root-owned volume Docker creates.
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(outputLines(events)).toEqual(expect.arrayContaining(['stdout:1000:1000', 'stdout:1000']));
    const image = (await world.store.load(session.id)).imageId;
    expect(await world.runner.imageHasPath(image, '/bin/busybox')).toBe(true);
    expect(await world.runner.imageHasPath(image, '/bin/bash')).toBe(false);
    expect(await world.docker.listContainers({ all: true, filters: { label: ['dev.cldpd.helper'] } })).toEqual([]); // helpers leave nothing
  });

  it('fails at once, saying what to change, when the owner of a persisted path cannot be set', async () => {
    const dir = join(world.podsDir, 'it-nochown');
    await mkdir(dir, { recursive: true });
    await copyFile(BUSYBOX, join(dir, 'busybox'));
    // No applets installed: the image has no chown.
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nUSER 1000\n');
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ command: ['/bin/busybox', 'true'], persist: ['/work'] }));
    const session = await world.dispatcher.start('it-nochown', { prompt: 'x' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'error', code: 'InvalidPod', message: expect.stringMatching(/\/work would belong to root.*"1000" cannot write.*Dockerfile/s) });
    expect(events.some((e) => e.type === 'container.started')).toBe(false);
    expect(await world.containersOf(session.id)).toEqual([]);
  });

  it('reads a container\'s logs since a time and finds session containers by label', async () => {
    const session = await world.dispatcher.start('it-claude', { prompt: 'linger' });
    const reading = collect(session);
    await until('the result line', async () => (await readFile(world.store.logPath(session.id), 'utf8')).includes('prompt: linger'));
    const [found] = await world.runner.list({ 'dev.cldpd.session': session.id });
    expect(found?.id).toBe(session.containerId);
    expect(await world.runner.isRunning(found?.id as string)).toBe(true);
    const stop = session.stop();
    let text = '';
    for await (const chunk of world.runner.logs(found?.id as string, 0)) text += chunk.data.toString();
    await stop;
    expect(text).toContain('prompt: linger');
    await reading;
  });
});
