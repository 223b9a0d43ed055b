import { hostname, homedir } from 'node:os';
import { join, resolve } from 'node:path';

/** Settings read from the environment, once, at start-up. */
export interface Config {
  /** cldpd's data directory: sessions and their logs live under it. `CLDPD_HOME`, default `~/.cldpd`. */
  readonly home: string;
  /** Where pods are found. `CLDPD_PODS_DIR`, default `<home>/pods`. */
  readonly podsDir: string;
  /** Session records and logs: `<home>/sessions`. */
  readonly sessionsDir: string;
  /** Names this Docker host in container labels. `CLDPD_HOST_ID`, default the machine's hostname. */
  readonly hostId: string;
  /** The user's home, for `~` in pod mounts. */
  readonly userHome: string;
  /** pino level. `LOG_LEVEL`, default `info`. */
  readonly logLevel: string;
}

/**
 * Parses the environment into a frozen Config. The only reader of `process.env` besides
 * the inheritEnv pass-through of pods (and dockerode's own `DOCKER_HOST`).
 */
export function loadConfig(env: Readonly<Record<string, string | undefined>> = process.env, overrides: { podsDir?: string | undefined } = {}): Config {
  const userHome = env.HOME || homedir();
  const home = resolve(env.CLDPD_HOME || join(userHome, '.cldpd'));
  const podsDir = resolve(overrides.podsDir || env.CLDPD_PODS_DIR || join(home, 'pods'));
  return Object.freeze({
    home,
    podsDir,
    sessionsDir: join(home, 'sessions'),
    hostId: env.CLDPD_HOST_ID || hostname(),
    userHome,
    logLevel: env.LOG_LEVEL || 'info',
  });
}
