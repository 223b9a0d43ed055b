// The real Gemini CLI: time from `cldpd start` to the agent's first assistant event on a
// cached image, against the same CLI started by `docker run` on the same image (its own
// start-up and first API round trip: the floor). Both reach a local fake of the Gemini API that
// answers at once. Needs the image scripts/real-gemini.sh builds.
import { spawn, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, benchHome, stats } from './lib.mjs';

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

/** Spawns a command and resolves with the ms until a stdout line passes `isFirst`, then waits for it to end. */
function timeToFirst(cmd, args, options, isFirst) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
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
    // The agent's default command and its env, as cldpd runs it.
    const docker = () => timeToFirst('docker', [
      'run', '--rm', '--network', 'host', '--init', ...Object.entries({ ...env, GEMINI_CLI_NO_RELAUNCH: 'true' }).flatMap(([k, v]) => ['-e', `${k}=${v}`]), image(),
      'gemini', '--output-format', 'stream-json', '--yolo', '--skip-trust', '--prompt=say hello',
    ], {}, assistantLine);
    const paths = { cldpd, docker };
    for (const run of Object.values(paths)) await run(); // builds and caches the image
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
    const result = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, stats(v)]));
    return { ...result, ratio: result.cldpd.median / result.docker.median, version: VERSION };
  } finally {
    await api.close();
  }
}
