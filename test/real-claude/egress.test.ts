/**
 * The real Claude Code CLI behind a run's egress gateway.
 *
 * What Claude Code 2.1.330 does, measured by running it in print mode (`claude -p …
 * --output-format stream-json --verbose`) against the fake Anthropic API and a proxy that
 * logged every request (the paths on api.anthropic.com by opening its TLS with a certificate
 * of its own, NODE_TLS_REJECT_UNAUTHORIZED=0). The first block of tests below checks these
 * again (by host, not path: its proxy opens no TLS), so a CLI version that changes one fails:
 *
 * - A base URL with a path prefix works: ANTHROPIC_BASE_URL=http://host:port/SECRET makes it
 *   call POST /SECRET/v1/messages?beta=true (the prefix kept, `/v1/messages` appended; a
 *   trailing slash on the base URL changes nothing).
 * - With NO ANTHROPIC_API_KEY, ANTHROPIC_AUTH_TOKEN nor CLAUDE_CODE_OAUTH_TOKEN (or with
 *   ANTHROPIC_API_KEY set but empty) it does not run: it sends only `HEAD /SECRET/api/hello`
 *   (user-agent Bun, no credential header), then ends with exit code 1 and the result
 *   "Not logged in · Please run /login" (error authentication_failed), no model request.
 * - Any non-empty placeholder makes it run: ANTHROPIC_API_KEY=placeholder (even "x") is sent
 *   as `x-api-key: placeholder`; ANTHROPIC_AUTH_TOKEN=placeholder instead is sent as
 *   `authorization: Bearer placeholder` (and no x-api-key). The gateway must strip both
 *   headers. CLAUDE_CODE_OAUTH_TOKEN=placeholder is sent as `authorization: Bearer
 *   placeholder` too, but adds `oauth-2025-04-20` to anthropic-beta and changes the default
 *   model: the placeholder goes in the variable of the kind of credential the pod was given
 *   (ANTHROPIC_API_KEY for an API key), the real value only to the gateway.
 * - Proxies: it honours HTTPS_PROXY/HTTP_PROXY (upper or lower case) for its API calls, and
 *   for the http:// base URL HTTPS_PROXY alone is enough to send the model request through
 *   the proxy as an absolute-form `POST http://host:port/SECRET/v1/messages?beta=true`. With
 *   NO_PROXY (and no_proxy) listing the base URL's host it connects to it directly. So the
 *   container's NO_PROXY must list the gateway's address. (With a proxy set it skips the
 *   `HEAD /api/hello` pre-connect.) The Bash tool's commands inherit all these variables.
 * - Other hosts: only api.anthropic.com:443, three requests at start-up, none carrying a
 *   credential: POST /api/eval/sdk-… (feature flags), GET /api/directory/server-urls, POST
 *   /api/event_logging/v2/batch (telemetry). No statsig, sentry or update host was tried in
 *   print mode. DISABLE_TELEMETRY=1 drops the feature-flag and event-logging requests but
 *   leaves server-urls; DISABLE_AUTOUPDATER=1 and DISABLE_ERROR_REPORTING=1 change nothing;
 *   CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 drops all three (no host but the base URL's,
 *   through a run with a Bash tool call). A gated run's agent needs
 *   CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1: without it the gateway refuses those three
 *   requests (api.anthropic.com is not the model route, and not listed), and every run
 *   reports "blocked: api.anthropic.com ×3".
 */
import { copyFile, mkdir, writeFile } from 'node:fs/promises';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, type SessionEvent } from '../../src/core/index.js';
import { ISOLATED_NETWORK } from '../../src/core/runner.js';
import { FakeAnthropic, isToolResultTurn, lastUserText, userTexts, type RecordedRequest, type Script } from '../fakes/fake-anthropic.js';
import { dockerGateway } from '../fakes/git-server.js';
import { BUSYBOX, TestWorld, collect, until, GatedWorld } from '../integration/harness.js';
import { AGENT_DOCKERFILE, CLAUDE_BASE_IMAGE, CLAUDE_CODE_VERSION, EXAMPLE_POD_JSON, agentEvents, describeWithRealClaude } from './harness.js';

