import type { Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { INTAKE_QUEUE, RUN_QUEUE, hostQueue } from '../queue/names.js';
import type { ReadinessCheck } from '../web/operations.js';
import { loadDotEnv } from './dot-env.js';
import { createLogger } from './logger.js';
import { openRedis, redisAnswers } from './redis.js';
import type { RunningWorker } from './worker.js';

/** Which long-running processes to run: `serve`, `worker`, or both (`up`, what `npm start` runs). */
export type ServiceMode = 'serve' | 'worker' | 'up';

/**
 * Runs the server, the worker, or both until SIGTERM/SIGINT, then shuts down cleanly: stops
 * taking webhooks and jobs, leaves running containers running (a restarted worker adopts
 * them), closes Redis. Without GitHub App credentials, `up` and `serve` serve cldpd's setup
 * page instead (src/setup/setup-server.ts), which registers the app from app.yml and writes
 * `.env`; the process then waits for a restart. Logs are readable lines on a terminal, JSON
 * otherwise (`CLDPD_LOG_FORMAT` decides when set).
 */
export async function runServices(mode: ServiceMode): Promise<number> {
  loadDotEnv();
  let config: Config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  const logger: Logger = createLogger({ level: config.logLevel, format: config.logFormat });

  const closers: Array<[string, () => Promise<void>]> = [];
  if (mode !== 'worker' && (!config.github.appId || !config.github.privateKey)) {
    try {
      const [{ startSetupServer }, { logSetupAddresses }] = await Promise.all([import('../setup/setup-server.js'), import('../setup/setup-addresses.js')]);
      const setup = await startSetupServer(config, logger);
      closers.push(['setup page', () => setup.close()]);
      logSetupAddresses(logger, config, setup.port, setup.key);
    } catch (err) {
      const inUse = (err as NodeJS.ErrnoException).code === 'EADDRINUSE';
      logger.error({ err }, inUse
        ? `Port ${config.github.port} is in use: stop what listens there, or set PORT to another port, and start again.`
        : `The setup page could not start: ${err instanceof Error ? err.message : String(err)}`);
      return 1;
    }
    return waitForSignal(logger, config, closers);
  }

  if (mode !== 'worker' && config.metricsPort !== 0 && config.metricsPort === config.github.port) {
    // Else the metrics take the port first and the webhook server fails with a bare EADDRINUSE.
    logger.error(`CLDPD_METRICS_PORT and PORT are both ${config.github.port}: /metrics and /readyz are served on a port of their own, apart from the webhook port anyone may reach. Set CLDPD_METRICS_PORT to another port (9464 is the default), or to 0 to serve none, and start again.`);
    return 1;
  }
  try {
    const redis = await openRedis(config, logger, { ownServer: mode === 'up' });
    closers.push(['redis', () => redis.close()]);
    const [{ QueueDepths }, { createMetrics }, { healthRoute, operationsRoutes }] = await Promise.all([import('../queue/queue-depths.js'), import('../web/metrics.js'), import('../web/operations.js')]);
    // One set of metrics per process: in `up` the server and the worker count into the same.
    const depths = new QueueDepths(redis.redis, [...(mode !== 'worker' ? [INTAKE_QUEUE] : []), RUN_QUEUE, ...(mode !== 'serve' ? [hostQueue(config.hostId)] : [])]);
    closers.unshift(['queue counts', () => depths.close()]);
    const metrics = createMetrics({ queueDepths: () => depths.counts() });
    let worker: RunningWorker | undefined;
    const starting: ReadinessCheck = { name: 'worker', check: () => Promise.reject(new Error('still starting')) };
    const routes = operationsRoutes({
      metrics,
      ready: () => [{ name: 'redis', check: () => redisAnswers(redis.redis) }, ...(mode === 'serve' ? [] : worker?.checks ?? [starting])],
    });
    if (config.metricsPort !== 0) {
      const { startMetricsServer } = await import('../web/metrics-server.js');
      // The runs matter more than their metrics: a taken port (a second worker on one machine)
      // is logged loudly, and the process runs on without it.
      const operations = await startMetricsServer(routes, config.metricsPort, config.metricsAddress).catch((err: unknown) => {
        logger.error({ err }, err instanceof Error ? err.message : 'could not serve /metrics');
        return undefined;
      });
      if (operations) {
        closers.unshift(['metrics server', () => operations.close()]);
        logger.info({ address: config.metricsAddress, port: operations.port }, 'serving /metrics, /healthz and /readyz');
      }
    }
    if (mode !== 'worker') {
      const { startServer } = await import('./server.js');
      // Anyone may reach the webhook port: it tells them the process lives, nothing more.
      const server = await startServer(config, logger, redis.redis, { metrics, routes: [healthRoute()] });
      closers.unshift(['webhook server', () => server.close()]);
      logger.info({ port: server.port, path: config.github.webhookPath }, 'listening for webhooks (and /healthz)');
    }
    if (mode !== 'serve') {
      const { startWorker } = await import('./worker.js');
      const started = await startWorker(config, logger, redis.redis, process.env, { metrics });
      worker = started;
      closers.unshift(['worker', () => started.close()]);
      logger.info({ host: config.hostId, concurrency: config.concurrency }, 'worker taking jobs');
    }
  } catch (err) {
    logger.error({ err }, err instanceof Error ? err.message : 'start-up failed');
    for (const [, close] of closers) await close().catch(() => undefined);
    return 1;
  }

  return waitForSignal(logger, config, closers);
}

/**
 * Resolves with the exit code once SIGTERM/SIGINT has closed everything in `closers`, in order,
 * within `config.stopSeconds`; a second signal resolves at once.
 */
function waitForSignal(logger: Logger, config: Config, closers: ReadonlyArray<[string, () => Promise<void>]>): Promise<number> {
  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) {
        // A second signal: the operator (or the orchestrator) will not wait any longer.
        logger.warn({ signal }, 'second signal while shutting down; exiting now');
        resolveExit(1);
        return;
      }
      stopping = true;
      logger.info({ signal }, 'shutting down; running containers keep running and are adopted on restart');
      let pending = '';
      // Whatever holds a close (a Redis that does not answer, a connection that lingers), the
      // process ends within its stop grace: compose and systemd kill at 30 s and 90 s.
      const deadline = setTimeout(() => {
        logger.error({ waitingFor: pending }, `shutdown took longer than ${config.stopSeconds} s; exiting anyway`);
        resolveExit(1);
      }, config.stopSeconds * 1000);
      deadline.unref();
      void (async () => {
        for (const [name, close] of closers) {
          pending = name;
          await close().catch((err: unknown) => logger.warn({ err, closing: name }, 'error while shutting down'));
        }
        clearTimeout(deadline);
        resolveExit(0);
      })();
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
}
