import { readFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { requireGitHubApp, type Config } from '../config.js';
import { appAuth } from '../github/app-auth.js';
import { missingSubscriptions, missingSubscriptionsMessage } from '../github/app-subscriptions.js';
import { octokitComments, type OctokitLike } from '../github/comments-api.js';
import { Intake } from '../github/intake.js';
import { webhookHandler } from '../github/triggers.js';
import { createWebhookReceiver } from '../github/webhook-receiver.js';
import { budgetedComments } from '../github/write-budget-policy.js';
import type { IntakeJob } from '../queue/contract.js';
import { issueStores } from '../queue/issue-stores.js';
import { INTAKE_QUEUE } from '../queue/names.js';
import { Producer } from '../queue/producer.js';
import { UsageLimits } from '../queue/usage-counters.js';
import { APP_YML_URL, parseAppDefinition } from '../setup/app-manifest.js';
import { limitConnections } from '../web/connection-limits.js';
import type { CldpdMetrics } from '../web/metrics.js';
import { onAReplica } from './redis-connection.js';
import { sessionPages, type SessionPages } from './session-pages.js';
import { sharedWriteBudget } from './shared-write-budget.js';

/** How long a webhook delivery waits for a replica to have its job, behind Sentinel (GitHub waits 10 s in all). */
const REPLICA_WAIT_MS = 1000;

/** A running `cldpd serve`. */
export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

/** What the webhook server serves besides the webhooks, and where it counts what it does. */
export interface ServerExtras {
  /** Counts webhook deliveries and the intake's GitHub writes. */
  readonly metrics?: CldpdMetrics;
  /** Tried in order before the webhook path; each answers (and returns true) or passes (false). Anyone on the webhook port reaches them. */
  readonly routes?: ReadonlyArray<(req: IncomingMessage, res: ServerResponse) => boolean>;
}

/**
 * `cldpd serve`: the Probot webhook server (signature check, filter, enqueue) and the
 * intake worker that checks permissions and acknowledges on the issue. Never touches Docker.
 * `extras.routes` (/healthz) are served on the same port.
 */
export async function startServer(config: Config, logger: Logger, redis: Redis, extras: ServerExtras = {}): Promise<RunningServer> {
  const { metrics, routes = [] } = extras;
  const { appId, privateKey, webhookSecret } = requireGitHubApp(config);
  const { baseUrl, port, host, webhookPath, webhookProxyUrl } = config.github;
  const state = issueStores(redis);
  // Behind Sentinel a delivery is answered once a replica has it too: a primary that dies
  // right after taking it would otherwise take it along, and GitHub does not send it again.
  // With no replica to have it (one down, or rejoining after a failover) it is answered
  // all the same, rather than refused until one is back, and the log says so. The deliveries'
  // writes go on a connection of their own: WAIT holds the connection it runs on, and counts
  // only that connection's writes.
  const intakeRedis = config.redisSentinel ? redis.duplicate() : redis;
  if (intakeRedis !== redis) {
    intakeRedis.on('error', (err: Error) => logger.warn({ err: err.message }, 'redis connection error (webhook deliveries)'));
    intakeRedis.on('sentinelError', (err: Error) => logger.warn({ err: err.message }, 'a sentinel of REDIS_SENTINELS does not answer'));
  }
  let connections = 0;
  intakeRedis.on('ready', () => (connections += 1));
  const confirm = oneWaitAtATime(() => onAReplica(intakeRedis, REPLICA_WAIT_MS));
  let saidAlone = 0;
  const durable = async (write: () => Promise<unknown>): Promise<void> => {
    for (let tries = 1; ; tries += 1) {
      const before = connections;
      await write();
      const confirmed = await confirm();
      // Connected anew between the write and the wait (a failover): the write may have gone
      // with the old primary, and a WAIT on a new connection counts nothing. Write again: its
      // job id makes it once.
      if (connections !== before && tries < 3) continue;
      if (confirmed || Date.now() - saidAlone < 60_000) return;
      saidAlone = Date.now();
      logger.warn(`no Redis replica confirmed a webhook delivery's job within ${REPLICA_WAIT_MS} ms: deliveries are answered, but are on the primary alone until a replica replicates from it again (a failover now would lose them). Start the replica, or look at why it lags.`);
      return;
    }
  };
  const producer = new Producer(intakeRedis, state, config.redisSentinel ? { durable } : {});
  // The intake step's writes (runs, stops) wait for no replica: they are made again should a
  // failover lose them (its job is retried), so they do not queue behind a delivery's WAIT.
  const runs = intakeRedis === redis ? producer : new Producer(redis, state);
  const log = logger.child({ name: 'webhooks' });
  // Signature, size and replay checks are cldpd's own (see createWebhookReceiver); routing
  // is two events. The app's authentication is Probot's (see appAuth).
  const handle = webhookHandler(producer, log);
  const receiver = createWebhookReceiver({
    secret: webhookSecret, path: webhookPath, log, receive: (delivery) => handle(delivery),
    observe: (event, outcome) => metrics?.webhookDelivery(event, outcome),
  });
  // Built once the app can authenticate (below); until then nothing listens.
  let pages: SessionPages | undefined;
  // A client that sends its request slowly holds a socket, never memory, and not for long:
  // GitHub sends a delivery's head at once and gives up on an answer after 10 s. Node looks
  // for overdue requests every connectionsCheckingInterval.
  const http = createServer({ headersTimeout: 5_000, requestTimeout: 15_000, connectionsCheckingInterval: 1_000 }, (req, res) => {
    if (req.method === 'GET' && req.url === '/ping') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('PONG');
      return;
    }
    try {
      if (routes.some((route) => route(req, res))) return;
      if (pages?.handle(req, res)) return;
      if (receiver(req, res)) return;
    } catch (err) {
      // Whatever a request holds, it never takes the webhook server down with it.
      logger.error({ err, url: req.url?.slice(0, 200) }, 'a request failed');
      if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
      res.end('Internal error');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('Not found');
  });
  // Each connection may hold 1 MiB of an unverified body: the limits bound the memory a
  // stranger can take. A connection still sending its head, or idle, makes room for a new
  // one; live session pages hold at most 100 (see sessionRoutes). So slow connections, from
  // one address or to other routes, cannot turn GitHub's deliveries away.
  limitConnections(http, { perAddress: 32, total: 512 });
  const listen = () => new Promise<HttpServer>((resolve, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => resolve(http));
  });
  let proxy: { close(): void } | undefined;

  const { octokitFor, appLogin, appOctokit } = appAuth({ appId, privateKey, baseUrl, logger });
  void sayMissingSubscriptions(appOctokit, logger);
  pages = sessionPages(config, privateKey, redis, octokitFor, logger);
  const intake = new Intake({ state, producer: intakeRedis === redis ? producer : runs, comments: budgetedComments(octokitComments(octokitFor, metrics?.github), sharedWriteBudget(redis, config, logger, metrics?.github)), octokitFor, appLogin, logger: logger.child({ name: 'intake' }), limits: { usage: new UsageLimits(redis), defaults: config.limits }, retentionMs: config.retentionMs });
  const worker = new Worker<IntakeJob>(INTAKE_QUEUE, (job) => intake.process(job.data), { connection: redis, concurrency: 8 });
  worker.on('failed', (job, err) => logger.error({ err, delivery: job?.data.deliveryId, attempts: job?.attemptsMade }, 'intake failed'));
  worker.on('error', (err) => logger.error({ err }, 'intake worker error'));

  const listening = await listen();
  const address = listening.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  if (webhookProxyUrl) proxy = await followWebhookProxy(webhookProxyUrl, `http://127.0.0.1:${boundPort}${webhookPath}`, logger.child({ name: 'webhook-proxy' }));
  return {
    port: boundPort,
    close: async () => {
      proxy?.close();
      pages?.close();
      // Deliveries in flight are answered (GitHub does not retry a failed one); the stop
      // deadline bounds the wait. Idle keep-alive connections go at once.
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      await closed;
      await worker.close();
      await producer.close();
      if (runs !== producer) await runs.close();
      if (intakeRedis !== redis) intakeRedis.disconnect();
    },
  };
}

