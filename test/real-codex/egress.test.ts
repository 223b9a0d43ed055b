/**
 * The real Codex CLI behind its run's egress gateway, as examples/pods/codex runs it (gated
 * by default). What Codex 0.171 needs of a gated run, measured against the fake Responses API
 * (see test/fixtures/agents/codex/README.md): its endpoint as config (`-c openai_base_url=…`,
 * which the default commands fill with `{modelUrl}`: it ignores OPENAI_BASE_URL), a key in
 * CODEX_API_KEY to sign at all (a placeholder does), HTTP(S)_PROXY honoured, and no calls home
 * with the default commands' `-c analytics.enabled=false --disable plugins`.
 *
 * Measured here too: Codex first asks for the Responses WebSocket (GET <endpoint>/responses
 * with `Upgrade: websocket`). Passed on as a plain GET (Upgrade is a hop-by-hop header), the
 * API answers that with an error, and Codex tries again, 7 GETs over about 6 s, before it
 * uses HTTPS. The gateway carries no WebSocket and answers such a request 426, on which Codex
 * falls back to HTTPS at once: the API never sees the GET.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, type SessionEvent } from '../../src/core/index.js';
import { ISOLATED_NETWORK } from '../../src/core/runner.js';
import { FakeOpenAI, isToolResultTurn, toolOutputs } from '../fakes/fake-openai.js';
import { dockerGateway } from '../fakes/git-server.js';
import { collect, until, GatedWorld } from '../integration/harness.js';
import { CODEX_BASE_IMAGE, CODEX_DOCKERFILE, EXAMPLE_POD_JSON, agentEvents, describeWithRealCodex } from './harness.js';

/** The pod's key: the gateway's alone. */
const MODEL_KEY = 'sk-codex-real-key-0123456789';

/**
 * What the shell command the model asks for reports, one `name=value` a line: the endpoint
 * Codex was started with (its argv) and given (its env), its key variable, whether the key is
 * in any environment or readable file, and whether anything but the gateway is reached.
 */
const LOOK_FOR_KEY = `#!/bin/bash
api_host=$1 api_port=$2
key="sk-codex-""real-key"
echo "codex-argv=$(for f in /proc/[0-9]*/cmdline; do tr '\\0' ' ' < "$f"; echo; done 2>/dev/null | grep -o 'openai_base_url=[^ ]*' | head -n 1)"
echo "base-url=$OPENAI_BASE_URL"
echo "api-key=$CODEX_API_KEY"
echo "key-in-env=$(env | grep -cF "$key")"
echo "key-in-environ=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF "$key")"
echo "environs-read=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^CODEX_API_KEY=')"
canary="canary-""$$"
echo "$canary" > /tmp/egress-canary
# Every file the agent could have written (not /usr: the image's, not the agent's to write; it holds the CLI's 385 MB).
echo "files=[$(timeout 200 grep -rlsF -D skip -e "$key" -e "$canary" $(find / -mindepth 1 -maxdepth 1 -type d | grep -vx -e /proc -e /sys -e /usr) | sort | tr '\\n' ' ')]"
# The fake API directly (Codex's endpoint were it not for the gateway), and a name to resolve: neither.
if timeout 3 bash -c "exec 3<>/dev/tcp/$api_host/$api_port" 2>/dev/null; then echo "tcp-api=connected"; else echo "tcp-api=failed"; fi
if timeout 3 getent hosts api.openai.com >/dev/null; then echo "dns=resolved"; else echo "dns=failed"; fi
echo "end=ok"
`;

/** The `name=value` lines of a tool's output. */
function report(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').flatMap((line) => {
    const at = line.indexOf('=');
    return at > 0 ? [[line.slice(0, at), line.slice(at + 1)]] : [];
  }));
}

