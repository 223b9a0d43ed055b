// 2. Output throughput: 1 GB of 80-byte lines through Session into the log file and the
// event stream, against `docker run` of the same container to /dev/null (same log driver).
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, benchHome, busyboxPod, stats, timed } from './lib.mjs';

const GB = 1024 ** 3;

export async function benchThroughput({ runs = 5, size = GB } = {}) {
  const home = benchHome();
  const command = ['sh', '-c', `yes ${'x'.repeat(79)} | head -c ${size}`];
  busyboxPod(home, 'bench-throughput', { command, timeoutSeconds: 3600, memory: '1g' });
  const child = () => timed(process.execPath, [join(ROOT, 'bench/throughput-child.mjs'), home, 'bench-throughput']);
  // The child counts each line with its newline; a last line cut short by head has none.
  const expected = size + (size % 80 ? 1 : 0);
  const warm = JSON.parse((await child()).stdout);
  if (warm.bytes !== expected) throw new Error(`expected ${expected} bytes, got ${warm.bytes}`);
  const a = [];
  const b = [];
  const rss = [];
  for (let i = 0; i < runs; i++) {
    rmSync(join(home, 'sessions'), { recursive: true, force: true }); // each run writes a ~1.7 GB log
    const r = JSON.parse((await child()).stdout);
    if (r.bytes !== expected || r.exitCode !== 0) throw new Error(`run lost data: ${JSON.stringify(r)}`);
    a.push(size / 1e6 / (r.streamMs / 1000));
    rss.push(r.peakRssMb);
    const raw = await timed('sh', ['-c', `docker run --rm --log-driver json-file cldpd-bench-throughput:latest sh -c 'yes ${'x'.repeat(79)} | head -c ${size}' > /dev/null`]);
    if (raw.code !== 0) throw new Error(`docker run failed: ${raw.stderr}`);
    b.push(size / 1e6 / (raw.ms / 1000));
  }
  rmSync(home, { recursive: true, force: true });
  return { cldpd: stats(a), docker: stats(b), rss: stats(rss), ratio: stats(a).median / stats(b).median };
}
