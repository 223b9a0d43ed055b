// 6. The real Claude Code CLI: time from `cldpd start` to the agent's first assistant event
// on a cached image, against the same CLI started by `docker run` on the same image (its own
// start-up and first API round trip: the floor). Both reach a local fake of the Anthropic
// Messages API that answers at once. Needs the image scripts/real-claude.sh builds.
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CLI, ROOT, alternate, benchHome, timeToFirst } from './lib.mjs';

const VERSION = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).config.claudeCodeVersion;
const BASE = `cldpd-test/claude-code:${VERSION}`;

/** A fake Messages API that streams one short text answer (SSE, as the API does). */
async function fakeApi() {
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      if (!req.url?.startsWith('/v1/messages') || req.url.includes('count_tokens')) {
        res.writeHead(req.url?.includes('count_tokens') ? 200 : 404, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ input_tokens: 10 }));
        return;
      }
      const event = (name, data) => res.write(`event: ${name}\ndata: ${JSON.stringify(data)}\n\n`);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      event('message_start', { type: 'message_start', message: { id: 'msg_bench', type: 'message', role: 'assistant', model: 'claude-bench', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 1 } } });
      event('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } });
      event('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'Hello.' } });
      event('content_block_stop', { type: 'content_block_stop', index: 0 });
      event('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 2 } });
      event('message_stop', { type: 'message_stop' });
      res.end();
    });
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

const assistantLine = (line) => {
  try {
    const o = JSON.parse(line);
    return o.type === 'assistant' || (o.type === 'output' && (o.agent ?? []).some((a) => a.kind === 'text'));
  } catch {
    return false;
  }
};

export async function benchClaude({ runs = 7 } = {}) {
  try {
    execFileSync('docker', ['image', 'inspect', BASE], { stdio: 'ignore' });
  } catch {
    return { skipped: `the image ${BASE} is missing: run bash scripts/real-claude.sh` };
  }
  const api = await fakeApi();
  try {
    const home = benchHome();
    const dir = join(home, 'pods', 'bench-claude');
    mkdirSync(dir, { recursive: true });
    const example = readFileSync(join(ROOT, 'examples/pods/claude/Dockerfile'), 'utf8').split('\n');
    const install = example.findIndex((l) => l.includes('npm install -g @anthropic-ai/claude-code'));
    writeFileSync(join(dir, 'Dockerfile'), [`FROM ${BASE}`, ...example.slice(install + 1)].join('\n'));
    const env = { ANTHROPIC_BASE_URL: api.url, ANTHROPIC_API_KEY: 'sk-bench', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_AUTOUPDATER: '1' };
    writeFileSync(join(dir, 'pod.json'), JSON.stringify({ workdir: '/workspace', persist: [], network: 'host', env }));
    // The same pod with the example's persisted paths: without --issue every start makes its
    // two volumes anew, so this is the first start of an issue (volumes created and given to the user).
    const persistDir = join(home, 'pods', 'bench-claude-persist');
    mkdirSync(persistDir, { recursive: true });
    writeFileSync(join(persistDir, 'Dockerfile'), readFileSync(join(dir, 'Dockerfile')));
    writeFileSync(join(persistDir, 'pod.json'), JSON.stringify({ workdir: '/workspace', persist: ['~/.claude', '/workspace'], network: 'host', env }));
    const cldpdEnv = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
    const start = (pod) => () => timeToFirst(process.execPath, [CLI, 'start', pod, '--prompt', 'say hello', '--json'], { env: cldpdEnv }, assistantLine);
    const cldpd = start('bench-claude');
    const cldpdPersist = start('bench-claude-persist');
    const image = () => execFileSync('docker', ['image', 'inspect', '--format', '{{.Id}}', 'cldpd-bench-claude:latest']).toString().trim();
    const docker = () => timeToFirst('docker', [
      'run', '--rm', '-i', '--network', 'host', '--init', ...Object.entries(env).flatMap(([k, v]) => ['-e', `${k}=${v}`]), image(),
      'claude', '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--dangerously-skip-permissions',
    ], { input: `${JSON.stringify({ type: 'user', message: { role: 'user', content: [{ type: 'text', text: 'say hello' }] } })}\n` }, assistantLine);
    const paths = { cldpd, cldpdPersist, docker };
    const result = await alternate(paths, runs);
    return { ...result, ratio: result.cldpd.median / result.docker.median, version: VERSION };
  } finally {
    await api.close();
  }
}
