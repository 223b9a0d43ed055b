import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { openRedis } from './redis.js';

/** Which long-running processes to run: `serve`, `worker`, or both (`up`, what `npm start` runs). */
export type ServiceMode = 'serve' | 'worker' | 'up';

/** Loads `.env` from the working directory into the environment, as Probot does. */
function loadDotEnv(): void {
  const file = resolve('.env');
  if (existsSync(file)) process.loadEnvFile(file);
}

/**
 * Runs the server, the worker, or both until SIGTERM/SIGINT, then shuts down cleanly: stops
 * taking webhooks and jobs, leaves running containers running (a restarted worker adopts
 * them), closes Redis. Without GitHub App credentials, `up` and `serve` open Probot's setup
 * page, which registers the app from app.yml and writes `.env`.
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
  const logger: Logger = pino({ level: config.logLevel, name: 'cldpd' });

  if (mode !== 'worker' && (!config.github.appId || !config.github.privateKey)) {
    const { run } = await import('probot');
    logger.info(`No GitHub App yet: open http://localhost:${config.github.port} to register one (this writes .env), then restart.`);
    await run(() => undefined, { env: { ...process.env, PORT: String(config.github.port) } });
    return await new Promise<number>(() => undefined); // Probot's setup server runs until the process is stopped
  }

  const closers: Array<[string, () => Promise<void>]> = [];
  try {
    const redis = await openRedis(config, logger, { ownServer: mode === 'up' });
    closers.push(['redis', () => redis.close()]);
    if (mode !== 'worker') {
      const { startServer } = await import('./server.js');
      const server = await startServer(config, logger, redis.redis);
      closers.unshift(['webhook server', () => server.close()]);
      logger.info({ port: server.port, path: config.github.webhookPath }, 'listening for webhooks');
    }
    if (mode !== 'serve') {
      const { startWorker } = await import('./worker.js');
      const worker = await startWorker(config, logger, redis.redis, process.env);
      closers.unshift(['worker', () => worker.close()]);
      logger.info({ host: config.hostId, concurrency: config.concurrency }, 'worker taking jobs');
    }
  } catch (err) {
    logger.error({ err }, err instanceof Error ? err.message : 'start-up failed');
    for (const [, close] of closers) await close().catch(() => undefined);
    return 1;
  }

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
