// One 1 GB run through the Dispatcher and Session, as a worker would: prints its figures as JSON.
import { readFileSync } from 'node:fs';
import Docker from 'dockerode';
import { Dispatcher, DockerRunner, SessionStore } from '../dist/core/index.js';

const [home, pod] = process.argv.slice(2);
const runner = new DockerRunner(new Docker());
const dispatcher = new Dispatcher({ runner, pods: { podsDir: `${home}/pods`, homeDir: home }, store: new SessionStore(`${home}/sessions`), hostId: 'bench', hostEnv: {} });
const started = process.hrtime.bigint();
const session = await dispatcher.start(pod, { prompt: 'x' });
let lines = 0;
let bytes = 0;
let runningAt = 0n;
for await (const event of session.events()) {
  if (event.type === 'container.started') runningAt = process.hrtime.bigint();
  if (event.type === 'output') {
    lines += 1;
    bytes += event.line.length + 1;
  }
}
const ended = process.hrtime.bigint();
const exitCode = await session.wait();
const hwm = readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
console.log(JSON.stringify({ exitCode, lines, bytes, totalMs: Number(ended - started) / 1e6, streamMs: Number(ended - runningAt) / 1e6, peakRssMb: Number(hwm?.split(/\s+/)[1] ?? 0) / 1024 }));
