import { Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Probot, Server } from 'probot';
import { requireGitHubApp, type Config } from '../config.js';
import { cldpdApp } from '../github/app.js';
import { octokitComments, type OctokitLike } from '../github/comments-api.js';
import { Intake } from '../github/intake.js';
import type { IntakeJob } from '../queue/contract.js';
import { IssueState } from '../queue/issue-state.js';
import { INTAKE_QUEUE } from '../queue/names.js';
import { Producer } from '../queue/producer.js';

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
  const server = new Server({
    Probot: Probot.defaults(probotOptions),
    port,
    ...(host ? { host } : {}),
    webhookPath,
    ...(webhookProxyUrl ? { webhookProxy: webhookProxyUrl } : {}),
    log: logger.child({ name: 'server' }),
  });
  await server.load(cldpdApp(producer));

  const github = new Probot(probotOptions);
  const octokitFor = async (installationId: number) => (await github.auth(installationId)) as unknown as OctokitLike;
  const intake = new Intake({ state, producer, comments: octokitComments(octokitFor), octokitFor, logger: logger.child({ name: 'intake' }) });
  const worker = new Worker<IntakeJob>(INTAKE_QUEUE, (job) => intake.process(job.data), { connection: redis, concurrency: 8 });
  worker.on('failed', (job, err) => logger.error({ err, delivery: job?.data.deliveryId, attempts: job?.attemptsMade }, 'intake failed'));
  worker.on('error', (err) => logger.error({ err }, 'intake worker error'));

  const http = await server.start();
  const address = http.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: async () => {
      await server.stop();
      await worker.close();
      await producer.close();
    },
  };
}
