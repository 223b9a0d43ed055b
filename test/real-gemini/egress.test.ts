/**
 * The real Gemini CLI behind a run's egress gateway (the example pod's default egress).
 *
 * What Gemini CLI 0.61.0 does with a gated container's variables, measured against a fake API
 * and a recording proxy (see test/fixtures/agents/gemini/README.md):
 * - GOOGLE_GEMINI_BASE_URL=http://gateway:3128/SECRET makes it call
 *   POST /SECRET/v1beta/models/<model>:streamGenerateContent?alt=sse (the prefix kept), with the
 *   key variable's value (a placeholder here) in `x-goog-api-key`.
 * - With that variable set and no auth type in its settings it refuses to run ("Invalid auth
 *   method selected.", exit 41): the system defaults cldpd writes choose the API key's.
 * - It honours HTTPS_PROXY for every request, the http:// endpoint included (a CONNECT), and
 *   NO_PROXY: the gated container's NO_PROXY lists the gateway, so its model requests go there
 *   directly.
 * - At start-up it sends usage statistics to play.googleapis.com unless its settings turn them
 *   off (no variable does): cldpd's defaults do, so the gateway refuses nothing.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { ISOLATED_NETWORK } from '../../src/core/runner.js';
import { FakeGemini, functionResponses, isFunctionResponseTurn } from '../fakes/fake-gemini.js';
import { dockerGateway } from '../fakes/git-server.js';
import { collect, GatedWorld } from '../integration/harness.js';
import { EXAMPLE_POD_JSON, GEMINI_BASE_IMAGE, GEMINI_DOCKERFILE, agentEvents, describeWithRealGemini } from './harness.js';

/** The model key the pod is given: it must reach the fake API, and nothing in the container. */
const MODEL_KEY = 'AIza-test-gemini-key';

/**
 * What the shell tool reports of the container: its model variables and whether the key is in
 * any process's environment (a script in the image: the CLI's shell tool refuses a command
 * with `$(…)` in it). The key is put together at run time, so the script does not hold it.
 */
const LOOK = `#!/bin/bash
key="AIza-""test"
echo "base-url=$GOOGLE_GEMINI_BASE_URL"
echo "api-key=$GEMINI_API_KEY"
echo "key-in-environ=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF "$key")"
echo "environs-read=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^GOOGLE_GEMINI_BASE_URL=')"
echo "end=ok"
`;

/** The `name=value` lines of a tool's output (the CLI puts "Output: " before the first). */
function report(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').flatMap((line) => {
    const m = /^(?:Output: )?([\w-]+)=(.*)$/.exec(line.trim());
    return m ? [[m[1], m[2]]] : [];
  }));
}

