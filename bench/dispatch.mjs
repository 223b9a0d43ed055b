// 1. Dispatch: `cldpd start <pod>` end to end on a cached image with a trivial command,
// against the docker CLI path (`docker build -q` then `docker run --rm`), alternating A/B.
import { join } from 'node:path';
import { CLI, benchHome, busyboxPod, stats, timed } from './lib.mjs';

export async function benchDispatch({ runs = 7 } = {}) {
  const home = benchHome();
  const dir = busyboxPod(home, 'bench-dispatch', { command: ['echo', 'ok'], network: 'none' });
  const env = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
  const cldpd = () => timed(process.execPath, [CLI, 'start', 'bench-dispatch', '--prompt', 'x'], { env });
  const docker = async () => {
    const started = process.hrtime.bigint();
    const build = await timed('docker', ['build', '-q', dir]);
    const run = await timed('docker', ['run', '--rm', '--network', 'none', build.stdout.trim(), 'echo', 'ok']);
    return { ms: Number(process.hrtime.bigint() - started) / 1e6, code: build.code || run.code, stdout: run.stdout };
  };
  // Warm the build cache and the page cache of both paths once.
  await cldpd();
  await docker();
  const a = [];
  const b = [];
  for (let i = 0; i < runs; i++) {
    const first = i % 2 === 0;
    const x = first ? await cldpd() : await docker();
    const y = first ? await docker() : await cldpd();
    const [ra, rb] = first ? [x, y] : [y, x];
    if (ra.code !== 0 || !ra.stdout.includes('ok')) throw new Error(`cldpd start failed: ${ra.stdout}`);
    if (rb.code !== 0) throw new Error('docker build/run failed');
    a.push(ra.ms);
    b.push(rb.ms);
  }
  // Where cldpd's time goes: Node start-up and imports alone.
  const imports = [];
  for (let i = 0; i < runs; i++) imports.push((await timed(process.execPath, [CLI, '--version'])).ms);
  return { cldpd: stats(a), docker: stats(b), version: stats(imports), ratio: stats(a).median / stats(b).median };
}
