import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { expect } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { parseLogLine } from '../fakes/session-log.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { CldpdProcess, appPrivateKey, deliver, freePort } from '../e2e/processes.js';
import { TestWorld, until } from '../integration/harness.js';

export const SECRET = 'fault-secret';

/** A redis-server of the test's own, with AOF on, that the test can restart. */
export class OwnRedis {
  private child: ChildProcess | undefined;
  port = 0;
  constructor(private readonly dir: string) {}

  async start(): Promise<this> {
    if (!this.port) this.port = await freePort();
    await mkdir(this.dir, { recursive: true });
    this.child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir, '--appendonly', 'yes', '--appendfsync', 'always', '--save', '', '--maxmemory-policy', 'noeviction'], { stdio: 'ignore' });
    const probe = new Redis(this.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    probe.on('error', () => undefined);
    await until('redis-server', async () => {
      try {
        if (probe.status !== 'ready') await probe.connect().catch(() => undefined);
        return (await probe.ping()) === 'PONG';
      } catch {
        return false;
      }
    }, 15_000);
    probe.disconnect();
    return this;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Stops it the way an operator would (SIGTERM: the AOF is complete) and starts it again on the same data. */
  async restart(downMs = 1000): Promise<void> {
    await this.stop();
    await new Promise((r) => setTimeout(r, downMs));
    await this.start();
  }

  async stop(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
}

/** A Unix-socket proxy to the real Docker socket that the test can cut, like an engine that stops answering. */
export class DockerProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(readonly path: string, private readonly target = '/var/run/docker.sock') {}

  async open(): Promise<void> {
    // Half-open both ways, as Docker's own clients expect: a process's input is closed by
    // half-closing the attach connection, and its output keeps flowing back.
    this.server = createServer({ allowHalfOpen: true }, (client) => {
      const upstream = connect({ path: this.target, allowHalfOpen: true });
      this.sockets.add(client).add(upstream);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server?.listen(this.path, resolve));
  }

  /** Refuses new connections and drops the open ones. */
  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

/** Serve and worker processes on a real Docker engine, a Redis of their own, and a fake GitHub. */
export class FaultWorld {
  readonly world = new TestWorld();
  readonly github = new FakeGitHub();
  redis!: OwnRedis;
  proxy!: DockerProxy;
  port = 0;
  env: NodeJS.ProcessEnv = {};
  servers: CldpdProcess[] = [];
  worker: CldpdProcess | undefined;
  private issue = 0;

  async start(): Promise<this> {
    await this.world.init();
    await this.github.start();
    this.github.roles.set('alice', 'write');
    this.redis = await new OwnRedis(join(this.world.home, 'redis')).start();
    this.proxy = new DockerProxy(join(this.world.home, 'docker.sock'));
    await this.proxy.open();
    this.port = await freePort();
    this.env = {
      PATH: process.env.PATH, HOME: this.world.home, APP_ID: '1', PRIVATE_KEY: appPrivateKey(), WEBHOOK_SECRET: SECRET, PORT: String(this.port), HOST: '127.0.0.1',
      GHE_HOST: this.github.host, GHE_PROTOCOL: 'http', REDIS_URL: this.redis.url, CLDPD_HOME: this.world.home, CLDPD_PODS_DIR: this.world.podsDir,
      CLDPD_HOST_ID: this.world.hostId, CLDPD_STATUS_INTERVAL_SECONDS: '1', CLDPD_JOB_LOCK_SECONDS: '3', CLDPD_RECONCILE_SECONDS: '2', LOG_LEVEL: 'info',
    };
    this.servers.push(new CldpdProcess('serve', this.env, join(this.world.home, 'server.log')));
    this.startWorker();
    await this.waitForServer(this.port);
    return this;
  }

  async waitForServer(port: number): Promise<void> {
    await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
  }

  /** A worker whose Docker is reached through the cuttable proxy. */
  startWorker(): CldpdProcess {
    this.worker = new CldpdProcess('worker', { ...this.env, DOCKER_HOST: `unix://${this.proxy.path}` }, join(this.world.home, 'worker.log'));
    return this.worker;
  }

  async close(): Promise<void> {
    await this.worker?.stop();
    for (const s of this.servers) await s.stop();
    await this.redis?.stop();
    await this.proxy?.cut();
    await this.github.close();
    await this.world.close();
  }

  nextIssue(): number {
    this.issue += 1;
    return this.issue;
  }

  ref(n: number): string {
    return `faults/app#${n}`;
  }

  /** Labels issue `n` with `cldpd:<pod>`. */
  async label(n: number, pod: string, port = this.port, id = randomUUID()): Promise<number> {
    return deliver(port, 'issues', {
      action: 'labeled', label: { name: `cldpd:${pod}` },
      issue: { number: n, html_url: `https://github.com/faults/app/issues/${n}`, title: `Fault ${n}`, body: 'run' },
      repository: { name: 'app', owner: { login: 'faults' } }, installation: { id: 3 }, sender: { login: 'alice', type: 'User' },
    }, { id, secret: SECRET });
  }

  /** Comments `body` on issue `n`. */
  async comment(n: number, body: string): Promise<number> {
    return deliver(this.port, 'issue_comment', {
      action: 'created', comment: { id: Math.floor(Math.random() * 1e9), body },
      issue: { number: n, html_url: `https://github.com/faults/app/issues/${n}`, title: `Fault ${n}`, body: 'run' },
      repository: { name: 'app', owner: { login: 'faults' } }, installation: { id: 3 }, sender: { login: 'alice', type: 'User' },
    }, { id: randomUUID(), secret: SECRET });
  }

  statusComments(n: number) {
    return this.github.commentsOn(this.ref(n)).filter((c) => c.body.startsWith('<!-- cldpd:status'));
  }

  async finals(n: number, count = 1, timeoutMs = 90_000) {
    await until(`${count} final status comment(s) on #${n}`, () => this.statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body)).length >= count, timeoutMs);
    return this.statusComments(n);
  }

  sessionOf(n: number): string {
    const id = /session `([a-z0-9._-]+-[0-9a-f]{16})`/.exec(this.statusComments(n)[0]?.body ?? '')?.[1];
    if (!id) throw new Error(`no session on #${n}`);
    return id;
  }

  async events(sessionId: string): Promise<SessionEvent[]> {
    const text = await readFile(join(this.world.home, 'sessions', sessionId, 'log.jsonl'), 'utf8').catch(() => '');
    return text.split('\n').map(parseLogLine).filter((e): e is SessionEvent => !!e);
  }

  /**
   * The invariants of every fault: the log holds every line the container printed, once and
   * in order; each run started one container; no container is left; one final comment per run.
   */
  async expectIntact(n: number, sessionId: string, lines: string[], runs = 1): Promise<void> {
    const events = await this.events(sessionId);
    expect(events.flatMap((e) => (e.type === 'output' ? [e.line] : []))).toEqual(lines);
    for (let run = 1; run <= runs; run++) {
      expect(events.filter((e) => e.type === 'container.started' && e.run === run)).toHaveLength(1);
    }
    await until('no container left', async () => (await this.world.containersOf(sessionId)).length === 0, 15_000);
    const finals = this.statusComments(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body));
    expect(finals).toHaveLength(runs);
    expect(this.statusComments(n)).toHaveLength(runs);
  }
}

/** `line 1` … `line n`. */
export function numbered(n: number): string[] {
  return Array.from({ length: n }, (_, i) => `line ${i + 1}`);
}

/** A shell command printing `line 1` … `line n`, one every `pause` seconds. */
export function printLines(n: number, pause = 0.05): string[] {
  return ['sh', '-c', `i=1; while [ $i -le ${n} ]; do echo "line $i"; i=$((i+1)); sleep ${pause}; done`];
}
