// What only Podman needs checking: the engine is told apart, the CLI says so, stdin's end
// reaches the agent, and one run on rootful Podman. The shared suites run beside this file
// (sessions.test.ts, attach-end.test.ts, e2e.test.ts).
import './rootless-env.js';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DockerRunner } from '../../src/core/index.js';
import { CLI } from '../e2e/processes.js';
import { TestWorld, collect, describeWithDocker, outputLines } from '../integration/harness.js';
import { podmanHost } from './engine.js';

/** The rootful service, asked for here so that a missing one fails this file under CI. */
const ROOTFUL = podmanHost('rootful');

/** A TestWorld on rootful Podman (the file's DOCKER_HOST is the rootless one). */
class RootfulWorld extends TestWorld {
  override readonly docker = new Docker({ socketPath: (ROOTFUL ?? 'unix:///nonexistent').slice('unix://'.length) });
  override readonly runner = new DockerRunner(this.docker);
}

/** Runs the built CLI with `env`; resolves with its exit code and output, failing after 60 s. */
function cldpd(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cldpd ${args.join(' ')} did not finish within 60 s; stderr: ${stderr}`));
    }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describeWithDocker('Podman through its Docker-compatible API', () => {
  const world = new TestWorld();
  const rootful = new RootfulWorld();

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    await rootful.init();
  });

  afterAll(async () => {
    await world.close();
    await rootful.close();
  });

  it('engine: rootless Podman is told apart from Docker, with what it lacks; rootful Podman too', async () => {
    const rootless = await world.runner.engine();
    expect(rootless).toMatchObject({ kind: 'podman', rootless: true, version: expect.stringMatching(/^\d+\.\d+/), apiVersion: expect.stringMatching(/^1\.\d+$/) });
    expect(rootless.lacks).toEqual(expect.arrayContaining([expect.stringMatching(/enable_icc.*open pods on cldpd's shared network "cldpd" are refused/s)]));
    const root = await rootful.runner.engine();
    expect(root).toMatchObject({ kind: 'podman', rootless: false });
    expect(root.lacks.some((l) => /limits of pods are not enforced/.test(l))).toBe(false);
  });

  it('cldpd doctor names the engine it found (Podman, its version, rootless, the API version) and warns of what it lacks', async () => {
    await world.pod('it-doctor');
    const { code, stdout } = await cldpd(['doctor', '--pods-dir', world.podsDir], { ...process.env, CLDPD_HOME: world.home, CLDPD_HOST_ID: world.hostId });
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ok {4}docker: Podman \d+\.\d+\.\d+, rootless \(API 1\.\d+, cgroup v[12]\)$/m);
    expect(stdout).toMatch(/^warn {2}docker: Podman's networks have no switch for traffic between their containers/m);
    expect(stdout).toMatch(/^ok {4}pod it-doctor: /m);
  });

  it('stdin: the prompt written to an agent\'s standard input ends with end-of-file, which it reads before it answers', async () => {
    // The agent reads its input to the end: it would hang here if the end never came.
    await world.pod('it-stdin', { command: ['sh', '-c', 'n=$(wc -c); echo "read $n bytes to the end"', '--input-format', 'stream-json'] });
    const events = await collect(await world.dispatcher.start('it-stdin', { prompt: 'hello over stdin' }), undefined, 60_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(outputLines(events)).toEqual([expect.stringMatching(/^stdout:read [1-9]\d* bytes to the end$/)]);
  });

  it('rootful Podman: a session runs from start to exit behind its egress gateway, its output and exit code passed through; it reaches no service of the host', async () => {
    // A service of the host on every address: the run's internal network has no way to it.
    const host = createServer((socket) => socket.end('pong\n'));
    await new Promise<void>((resolve) => host.listen(0, '0.0.0.0', resolve));
    const hostAddress = Object.values(networkInterfaces()).flat().find((i) => i?.family === 'IPv4' && !i.internal)?.address as string;
    const probe = `if nc -w 2 ${hostAddress} ${(host.address() as AddressInfo).port} </dev/null | grep -q pong; then echo host reached; else echo host blocked; fi`;
    await rootful.pod('it-rootful', { command: ['sh', '-c', `echo "uid $(id -u)"; ${probe}; echo to-stderr >&2; exit 4`] });
    const session = await rootful.dispatcher.start('it-rootful', { prompt: 'x' });
    const events = await collect(session, undefined, 90_000).finally(() => host.close());
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 4, reason: 'exited' });
    expect(outputLines(events)).toEqual(expect.arrayContaining(['stdout:uid 0', 'stdout:host blocked', 'stderr:to-stderr']));
    expect(await session.wait()).toBe(4);
    expect(await rootful.containersOf(session.id)).toEqual([]);
  });
});
