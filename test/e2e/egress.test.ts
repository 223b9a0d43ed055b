import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, type SessionEvent } from '../../src/core/index.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { dockerGateway } from '../fakes/git-server.js';
import { parseLogLine } from '../fakes/session-log.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, stopSuite, webhookPayload } from './processes.js';

const SECRET = 'e2e-egress-secret';
const OWNER = 'acme';
const REPO = 'egress';

/**
 * Asks the run's gateway (the container's HTTP_PROXY) for `target`, as a proxy client does:
 * CONNECT for host:443, an absolute-form GET otherwise; prints `<tag>: <the answer's first line>`.
 */
const ASK = `ask() {
  gw=\${HTTP_PROXY#http://}; gw=\${gw%/}
  case "$2" in
    *:443) req="CONNECT $2 HTTP/1.1\\r\\nHost: $2\\r\\n\\r\\n" ;;
    *) req="GET http://$2/ HTTP/1.0\\r\\nHost: $2\\r\\n\\r\\n" ;;
  esac
  answer=$(printf "$req" | timeout 10 nc -w 5 "\${gw%:*}" "\${gw#*:}" | head -1 | tr -d '\\r')
  echo "$1: \${answer:-no answer}"
}
`;

describeWithDocker('egress, end to end: the server and worker processes, a gated pod, the real engine', () => {
  describeWithRedis('refusals on the status comment, the live page and /metrics; a worker restarted mid-run', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis | undefined;
    let port: number;
    let metricsPort: number;
    let env: NodeJS.ProcessEnv;
    let server: CldpdProcess | undefined;
    let worker: CldpdProcess | undefined;
    let allowed: Server;
    let allowedPort = 0;
    let gate = '';
    let issue = 1;

    const statusOf = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'));
    const finalOf = async (n: number) => {
      await until(`the final status comment on #${n}`, () => /cldpd: (finished|failed|stopped|timed out)/.test(statusOf(n)?.body ?? ''), 120_000);
      return statusOf(n)?.body ?? '';
    };
    const label = (n: number, pod: string) => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 99, issue: n, body: 'Probe the network.', label: `cldpd:${pod}` }), { id: `egress-${n}-${pod}`, secret: SECRET });
    const sessionOf = (n: number) => /session `((?:prober|waiter)-[0-9a-f]{16})`/.exec(statusOf(n)?.body ?? '')?.[1];
    const startWorker = () => new CldpdProcess('worker', { ...env, CLDPD_METRICS_PORT: String(metricsPort) }, join(world.home, 'worker.log'));
    const eventsOf = async (sessionId: string): Promise<SessionEvent[]> => (await readFile(join(world.home, 'sessions', sessionId, 'log.jsonl'), 'utf8')).split('\n').map(parseLogLine).filter((e): e is SessionEvent => !!e);

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      allowed = createServer((req, res) => res.end(`allowed answered ${req.url}\n`));
      await new Promise<void>((resolve) => allowed.listen(0, '0.0.0.0', resolve));
      allowedPort = (allowed.address() as AddressInfo).port;
      // The network the gateways reach out by must exist for the address they reach this host by to be known.
      await world.pod('warm', { command: ['true'], egress: 'open' });
      await (await world.dispatcher.start('warm', { prompt: 'x' })).wait();
      const host = await dockerGateway('cldpd', world.docker, { probeImage: 'cldpd-warm:latest' });
      gate = join(world.home, 'gate');
      await mkdir(gate, { recursive: true });
      await world.pod('prober', {
        command: ['sh', '-c', `${ASK}for i in 1 2 3; do ask evil evil.test:443; done; ask pypi pypi.org:80; ask allowed allowed.test:${allowedPort}`],
        egress: [`allowed.test:${allowedPort}`],
      });
      await world.pod('waiter', {
        command: ['sh', '-c', `${ASK}ask before allowed.test:${allowedPort}; ask pypi pypi.org:80; ask evil evil.test:443; ask evil evil.test:443
i=0; while [ ! -f /gate/go ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done
ask after allowed.test:${allowedPort}; ask evil evil.test:443`],
        egress: [`allowed.test:${allowedPort}`],
        mounts: [{ source: gate, target: '/gate', readOnly: true }],
      });
      await github.start();
      github.roles.set('alice', 'write');
      github.visibility.set(`${OWNER}/${REPO}`, 'public');
      const db = await testRedis(28);
      redis = db.redis;
      port = await freePort();
      metricsPort = await freePort();
      env = processEnv({
        world, github, port, redisUrl: db.url, secret: SECRET,
        extra: {
          CLDPD_PUBLIC_URL: `http://127.0.0.1:${port}`, CLDPD_JOB_LOCK_SECONDS: '4',
          // The fake GitHub is reached as GitHub Enterprise Server, where every page would ask for sign-in; the repository is public.
          CLDPD_LIVE_SIGN_IN: 'private', CLDPD_EGRESS_HOSTS: `allowed.test=${host},evil.test=${host},pypi.org=${host}`,
        },
      });
      server = new CldpdProcess('serve', env, join(world.home, 'server.log'));
      worker = startWorker();
      await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
    }, 180_000);

    afterAll(async () => {
      await writeFile(join(gate, 'go'), '').catch(() => undefined);
      allowed?.close();
      await stopSuite({ worker, server, github, redis, world });
    });

    it('egress e2e: each refused host is on the final status comment with its count and how to allow it, an entry of the live page, and counted in /metrics by pod; the listed host answered', async () => {
      const n = issue++;
      expect(await label(n, 'prober')).toBe(200);
      const body = await finalOf(n);
      expect(body).toContain('exit code 0');
      expect(body).toMatch(/evil\.test[^\n]*×3/);
      expect(body).toMatch(/pypi\.org/);
      expect(body).toMatch(/egress/);
      const sessionId = sessionOf(n) as string;
      const lines = (await eventsOf(sessionId)).flatMap((e) => (e.type === 'output' ? [e.line] : []));
      expect(lines.filter((l) => l.startsWith('evil:'))).toEqual(Array.from({ length: 3 }, () => expect.stringMatching(/^evil: HTTP\/1\.1 403/)));
      expect(lines.find((l) => l.startsWith('allowed:'))).toMatch(/200/);
      const link = /\[Follow it live\]\((http[^)\s]+)\)/.exec(body)?.[1] ?? /\((http:\/\/127\.0\.0\.1:\d+\/sessions\/[^)\s]+)\)/.exec(body)?.[1];
      expect(link).toBeDefined();
      const page = await (await fetch(link as string)).text();
      expect(page).toContain('evil.test');
      const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
      expect(metrics).toMatch(/cldpd_egress_blocked_total\{[^}]*pod="prober"[^}]*\} 4\b/);
      // The run's gateway went with it.
      expect(await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${sessionId}`] } })).toEqual([]);
    });

    it('egress e2e: a worker killed mid-run: its run goes on through the same gateway after the restart, and the refusals are counted once', async () => {
      const n = issue++;
      expect(await label(n, 'waiter')).toBe(200);
      await until('the session starts', () => sessionOf(n) !== undefined, 120_000);
      const sessionId = sessionOf(n) as string;
      await until('the run asked before the restart', async () => (await eventsOf(sessionId).catch(() => [])).filter((e) => e.type === 'egress.blocked').length >= 3, 60_000);
      const [gateway] = await world.docker.listContainers({ filters: { label: [`${LABELS.gateway}=${sessionId}`] } });
      expect(gateway).toBeDefined();
      await worker?.stop('SIGKILL');
      // The gateway does not depend on the worker: the run goes on while none follows it.
      expect((await world.docker.getContainer(gateway?.Id as string).inspect()).State.Running).toBe(true);
      worker = startWorker();
      await writeFile(join(gate, 'go'), '');
      const body = await finalOf(n);
      expect(body).toContain('exit code 0');
      expect(body).toMatch(/evil\.test[^\n]*×3/);
      // Refused only before the restart, and still on the comment after it.
      expect(body).toMatch(/pypi\.org/);
      const events = await eventsOf(sessionId);
      const lines = events.flatMap((e) => (e.type === 'output' ? [e.line] : []));
      expect(lines.find((l) => l.startsWith('before:'))).toMatch(/200/);
      expect(lines.find((l) => l.startsWith('after:'))).toMatch(/200/);
      const counts = (host: string) => events.filter((e) => e.type === 'egress.blocked' && e.host === host).map((e) => (e as { count: number }).count);
      expect(counts('evil.test')).toEqual([1, 2, 3]);
      expect(counts('pypi.org')).toEqual([1]);
      // The same gateway served the run before and after, and went with it.
      expect(await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${sessionId}`] } })).toEqual([]);
    });
  });
});
