import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../src/core/index.js';
import { TestWorld, describeWithDocker, until } from './harness.js';

const CLI = fileURLToPath(new URL('../../dist/main/cldpd.js', import.meta.url));

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

describeWithDocker('the cldpd CLI against a real Docker engine', () => {
  const world = new TestWorld();
  let env: NodeJS.ProcessEnv;

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    const cli = await world.pod('it-cli', { command: ['sh', '-c', 'echo "hello from the pod"; echo "warning" >&2; exit 5'] });
    // A context no earlier run had, so that this start builds (from Docker's cache) and shows it.
    await writeFile(join(cli, 'stamp'), world.hostId);
    await world.pod('it-cli-linger', { command: ['sh', '-c', 'echo ready; sleep 60'], stopGraceSeconds: 2 });
    await world.pod('it-cli-claude');
    env = { ...process.env, CLDPD_HOME: world.home, CLDPD_HOST_ID: world.hostId, CLDPD_PODS_DIR: world.podsDir };
  });

  afterAll(async () => {
    await world.close();
  });

  function cldpd(args: string[], onStderr?: (text: string, child: ReturnType<typeof spawn>) => void): Promise<Run> {
    return new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        onStderr?.(stderr, child);
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`cldpd ${args.join(' ')} did not finish within 90 s; stderr: ${stderr}`));
      }, 90_000);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr });
      });
    });
  }

  it('start shows build progress and the pod output and exits with the container code', async () => {
    const run = await cldpd(['start', 'it-cli', '--prompt', 'go']);
    expect(run.code).toBe(5);
    expect(run.stdout).toBe('hello from the pod\n');
    expect(run.stderr).toContain('cldpd: building image cldpd-it-cli:latest');
    // Compact: one line per step; the builder's bookkeeping and cldpd's own labels are not shown.
    expect(run.stderr).toMatch(/ {2}‣ COPY /);
    expect(run.stderr).not.toMatch(/Step \d|--->|dev\.cldpd|Successfully/);
    expect(run.stderr).toContain('warning\n');
    expect(run.stderr).toMatch(/✗ exited with code 5 · [\d.]+ s\n/);
    const session = /cldpd: session (it-cli-[0-9a-f]{16})/.exec(run.stderr)?.[1] as string;
    expect(run.stderr).toContain(`continue: cldpd resume ${session} --prompt '<what next>'`);
    expect(run.stderr + run.stdout).not.toContain('\u001b'); // pipes get no colour
    expect(await world.containersOf(session)).toEqual([]);

    // The log holds everything, on stdout, and the whole build with --verbose.
    const logs = await cldpd(['logs', session]);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('hello from the pod\n');
    expect(logs.stdout).toContain('warning\n'); // the container's stderr too
    expect(logs.stdout).toContain('cldpd: building image cldpd-it-cli:latest\n');
    expect(logs.stderr).toBe('');
    const verbose = await cldpd(['logs', session, '--verbose']);
    expect(verbose.stdout).toMatch(/Step \d\/\d : COPY /);
    expect(verbose.stdout).not.toContain('dev.cldpd');
    const ps = await cldpd(['ps', '--all', '--json']);
    expect(ps.stdout).toContain(`"session":"${session}"`);
  });

  it('flags may come anywhere, and --json prints events', async () => {
    const run = await cldpd(['--json', '--prompt', 'go', 'start', 'it-cli-claude', '--pods-dir', world.podsDir]);
    expect(run.code).toBe(0);
    const events = run.stdout.trim().split('\n').map((l) => JSON.parse(l) as { type: string; agent?: Array<{ kind: string }> });
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(events.flatMap((e) => e.agent ?? []).map((a) => a.kind)).toEqual(['init', 'message', 'result']);
  });

  it('Ctrl+C stops the container and leaves none behind', async () => {
    let sent = false;
    const run = await cldpd(['start', 'it-cli-linger', '--prompt', 'go'], (stderr, child) => {
      if (!sent && stderr.includes('running in')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(run.stderr).toContain('stopping session');
    expect(run.code).toBe(143);
    const session = /cldpd: session (it-cli-linger-[0-9a-f]{16})/.exec(run.stderr)?.[1] as string;
    expect(await world.containersOf(session)).toEqual([]);
  });

  it('a reader that goes away (cldpd start | head -1) stops the container too', async () => {
    await world.pod('it-cli-chatty', { command: ['sh', '-c', 'while true; do echo tick; sleep 0.05; done'] });
    const child = spawn(process.execPath, [CLI, 'start', 'it-cli-chatty', '--prompt', 'go'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code).toBe(143);
    const session = /cldpd: session (it-cli-chatty-[0-9a-f]{16})/.exec(stderr)?.[1] as string;
    expect(session).toBeTruthy();
    expect(await world.containersOf(session)).toEqual([]);
  });

  it('Ctrl+C during the build cancels it: no container is started', async () => {
    await world.pod('it-cli-slowbuild', { command: ['true'] }, 'RUN ["/bin/sh", "-c", "echo building slowly; sleep 20"]');
    let sent = false;
    const run = await cldpd(['start', 'it-cli-slowbuild', '--prompt', 'go'], (stderr, child) => {
      if (!sent && stderr.includes('building slowly')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    expect(sent).toBe(true);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('stopped before its container started');
    const left = await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.pod}=it-cli-slowbuild`, `${LABELS.host}=${world.hostId}`] } });
    expect(left).toEqual([]);
    // The build's own intermediate container is removed by Docker once the build is cancelled.
    await until('the cancelled build to clean up', async () =>
      (await world.docker.listContainers({ all: true })).every((c) => !c.Command.includes('building slowly')), 30_000);
  });

  it('stop, doctor and pods answer from another terminal', async () => {
    let session = '';
    const running = cldpd(['start', 'it-cli-linger', '--prompt', 'go'], (stderr) => {
      session ||= /cldpd: session (it-cli-linger-[0-9a-f]{16})/.exec(stderr)?.[1] ?? '';
    });
    await until('the container', async () => !!session && (await world.containersOf(session)).some((c) => c.State === 'running'));
    const ps = await cldpd(['ps']);
    expect(ps.stdout).toContain(session);
    const stop = await cldpd(['stop', session]);
    expect(stop.code).toBe(0);
    expect((await running).code).toBe(143);

    const doctor = await cldpd(['doctor']);
    // Which engine it found: Docker here (test/podman/podman.test.ts checks Podman's line).
    expect(doctor.stdout).toMatch(/ok\s+docker: Docker \d+\.\d+\S*, root(ful|less) \(API 1\.\d+/);
    expect(doctor.stdout).toContain('pod it-cli:');
    const pods = await cldpd(['pods', '--json']);
    expect(pods.stdout).toContain('"name":"it-cli","valid":true');
  });

  /** Runs the CLI in a pseudo-terminal (util-linux `script`), as a person at a terminal would; stdout and stderr arrive together. */
  function inTerminal(args: string[], extraEnv: Record<string, string> = {}): Promise<{ code: number | null; output: string }> {
    const command = [process.execPath, CLI, ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
    return new Promise((resolve, reject) => {
      const child = spawn('script', ['-qefc', command, '/dev/null'], { env: { ...env, TERM: 'xterm-256color', ...extraEnv }, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`cldpd ${args.join(' ')} in a terminal did not finish within 90 s: ${output}`));
      }, 90_000);
      child.on('error', reject);
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve({ code, output });
      });
    });
  }

  it('in a terminal: colour and dim text; NO_COLOR turns it off', async () => {
    const coloured = await inTerminal(['start', 'it-cli', '--prompt', 'go']);
    expect(coloured.code).toBe(5);
    expect(coloured.output).toContain('\u001b[2mcldpd: session it-cli-'); // notes dim
    expect(coloured.output).toMatch(/\u001b\[31m✗ exited with code 5/); // the outcome red
    expect(coloured.output).toContain('hello from the pod');

    const typo = await inTerminal(['strat', 'it-cli']);
    expect(typo.code).toBe(2);
    expect(typo.output).toContain('\u001b[31mcldpd: Unknown command "strat". Did you mean "start"?');

    const plain = await inTerminal(['start', 'it-cli', '--prompt', 'go'], { NO_COLOR: '1' });
    expect(plain.code).toBe(5);
    expect(plain.output).toContain('✗ exited with code 5');
    expect(plain.output).not.toContain('\u001b[');
  });

  it('a pod that does not exist gets a clear error and exit code 1', async () => {
    const run = await cldpd(['start', 'nope', '--prompt', 'x']);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('Pod "nope" not found');
  });
});
