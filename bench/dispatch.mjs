// 1. Dispatch: `cldpd start <pod>` end to end on a cached image with a trivial command,
// against the docker CLI path (`docker build -q` then `docker run --rm`), alternating.
// Also measured, to show where the time goes: the same dispatch inside a running process
// (the worker's path, no Node start-up), and Node's own start-up.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { CLI, benchHome, busyboxPod, stats, timed } from './lib.mjs';

/** A long-lived dispatch-child.mjs: `next()` runs one dispatch in it. */
function inProcess(home, pod, env) {
  const child = spawn(process.execPath, [new URL('./dispatch-child.mjs', import.meta.url).pathname, home, pod], { env, stdio: ['pipe', 'pipe', 'inherit'] });
  const answers = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    async next() {
      child.stdin.write('go\n');
      const { value, done } = await answers.next();
      if (done) throw new Error('the in-process dispatcher exited');
      return JSON.parse(value);
    },
    close: () => child.stdin.end(),
  };
}

export async function benchDispatch({ runs = 7 } = {}) {
  const home = benchHome();
  const dir = busyboxPod(home, 'bench-dispatch', { command: ['echo', 'ok'], network: 'none' });
  const env = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
  // NODE_EXTRA_CA_CERTS, when set, makes Node load its whole CA store at start-up: every
  // Node process pays for it. Measured both ways when the machine sets it.
  const extraCa = process.env.NODE_EXTRA_CA_CERTS !== undefined;
  const { NODE_EXTRA_CA_CERTS: _, ...plainEnv } = env;
  const cldpdIn = (e) => () => timed(process.execPath, [CLI, 'start', 'bench-dispatch', '--prompt', 'x'], { env: e });
  const docker = async () => {
    const started = process.hrtime.bigint();
    const build = await timed('docker', ['build', '-q', dir]);
    const run = await timed('docker', ['run', '--rm', '--network', 'none', build.stdout.trim(), 'echo', 'ok']);
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, code: build.code || run.code, stdout: run.stdout };
  };
  const worker = inProcess(home, 'bench-dispatch', env);
  const paths = {
    cldpd: cldpdIn(env),
    ...(extraCa ? { cldpdPlain: cldpdIn(plainEnv) } : {}),
    docker,
    inProcess: async () => {
      const r = await worker.next();
      return { ...r, stdout: r.output };
    },
  };
  const names = Object.keys(paths);
  // Warm the build cache and the page cache of every path once.
  for (const name of names) await paths[name]();
  const times = Object.fromEntries(names.map((n) => [n, []]));
  for (let i = 0; i < runs; i++) {
    // Rotate the order each round so no path always runs first.
    for (let k = 0; k < names.length; k++) {
      const name = names[(i + k) % names.length];
      const r = await paths[name]();
      if (r.code !== 0 || !r.stdout.includes('ok')) throw new Error(`${name} failed (exit ${r.code}): ${r.stdout}${r.stderr ?? ''}`);
      times[name].push(r.ms);
    }
  }
  worker.close();
  const nodeStart = async (e) => {
    const ms = [];
    for (let i = 0; i < runs; i++) ms.push((await timed(process.execPath, ['-e', '0'], { env: e })).ms);
    return stats(ms);
  };
  const version = [];
  for (let i = 0; i < runs; i++) version.push((await timed(process.execPath, [CLI, '--version'], { env })).ms);
  const result = Object.fromEntries(names.map((n) => [n, stats(times[n])]));
  return {
    ...result,
    extraCa,
    version: stats(version),
    node: await nodeStart(env),
    ...(extraCa ? { nodePlain: await nodeStart(plainEnv) } : {}),
    ratio: result.cldpd.median / result.docker.median,
    ...(extraCa ? { ratioPlain: result.cldpdPlain.median / result.docker.median } : {}),
    ratioInProcess: result.inProcess.median / result.docker.median,
  };
}
