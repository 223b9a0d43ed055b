import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type { Logger } from 'pino';
import { runCli } from '../cli/run-cli.js';
import { colorEnabled } from '../cli/style.js';
import { ConfigError, loadConfig } from '../config.js';
import { Dispatcher, DockerRunner, HostInventory, SessionStore, SessionTakeover } from '../core/index.js';
import { dockerClient } from './docker-engine.js';

const require = createRequire(import.meta.url);

/**
 * A logger that loads pino only when something is logged: a terminal command that logs
 * nothing (the usual case) does not pay for it at start-up.
 */
function lazyLogger(make: () => Logger): Logger {
  let real: Logger | undefined;
  const resolve = (): Logger => (real ??= make());
  return new Proxy({} as Logger, {
    get(_, property) {
      if (property === 'child') return (bindings: Record<string, unknown>) => lazyLogger(() => resolve().child(bindings));
      const value = Reflect.get(resolve(), property) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(resolve()) : value;
    },
  });
}

/** The terminal commands (`start`, `ps`, …): args → dispatcher → print. Resolves with the exit code. */
export async function runTerminal(argv: readonly string[]): Promise<number> {
  const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const run = (): Promise<number> => runCli(
  argv,
  (podsDir) => {
    const config = loadConfig(process.env, { podsDir });
    const logger = lazyLogger(() => {
      const { pino } = require('pino') as typeof import('pino');
      // A warning on a terminal reads as a line, like the rest of cldpd's notes; JSON when piped.
      if ((config.logFormat ?? (process.stderr.isTTY === true ? 'pretty' : 'json')) === 'json') return pino({ level: config.logLevel }, pino.destination(2));
      const pretty = require('pino-pretty') as typeof import('pino-pretty');
      return pino({ level: config.logLevel }, pretty({ sync: true, destination: 2, ignore: 'pid,hostname', translateTime: 'SYS:HH:MM:ss', colorize: colorEnabled(process.env, process.stderr.isTTY === true) }));
    });
    const runner = new DockerRunner(dockerClient(config.engine, config.userHome), { gatewayPool: config.egressSubnets });
    const store = new SessionStore(config.sessionsDir);
    const pods = { podsDir: config.podsDir, homeDir: config.userHome };
    const dispatcher = new Dispatcher({ runner, pods, store, hostId: config.hostId, hostEnv: process.env, logger, maxLogBytesPerRun: config.runLogMaxBytes, gateways: config.gateways });
    const inventory = new HostInventory({ runner, store, hostId: config.hostId });
    // Only `cldpd gc` asks; the module (and ioredis) is loaded then.
    const retirer = async () => (await import('./gc-retirer.js')).gcRetirer(config, inventory);
    const takeover = { sessions: new SessionTakeover({ runner, store, pods, hostId: config.hostId, hostEnv: process.env, logger, gateways: config.gateways }), claudeConfigDir: config.claudeConfigDir, hostId: config.hostId };
    return { dispatcher, inventory, runner, store, pods, retirer, takeover };
  },
  {
    stdout: process.stdout,
    stderr: process.stderr,
    stdin: process.stdin,
    version,
    ...(process.stdin.isTTY === true && process.stdout.isTTY === true ? {
      terminal: {
        input: process.stdin,
        output: process.stdout,
        // The terminal going away, and signals from elsewhere (in raw mode Ctrl+C is a key, not SIGINT).
        onHangup: (handler: () => void) => {
          for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.on(signal, handler);
          return () => {
            for (const signal of ['SIGHUP', 'SIGTERM', 'SIGINT'] as const) process.off(signal, handler);
          };
        },
      },
    } : {}),
    color: { stdout: colorEnabled(process.env, process.stdout.isTTY === true), stderr: colorEnabled(process.env, process.stderr.isTTY === true) },
    onInterrupt: (handler) => {
      // A reader that went away (`cldpd start … | head`) is an interrupt too: stop, leave no container.
      const onPipeError = (err: NodeJS.ErrnoException): void => {
        if (err.code === 'EPIPE') handler();
      };
      process.on('SIGINT', handler);
      process.on('SIGTERM', handler);
      process.stdout.on('error', onPipeError);
      process.stderr.on('error', onPipeError);
      return () => {
        process.off('SIGINT', handler);
        process.off('SIGTERM', handler);
        process.stdout.off('error', onPipeError);
        process.stderr.off('error', onPipeError);
      };
    },
  },
  );
  try {
    return await run();
  } catch (err) {
    // A setting cldpd cannot use (DOCKER_HOST, DOCKER_CERT_PATH, …): its message says which, and what to do.
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`cldpd: ${err.message}\n`);
    return 1;
  }
}
