// 50 concurrent sessions on one worker's Dispatcher: RSS and event-loop lag, as JSON.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import Docker from 'dockerode';
import { Dispatcher, DockerRunner, SessionStore } from '../dist/core/index.js';

const [home, pod, countText, secondsText] = process.argv.slice(2);
const count = Number(countText);
const seconds = Number(secondsText);
const runner = new DockerRunner(new Docker());
const dispatcher = new Dispatcher({ runner, pods: { podsDir: `${home}/pods`, homeDir: home }, store: new SessionStore(`${home}/sessions`), hostId: 'bench-scale', hostEnv: {} });
const sessions = [];
for (let i = 0; i < count; i++) sessions.push(await dispatcher.start(pod, { prompt: 'x' }));
let lines = 0;
const reading = sessions.map(async (s) => {
  for await (const e of s.events()) if (e.type === 'output') lines += 1;
});
// Measure once every session runs.
while ((await dispatcher.containers()).length < count) await new Promise((r) => setTimeout(r, 200));
const lag = monitorEventLoopDelay({ resolution: 10 });
lag.enable();
let peakRss = 0;
const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 250);
const linesBefore = lines;
await new Promise((r) => setTimeout(r, seconds * 1000));
lag.disable();
clearInterval(sampler);
const measured = lines - linesBefore;
await Promise.all(sessions.map((s) => s.stop()));
await Promise.all(reading);
console.log(JSON.stringify({ sessions: count, peakRssMb: peakRss / 2 ** 20, lagP99Ms: lag.percentile(99) / 1e6, lagMaxMs: lag.max / 1e6, linesPerSecond: measured / seconds }));
