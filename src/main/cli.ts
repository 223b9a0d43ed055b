#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { pino } from 'pino';
import { runCli } from '../cli/run-cli.js';
import { loadConfig } from '../config.js';
import { Dispatcher, DockerRunner, SessionStore } from '../core/index.js';

const version = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const SERVICES = new Set(['serve', 'worker', 'up']);
const [first] = process.argv.slice(2);

// The long-running processes load probot and bullmq; the terminal commands never do.
const code = first && SERVICES.has(first)
  ? await (await import('./services.js')).runServices(first as 'serve' | 'worker' | 'up')
  : await runCli(
  process.argv.slice(2),
  (podsDir) => {
    const config = loadConfig(process.env, { podsDir });
    const logger = pino({ level: config.logLevel }, pino.destination(2));
    const runner = new DockerRunner(new Docker());
    const store = new SessionStore(config.sessionsDir);
    const pods = { podsDir: config.podsDir, homeDir: config.userHome };
    const dispatcher = new Dispatcher({ runner, pods, store, hostId: config.hostId, hostEnv: process.env, logger });
    return { dispatcher, runner, store, pods };
  },
  {
    stdout: process.stdout,
    stderr: process.stderr,
    version,
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
process.exit(code);
