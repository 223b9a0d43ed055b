import { randomUUID } from 'node:crypto';
import { chown, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { formatEnvValue } from '../../src/setup/env-file.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { GitServer, describeWithGit, dockerGateway } from '../fakes/git-server.js';
import { tempDir } from '../fakes/pods.js';
import { TestWorld, describeWithDocker } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { appPrivateKey, deliver, freePort, webhookPayload } from './processes.js';
import { IMAGE, ImageContainers, describeWithImage, dockerSocketGroup } from './production-image-harness.js';

const SECRET = 'image-webhook-secret';
const OWNER = 'acme';
const REPO = 'widgets';
const INSTALLATION = 4250;

/** A Debian image with git (made by scripts/real-claude.sh, which .ci/run runs): the checkout pod's base. */
const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';

/** What the checkout pod's agent does: shows the clone it starts in and ends with a stream-json result naming its first line. */
const CHECKOUT_AGENT = `set -e
cd /work
echo "branch $(git rev-parse --abbrev-ref HEAD), files: $(ls | tr '\\n' ' ')"
first=$(head -1 README.md)
printf '%s\\n' '{"type":"result","subtype":"success","is_error":false,"result":"the clone says: '"$first"'","num_turns":1,"total_cost_usd":0.01}'
`;

describeWithImage('the production image', () => {
  describeWithDocker('as worker and serve: the Docker socket, a test Redis, a fake GitHub and a git server on this host', () => {
    describeWithRedis('a label runs a pod through the mounted socket', () => {
      describeWithGit('with a checkout', () => {
        const world = new TestWorld();
        const github = new FakeGitHub();
        const git = new GitServer();
        const containers = new ImageContainers();
        let redis: Redis | undefined;
        let port: number;
        let serverMetrics: number;
        let workerMetrics: number;
        let share: string;
        let unseen: string;
        let worker: Docker.Container;
        let server: Docker.Container;
        let issueNumber = 1;
        const socketGroup = dockerSocketGroup();

        const statusComments = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).filter((c) => c.body.startsWith('<!-- cldpd:status'));
        const finals = async (n: number, count = 1) => {
          await containers.until(`${count} final status comment(s) on #${n}`, () => statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body)).length >= count, 120_000, [server, worker]);
          return statusComments(n);
        };
        const label = (n: number, pod: string, secret = SECRET) => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: INSTALLATION, issue: n, body: 'Make it work in a container.', label: `cldpd:${pod}` }), { id: randomUUID(), secret });
        const comment = (n: number, text: string) => deliver(port, 'issue_comment', webhookPayload('issue_comment', 'created', { owner: OWNER, repo: REPO, installation: INSTALLATION, issue: n, body: 'Make it work in a container.', comment: text }), { id: randomUUID(), secret: SECRET });
        const sessionOf = (body: string | undefined, pod: string) => new RegExp(`session \`(${pod}-[0-9a-f]{16})\``).exec(body ?? '')?.[1] as string;

        beforeAll(async () => {
          await world.init();
          // The isolated network the gated pods' gateways reach out by must exist for its gateway address to be known.
          await world.pod('warm', { command: ['true'] });
          await (await world.dispatcher.start('warm', { prompt: 'x' })).wait();
          const gateway = await dockerGateway('cldpd', undefined, { probeImage: DEBIAN_IMAGE });
          // A host directory the pod mounts, given to the worker at the same path; another it is not given.
          share = await tempDir('cldpd-image-share-');
          await writeFile(join(share, 'hello.txt'), 'hello from the host\n');
          unseen = await tempDir('cldpd-image-unseen-');
          await world.pod('img', { mounts: [{ source: share, target: '/share' }], setup: [['sh', '-c', 'echo "the mount says: $(cat /share/hello.txt)"; echo written by the pod > /share/from-pod.txt']] });
          await world.pod('img-unseen', { mounts: [{ source: unseen, target: '/unseen' }] });
          const checkout = join(world.podsDir, 'img-checkout');
          await mkdir(checkout, { recursive: true });
          await writeFile(join(checkout, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nCOPY agent.sh /agent.sh\n`);
          await writeFile(join(checkout, 'agent.sh'), CHECKOUT_AGENT);
          await writeFile(join(checkout, 'pod.json'), JSON.stringify({ command: ['bash', '/agent.sh'], resumeCommand: ['bash', '/agent.sh'], workdir: '/work', checkout: true, github: { contents: 'read' }, stopGraceSeconds: 2, memory: '512m', env: { IS_SANDBOX: '1' } }));

          await github.start();
          await git.start();
          await git.createRepo(OWNER, REPO, { files: { 'README.md': 'cloned inside a pod of a worker in a container\n', 'src.txt': 'x\n' } });
          github.roles.set('alice', 'write');
          github.repos.set(`${OWNER}/${REPO}`, { cloneUrl: git.repoUrl(OWNER, REPO, gateway), defaultBranch: 'main' });
          github.onToken = (t) => git.allow(t.token, { repo: `${OWNER}/${REPO}`, write: t.permissions?.contents === 'write' });
          github.onRevoke = (token) => git.revoke(token);
          const db = await testRedis(34);
          redis = db.redis;
          [port, serverMetrics, workerMetrics] = [await freePort(), await freePort(), await freePort()];
          // Host networking: the test Redis and the fake GitHub listen on this host's loopback.
          const env = {
            APP_ID: '12345', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, GHE_HOST: github.host, GHE_PROTOCOL: 'http', REDIS_URL: db.url,
            CLDPD_HOST_ID: world.hostId, CLDPD_STATUS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info', CLDPD_METRICS_ADDRESS: '127.0.0.1',
          };
          // As docker-compose.yml runs them: the server without the socket, the worker with it, in its group.
          server = await containers.start('server', { mode: 'serve', network: 'host', env: { ...env, PORT: String(port), HOST: '127.0.0.1', CLDPD_METRICS_PORT: String(serverMetrics) } });
          worker = await containers.start('worker', {
            mode: 'worker', network: 'host', user: `node:${socketGroup}`,
            env: { ...env, CLDPD_PODS_DIR: '/pods', CLDPD_HOME: '/data', CLDPD_METRICS_PORT: String(workerMetrics) },
            binds: ['/var/run/docker.sock:/var/run/docker.sock', `${world.podsDir}:/pods:ro`, `${containers.volume('worker-data')}:/data`, `${share}:${share}`],
          });
          const ready = async (metrics: number, says: string) => (await fetch(`http://127.0.0.1:${metrics}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.text()).catch(() => '')).trim() === says;
          await containers.until('the server to be ready', () => ready(serverMetrics, 'ready: redis'), 60_000, [server]);
          await containers.until('the worker to be ready', () => ready(workerMetrics, 'ready: redis, docker'), 60_000, [worker]);
        }, 180_000);

        afterAll(async () => {
          await containers.close();
          await git.close();
          await github.close();
          redis?.disconnect();
          await world.close();
        });

        it('runs as the image\'s user node, never root; the worker has the Docker socket\'s group, the server no socket at all', async () => {
          expect((await containers.docker.getImage(IMAGE).inspect()).Config.User).toBe('node');
          for (const container of [server, worker]) {
            // The exec and the long-running process (tini, PID 1, and node under it) alike.
            expect((await containers.exec(container, ['id', '-un'])).output.trim()).toBe('node');
            const status = (await containers.exec(container, ['cat', '/proc/1/status'])).output;
            expect(status).toMatch(/^Uid:\s+1000\s+1000\s+1000\s+1000$/m);
          }
          expect((await containers.exec(worker, ['id', '-g'])).output.trim()).toBe(String(socketGroup));
          expect((await containers.exec(server, ['test', '-e', '/var/run/docker.sock'])).code).not.toBe(0);
        });

        it('serve answers a correctly signed delivery (2xx, the job queued) and refuses a bad signature; the worker runs it: the mount is the host\'s path, the persisted volume outlives the container, the log stays on the worker\'s volume', async () => {
          const n = issueNumber++;
          expect(await label(n, 'img', 'not-the-secret')).toBeGreaterThanOrEqual(400);
          expect(await label(n, 'img')).toBe(200);
          const [first] = await finals(n);
          expect(first?.body, first?.body).toMatch(/cldpd: finished \(pod `img`\)/);
          expect(first?.body).toContain('all done (first run)');
          // Only the signed delivery made a run.
          expect(statusComments(n)).toHaveLength(1);
          // The engine mounted the host's directory: what the pod wrote is on this host.
          expect(await readFile(join(share, 'from-pod.txt'), 'utf8')).toBe('written by the pod\n');
          const sessionId = sessionOf(first?.body, 'img');
          const log = await containers.exec(worker, ['cat', `/data/sessions/${sessionId}/log.jsonl`]);
          expect(log.code, log.output).toBe(0);
          expect(log.output).toContain('the mount says: hello from the host');
          // The terminal commands of the worker's host run in its container, on its volume.
          const shown = await containers.exec(worker, ['node', '/app/dist/main/cldpd.js', 'logs', sessionId]);
          expect(shown.code, shown.output).toBe(0);
          expect(shown.output).toContain('the mount says: hello from the host');
          expect(shown.output).toContain('run ended: exited with code 0');

          expect(await comment(n, '/cldpd resume and again')).toBe(200);
          const comments = await finals(n, 2);
          expect(comments[1]?.body, comments[1]?.body).toMatch(/cldpd: finished \(pod `img`, resume 1\)/);
          expect(comments[1]?.body).toContain('note: written by the first run');
        });

        it('a checkout clones the issue\'s repository through the run\'s egress gateway (its image made from the worker\'s own node) into the persisted workdir', async () => {
          const n = issueNumber++;
          github.issueStates.set(`${OWNER}/${REPO}#${n}`, 'open');
          expect(await label(n, 'img-checkout')).toBe(200);
          const [status] = await finals(n);
          expect(status?.body, status?.body).toMatch(/cldpd: finished \(pod `img-checkout`\)/);
          expect(status?.body).toContain('the clone says: cloned inside a pod of a worker in a container');
          expect(git.requests.some((r) => r.service === 'git-upload-pack' && r.auth === 'ok')).toBe(true);
        });

        it('a mount whose source the worker cannot see is refused, saying to mount it into the worker at the same path', async () => {
          const n = issueNumber++;
          expect(await label(n, 'img-unseen')).toBe(200);
          const [status] = await finals(n);
          expect(status?.body, status?.body).toMatch(/cldpd: failed/);
          expect(status?.body).toContain(unseen);
          expect(status?.body).toContain('at the same path');
        });
      });
    });
  });

  describeWithDocker('as up with no REDIS_URL, on a bridge network', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const containers = new ImageContainers();
    let up: Docker.Container;
    let address: string;
    let base: string;
    let metrics: string;

    beforeAll(async () => {
      await world.init();
      await world.pod('solo');
      // The container reaches this host's fake GitHub by its network's gateway address.
      await github.start('0.0.0.0');
      github.roles.set('owner', 'admin');
      const network = await containers.network('up');
      const gateway = await dockerGateway(network, containers.docker);
      up = await containers.start('up', {
        mode: 'up', network, user: `node:${dockerSocketGroup()}`,
        env: {
          // The key as `docker run --env-file .env` passes what the setup page wrote: quoted, `\n` for its newlines.
          APP_ID: '1', PRIVATE_KEY: formatEnvValue('PRIVATE_KEY', appPrivateKey()), WEBHOOK_SECRET: 's', GHE_HOST: `${gateway}:${github.port}`, GHE_PROTOCOL: 'http',
          CLDPD_HOST_ID: world.hostId, CLDPD_STATUS_INTERVAL_SECONDS: '1', CLDPD_METRICS_ADDRESS: '0.0.0.0',
        },
        binds: ['/var/run/docker.sock:/var/run/docker.sock', `${world.podsDir}:/pods:ro`, `${containers.volume('up-data')}:/data`],
      });
      address = await containers.address(up, network);
      base = `http://${address}:3000`;
      metrics = `http://${address}:9464`;
      await containers.until('up to be ready', async () => (await fetch(`${metrics}/readyz`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.text()).catch(() => '')).trim() === 'ready: redis, docker', 60_000, [up]);
    }, 120_000);

    afterAll(async () => {
      await containers.close();
      await github.close();
      await world.close();
    });

    it('starts its own redis-server inside the image (AOF, a Unix socket under /data), answers /healthz and a signed delivery to a final comment with the key .env holds, and stops cleanly on docker stop', async () => {
      expect(await fetch(`${base}/healthz`).then((r) => r.status)).toBe(200);
      const ping = await containers.exec(up, ['redis-cli', '-s', '/data/redis/redis.sock', 'ping']);
      expect(ping.output.trim(), ping.output).toBe('PONG');
      const payload = {
        action: 'labeled', label: { name: 'cldpd:solo' },
        issue: { number: 1, html_url: 'https://github.com/solo/app/issues/1', title: 'In a container', body: 'hello' },
        repository: { name: 'app', owner: { login: 'solo' } }, installation: { id: 1 }, sender: { login: 'owner', type: 'User' },
      };
      const post = (secret: string) => deliver(3000, 'issues', payload, { id: randomUUID(), secret, host: address });
      expect(await post('wrong')).toBeGreaterThanOrEqual(400);
      expect(await post('s')).toBe(200);
      await containers.until('the final comment', () => github.comments.some((c) => c.body.includes('cldpd: finished')), 90_000, [up]);
      expect(github.comments).toHaveLength(1);
      const aof = await containers.exec(up, ['sh', '-c', 'ls /data/redis']);
      expect(aof.output).toMatch(/appendonly/);

      await up.stop({ t: 30 });
      const state = (await up.inspect()).State;
      expect(state.ExitCode, await containers.logs(up)).toBe(0);
    });
  });

  describeWithDocker('first run: the setup page of up without credentials', () => {
    const containers = new ImageContainers();
    let dir: string;

    beforeAll(async () => {
      // A directory of this host, the container's working directory, where the setup writes .env.
      dir = await tempDir('cldpd-image-setup-');
      await chown(dir, 1000, 1000);
    });

    afterAll(async () => {
      await containers.close();
    });

    /** Opens the setup page with the key `up` logged, as a browser on this host does: its text. */
    async function openSetup(container: Docker.Container, base: string): Promise<string> {
      let key: string | undefined;
      await containers.until('the setup key in the log', async () => (key = /\?key=([0-9a-f]{32})/.exec(await containers.logs(container))?.[1]) !== undefined, 30_000, [container]);
      const opened = await fetch(`${base}/?key=${key}`, { redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      const cookie = (opened.headers.get('set-cookie') ?? '').split(';')[0] as string;
      return (await fetch(`${base}/`, { headers: { cookie }, signal: AbortSignal.timeout(10_000) })).text();
    }

    it('on the host\'s network, with a directory of the host as its working directory, the page is offered to this machine; through a published port it is another machine\'s and refused', async () => {
      const port = await freePort();
      const host = await containers.start('setup-host', { mode: 'up', network: 'host', env: { PORT: String(port) }, binds: [`${dir}:/setup`], workdir: '/setup' });
      expect(await openSetup(host, `http://127.0.0.1:${port}`)).toContain('issues: write');
      await host.remove({ force: true });

      const network = await containers.network('setup');
      const published = await freePort();
      const bridged = await containers.start('setup-bridged', { mode: 'up', network, env: {}, binds: [`${dir}:/setup`], workdir: '/setup', publish: { 3000: published } });
      await containers.until('the published port', async () => (await fetch(`http://127.0.0.1:${published}/ping`, { signal: AbortSignal.timeout(2_000) }).then((r) => r.status).catch(() => 0)) === 200, 30_000, [bridged]);
      expect(await openSetup(bridged, `http://127.0.0.1:${published}`)).toContain('plain HTTP across a network');
    });
  });
});