/** Logs what the registered app is not subscribed to of what app.yml asks (an app registered before cldpd asked it); never throws. */
async function sayMissingSubscriptions(appOctokit: () => Promise<OctokitLike>, logger: Logger): Promise<void> {
  try {
    const wanted = parseAppDefinition(await readFile(APP_YML_URL, 'utf8'));
    const { data } = await (await appOctokit()).request('GET /app');
    const message = missingSubscriptionsMessage(missingSubscriptions(data as { events?: unknown; permissions?: unknown }, { events: wanted.defaultEvents, permissions: wanted.defaultPermissions }));
    if (message) logger.warn(message);
  } catch (err) {
    logger.warn({ err: (err as Error).message }, 'could not compare the GitHub App\'s events and permissions with app.yml');
  }
}

/**
 * `wait` run one at a time, callers sharing runs: a caller while one runs waits for the next,
 * which covers its writes too (Redis's WAIT counts the writes made before it). So concurrent
 * deliveries wait at most two runs, not one each in turn.
 */
function oneWaitAtATime(wait: () => Promise<boolean>): () => Promise<boolean> {
  let running: Promise<boolean> | undefined;
  let next: Promise<boolean> | undefined;
  const start = (): Promise<boolean> => {
    const run = wait().finally(() => {
      if (running === run) running = undefined;
    });
    running = run;
    return run;
  };
  return () => {
    if (next) return next;
    if (!running) return start();
    next = running.catch(() => false).then(() => {
      next = undefined;
      return start();
    });
    return next;
  };
}

/**
 * Development through a smee.io channel: each event of the channel is POSTed to this
 * server as GitHub sent it, so it passes the same signature, size and replay checks. A
 * channel is readable by anyone with its URL; those checks are what make that safe.
 */
async function followWebhookProxy(source: string, target: string, logger: Logger): Promise<{ close(): void }> {
  const moduleName = 'smee-client';
  let SmeeClient: new (options: { source: string; target: string; logger: Pick<Logger, 'info' | 'error'> }) => { start(): Promise<{ close(): void }> };
  try {
    ({ SmeeClient } = (await import(moduleName)) as { SmeeClient: typeof SmeeClient });
  } catch {
    throw new Error(`WEBHOOK_PROXY_URL is set, but the smee-client package is not installed. Run "npm install --no-save smee-client" here, or unset WEBHOOK_PROXY_URL and let GitHub reach this server.`);
  }
  return new SmeeClient({ source, target, logger: { info: (...m: unknown[]) => logger.info(m.join(' ')), error: (...m: unknown[]) => logger.error(m.join(' ')) } }).start();
}
