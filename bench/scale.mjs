// 5. Scale on one host: 50 concurrent sessions (containers printing a line a second) on
// one worker process: its RSS and event-loop lag p99.
import { join } from 'node:path';
import { ROOT, benchHome, busyboxPod, timed } from './lib.mjs';

export async function benchScale({ sessions = 50, seconds = 30 } = {}) {
  const home = benchHome();
  busyboxPod(home, 'bench-scale', { command: ['sh', '-c', 'i=0; while true; do echo "tick $i"; i=$((i+1)); sleep 1; done'], memory: '32m', cpus: 0.1, pids: 16, network: 'none' });
  const r = await timed(process.execPath, [join(ROOT, 'bench/scale-child.mjs'), home, 'bench-scale', String(sessions), String(seconds)]);
  if (r.code !== 0) throw new Error(`scale run failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').at(-1));
}
