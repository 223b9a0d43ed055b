import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import examples from '@octokit/webhooks-examples';
import type { Redis } from 'ioredis';
import type { FakeGitHub } from '../fakes/fake-github.js';
import { type TestWorld, until } from '../integration/harness.js';

export const CLI = fileURLToPath(new URL('../../dist/main/cldpd.js', import.meta.url));

/** A throwaway RSA key for the fake GitHub App. */
export function appPrivateKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A cldpd process (serve, worker or up) with its output in a log file. */
export class CldpdProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(readonly mode: string, env: NodeJS.ProcessEnv, readonly logFile: string, cwd?: string) {
    const log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [CLI, mode], { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    this.child.stdout?.pipe(log);
    this.child.stderr?.pipe(log);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Stops the process: SIGTERM (a clean shutdown) or SIGKILL (a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Sends a webhook delivery the way GitHub does, signed with `secret` unless it is undefined, to `host` (127.0.0.1 unless given). */
export async function deliver(port: number, event: string, payload: unknown, options: { id: string; secret: string | undefined; path?: string; host?: string }): Promise<number> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': options.id, 'user-agent': 'GitHub-Hookshot/e2e' };
  if (options.secret !== undefined) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', options.secret).update(body).digest('hex')}`;
  const response = await fetch(`http://${options.host ?? '127.0.0.1'}:${port}${options.path ?? '/api/github/webhooks'}`, { method: 'POST', headers, body });
  await response.text();
  return response.status;
}

/** What a {@link processEnv} is built from. */
export interface ProcessEnvOptions {
  /** Its `home` is HOME and CLDPD_HOME, with its pods dir and host id. */
  world: Pick<TestWorld, 'home' | 'podsDir' | 'hostId'>;
  /** The fake GitHub the processes talk to, as GitHub Enterprise Server over http. */
  github: Pick<FakeGitHub, 'host'>;
  /** The webhook server's port. */
  port: number;
  /** The Redis the processes share: a test database's URL. */
  redisUrl: string;
  /** The webhook secret. */
  secret: string;
  /** The app's private key: a fresh throwaway one unless given. */
  privateKey?: string;
  /** Variables of this test's own, added to the common ones or replacing them; an undefined one is left out. */
  extra?: NodeJS.ProcessEnv;
}

/**
 * The environment of the `cldpd serve` and `cldpd worker` processes of an end-to-end test:
 * app 12345, listening on 127.0.0.1, status comments edited every second, info logs,
 * NODE_ENV=test, no metrics port, then `extra`. Nothing is inherited from this process but PATH.
 */
export function processEnv(options: ProcessEnvOptions): NodeJS.ProcessEnv {
  const { world, github, port, redisUrl, secret, privateKey = appPrivateKey(), extra = {} } = options;
  return {
    PATH: process.env.PATH, HOME: world.home,
    APP_ID: '12345', PRIVATE_KEY: privateKey, WEBHOOK_SECRET: secret, PORT: String(port), HOST: '127.0.0.1',
    GHE_HOST: github.host, GHE_PROTOCOL: 'http', REDIS_URL: redisUrl,
    CLDPD_HOME: world.home, CLDPD_PODS_DIR: world.podsDir, CLDPD_HOST_ID: world.hostId,
    CLDPD_STATUS_INTERVAL_SECONDS: '1', LOG_LEVEL: 'info', NODE_ENV: 'test',
    // No metrics port: a server and a worker on one machine would both ask for 9464.
    CLDPD_METRICS_PORT: '0',
    ...extra,
  };
}

/** Resolves once the webhook server on `port` answers /ping; fails after 30 s. */
export async function serverUp(port: number): Promise<void> {
  await until('the webhook server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
}

/**
 * Starts `cldpd serve`, then `cldpd worker`, both with `env`, their output in `server.log`
 * and `workerLog` (`worker.log` unless given) under `logDir`; resolves once the server
 * answers /ping on `port` (see {@link serverUp}).
 */
export async function startServerAndWorker(env: NodeJS.ProcessEnv, options: { logDir: string; port: number; workerLog?: string }): Promise<{ server: CldpdProcess; worker: CldpdProcess }> {
  const server = new CldpdProcess('serve', env, join(options.logDir, 'server.log'));
  const worker = new CldpdProcess('worker', env, join(options.logDir, options.workerLog ?? 'worker.log'));
  await serverUp(options.port);
  return { server, worker };
}

/** What an end-to-end suite started; a `beforeAll` that failed part-way leaves some unset. */
export interface SuiteProcesses {
  worker: CldpdProcess | undefined;
  server: CldpdProcess | undefined;
  github: Pick<FakeGitHub, 'close'>;
  redis: Pick<Redis, 'disconnect'> | undefined;
  world: Pick<TestWorld, 'close'>;
}

/**
 * Tears down what {@link startServerAndWorker} and its suite started, in this order: stops
 * the worker, then the server (SIGTERM: a clean shutdown), closes the fake GitHub,
 * disconnects from Redis and removes the world's containers and volumes.
 */
export async function stopSuite(started: SuiteProcesses): Promise<void> {
  await started.worker?.stop();
  await started.server?.stop();
  await started.github.close();
  started.redis?.disconnect();
  await started.world.close();
}

type Example = { name: string; examples: Array<Record<string, unknown>> };
const EXAMPLES = (examples as unknown as { default?: Example[] }).default ?? (examples as unknown as Example[]);

/** Where a {@link webhookPayload} points, and what it changes in GitHub's example. */
export interface PayloadFields {
  owner: string;
  repo: string;
  /** The installation id. */
  installation: number;
  /** The issue number; its title is `Issue <number>`. */
  issue: number;
  /** The issue's body. */
  body: string;
  /** The sender's login: `alice` unless given. */
  sender?: string;
  /** The sender's type: `User` unless given. */
  senderType?: string;
  /** The name of the label an `issues` event carries. */
  label?: string;
  /** The body of the comment an `issue_comment` event carries, written now by the sender under a random id. */
  comment?: string;
  /** When the issue was closed, for one closed before this event (an `issues.closed` closes it now); open otherwise. */
  closedAt?: string;
  /** Whether the repository is private; the example's is not. */
  private?: boolean;
}

/**
 * GitHub's example payload of `event.action` from @octokit/webhooks-examples, pointed at
 * `fields`, its issue updated now (as GitHub sends a label or a comment) and never a pull
 * request. An `issues` action the examples lack (`closed`) is their `labeled` one with that
 * action. Each call returns a fresh copy.
 */
export function webhookPayload(event: 'issues' | 'issue_comment', action: string, fields: PayloadFields): Record<string, unknown> {
  const { owner, repo, issue, sender = 'alice', senderType = 'User' } = fields;
  const examplesOf = (name: string) => EXAMPLES.find((e) => e.name === name)?.examples ?? [];
  const found = examplesOf(event).find((e) => e.action === action) ?? (event === 'issues' ? examplesOf('issues').find((e) => e.action === 'labeled') : undefined);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event}.${action} payload`);
  const example = structuredClone(found) as Record<string, any>;
  const now = new Date().toISOString();
  example.action = action;
  example.installation = { id: fields.installation, node_id: 'x' };
  Object.assign(example.repository, { name: repo, full_name: `${owner}/${repo}` });
  if (fields.private !== undefined) example.repository.private = fields.private;
  example.repository.owner.login = owner;
  const closed = action === 'closed' || fields.closedAt !== undefined;
  Object.assign(example.issue, {
    number: issue, html_url: `https://github.com/${owner}/${repo}/issues/${issue}`, title: `Issue ${issue}`, body: fields.body, updated_at: now,
    closed_at: action === 'closed' ? now : fields.closedAt ?? null, state: closed ? 'closed' : 'open',
  });
  delete example.issue.pull_request;
  example.sender.login = sender;
  example.sender.type = senderType;
  if (fields.label !== undefined) example.label = { ...example.label, name: fields.label };
  if (fields.comment !== undefined) example.comment = { ...example.comment, id: Math.floor(Math.random() * 1e9), body: fields.comment, user: { ...example.comment.user, login: sender, type: senderType }, created_at: now, updated_at: now };
  return example;
}

