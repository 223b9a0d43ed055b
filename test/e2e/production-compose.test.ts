import { execFile, execFileSync } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { copyFile, readFile, rm, writeFile } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { parse } from 'yaml';
import { formatEnvValue } from '../../src/setup/env-file.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { tempDir } from '../fakes/pods.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { appPrivateKey, deliver, freePort, webhookPayload } from './processes.js';
import { IMAGE, describeWithImage, dockerSocketGroup } from './production-image-harness.js';

const run = promisify(execFile);

/**
 * Compose is Debian's docker-compose (1.29): it reads docker-compose.yml itself, so the test
 * starts what the file declares (its interpolation, env_file, depends_on, volumes, user)
 * rather than a copy of it. Only the images are swapped, by an override file: redis:7 cannot
 * be pulled here (the production image has redis-server: it stands in, run as the official
 * image runs it), and server and worker run the
 * image scripts/production-image.sh built instead of building it again.
 */
const COMPOSE = 'docker-compose';
const COMPOSE_FILE = fileURLToPath(new URL('../../docker-compose.yml', import.meta.url));

function composeVersion(): string | undefined {
  try {
    return execFileSync(COMPOSE, ['version', '--short'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const version = composeVersion();
if (!version && process.env.CI === 'true') {
  // In CI the compose test must run: a missing docker-compose is a failure, never a skip.
  throw new Error(`${COMPOSE} is not installed. CI installs Debian's (scripts/lib.sh install_missing): apt-get install -y docker-compose.`);
}
if (!version) console.warn(`\n[production-compose] SKIPPED: ${COMPOSE} is not installed. Install Debian's ("apt-get install -y docker-compose"; bash .ci/run does) to run it.\n`);

const SECRET = 'compose-webhook-secret';
const OWNER = 'acme';
const REPO = 'composed';
const INSTALLATION = 4251;

interface ComposeService {
  command?: string[];
  user?: string;
  environment?: Record<string, string>;
  volumes?: string[];
  ports?: string[];
}

/** This host's first IPv4 address outside the loopback: containers on any bridge reach the host by it. */
function hostAddress(): string {
  const found = Object.values(networkInterfaces()).flatMap((a) => a ?? []).find((a) => a.family === 'IPv4' && !a.internal);
  if (!found) throw new Error('this host has no IPv4 address outside the loopback for the compose services to reach the fake GitHub by');
  return found.address;
}

/** `${NAME:-default}` and `${NAME}` of a compose value, filled from `vars`. */
function interpolate(text: string, vars: Readonly<Record<string, string>>): string {
  return text.replace(/\$\{(\w+)(?::-([^}]*))?\}/g, (_, name: string, fallback: string | undefined) => vars[name] ?? fallback ?? '');
}

(version ? describeWithImage : describeWithImage.skip)('docker-compose.yml, started by docker-compose', () => {
  describeWithDocker('redis, server and worker as the file declares them, on this host\'s engine', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const docker = new Docker();
    const project = `cldpd-compose-${randomBytes(4).toString('hex')}`;
    let dir: string;
    let port: number;
    let vars: Record<string, string>;
    let declared: Record<string, ComposeService>;
    let started = false;

    const compose = (...args: string[]) => run(COMPOSE, ['-p', project, '-f', 'docker-compose.yml', '-f', 'test.override.yml', ...args], { cwd: dir, timeout: 180_000, maxBuffer: 16 * 1024 * 1024 });
    const containerOf = async (service: string) => {
      const [found] = await docker.listContainers({ all: true, filters: { label: [`com.docker.compose.project=${project}`, `com.docker.compose.service=${service}`] } });
      if (!found) throw new Error(`compose started no ${service} container`);
      return docker.getContainer(found.Id);
    };
    const logs = async () => (await compose('logs', '--no-color', '--tail', '40').then((r) => r.stdout, (err: Error) => err.message));

    beforeAll(async () => {
      await world.init();
      await world.pod('composed');
      await github.start('0.0.0.0');
      github.roles.set('alice', 'write');
      dir = await tempDir('cldpd-compose-');
      port = await freePort();
      // The file as it is, beside a .env as the setup page writes it and the images swapped.
      await copyFile(COMPOSE_FILE, join(dir, 'docker-compose.yml'));
      vars = {
        APP_ID: '12345', WEBHOOK_SECRET: SECRET, GHE_HOST: `${hostAddress()}:${github.port}`, GHE_PROTOCOL: 'http', PORT: String(port),
        CLDPD_HOST_ID: world.hostId, DOCKER_GID: String(dockerSocketGroup()), CLDPD_PODS_DIR: world.podsDir, CLDPD_STATUS_INTERVAL_SECONDS: '1',
      };
      const env = [`PRIVATE_KEY=${formatEnvValue('PRIVATE_KEY', appPrivateKey())}`, ...Object.entries(vars).map(([k, v]) => `${k}=${v}`)];
      await writeFile(join(dir, '.env'), `${env.join('\n')}\n`);
      await writeFile(join(dir, 'test.override.yml'), [
        'services:',
        '  redis:',
        `    image: ${IMAGE}`,
        // As the official redis image runs it: in /data (the AOF lands on the redis-data volume),
        // and answering the compose network (its build turns protected mode off), the file's
        // command given to it as it is.
        `    entrypoint: ["/usr/bin/tini", "--", "sh", "-c", 'exec "$$@" --protected-mode no', "redis"]`,
        '    working_dir: /data',
        '  server:',
        `    image: ${IMAGE}`,
        '  worker:',
        `    image: ${IMAGE}`,
        '',
      ].join('\n'));
      declared = (parse(await readFile(COMPOSE_FILE, 'utf8')) as { services: Record<string, ComposeService> }).services;
      started = true;
      await compose('up', '-d', '--no-build').catch(async (err: Error) => {
        throw new Error(`docker-compose up failed: ${err.message}\n${await logs()}`);
      });
      // Each try has a timeout of its own: Docker's proxy of a published port may take a
      // connection before the server inside listens and never answer it.
      await until('the server on the published port', async () => (await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status).catch(() => 0)) === 200, 60_000)
        .catch(async (err: Error) => { throw new Error(`${err.message}\n${await logs()}`); });
    }, 240_000);

    afterAll(async () => {
      if (started) await compose('down', '--volumes', '--remove-orphans', '--timeout', '10').catch(() => undefined);
      await github.close();
      await world.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('each service runs the command, user, environment and mounts docker-compose.yml declares; server and worker as node, the worker in the socket\'s group', async () => {
      for (const service of ['redis', 'server', 'worker']) {
        const spec = declared[service] as ComposeService;
        const info = await (await containerOf(service)).inspect();
        expect(info.State.Running, `${service}: ${await logs()}`).toBe(true);
        expect(info.Config.Cmd, service).toEqual(spec.command);
        for (const [name, value] of Object.entries(spec.environment ?? {})) expect(info.Config.Env, `${service} ${name}`).toContain(`${name}=${interpolate(value, vars)}`);
        for (const volume of spec.volumes ?? []) {
          const [, target, mode] = interpolate(volume, vars).split(':');
          const mount = info.Mounts.find((m) => m.Destination === target);
          expect(mount, `${service} mounts ${target}`).toBeDefined();
          expect(mount?.RW, `${service} ${target} read-write`).toBe(mode !== 'ro');
        }
        expect(info.Mounts.some((m) => m.Destination === '/var/run/docker.sock'), `${service} has the Docker socket`).toBe(service === 'worker');
        // The server declares no user: the image's own, node.
        if (service !== 'redis') expect(info.Config.User, service).toBe(spec.user ? interpolate(spec.user, vars) : 'node');
      }
      // The worker's bind mounts are the host's paths: the pods directory .env names.
      const worker = await (await containerOf('worker')).inspect();
      expect(worker.Mounts.find((m) => m.Destination === '/pods')?.Source).toBe(world.podsDir);
      const server = await (await containerOf('server')).inspect();
      expect(server.HostConfig.PortBindings?.['3000/tcp']?.[0]?.HostPort).toBe(String(port));
      for (const service of ['server', 'worker']) {
        const id = (await run('docker', ['exec', (await containerOf(service)).id, 'id']).then((r) => r.stdout)).trim();
        expect(id, service).toMatch(/^uid=1000\(node\) gid=(\d+)/);
        if (service === 'worker') expect(id).toContain(`gid=${vars.DOCKER_GID}`);
      }
    });

    it('a signed delivery to the published port runs a pod on the compose worker to its final comment; a bad signature is refused', async () => {
      const payload = webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: INSTALLATION, issue: 1, body: 'Run in compose.', label: 'cldpd:composed' });
      expect(await deliver(port, 'issues', payload, { id: randomUUID(), secret: 'wrong' })).toBeGreaterThanOrEqual(400);
      expect(await deliver(port, 'issues', payload, { id: randomUUID(), secret: SECRET })).toBe(200);
      const finals = () => github.commentsOn(`${OWNER}/${REPO}#1`).filter((c) => /cldpd: (finished|failed)/.test(c.body));
      await until('the final comment', () => finals().length > 0, 90_000).catch(async (err: Error) => { throw new Error(`${err.message}\n${await logs()}`); });
      expect(finals()[0]?.body).toMatch(/cldpd: finished \(pod `composed`\)/);
      expect(finals()[0]?.body).toContain(`on host \`${world.hostId}\``);
    });
  });
});
