import { createServer, type Server as HttpServer } from 'node:http';
import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Webhooks, createNodeMiddleware } from '@octokit/webhooks';
import { Probot, Server } from 'probot';
import { requireGitHubApp, type Config } from '../config.js';
import { cldpdApp, registerHandlers } from '../github/app.js';
import { octokitComments, type OctokitLike } from '../github/comments-api.js';
import { Intake } from '../github/intake.js';
import { budgetedComments } from '../github/write-budget.js';
import type { IntakeJob } from '../queue/contract.js';
import { IssueState } from '../queue/issue-state.js';
import { INTAKE_QUEUE } from '../queue/names.js';
import { Producer } from '../queue/producer.js';
import { sharedWriteBudget } from './write-budget.js';

/** A running `cldpd serve`. */
export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * `cldpd serve`: the Probot webhook server (signature check, filter, enqueue) and the
 * intake worker that checks permissions and acknowledges on the issue. Never touches Docker.
 */
export async function startServer(config: Config, logger: Logger, redis: Redis): Promise<RunningServer> {
  const { appId, privateKey, webhookSecret } = requireGitHubApp(config);
  const { baseUrl, port, host, webhookPath, webhookProxyUrl } = config.github;
  const state = new IssueState(redis);
  const producer = new Producer(redis, state);
  const probotOptions = { appId, privateKey, secret: webhookSecret, log: logger, ...(baseUrl ? { baseUrl } : {}) };
  let listen: () => Promise<HttpServer>;
  let stop: () => Promise<void>;
  if (webhookProxyUrl) {
    // Development through a smee.io channel: Probot's own server knows how to follow it.
    const server = new Server({ Probot: Probot.defaults(probotOptions), port, ...(host ? { host } : {}), webhookPath, webhookProxy: webhookProxyUrl, log: logger.child({ name: 'server' }) });
    await server.load(cldpdApp(producer));
    listen = () => server.start();
    stop = () => server.stop();
  } else {
    // @octokit/webhooks (what Probot verifies and routes with) on a plain Node server. Not
    // Probot's middleware: that builds an authenticated API client for every delivery,
    // which the handlers never use (the intake step authenticates) and which cost more than
    // everything else on the path GitHub waits on.
    const webhooks = new Webhooks({ secret: webhookSecret });
    const log = logger.child({ name: 'webhooks' });
    registerHandlers((event, handler) => webhooks.on(event, ({ id, payload }) => handler({ id, payload })), producer, log);
    const middleware = createNodeMiddleware(webhooks, {
      path: webhookPath,
      log: { debug: () => undefined, info: (m) => log.info(m), warn: (m) => log.warn(m), error: (m) => log.error(m) },
    });
    const http = createServer((req, res) => {
      if (req.method === 'GET' && req.url === '/ping') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('PONG');
        return;
      }
      void Promise.resolve(middleware(req, res, () => {
        res.writeHead(404, { 'content-type': 'text/plain' });
        res.end('Not found');
      })).catch((err: unknown) => {
        logger.error({ err }, 'webhook request failed');
        if (!res.headersSent) res.writeHead(500);
        res.end();
      });
    });
    listen = () => new Promise((resolve, reject) => {
      http.once('error', reject);
      http.listen(port, host, () => resolve(http));
    });
    stop = () => new Promise((resolve) => http.close(() => resolve()));
  }

  const github = new Probot(probotOptions);
  const octokitFor = async (installationId: number) => (await github.auth(installationId)) as unknown as OctokitLike;
  const intake = new Intake({ state, producer, comments: budgetedComments(octokitComments(octokitFor), sharedWriteBudget(redis, config, logger)), octokitFor, logger: logger.child({ name: 'intake' }) });
  const worker = new Worker<IntakeJob>(INTAKE_QUEUE, (job) => intake.process(job.data), { connection: redis, concurrency: 8 });
  worker.on('failed', (job, err) => logger.error({ err, delivery: job?.data.deliveryId, attempts: job?.attemptsMade }, 'intake failed'));
  worker.on('error', (err) => logger.error({ err }, 'intake worker error'));

  const listening = await listen();
  const address = listening.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: async () => {
      await stop();
      await worker.close();
      await producer.close();
    },
  };
}