/** A typed message naming "tool" gets a Bash tool call; anything else a one-word answer. */
const cliScript: Script = (body) => {
  if (isToolResultTurn(body)) return { blocks: [{ type: 'text', text: 'done' }] };
  if (lastUserText(body).includes('tool')) return { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: 'echo tool-ran', description: 'run a tool' } }] };
  return { blocks: [{ type: 'text', text: 'hi' }] };
};

/**
 * An HTTP proxy that records what it is asked for: every CONNECT target (refused with 403:
 * nothing leaves this host) and every absolute-form request (passed on when it is for
 * `passTo`, the fake API, refused otherwise).
 */
class RecordingProxy {
  readonly connects: string[] = [];
  readonly requests: string[] = [];
  passTo = '';
  private readonly server: Server = createServer((req, res) => {
    this.requests.push(`${req.method} ${req.url}`);
    let target: URL | undefined;
    try {
      target = new URL(req.url ?? '');
    } catch {
      target = undefined;
    }
    if (!target || target.host !== this.passTo) {
      res.writeHead(403).end();
      return;
    }
    const upstream = httpRequest({ host: target.hostname, port: target.port, path: target.pathname + target.search, method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', () => res.destroy());
    req.pipe(upstream);
  });

  constructor() {
    this.server.on('connect', (req, socket: Socket) => {
      this.connects.push(req.url ?? '');
      socket.on('error', () => undefined);
      socket.end('HTTP/1.1 403 Forbidden\r\n\r\n');
    });
  }

  async listen(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  clear(): void {
    this.connects.length = 0;
    this.requests.length = 0;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** The credential headers of a request the fake received. */
function credentials(r: RecordedRequest): { key: unknown; authorization: unknown } {
  return { key: r.headers['x-api-key'], authorization: r.headers.authorization };
}

describeWithRealClaude(`Claude Code ${CLAUDE_CODE_VERSION} as a run's gateway needs it: a secret path prefix, a placeholder key, the proxy variables, no start-up traffic`, () => {
  const world = new TestWorld();
  const api = new FakeAnthropic(cliScript);
  const proxy = new RecordingProxy();
  let apiUrl = '';
  let proxyUrl = '';
  const SECRET = 'run-secret-0123456789abcdef';

  beforeAll(async () => {
    await world.init();
    apiUrl = await api.listen('127.0.0.1');
    proxyUrl = await proxy.listen();
    proxy.passTo = new URL(apiUrl).host;
  });
  afterAll(async () => {
    await world.close();
    await proxy.close();
    await api.close();
  });

  /**
   * Runs `claude -p <prompt>` in print mode, stream-json out, in a container of the CLI's
   * image on the host's network (so 127.0.0.1 is this host), as a user other than root, with
   * exactly `env` besides HOME and PATH; the fake's and the proxy's records start empty.
   */
  async function claude(env: Record<string, string>, prompt = 'say hi'): Promise<{ exitCode: number; output: string; requests: RecordedRequest[] }> {
    api.requests.length = 0;
    proxy.clear();
    const container = await world.docker.createContainer({
      Image: CLAUDE_BASE_IMAGE,
      User: '1000:1000',
      Cmd: ['bash', '-c', 'mkdir -p "$HOME" && cd "$HOME" && exec claude -p "$0" --output-format stream-json --verbose --dangerously-skip-permissions', prompt],
      Env: ['HOME=/tmp/home', ...Object.entries(env).map(([k, v]) => `${k}=${v}`)],
      Labels: { [LABELS.host]: world.hostId },
      HostConfig: { NetworkMode: 'host' },
    });
    try {
      await container.start();
      let timer: NodeJS.Timeout | undefined;
      const { StatusCode } = await Promise.race([
        container.wait() as Promise<{ StatusCode: number }>,
        new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`claude -p did not end within 90 s with env ${JSON.stringify(env)}`)), 90_000))),
      ]).finally(() => clearTimeout(timer));
      const output = (await container.logs({ stdout: true, stderr: true })).toString('utf8');
      return { exitCode: StatusCode, output, requests: [...api.requests] };
    } finally {
      await container.remove({ force: true });
    }
  }

  /** The final `result` line of a run's output. */
  function result(output: string): { is_error?: boolean; result?: string } {
    const line = output.split('\n').map((l) => l.replace(/^[^{]*/, '')).reverse().find((l) => l.includes('"type":"result"'));
    return line ? (JSON.parse(line) as { is_error?: boolean; result?: string }) : {};
  }

  it('with no credential variable at all it does not run: "Not logged in", no model request, no credential header sent; an empty ANTHROPIC_API_KEY is the same', async () => {
    const unkeyed: Array<Record<string, string>> = [{ ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}` }, { ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}`, ANTHROPIC_API_KEY: '' }];
    for (const env of unkeyed) {
      const run = await claude(env);
      expect(run.exitCode, run.output).toBe(1);
      expect(result(run.output)).toMatchObject({ is_error: true, result: expect.stringMatching(/Not logged in/) });
      expect(run.requests.filter((r) => r.path.endsWith('/v1/messages'))).toEqual([]);
      // Its pre-connect, under the secret prefix, carries no credential.
      for (const r of run.requests) {
        expect(r.path.startsWith(`/${SECRET}/`)).toBe(true);
        expect(credentials(r)).toEqual({ key: undefined, authorization: undefined });
      }
    }
  });

  it('a non-empty ANTHROPIC_API_KEY placeholder is enough: the model request goes under the base URL\'s path prefix with x-api-key set to it and no authorization header', async () => {
    for (const base of [`${apiUrl}/${SECRET}`, `${apiUrl}/${SECRET}/`]) {
      const run = await claude({ ANTHROPIC_BASE_URL: base, ANTHROPIC_API_KEY: 'placeholder' });
      expect(run.exitCode, run.output).toBe(0);
      expect(result(run.output)).toMatchObject({ is_error: false, result: 'hi' });
      const messages = run.requests.filter((r) => r.method === 'POST');
      expect(messages.length).toBeGreaterThan(0);
      for (const r of messages) {
        expect(r.path).toBe(`/${SECRET}/v1/messages`);
        expect(credentials(r)).toEqual({ key: 'placeholder', authorization: undefined });
      }
    }
  });

  it('ANTHROPIC_AUTH_TOKEN and CLAUDE_CODE_OAUTH_TOKEN are sent as authorization: Bearer with no x-api-key; the OAuth one also asks for the oauth beta', async () => {
    const token = await claude({ ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}`, ANTHROPIC_AUTH_TOKEN: 'placeholder' });
    expect(token.exitCode, token.output).toBe(0);
    const tokenMessage = token.requests.find((r) => r.method === 'POST');
    expect(tokenMessage && credentials(tokenMessage)).toEqual({ key: undefined, authorization: 'Bearer placeholder' });
    expect(String(tokenMessage?.headers['anthropic-beta'])).not.toContain('oauth-');

    const oauth = await claude({ ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}`, CLAUDE_CODE_OAUTH_TOKEN: 'placeholder' });
    expect(oauth.exitCode, oauth.output).toBe(0);
    const oauthMessage = oauth.requests.find((r) => r.method === 'POST');
    expect(oauthMessage && credentials(oauthMessage)).toEqual({ key: undefined, authorization: 'Bearer placeholder' });
    expect(String(oauthMessage?.headers['anthropic-beta'])).toContain('oauth-2025-04-20');
  });

