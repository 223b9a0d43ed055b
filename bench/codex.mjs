// 6b. The real Codex CLI: time from `cldpd start` to the agent's first assistant event on a
// cached image, against the same CLI command started by `docker run` on the same image (its
// own start-up and first API round trip: the floor). Both reach a local fake of OpenAI's
// Responses API that streams a short answer at once (and refuses the Responses WebSocket with
// 426, on which Codex uses HTTPS at once). Needs the image scripts/real-codex.sh builds.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, alternate, benchHome, timeToFirst } from './lib.mjs';
import { codexCommands } from '../dist/core/agents/codex-agent.js';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).config.codexVersion;
const BASE = `cldpd-test/codex:${VERSION}`;

/** A fake Responses API that streams one short text answer (SSE, as the API does). */
async function fakeApi() {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (req.method !== 'POST' || !req.url?.endsWith('/responses')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end('{"error":{"message":"not here"}}');
        return;
      }
      const event = (data) => res.write(`event: ${data.type}\ndata: ${JSON.stringify(data)}\n\n`);
      const response = { id: 'resp_bench', object: 'response', model: 'bench', output: [] };
      const message = { id: 'msg_bench', type: 'message', role: 'assistant', status: 'completed', content: [{ type: 'output_text', text: 'Hello.', annotations: [] }] };
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      event({ type: 'response.created', response: { ...response, status: 'in_progress' } });
      event({ type: 'response.output_item.added', output_index: 0, item: { ...message, status: 'in_progress', content: [] } });
      event({ type: 'response.output_text.delta', output_index: 0, item_id: 'msg_bench', content_index: 0, delta: 'Hello.' });
      event({ type: 'response.output_item.done', output_index: 0, item: message });
      event({ type: 'response.completed', response: { ...response, status: 'completed', output: [message], usage: { input_tokens: 10, input_tokens_details: { cached_tokens: 0 }, output_tokens: 2, total_tokens: 12 } } });
      res.end();
    });
  });
  server.on('upgrade', (_req, socket) => socket.end('HTTP/1.1 426 Upgrade Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}/v1`, close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }) };
}

const assistantLine = (line) => {
  try {
    const o = JSON.parse(line);
    return (o.type === 'item.completed' && o.item?.type === 'agent_message') || (o.type === 'output' && (o.agent ?? []).some((a) => a.kind === 'text'));
  } catch {
    return false;
  }
};

export async function benchCodex({ runs = 7 } = {}) {
  try {
    execFileSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' });
  } catch {
    return { skipped: `the image ${BASE} is missing: run bash scripts/real-codex.sh` };
  }
  const api = await fakeApi();
  try {
    const home = benchHome();
    const dir = join(home, 'pods', 'bench-codex');
    mkdirSync(dir, { recursive: true });
    const example = readFileSync(join(ROOT, 'examples/pods/codex/Dockerfile'), 'utf8').split('\n');
    const install = example.findIndex((l) => l.includes('npm install -g @openai/codex'));
    writeFileSync(join(dir, 'Dockerfile'), [`FROM ${BASE}`, ...example.slice(install + 1)].join('\n'));
    const env = { CODEX_API_KEY: 'sk-bench', OPENAI_BASE_URL: api.url };
    // The pod's default commands; docker run gets the same command as cldpd renders it.
    const commands = codexCommands({ baseUrl: api.url });
    writeFileSync(join(dir, 'pod.json'), JSON.stringify({ agent: 'codex', workdir: '/workspace', persist: [], network: 'host', env }));
    const cldpdEnv = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
    const cldpd = () => timeToFirst(process.execPath, [CLI, 'start', 'bench-codex', '--prompt', 'say hello', '--json'], { env: cldpdEnv }, assistantLine);
    const image = () => execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', 'cldpd-bench-codex:latest']).toString().trim();
    const docker = () => timeToFirst('docker', [
      'run', '--rm', '--network', 'host', '--init', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), image(),
      ...commands.command.map((a) => (a === '{prompt}' ? 'say hello' : a)),
    ], {}, assistantLine);
    const paths = { cldpd, docker };
    const result = await alternate(paths, runs);
    return { ...result, ratio: result.cldpd.median / result.docker.median, version: VERSION };
  } finally {
    await api.close();
  }
}

// Run alone: node bench/codex.mjs
if (import.meta.url === `file://${process.argv[1]}`) {
  const { removeBenchHomes } = await import('./lib.mjs');
  try {
    console.log(JSON.stringify(await benchCodex(), null, 1));
  } finally {
    removeBenchHomes?.();
  }
}
