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

  const closers: Array<() => Promise<void>> = [];
  try {
    const redis = await openRedis(config, logger, { ownServer: mode === 'up' });
    closers.push(() => redis.close());
    if (mode !== 'worker') {
      const { startServer } = await import('./server.js');
      const server = await startServer(config, logger, redis.redis);
      closers.unshift(() => server.close());
      logger.info({ port: server.port, path: config.github.webhookPath }, 'listening for webhooks');
    }
    if (mode !== 'serve') {
      const { startWorker } = await import('./worker.js');
      const worker = await startWorker(config, logger, redis.redis, process.env);
      closers.unshift(() => worker.close());
      logger.info({ host: config.hostId, concurrency: config.concurrency }, 'worker taking jobs');
    }
  } catch (err) {
    logger.error({ err }, err instanceof Error ? err.message : 'start-up failed');
    for (const close of closers) await close().catch(() => undefined);
    return 1;
  }

  return new Promise<number>((resolveExit) => {
    let stopping = false;
    const stop = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      logger.info({ signal }, 'shutting down; running containers keep running and are adopted on restart');
      void (async () => {
        for (const close of closers) await close().catch((err: unknown) => logger.warn({ err }, 'error while shutting down'));
        resolveExit(0);
      })();
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