describeWithRealCodex(`the real Codex CLI behind its run's egress gateway (${CODEX_BASE_IMAGE}, examples/pods/codex's egress)`, () => {
  const world = new GatedWorld();
  let api: FakeOpenAI;
  let apiUrl = '';

  beforeAll(async () => {
    await world.init();
    // The fake API listens where the gateway's container reaches this host.
    await world.runner.ensureIsolatedNetwork(ISOLATED_NETWORK);
    const host = await dockerGateway(ISOLATED_NETWORK, world.docker);
    api = new FakeOpenAI(() => ({ items: [{ type: 'text', text: 'unused' }] }));
    apiUrl = await api.listen(host);
    const { hostname, port } = new URL(apiUrl);

    const dir = join(world.podsDir, 'gated');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'look-for-key.sh'), LOOK_FOR_KEY);
    await writeFile(join(dir, 'Dockerfile'), [CODEX_DOCKERFILE.trimEnd(), 'COPY look-for-key.sh /opt/', ''].join('\n'));
    // The example's pod.json, its egress and all (no git server here: no checkout); the key
    // and the fake API as its endpoint in its env, as an operator sets them.
    const { checkout: _, setup: __, ...example } = EXAMPLE_POD_JSON;
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ ...example, stopGraceSeconds: 5, env: { OPENAI_BASE_URL: apiUrl, CODEX_API_KEY: MODEL_KEY } }));
    api.setScript((body) => isToolResultTurn(body)
      ? { items: [{ type: 'text', text: 'Looked.' }] }
      : { items: [{ type: 'shell', command: `bash /opt/look-for-key.sh ${hostname} ${port}`, yieldMs: 30_000 }] });
  });
  afterAll(async () => {
    await world.close();
    await api?.close();
  });

  it('runs a task with a shell command through the gateway: the key reaches the fake API from the gateway; Codex got the gateway as its endpoint and a placeholder key; nothing else is reached, nothing calls home', async () => {
    const session = await world.dispatcher.start('gated', { prompt: 'look for the key' });
    const events = await collect(session, undefined, 360_000);
    expect(events.at(-1), JSON.stringify(events.slice(-5))).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(agentEvents(events).some((e) => e.kind === 'tool' && e.name === 'shell')).toBe(true);
    expect(session.agent.result).toMatchObject({ isError: false, text: 'Looked.' });

    const output = toolOutputs(api.conversation.at(-1)?.body ?? { model: '', input: [] }).join('\n');
    const seen = report(output);
    expect(seen.end, output).toBe('ok');
    // Codex was started with the gateway as its endpoint (its argv) and given it in its env too, with a secret path.
    const base = /^http:\/\/(\d+\.\d+\.\d+\.\d+):3128\/([A-Za-z0-9_-]{16,})$/.exec(seen['base-url'] ?? '');
    expect(base, seen['base-url']).not.toBeNull();
    const [, , secret] = base as unknown as [string, string, string];
    expect(seen['codex-argv']).toBe(`openai_base_url=${seen['base-url']}`);
    expect(seen['api-key']).not.toContain('sk-codex');

    // Every request arrived with the pod's key, set by the gateway, under no secret path.
    expect(api.conversation.length).toBeGreaterThanOrEqual(2);
    for (const r of api.requests) {
      expect(r.path).not.toContain(secret);
      expect(r.headers.authorization).toBe(`Bearer ${MODEL_KEY}`);
    }
    expect(api.conversation.map((r) => r.path)).toEqual(api.conversation.map(() => '/v1/responses'));
    // The WebSocket asked for first was answered by the gateway (426), never passed on.
    expect(api.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/responses'))).toEqual([]);

    // The key is nowhere in the container.
    expect(seen['key-in-env']).toBe('0');
    expect(seen['key-in-environ']).toBe('0');
    expect(Number(seen['environs-read'])).toBeGreaterThan(0);
    expect(seen.files).toBe('[/tmp/egress-canary ]');

    // Nothing but the gateway reached, no name resolved; Codex itself asked for no other host.
    expect(seen['tcp-api']).toBe('failed');
    expect(seen.dns).toBe('failed');
    const blocked = events.filter((e): e is Extract<SessionEvent, { type: 'egress.blocked' }> => e.type === 'egress.blocked');
    expect(blocked).toEqual([]);
    // Its WebSocket tries are not logged in a gated run (quietEnv): standard error holds only its note on standard input.
    expect(events.filter((e) => e.type === 'output' && e.stream === 'stderr').map((e) => (e.type === 'output' ? e.line : ''))).toEqual(['Reading additional input from stdin...']);

    // The run's secret is hidden in what the run printed, and gone with the run.
    expect(JSON.stringify(events)).not.toContain(secret);
    await until('the run\'s gateway to be removed', async () => (await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${session.id}`] } })).length === 0, 30_000);
  });
});
