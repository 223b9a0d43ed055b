import { randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { cleanEngine, containersCreated, containersOfHost, startSecondEngine, stopSecondEngine, type SecondEngine } from './engines-harness.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, serverUp, webhookPayload } from './processes.js';

const run = promisify(execFile);
const SECRET = 'e2e-engines-secret';
const OWNER = 'acme';
const REPO = 'engines';
const STATUS = '<!-- cldpd:status';

describeWithDocker('two Docker engines, a worker on each, one Redis', () => {
  describeWithRedis('sessions spread over both engines; stop and resume reach their session\'s engine; a stopped engine\'s host is gone, forgotten, and its issue starts on the other; a worker over TLS', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    const local = new Docker();
    let engineB: SecondEngine | undefined;
    let hostA: string;
    let hostB: string;
    let hostTls: string;
    let redis: Redis;
    let env: NodeJS.ProcessEnv;
    let envB: NodeJS.ProcessEnv;
    let port: number;
    let server: CldpdProcess | undefined;
    let workerA: CldpdProcess | undefined;
    let workerB: CldpdProcess | undefined;
    let workerTls: CldpdProcess | undefined;

    const statuses = (issue: number) => github.commentsOn(`${OWNER}/${REPO}#${issue}`).filter((c) => c.body.startsWith(STATUS));
    const latest = (issue: number) => statuses(issue).at(-1)?.body ?? '';
    const label = (issue: number, pod: string) => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 5555, issue, body: 'Work.', label: `cldpd:${pod}` }), { id: randomUUID(), secret: SECRET });
    const comment = (issue: number, text: string) => deliver(port, 'issue_comment', webhookPayload('issue_comment', 'created', { owner: OWNER, repo: REPO, installation: 5555, issue, body: 'Work.', comment: text }), { id: randomUUID(), secret: SECRET });
    const cldpd = (...args: string[]) => run(process.execPath, [CLI, ...args], { env }).catch((err: { stdout: string; stderr: string; code: number }) => err);
    const sessionOf = (issue: number) => /session `(hold-[0-9a-f]{16})`/.exec(statuses(issue)[0]?.body ?? '')?.[1] as string;
    const hostOf = (issue: number) => /host `([^`]+)`/.exec(statuses(issue)[0]?.body ?? '')?.[1];
    const sessionContainers = (docker: Docker, sessionId: string) => docker.listContainers({ all: true, filters: { label: [`dev.cldpd.session=${sessionId}`] } });

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      engineB = await startSecondEngine();
      await world.init();
      hostA = world.hostId;
      hostB = `${world.hostId}-b`;
      hostTls = `${world.hostId}-tls`;
      await world.pod('hold', { command: ['sh', '-c', 'echo "holding on $(hostname)"; sleep 300'], resumeCommand: ['sh', '-c', 'echo "resumed here"'], stopGraceSeconds: 1 });
      await world.pod('quick', { command: ['sh', '-c', 'echo "a quick run"'] });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(32);
      redis = db.redis;
      port = await freePort();
      env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_JOB_LOCK_SECONDS: '4', CLDPD_HOST_GONE_SECONDS: '3', CLDPD_CONCURRENCY: '2' } });
      // Host B: another machine in all but the disk, its own engine, data and egress networks.
      await mkdir(join(world.home, 'b'), { recursive: true });
      envB = { ...env, CLDPD_HOST_ID: hostB, CLDPD_HOME: join(world.home, 'b'), DOCKER_HOST: engineB.socket, CLDPD_EGRESS_SUBNETS: '10.214.0.0/16' };
      server = new CldpdProcess('serve', env, join(world.home, 'server.log'));
      workerA = new CldpdProcess('worker', env, join(world.home, 'worker-a.log'));
      workerB = new CldpdProcess('worker', envB, join(world.home, 'worker-b.log'));
      await serverUp(port);
      await until('both hosts alive', async () => (await redis.exists(`cldpd:host:${hostA}`, `cldpd:host:${hostB}`)) === 2, 60_000);
    }, 150_000);

    afterAll(async () => {
      await Promise.all([workerA?.stop(), workerB?.stop(), workerTls?.stop()]);
      await server?.stop();
      await github.close();
      redis?.disconnect();
      await cleanEngine(local, [hostA, hostB, hostTls]).catch(() => undefined);
      if (engineB) {
        await cleanEngine(engineB.docker, [hostA, hostB, hostTls]).catch(() => undefined);
        if (engineB.startedHere) await stopSecondEngine();
      }
      await world.close();
    }, 120_000);

    it('a burst of labels lands on both engines, each worker up to its slots; each stop and resume reaches its session\'s engine', async () => {
      const issues = [1, 2, 3, 4];
      for (const issue of issues) await label(issue, 'hold');
      await until('four runs running', () => issues.every((i) => /cldpd: running/.test(latest(i))), 180_000);
      const onA = (await containersOfHost(local, hostA)).filter((c) => c.State === 'running' && c.Labels['dev.cldpd.session']);
      const onB = (await containersOfHost(engineB!.docker, hostB)).filter((c) => c.State === 'running' && c.Labels['dev.cldpd.session']);
      // Two slots each, four runs that hold theirs: two on each engine, each labelled for the host whose engine it is on.
      expect(onA.map((c) => c.Labels['dev.cldpd.host'])).toEqual([hostA, hostA]);
      expect(onB.map((c) => c.Labels['dev.cldpd.host'])).toEqual([hostB, hostB]);
      expect(await containersOfHost(local, hostB)).toEqual([]);
      expect(await containersOfHost(engineB!.docker, hostA)).toEqual([]);
      const engineOf = new Map<number, { docker: Docker; other: Docker; host: string }>();
      for (const issue of issues) {
        const host = hostOf(issue);
        expect([hostA, hostB]).toContain(host);
        engineOf.set(issue, host === hostA ? { docker: local, other: engineB!.docker, host } : { docker: engineB!.docker, other: local, host: hostB });
      }

      for (const issue of issues) {
        const { docker, other } = engineOf.get(issue)!;
        expect((await sessionContainers(docker, sessionOf(issue))).map((c) => c.State)).toContain('running');
        expect(await sessionContainers(other, sessionOf(issue))).toEqual([]);
      }
      for (const issue of issues) await comment(issue, '/cldpd stop');
      await until('four runs stopped', () => issues.every((i) => /cldpd: stopped/.test(statuses(i)[0]?.body ?? '')), 60_000);
      for (const issue of issues) {
        for (const docker of [local, engineB!.docker]) expect((await sessionContainers(docker, sessionOf(issue))).filter((c) => c.State === 'running')).toEqual([]);
      }

      const since = Math.floor(Date.now() / 1000) - 1;
      for (const issue of issues) await comment(issue, '/cldpd resume once more');
      await until('four resumes finished', () => issues.every((i) => statuses(i).length === 2 && /cldpd: finished/.test(latest(i))), 120_000);
      for (const issue of issues) {
        const { docker, other, host } = engineOf.get(issue)!;
        expect(latest(issue)).toContain(`host \`${host}\``);
        expect(latest(issue)).toContain('resumed here');
        // Each engine's own event log: the resume's container was made on the session's engine, none on the other.
        expect(await containersCreated(docker, sessionOf(issue), since)).toBe(1);
        expect(await containersCreated(other, sessionOf(issue), since)).toBe(0);
      }
    }, 420_000);

    it('an engine that stops answering: its host is not seen though its worker runs, cldpd hosts says why, forget releases its issues, their next label starts on the other engine; the engine back, the host is alive again', async () => {
      const onB = [1, 2, 3, 4].filter((i) => hostOf(i) === hostB);
      expect(onB.length).toBe(2);
      await stopSecondEngine();
      await until('host B unseen', async () => (await redis.exists(`cldpd:host:${hostB}`)) === 0, 30_000);
      expect(workerB?.child.exitCode).toBeNull(); // the worker runs on: only its engine is gone

      const listed = await cldpd('hosts');
      expect(listed.stdout).toMatch(new RegExp(`^${hostB}\\s+not seen\\s+\\d+s ago\\s+0\\s+`, 'm'));
      expect(listed.stdout).toMatch(new RegExp(`^${hostA}\\s+alive\\s+`, 'm'));
      expect(listed.stdout).toContain(`${hostB}: its worker runs, but its Docker engine does not answer`);
      expect((await cldpd('hosts', '--json')).stdout).toContain('"engineSilentSince":"');

      const forgot = await cldpd('hosts', 'forget', hostB);
      expect(forgot.stdout).toContain(`forgot host ${hostB}: 2 issues released`);
      await label(onB[0]!, 'quick');
      await until('the new label\'s run finished', () => /cldpd: finished \(pod `quick`\)/.test(latest(onB[0]!)), 90_000);
      expect(latest(onB[0]!)).toContain(`host \`${hostA}\``);
      expect(latest(onB[0]!)).toContain('a quick run');

      engineB = { ...(await startSecondEngine()), startedHere: engineB!.startedHere };
      await until('host B alive again', async () => (await redis.exists(`cldpd:host:${hostB}`)) === 1, 30_000);
      const log = await readFile(join(world.home, 'worker-b.log'), 'utf8');
      expect(log.split('\n').filter((l) => l.includes('Docker engine does not answer: the host stops saying it is alive'))).toHaveLength(1);
      expect(log.split('\n').filter((l) => l.includes('Docker engine answers again'))).toHaveLength(1);
      expect((await cldpd('hosts')).stdout).not.toContain('does not answer');
    }, 240_000);

    it('a worker on the TLS TCP engine runs a session start to end; a client without the certificates is refused; a wrong DOCKER_CERT_PATH is named', async () => {
      await Promise.all([workerA?.stop(), workerB?.stop()]);
      const tlsEnv = { ...envB, CLDPD_HOST_ID: hostTls, CLDPD_HOME: join(world.home, 'tls'), DOCKER_HOST: engineB!.tcp, DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: engineB!.certPath };
      await mkdir(join(world.home, 'tls'), { recursive: true });
      workerTls = new CldpdProcess('worker', tlsEnv, join(world.home, 'worker-tls.log'));
      await label(9, 'quick');
      await until('the run over TLS finished', () => /cldpd: finished \(pod `quick`\)/.test(latest(9)), 120_000);
      expect(latest(9)).toContain(`host \`${hostTls}\``);
      expect(latest(9)).toContain('a quick run');
      const session = /session `(quick-[0-9a-f]{16})`/.exec(latest(9))?.[1] as string;
      expect(await containersCreated(engineB!.docker, session, 0)).toBe(1);
      expect(await containersCreated(local, session, 0)).toBe(0);

      // The TLS is real: without a client certificate, or without TLS, the engine does not serve.
      const { hostname, port: tcpPort } = new URL(engineB!.tcp);
      const ca = await readFile(join(engineB!.certPath, 'ca.pem'));
      await expect(new Docker({ host: hostname, port: tcpPort, protocol: 'https', ca }).ping()).rejects.toThrow();
      await expect(new Docker({ host: hostname, port: tcpPort, protocol: 'http' }).ping()).rejects.toThrow(/HTTPS|400|Bad Request/i);

      const wrong = new CldpdProcess('worker', { ...tlsEnv, CLDPD_HOST_ID: `${hostTls}-x`, DOCKER_CERT_PATH: join(world.home, 'no-certs') }, join(world.home, 'worker-wrong.log'));
      expect(await wrong.exited).toBe(1);
      expect(await readFile(join(world.home, 'worker-wrong.log'), 'utf8')).toContain(`DOCKER_CERT_PATH is \\"${join(world.home, 'no-certs')}\\", and its ca.pem`);
    }, 240_000);
  });
});