  it('HTTPS_PROXY alone sends the http:// model request through the proxy, in absolute form with the secret path; with NO_PROXY listing the base URL\'s host it goes directly', async () => {
    const base = { ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}`, ANTHROPIC_API_KEY: 'placeholder', CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' };
    const proxied = await claude({ ...base, HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl });
    expect(proxied.exitCode, proxied.output).toBe(0);
    expect(proxy.requests).toContain(`POST ${apiUrl}/${SECRET}/v1/messages?beta=true`);

    const host = new URL(apiUrl).hostname;
    const direct = await claude({ ...base, HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl, HTTP_PROXY: proxyUrl, http_proxy: proxyUrl, NO_PROXY: host, no_proxy: host });
    expect(direct.exitCode, direct.output).toBe(0);
    expect(proxy.requests).toEqual([]);
    expect(proxy.connects).toEqual([]);
    expect(direct.requests.filter((r) => r.method === 'POST').map((r) => r.path)).toContain(`/${SECRET}/v1/messages`);
  });

  it('at start-up it asks api.anthropic.com and no other host; DISABLE_TELEMETRY, DISABLE_AUTOUPDATER and DISABLE_ERROR_REPORTING leave a request there; CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 stops them all, through a Bash tool call', async () => {
    const host = new URL(apiUrl).hostname;
    const base = { ANTHROPIC_BASE_URL: `${apiUrl}/${SECRET}`, ANTHROPIC_API_KEY: 'placeholder', HTTPS_PROXY: proxyUrl, https_proxy: proxyUrl, HTTP_PROXY: proxyUrl, http_proxy: proxyUrl, NO_PROXY: host, no_proxy: host };

    const chatty = await claude(base);
    expect(chatty.exitCode, chatty.output).toBe(0);
    expect(proxy.connects.length).toBeGreaterThan(0);
    expect(new Set(proxy.connects)).toEqual(new Set(['api.anthropic.com:443']));
    expect(proxy.requests).toEqual([]);

    const fewer = await claude({ ...base, DISABLE_TELEMETRY: '1', DISABLE_AUTOUPDATER: '1', DISABLE_ERROR_REPORTING: '1' });
    expect(fewer.exitCode, fewer.output).toBe(0);
    expect(new Set(proxy.connects)).toEqual(new Set(['api.anthropic.com:443']));

    const quiet = await claude({ ...base, CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' }, 'run a tool');
    expect(quiet.exitCode, quiet.output).toBe(0);
    expect(quiet.output).toContain('tool-ran');
    expect(result(quiet.output)).toMatchObject({ is_error: false, result: 'done' });
    expect(proxy.connects).toEqual([]);
    expect(proxy.requests).toEqual([]);
  });
});

/** The model key the pod is given: it must reach the fake API, and nothing in the container. */
const MODEL_KEY = 'sk-ant-test-key';

/**
 * What a prompt-injected agent would try, as one Bash tool call: find the model key (its
 * environment, every process's environment, every file it can read), and get out past the
 * gateway (a direct TCP connection to this host's fake API and to a public address, busybox
 * `nc`, a CONNECT to an unlisted host through the gateway, git, a DNS lookup). The key is put
 * together at run time, so neither this script nor the conversation's transcript holds it;
 * a canary written to /tmp shows the search does read the files. One `name=value` per line.
 */
const LOOK_FOR_KEY = `#!/bin/bash
api_host=$1 api_port=$2
key="sk-ant-""test-key"
echo "base-url=$ANTHROPIC_BASE_URL"
echo "api-key=$ANTHROPIC_API_KEY"
echo "key-in-env=$(env | grep -cF "$key")"
echo "key-in-environ=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -cF "$key")"
echo "environs-read=$(cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n' | grep -c '^ANTHROPIC_BASE_URL=')"
canary="canary-""$$"
echo "$canary" > /tmp/egress-canary
echo "files=[$(timeout 200 grep -rlsF -D skip -e "$key" -e "$canary" $(ls -d /* | grep -vx -e /proc -e /sys) | sort | tr '\\n' ' ')]"
tcp() { if timeout 5 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; then echo "tcp $1:$2=connected"; else echo "tcp $1:$2=failed"; fi; }
tcp "$api_host" "$api_port"
tcp 1.1.1.1 443
if printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | timeout 5 busybox nc -w 3 "$api_host" "$api_port" | grep -q HTTP; then echo "nc=answered"; else echo "nc=failed"; fi
if printf 'GET / HTTP/1.0\\r\\nHost: x\\r\\n\\r\\n' | timeout 5 busybox nc -w 3 1.1.1.1 80 | grep -q HTTP; then echo "nc-public=answered"; else echo "nc-public=failed"; fi
proxy=\${HTTPS_PROXY#http://}
echo "connect=$(printf 'CONNECT example.com:443 HTTP/1.1\\r\\nHost: example.com:443\\r\\n\\r\\n' | timeout 5 busybox nc -w 3 "\${proxy%:*}" "\${proxy##*:}" | head -n 1 | tr -d '\\r')"
if timeout 30 git ls-remote https://example.com/acme/web.git >/dev/null 2>&1; then echo "git=reached"; else echo "git=failed"; fi
if getent hosts example.com >/dev/null; then echo "dns=resolved"; else echo "dns=failed"; fi
echo "end=ok"
`;

/** A later run asks its own gateway for the model with an earlier run's secret (`$1`): the first line of the answer. */
const OLD_SECRET = `#!/bin/bash
gateway=\${ANTHROPIC_BASE_URL#http://}
gateway=\${gateway%%/*}
echo "base-url=$ANTHROPIC_BASE_URL"
echo "old-secret=$(printf 'POST /%s/v1/messages HTTP/1.1\\r\\nHost: x\\r\\ncontent-type: application/json\\r\\ncontent-length: 2\\r\\nconnection: close\\r\\n\\r\\n{}' "$1" | timeout 10 busybox nc -w 5 "\${gateway%:*}" "\${gateway##*:}" | head -n 1 | tr -d '\\r')"
echo "end=ok"
`;

/** The `name=value` lines of a tool's output. */
function report(text: string): Record<string, string> {
  return Object.fromEntries(text.split('\n').flatMap((line) => {
    const at = line.indexOf('=');
    return at > 0 ? [[line.slice(0, at), line.slice(at + 1)]] : [];
  }));
}

describeWithRealClaude(`the real Claude Code CLI behind its run's egress gateway (${CLAUDE_BASE_IMAGE}, the default egress)`, () => {
  const world = new GatedWorld();
  let api: FakeAnthropic;
  let apiUrl = '';
  /** The last tool result of the conversation (a resumed one holds the earlier runs' too), as the model received it. */
  const toolResult = (requests: readonly RecordedRequest[]): string => {
    const last = requests.filter((r) => r.body && isToolResultTurn(r.body)).at(-1);
    return last?.body ? (userTexts(last.body).filter((t) => t.includes('end=ok')).at(-1) ?? '') : '';
  };

  beforeAll(async () => {
    await world.init();
    // The fake API listens where the gateway's container reaches this host: the address of
    // the network gateways reach the outside by (not this host's loopback: a gated container
    // reaches nothing but its gateway, and the gateway is a container too).
    await world.runner.ensureIsolatedNetwork(ISOLATED_NETWORK);
    const host = await dockerGateway(ISOLATED_NETWORK, world.docker);
    api = new FakeAnthropic(() => ({ blocks: [{ type: 'text', text: 'unused' }] }));
    apiUrl = await api.listen(host);
    const { hostname, port } = new URL(apiUrl);

    const dir = join(world.podsDir, 'gated');
    await mkdir(dir, { recursive: true });
    await copyFile(BUSYBOX, join(dir, 'busybox'));
    await writeFile(join(dir, 'look-for-key.sh'), LOOK_FOR_KEY);
    await writeFile(join(dir, 'old-secret.sh'), OLD_SECRET);
    await writeFile(join(dir, 'Dockerfile'), [AGENT_DOCKERFILE.trimEnd(), 'COPY busybox /usr/local/bin/busybox', 'COPY look-for-key.sh old-secret.sh /opt/', ''].join('\n'));
    // The example's pod.json: no `network` and no `egress`, so only the gateway's default way
    // out; the key and the fake API as its model endpoint in its env, as an operator sets them.
    const { checkout: _, ...example } = EXAMPLE_POD_JSON;
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ ...example, stopGraceSeconds: 5, env: { ANTHROPIC_BASE_URL: apiUrl, ANTHROPIC_API_KEY: MODEL_KEY } }));
    api.setScript((body) => isToolResultTurn(body)
      ? { blocks: [{ type: 'text', text: 'Looked.' }] }
      : { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: `bash /opt/look-for-key.sh ${hostname} ${port}`, description: 'look around', timeout: 300_000 } }] });
  });
  afterAll(async () => {
    await world.close();
    await api?.close();
  });

  it('runs a task with a Bash tool call through the gateway: the key reaches the fake API from the gateway, under no secret path; no env, process environment or readable file holds it; nothing else is reached; the run\'s secret ends with the run', async () => {
    const session = await world.dispatcher.start('gated', { prompt: 'look for the key' });
    const events = await collect(session, undefined, 360_000);
    expect(events.at(-1), JSON.stringify(events.slice(-5))).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(agentEvents(events).some((e) => e.kind === 'tool' && e.name === 'Bash')).toBe(true);

    // The container was given the gateway as its model endpoint, with a secret path, and no key.
    const seen = report(toolResult(api.conversation));
    expect(seen.end, toolResult(api.conversation)).toBe('ok');
    const base = /^http:\/\/(\d+\.\d+\.\d+\.\d+):3128\/([A-Za-z0-9_-]{16,})$/.exec(seen['base-url'] ?? '');
    expect(base, seen['base-url']).not.toBeNull();
    const [, gatewayAddress, secret] = base as unknown as [string, string, string];
    expect(gatewayAddress).not.toBe(new URL(apiUrl).hostname);
    expect(seen['api-key']).not.toContain('sk-ant');

    // Every model request arrived with the pod's key, set by the gateway, and without the run's secret.
    expect(api.conversation.length).toBeGreaterThanOrEqual(2);
    for (const r of api.requests) {
      expect(r.path).not.toContain(secret);
      expect(r.headers['x-api-key']).toBe(MODEL_KEY);
      expect(r.headers.authorization).toBeUndefined();
    }
    expect(api.conversation.map((r) => r.path)).toEqual(api.conversation.map(() => '/v1/messages'));

    // Nowhere in the container: its environment, any process's, any file it can read (the canary shows the search reads files).
    expect(seen['key-in-env']).toBe('0');
    expect(seen['key-in-environ']).toBe('0');
    expect(Number(seen['environs-read'])).toBeGreaterThan(0);
    expect(seen.files).toBe('[/tmp/egress-canary ]');

    // Nothing but the gateway reached: not this host's fake API directly, not a public address, not an unlisted host through the gateway, no name resolved.
    expect(seen[`tcp ${new URL(apiUrl).hostname}:${new URL(apiUrl).port}`]).toBe('failed');
    expect(seen['tcp 1.1.1.1:443']).toBe('failed');
    expect(seen.nc).toBe('failed');
    expect(seen['nc-public']).toBe('failed');
    expect(seen.connect).toMatch(/^HTTP\/1\.[01] 403/);
    expect(seen.git).toBe('failed');
    expect(seen.dns).toBe('failed');
    const blocked = events.filter((e): e is Extract<SessionEvent, { type: 'egress.blocked' }> => e.type === 'egress.blocked');
    expect(blocked.map((e) => `${e.host}:${e.port}`)).toContain('example.com:443');

    // The run's secret is hidden in what the run printed, and gone with the run: no gateway of the session is left.
    expect(JSON.stringify(events)).not.toContain(secret);
    await until('the run\'s gateway to be removed', async () => (await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${session.id}`] } })).length === 0, 30_000);
    expect(await world.docker.listNetworks({ filters: { label: [`${LABELS.gateway}=${session.id}`] } })).toEqual([]);

    // The next run of the session has a gateway and secret of its own; its gateway refuses the first run's secret.
    api.setScript((body) => isToolResultTurn(body)
      ? { blocks: [{ type: 'text', text: 'Tried.' }] }
      : { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: `bash /opt/old-secret.sh ${secret}`, description: 'try the old secret' } }] });
    const before = api.requests.length;
    const resumed = await world.dispatcher.resume(session.id, 'try the old secret');
    const again = await collect(resumed, undefined, 180_000);
    expect(again.at(-1), JSON.stringify(again.slice(-5))).toMatchObject({ type: 'container.exited', exitCode: 0 });
    const second = report(toolResult(api.requests.slice(before)));
    expect(second.end, toolResult(api.requests.slice(before))).toBe('ok');
    expect(second['base-url']).toMatch(/^http:\/\/[\d.]+:3128\/[A-Za-z0-9_-]{16,}$/);
    expect(second['base-url']).not.toContain(secret);
    expect(second['old-secret']).toMatch(/^HTTP\/1\.[01] 401/);
    for (const r of api.requests.slice(before)) expect(r.headers['x-api-key']).toBe(MODEL_KEY);
  });
});