/** Where a {@link pullPayload} points, and what it changes in GitHub's example. */
export interface PullPayloadFields {
  owner: string;
  repo: string;
  installation: number;
  /** The pull request's number and head branch (`fork`: its head is in another repository). */
  pull: number;
  head: string;
  fork?: boolean;
  /** The sender's login: `alice` unless given. */
  sender?: string;
  senderType?: string;
  /** pull_request_review: the review's id, body and state. */
  review?: { id: number; body: string; state?: string };
  /** pull_request_review_comment: the comment (a reply when `inReplyTo` is set). */
  comment?: { id: number; body: string; reviewId: number; inReplyTo?: number };
  /** check_suite: the commit and conclusion. */
  checks?: { id: number; sha: string; conclusion: string };
}

/**
 * GitHub's example payload of `event.action` (pull_request_review, pull_request_review_comment,
 * check_suite) from @octokit/webhooks-examples, pointed at `fields` and written now.
 */
export function pullPayload(event: 'pull_request_review' | 'pull_request_review_comment' | 'check_suite', action: string, fields: PullPayloadFields): Record<string, unknown> {
  const { owner, repo, pull, sender = 'alice', senderType = 'User' } = fields;
  const found = EXAMPLES.find((e) => e.name === event)?.examples.find((e) => e.action === action);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event}.${action} payload`);
  const example = structuredClone(found) as Record<string, any>;
  const now = new Date().toISOString();
  const repoId = example.repository.id as number;
  example.installation = { id: fields.installation, node_id: 'x' };
  Object.assign(example.repository, { name: repo, full_name: `${owner}/${repo}`, html_url: `https://github.com/${owner}/${repo}` });
  example.repository.owner.login = owner;
  example.sender.login = sender;
  example.sender.type = senderType;
  const head = { ref: fields.head, sha: fields.checks?.sha ?? 'f'.repeat(40), repo: { ...(example.repository as object), id: fields.fork ? repoId + 1 : repoId } };
  if (example.pull_request) {
    Object.assign(example.pull_request, { number: pull, html_url: `https://github.com/${owner}/${repo}/pull/${pull}`, title: `Pull ${pull}`, body: 'Closes #1' });
    example.pull_request.head = { ...example.pull_request.head, ...head };
    example.pull_request.base = { ...example.pull_request.base, repo: { ...(example.repository as object), id: repoId } };
  }
  if (fields.review) Object.assign(example.review, { id: fields.review.id, body: fields.review.body, state: fields.review.state ?? 'commented', submitted_at: now, user: { ...example.review.user, login: sender, type: senderType } });
  if (fields.comment) {
    Object.assign(example.comment, { id: fields.comment.id, body: fields.comment.body, pull_request_review_id: fields.comment.reviewId, created_at: now, updated_at: now, user: { ...example.comment.user, login: sender, type: senderType } });
    if (fields.comment.inReplyTo !== undefined) example.comment.in_reply_to_id = fields.comment.inReplyTo;
    else delete example.comment.in_reply_to_id;
  }
  if (fields.checks) {
    Object.assign(example.check_suite, { id: fields.checks.id, head_sha: fields.checks.sha, conclusion: fields.checks.conclusion, status: 'completed', updated_at: now, head_branch: fields.head });
    example.check_suite.pull_requests = [{ number: pull, head, base: { ref: 'main', repo: { id: repoId } } }];
  }
  return example;
}
