// Helpers shared by the benchmarks: statistics, processes, a busybox pod.
import { execFileSync, spawn } from 'node:child_process';
import { copyFileSync, chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const ROOT = new URL('..', import.meta.url).pathname;
export const CLI = join(ROOT, 'dist/main/cldpd.js');

/** Median, min, max and the relative spread ((max - min) / median) of numbers. */
export function stats(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(mid)] : (sorted[mid - 1] + sorted[mid]) / 2;
  return { median, min: sorted[0], max: sorted.at(-1), spread: (sorted.at(-1) - sorted[0]) / median, n: sorted.length };
}

/** The p-th percentile (0–100) of numbers. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}

/** Runs a command to its end; resolves with wall time (ms), exit code and output. */
export function timed(cmd, args, options = {}) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr }));
  });
}

const homes = [];

/** A temporary cldpd home with a pods directory; removed by removeBenchHomes(). */
export function benchHome(prefix = 'cldpd-bench-') {
  const home = mkdtempSync(join(tmpdir(), prefix));
  mkdirSync(join(home, 'pods'), { recursive: true });
  homes.push(home);
  return home;
}

/** Removes every home benchHome() made (session logs of the throughput runs are GBs). */
export function removeBenchHomes() {
  for (const home of homes.splice(0)) rmSync(home, { recursive: true, force: true });
}

/** Writes a FROM scratch + busybox pod with this pod.json. */
export function busyboxPod(home, name, podJson, extraDockerfile = '') {
  const dir = join(home, 'pods', name);
  mkdirSync(dir, { recursive: true });
  copyFileSync(process.env.CLDPD_TEST_BUSYBOX ?? '/bin/busybox', join(dir, 'busybox'));
  chmodSync(join(dir, 'busybox'), 0o755);
  writeFileSync(join(dir, 'Dockerfile'), ['FROM scratch', 'COPY busybox /bin/busybox', 'RUN ["/bin/busybox", "--install", "-s", "/bin"]', 'ENV PATH=/bin HOME=/root', extraDockerfile, ''].join('\n'));
  writeFileSync(join(dir, 'pod.json'), JSON.stringify({ persist: [], ...podJson }));
  return dir;
}

export function version(cmd, args) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
}

/** Peak resident set size of a process in MB, from /proc (VmHWM). */
export function peakRssMb(pid) {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
    return line ? Number(line.split(/\s+/)[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

export const fmt = (n, digits = 0) => (n === undefined || Number.isNaN(n) ? 'n/a' : n.toFixed(digits));

/**
 * Spawns a command and resolves with the ms until a stdout line passes `isFirst` and to its
 * end; `options.input` is written to its standard input (closed at once otherwise).
 */
export function timeToFirst(cmd, args, options, isFirst) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const { input, ...spawnOptions } = options;
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], ...spawnOptions });
    child.stdin.end(input);
    let first;
    let buffer = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      buffer += d;
      let nl;
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + 1);
        if (first === undefined && isFirst(line)) first = Number(process.hrtime.bigint() - started) / 1e6;
      }
    });
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => {
      if (first === undefined) reject(new Error(`${cmd} ${args.join(' ')} exited ${code} with no assistant event: ${stderr.slice(-500)}`));
      else resolve({ ms: first, total: Number(process.hrtime.bigint() - started) / 1e6, code });
    });
  });
}

/**
 * Runs each of `paths` (name → a run resolving with {ms, total}) once to warm up (images built
 * and cached), then `runs` rounds in a rotating order; the stats of each, and of each's total
 * as `<name>Total`.
 */
export async function alternate(paths, runs) {
  for (const run of Object.values(paths)) await run();
  const names = Object.keys(paths);
  const times = Object.fromEntries(names.flatMap((n) => [[n, []], [`${n}Total`, []]]));
  for (let i = 0; i < runs; i++) {
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length];
      const r = await paths[name]();
      times[name].push(r.ms);
      times[`${name}Total`].push(r.total);
    }
  }
  return Object.fromEntries(Object.entries(times).map(([k, v]) => [k, stats(v)]));
}