describeWithRealGemini(`the real Gemini CLI behind its run's egress gateway (${GEMINI_BASE_IMAGE}, the default egress)`, () => {
  const world = new GatedWorld();
  const api = new FakeGemini((body) => (isFunctionResponseTurn(body)
    ? { parts: [{ text: 'Looked.' }] }
    : { parts: [{ functionCall: { name: 'run_shell_command', args: { command: 'bash /opt/look.sh', description: 'look around' } } }] }));

  /** Writes a gated pod: the example's pod.json with its default egress; the key and the fake API as its endpoint, as an operator sets them. */
  async function gatedPod(name: string, dockerfile: string, env: Record<string, string> = {}): Promise<void> {
    const dir = join(world.podsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'look.sh'), LOOK);
    await writeFile(join(dir, 'Dockerfile'), [dockerfile.trimEnd(), 'COPY look.sh /opt/', ''].join('\n'));
    const { checkout: _, ...example } = EXAMPLE_POD_JSON;
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ ...example, stopGraceSeconds: 5, env: { GOOGLE_GEMINI_BASE_URL: apiUrl, GEMINI_API_KEY: MODEL_KEY, ...env } }));
  }
  let apiUrl = '';

  beforeAll(async () => {
    await world.init();
    // The fake API listens where the gateway's container reaches this host.
    await world.runner.ensureIsolatedNetwork(ISOLATED_NETWORK);
    apiUrl = await api.listen(await dockerGateway(ISOLATED_NETWORK, world.docker));
    await gatedPod('gated', GEMINI_DOCKERFILE);
  });
  afterAll(async () => {
    await world.close();
    await api.close();
  });

  it('runs a shell tool call through the gateway: the key reaches the API from the gateway only, under no secret path; the CLI calls nothing else', async () => {
    const session = await world.dispatcher.start('gated', { prompt: 'look around' });
    const events = await collect(session, undefined, 180_000);
    expect(events.at(-1), JSON.stringify(events.slice(-5))).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(agentEvents(events).some((e) => e.kind === 'tool' && e.name === 'run_shell_command')).toBe(true);
    expect(session.agent.result).toMatchObject({ isError: false, text: 'Looked.' });

    const answered = api.conversation.find((r) => r.body && isFunctionResponseTurn(r.body));
    const seen = report(functionResponses(answered?.body ?? { contents: [] }).map((r) => r.output).join('\n'));
    expect(seen.end).toBe('ok');
    const base = /^http:\/\/[\d.]+:3128\/([A-Za-z0-9_-]{16,})$/.exec(seen['base-url'] ?? '');
    expect(base, JSON.stringify(seen)).not.toBeNull();
    const secret = base?.[1] ?? '';
    expect(seen['api-key']).not.toContain('AIza');
    expect(seen['key-in-environ']).toBe('0');
    expect(Number(seen['environs-read'])).toBeGreaterThan(0);

    // Every request the API received carried the pod's key, set by the gateway, on the API's own paths.
    expect(api.requests.length).toBeGreaterThanOrEqual(2);
    for (const r of api.requests) {
      expect(r.path).not.toContain(secret);
      expect(r.path).toMatch(/^\/v1beta\/models\/[\w.-]+:(streamGenerateContent|generateContent)$/);
      expect(r.headers['x-goog-api-key']).toBe(MODEL_KEY);
    }
    expect(api.unknown).toEqual([]);
    // Nothing refused: no usage statistics, no update check.
    expect(events.filter((e): e is Extract<SessionEvent, { type: 'egress.blocked' }> => e.type === 'egress.blocked')).toEqual([]);
    expect(JSON.stringify(events)).not.toContain(secret);
  });

  it('a pod that takes the CLI\'s defaults away (its own GEMINI_CLI_SYSTEM_DEFAULTS_PATH, naming nothing) does not run behind the gateway: no sign-in chosen, the CLI refuses its own ("Invalid auth method selected.", exit 41)', async () => {
    await gatedPod('gated-bare', GEMINI_DOCKERFILE, { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: '/nonexistent/defaults.json' });
    const before = api.requests.length;
    const session = await world.dispatcher.start('gated-bare', { prompt: 'look around' });
    const events = await collect(session, undefined, 120_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 41 });
    expect(events.some((e) => e.type === 'output' && e.stream === 'stderr' && e.line.includes('Invalid auth method selected.'))).toBe(true);
    expect(api.requests.length).toBe(before);
  });

  it('cldpd\'s defaults are the lowest settings: an image whose own settings turn usage statistics on has them refused on every run (play.googleapis.com)', async () => {
    const chatty = `${GEMINI_DOCKERFILE.trimEnd()}\nUSER root\nRUN mkdir -p /etc/gemini-cli && echo '{"privacy": {"usageStatisticsEnabled": true}}' >/etc/gemini-cli/settings.json\nUSER agent\n`;
    await gatedPod('gated-chatty', chatty);
    const session = await world.dispatcher.start('gated-chatty', { prompt: 'look around' });
    const events = await collect(session, undefined, 120_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    const blocked = events.filter((e): e is Extract<SessionEvent, { type: 'egress.blocked' }> => e.type === 'egress.blocked');
    expect(new Set(blocked.map((e) => `${e.host}:${e.port}`))).toEqual(new Set(['play.googleapis.com:443']));
  });
});
