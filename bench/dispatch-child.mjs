// The worker's dispatch path: one long-lived process that starts a session of a pod for
// every line it reads on stdin and answers with the wall time of start → exit, in ms.
import { createInterface } from 'node:readline';
import Docker from 'dockerode';
import { Dispatcher, DockerRunner, SessionStore } from '../dist/core/index.js';

const [home, pod] = process.argv.slice(2);
const runner = new DockerRunner(new Docker());
const dispatcher = new Dispatcher({ runner, pods: { podsDir: `${home}/pods`, homeDir: home }, store: new SessionStore(`${home}/sessions`), hostId: 'bench', hostEnv: {} });
for await (const _ of createInterface({ input: process.stdin })) {
  const started = process.hrtime.bigint();
  const session = await dispatcher.start(pod, { prompt: 'x' });
  let output = '';
  for await (const event of session.events()) if (event.type === 'output') output += event.line;
  const code = await session.wait();
  console.log(JSON.stringify({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, output }));
}
