// The real Gemini CLI: time from `cldpd start` to the agent's first assistant event on a
// cached image, against the same CLI started by `docker run` on the same image (its own
// start-up and first API round trip: the floor). Both reach a local fake of the Gemini API that
// answers at once. Needs the image scripts/real-gemini.sh builds.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, alternate, benchHome, timeToFirst } from './lib.mjs';
import { geminiAgent } from '../dist/core/agents/gemini-agent.js';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).config.geminiCliVersion;
const BASE = `cldpd-test/gemini:${VERSION}`;

/**
 * A fake Gemini API: the CLI's model router gets its JSON score, the conversation one short
 * text answer streamed as SSE, as the API does.
 */
async function fakeApi() {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      const usage = { promptTokenCount: 10, candidatesTokenCount: 2, totalTokenCount: 12 };
      if (req.url?.includes(':generateContent')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: '{"complexity_reasoning":"simple","complexity_score":5}' }] }, finishReason: 'STOP' }], usageMetadata: usage }));
        return;
      }
      if (!req.url?.includes(':streamGenerateContent')) {
        res.writeHead(404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 404, message: 'not here', status: 'NOT_FOUND' } }));
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(`data: ${JSON.stringify({ candidates: [{ content: { role: 'model', parts: [{ text: 'Hello.' }] }, finishReason: 'STOP', index: 0 }], usageMetadata: usage, modelVersion: 'gemini-bench' })}\r\n\r\n`);
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** The CLI's first assistant line, or cldpd's first event carrying assistant text (told once the message is whole). */
const assistantLine = (line) => {
  try {
    const o = JSON.parse(line);
    return (o.type === 'message' && o.role === 'assistant') || (o.type === 'output' && (o.agent ?? []).some((a) => a.kind === 'text'));
  } catch {
    return false;
  }
};

export async function benchGemini({ runs = 7 } = {}) {
  try {
    execFileSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' });
  } catch {
    return { skipped: `the image ${BASE} is missing: run bash scripts/real-gemini.sh` };
  }
  const api = await fakeApi();
  try {
    const home = benchHome();
    const dir = join(home, 'pods', 'bench-gemini');
    mkdirSync(dir, { recursive: true });
    const example = readFileSync(join(ROOT, 'examples/pods/gemini/Dockerfile'), 'utf8').split('\n');
    const install = example.findIndex((l) => l.includes('npm install -g @google/gemini-cli'));
    writeFileSync(join(dir, 'Dockerfile'), [`FROM ${BASE}`, ...example.slice(install + 1)].join('\n'));
    const env = { GOOGLE_GEMINI_BASE_URL: api.url, GEMINI_API_KEY: 'bench-key' };
    writeFileSync(join(dir, 'pod.json'), JSON.stringify({ agent: 'gemini', workdir: '/workspace', persist: [], network: 'host', env }));
    const cldpdEnv = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
    const cldpd = () => timeToFirst(process.execPath, [CLI, 'start', 'bench-gemini', '--prompt', 'say hello', '--json'], { env: cldpdEnv }, assistantLine);
    const image = () => execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', 'cldpd-bench-gemini:latest']).toString().trim();
    // The agent's default command, its env and the settings file cldpd writes, as cldpd runs it.
    const agentEnv = geminiAgent.env({ podEnv: env, persisted: [], home: '/home/agent' });
    const [defaults] = geminiAgent.files({ podEnv: env, limits: {} });
    writeFileSync(join(home, 'gemini-defaults.json'), defaults.content);
    const docker = () => timeToFirst('docker', [
      'run', '--rm', '--network', 'host', '--init', ...Object.entries({ ...env, ...agentEnv }).flatMap(([k, v]) => ['-e', `${k}=${v}`]),
      '-v', `${join(home, 'gemini-defaults.json')}:${defaults.path}:ro`, image(),
      ...geminiAgent.commands({}).command.map((a) => a.replace('{prompt}', 'say hello')),
    ], {}, assistantLine);
    const paths = { cldpd, docker };
    const result = await alternate(paths, runs);
    return { ...result, ratio: result.cldpd.median / result.docker.median, version: VERSION };
  } finally {
    await api.close();
  }
}
