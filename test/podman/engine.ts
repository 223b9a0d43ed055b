import { existsSync, readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

/**
 * Where scripts/podman.sh writes the sockets of the Podman services it starts (rootless, as
 * its own unprivileged user, and rootful): DOCKER_HOST values, as CLDPD_PODMAN_ROOTLESS and
 * CLDPD_PODMAN_ROOTFUL. The same variables in this process's environment come first.
 */
const ENV_FILE = '/run/cldpd-podman/env';

function fromFile(): Record<string, string> {
  if (!existsSync(ENV_FILE)) return {};
  return Object.fromEntries(readFileSync(ENV_FILE, 'utf8').split('\n').flatMap((l) => {
    const eq = l.indexOf('=');
    return eq > 0 ? [[l.slice(0, eq), l.slice(eq + 1)]] : [];
  }));
}

/** Whether the Podman API on `host` (unix://…) answers its ping. */
function answers(host: string): boolean {
  if (!host.startsWith('unix://')) return false;
  try {
    return execFileSync('curl', ['-sf', '--max-time', '5', '--unix-socket', host.slice('unix://'.length), 'http://d/_ping'], { encoding: 'utf8' }).trim() === 'OK';
  } catch {
    return false;
  }
}

/**
 * The DOCKER_HOST of the rootless or rootful Podman service. Under CI a missing or silent
 * one is an error that names the fix; elsewhere, undefined (the suites then skip, saying so).
 */
export function podmanHost(mode: 'rootless' | 'rootful'): string | undefined {
  const name = mode === 'rootless' ? 'CLDPD_PODMAN_ROOTLESS' : 'CLDPD_PODMAN_ROOTFUL';
  const host = process.env[name] ?? fromFile()[name];
  if (host && answers(host)) return host;
  const problem = host ? `The ${mode} Podman service on ${host} does not answer` : `No ${mode} Podman service is known (${name} is not set and ${ENV_FILE} does not name one)`;
  if (process.env.CI === 'true') {
    throw new Error(`${problem}. CI runs the Podman suites against rootless and rootful Podman: run "bash scripts/podman.sh" as root first (.ci/run does), which installs podman and starts both services.`);
  }
  console.warn(`\n[podman] SKIPPED: ${problem}. Run "sudo bash scripts/podman.sh" to run them.\n`);
  return undefined;
}
