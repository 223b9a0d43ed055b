import { execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { createServer as createHttp, type IncomingMessage, type Server } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { createServer as createTcp, type AddressInfo } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { Dispatcher, LABELS, type Session, type SessionEvent } from '../../src/core/index.js';
import { dockerGateway } from '../fakes/git-server.js';
import { tempDir } from '../fakes/pods.js';
import { TestWorld, describeWithDocker } from './harness.js';

/** A Debian image with bash, git (libcurl, which reads the proxy variables) and glibc's resolver (made by scripts/real-claude.sh, which .ci/run runs). */
const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';
const debianPresent = await new Docker().getImage(DEBIAN_IMAGE).inspect().then(() => true, () => false);
if (!debianPresent && process.env.CI === 'true') throw new Error(`${DEBIAN_IMAGE} is missing: .ci/run makes it with scripts/real-claude.sh`);
if (!debianPresent) console.warn(`\n[egress] SKIPPED: ${DEBIAN_IMAGE} is missing. Run "bash scripts/real-claude.sh" to make it.\n`);

/** What one of the test's servers saw: each request's Host, path and whether it came over TLS, and each bare connection. */
interface Seen {
  requests: Array<{ host: string; path: string; tls: boolean; apiKey?: string; authorization?: string }>;
  connections: number;
}

(debianPresent ? describeWithDocker : describeWithDocker.skip)('egress: a gated pod reaches what it lists, through its gateway, and nothing else', () => {
  const world = new TestWorld();
  let dispatcher: Dispatcher;
  /** The address the gateways reach this host by (the `cldpd` network's gateway). */
  let host = '';
  const seen: Seen = { requests: [], connections: 0 };
  let udpSeen = 0;
  const servers: Array<{ close(): unknown }> = [];
  let http = 0;
  let https = 0;
  let bare = 0;
  let udp = 0;
  let model = 0;
  let certDir = '';

  const record = (tls: boolean) => (req: IncomingMessage, res: import('node:http').ServerResponse): void => {
    seen.requests.push({
      host: req.headers.host ?? '', path: req.url ?? '', tls,
      ...(typeof req.headers['x-api-key'] === 'string' ? { apiKey: req.headers['x-api-key'] } : {}),
      ...(typeof req.headers.authorization === 'string' ? { authorization: req.headers.authorization } : {}),
    });
    req.resume();
    res.end(`reached ${req.headers.host} over ${tls ? 'https' : 'http'}\n`);
  };

  const listen = async (server: Server | ReturnType<typeof createTcp>): Promise<number> => {
    await new Promise<void>((resolve) => server.listen(0, '0.0.0.0', resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  };

  beforeAll(async () => {
    await world.init();
    certDir = await tempDir();
    // A certificate for every name the tests ask for over TLS, from a CA the pods trust.
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=allowed.test',
      '-addext', 'subjectAltName=DNS:allowed.test,DNS:other.test,DNS:a.wild.test,DNS:wild.test',
      '-keyout', join(certDir, 'key.pem'), '-out', join(certDir, 'cert.pem')], { stdio: 'ignore' });
    http = await listen(createHttp(record(false)));
    https = await listen(createHttps({ key: await readFile(join(certDir, 'key.pem')), cert: await readFile(join(certDir, 'cert.pem')) }, record(true)));
    model = await listen(createHttp(record(false)));
    const tcp = createTcp((socket) => {
      seen.connections += 1;
      socket.end('reached the host\n');
    });
    bare = await listen(tcp);
    const dgram = createSocket('udp4');
    dgram.on('message', () => (udpSeen += 1));
    await new Promise<void>((resolve) => dgram.bind(0, '0.0.0.0', resolve));
    udp = dgram.address().port;
    servers.push(dgram);
    await world.runner.ensureIsolatedNetwork('cldpd');
    host = await dockerGateway('cldpd', world.docker, { probeImage: DEBIAN_IMAGE });
    dispatcher = new Dispatcher({
      runner: world.runner, pods: { podsDir: world.podsDir, homeDir: world.home }, store: world.store, hostId: world.hostId, hostEnv: {},
      gateways: { hosts: { 'allowed.test': host, 'other.test': host, 'a.wild.test': host, 'wild.test': host } },
    });
  });

  afterAll(async () => {
    for (const server of servers) server.close();
    await world.close();
  });

  /** A Debian pod running `script` in bash, trusting the test's certificate. */
  async function pod(name: string, script: string, podJson: object = {}): Promise<void> {
    const dir = join(world.podsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'ca.pem'), await readFile(join(certDir, 'cert.pem')));
    await writeFile(join(dir, 'probe.sh'), script);
    await writeFile(join(dir, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nCOPY ca.pem /ca.pem\nCOPY probe.sh /probe.sh\n`);
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ command: ['bash', '/probe.sh'], stopGraceSeconds: 1, memory: '256m', ...podJson, env: { IS_SANDBOX: '1', GIT_SSL_CAINFO: '/ca.pem', ...(podJson as { env?: object }).env } }));
  }

  async function run(start: Promise<Session>): Promise<{ events: SessionEvent[]; lines: string[]; session: Session }> {
    const session = await start;
    const events: SessionEvent[] = [];
    for await (const e of session.events()) events.push(e);
    const lines = events.flatMap((e) => (e.type === 'output' ? [e.line] : []));
    return { events, lines, session };
  }

  /** A line for each probe: "<name> ok" or "<name> failed". */
  const probe = (name: string, command: string): string => `if ${command} >/tmp/${name}.out 2>&1; then echo "${name} ok"; else echo "${name} failed: $(tail -c 300 /tmp/${name}.out | tr '\\n' ' ')"; fi\n`;
  const gitGet = (url: string): string => `git ls-remote ${url}`;
  const tcpTo = (address: string, port: number): string => `timeout 5 bash -c 'exec 3<>/dev/tcp/${address}/${port}; head -c 20 <&3'`;
  const hostAddresses = (): string[] => [...new Set(Object.values(networkInterfaces()).flat().filter((i) => i && i.family === 'IPv4').map((i) => i!.address))];

  it('egress: a listed host is reached by name over HTTP and HTTPS through the gateway; an unlisted one is refused by the proxy, and nothing is reached directly, over UDP or by a lookup', async () => {
    const before = { requests: seen.requests.length, connections: seen.connections, udp: udpSeen };
    const direct = [...hostAddresses(), host, '172.17.0.1', '1.1.1.1'];
    await pod('probe', [
      probe('http', gitGet(`http://allowed.test:${http}/acme/web.git`)),
      probe('https', gitGet(`https://allowed.test:${https}/acme/web.git`)),
      probe('refused-https', gitGet(`https://other.test:${https}/acme/web.git`)),
      probe('refused-http', gitGet(`http://other.test:${http}/acme/web.git`)),
      probe('refused-port', gitGet(`https://allowed.test:${http}/acme/web.git`)),
      ...direct.map((address, i) => probe(`direct-${i}`, tcpTo(address, bare))),
      probe('direct-gateway-http', tcpTo(host, http)),
      `for i in 1 2 3; do echo x > /dev/udp/${host}/${udp} 2>/dev/null; done; echo udp sent\n`,
      probe('dns-other', 'getent hosts other.test'),
      probe('dns-public', 'getent hosts example.com'),
      probe('dns-allowed', 'getent hosts allowed.test'),
      'env | grep -i _proxy | sort\n',
    ].join(''), { egress: [`allowed.test:${http}`, `allowed.test:${https}`] });
    const { events, lines, session } = await run(dispatcher.start('probe', { prompt: 'x' }));
    expect(lines).toContain('http ok');
    expect(lines).toContain('https ok');
    // git asked the servers, by the name, through the gateway: TLS all the way for HTTPS.
    const asked = seen.requests.slice(before.requests);
    expect(asked).toEqual(expect.arrayContaining([
      expect.objectContaining({ host: `allowed.test:${http}`, tls: false }),
      expect.objectContaining({ host: `allowed.test:${https}`, tls: true }),
    ]));
    for (const name of ['refused-https', 'refused-http', 'refused-port', 'direct-gateway-http', 'dns-other', 'dns-public', 'dns-allowed', ...direct.map((_, i) => `direct-${i}`)]) {
      expect(lines.find((l) => l.startsWith(`${name} `)), name).toMatch(/ failed/);
    }
    expect(lines.find((l) => l.startsWith('refused-https'))).toMatch(/403/);
    expect(asked.some((r) => r.host.startsWith('other.test'))).toBe(false);
    expect(seen.connections).toBe(before.connections);
    expect(udpSeen).toBe(before.udp);
    expect(lines.some((l) => /^https_proxy=http:\/\/10\.213\./.test(l))).toBe(true);
    // Each refusal is an event of the run, before its end.
    const blocked = events.filter((e): e is Extract<SessionEvent, { type: 'egress.blocked' }> => e.type === 'egress.blocked');
    expect(blocked.map((e) => `${e.host}:${e.port}`)).toEqual(expect.arrayContaining([`other.test:${https}`, `other.test:${http}`, `allowed.test:${http}`]));
    expect(blocked.find((e) => e.host === 'other.test' && e.port === https)?.via).toBe('connect');
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    // The gateway and its network went with the run.
    expect(await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${session.id}`] } })).toEqual([]);
    expect(await world.docker.listNetworks({ filters: { label: [`${LABELS.gateway}=${session.id}`] } })).toEqual([]);
  });

  it('egress: a wildcard entry reaches the names under its domain, never the domain itself', async () => {
    await pod('wild', [
      probe('under', gitGet(`https://a.wild.test:${https}/x.git`)),
      probe('domain', gitGet(`https://wild.test:${https}/x.git`)),
    ].join(''), { egress: [`*.wild.test:${https}`] });
    const { lines } = await run(dispatcher.start('wild', { prompt: 'x' }));
    expect(lines).toContain('under ok');
    expect(lines.find((l) => l.startsWith('domain '))).toMatch(/failed.*403/);
  });

  it('egress: .github/cldpd.yml narrows the pod\'s list and never widens it', async () => {
    await pod('narrowed', [
      probe('both', gitGet(`https://allowed.test:${https}/x.git`)),
      probe('pod-only', gitGet(`https://a.wild.test:${https}/x.git`)),
      probe('repo-only', gitGet(`https://other.test:${https}/x.git`)),
    ].join(''), { egress: [`allowed.test:${https}`, `*.wild.test:${https}`] });
    const { lines } = await run(dispatcher.start('narrowed', { prompt: 'x' }, { egress: [`allowed.test:${https}`, `other.test:${https}`] }));
    expect(lines).toContain('both ok');
    expect(lines.find((l) => l.startsWith('pod-only '))).toMatch(/failed/);
    expect(lines.find((l) => l.startsWith('repo-only '))).toMatch(/failed/);
  });

  it('egress: "open" runs on Docker\'s network as before, with no gateway', async () => {
    await pod('open', probe('direct', tcpTo(host, bare)), { egress: 'open' });
    const { lines, events } = await run(dispatcher.start('open', { prompt: 'x' }));
    expect(lines).toContain('direct ok');
    expect(events.some((e) => e.type === 'egress.blocked')).toBe(false);
  });

  it('egress: two pods with different lists at once: each reaches its own host only, and not the other\'s gateway', async () => {
    // Each waits until both have started, so their gateways live side by side.
    const both = (mine: string, theirs: string) => [
      'echo started\n',
      'for i in $(seq 1 150); do [ -f /tmp/go ] && break; sleep 0.2; done\n',
      probe('mine', gitGet(`https://${mine}:${https}/x.git`)),
      probe('theirs', gitGet(`https://${theirs}:${https}/x.git`)),
      probe('their-gateway', 'timeout 5 bash -c "exec 3<>/dev/tcp/$(cat /tmp/their-gateway)/3128"'),
    ].join('');
    await pod('left', both('allowed.test', 'a.wild.test'), { egress: [`allowed.test:${https}`] });
    await pod('right', both('a.wild.test', 'allowed.test'), { egress: [`a.wild.test:${https}`] });
    const left = await dispatcher.start('left', { prompt: 'x' });
    const right = await dispatcher.start('right', { prompt: 'x' });
    const runs = [run(Promise.resolve(left)), run(Promise.resolve(right))];
    const gatewayOf = async (s: Session): Promise<string> => {
      for (let i = 0; i < 300 && !s.containerId; i += 1) await new Promise((r) => setTimeout(r, 100));
      const found = await world.runner.findGateway(`cldpd-${s.id}`);
      if (!found) throw new Error(`no gateway for ${s.id}`);
      return found.address;
    };
    const [leftGateway, rightGateway] = [await gatewayOf(left), await gatewayOf(right)];
    expect(leftGateway).not.toBe('');
    expect(rightGateway).not.toBe('');
    const leftNet = (await world.runner.findGateway(`cldpd-${left.id}`))?.network;
    const rightNet = (await world.runner.findGateway(`cldpd-${right.id}`))?.network;
    expect(leftNet).not.toBe(rightNet);
    await world.runner.writeFiles(left.containerId as string, [{ path: '/tmp/their-gateway', content: rightGateway, mode: 0o644 }, { path: '/tmp/go', content: '', mode: 0o644 }]);
    await world.runner.writeFiles(right.containerId as string, [{ path: '/tmp/their-gateway', content: leftGateway, mode: 0o644 }, { path: '/tmp/go', content: '', mode: 0o644 }]);
    const finished = await Promise.all(runs);
    for (const { lines } of finished) {
      expect(lines).toContain('mine ok');
      expect(lines.find((x) => x.startsWith('theirs '))).toMatch(/failed/);
      expect(lines.find((x) => x.startsWith('their-gateway '))).toMatch(/failed/);
    }
  });

  it('egress: the model key stays with the gateway: the provider gets it, the container holds none, and the run\'s secret dies with the run', async () => {
    const key = 'sk-ant-egress-test-key-0123456789';
    const before = seen.requests.length;
    await pod('keyed', [
      // As Claude Code does: the endpoint from ANTHROPIC_BASE_URL, its own placeholder key.
      'base="$ANTHROPIC_BASE_URL"; hostport="${base#http://}"; hostport="${hostport%%/*}"; path="/${base#http://*/}"\n',
      'exec 3<>"/dev/tcp/${hostport%:*}/${hostport#*:}"\n',
      'printf "POST %s/v1/messages HTTP/1.1\\r\\nHost: %s\\r\\nx-api-key: %s\\r\\nContent-Length: 2\\r\\nConnection: close\\r\\n\\r\\n{}" "$path" "$hostport" "$ANTHROPIC_API_KEY" >&3\n',
      'head -1 <&3\n',
      // The key is put together here, so this script is no file that holds it.
      `k='${key.slice(0, 10)}'; k="\${k}${key.slice(10)}"\n`,
      'if env | grep -qF "$k"; then echo "key in env"; fi\n',
      'if cat /proc/*/environ 2>/dev/null | tr "\\0" "\\n" | grep -qF "$k"; then echo "key in environ"; fi\n',
      'if grep -rqsF --exclude-dir=proc --exclude-dir=sys "$k" / 2>/dev/null; then echo "key in a file"; fi\n',
      'echo done\n',
    ].join(''), { env: { ANTHROPIC_API_KEY: key, ANTHROPIC_BASE_URL: `http://${host}:${model}/anthropic` } });
    const { lines, session } = await run(dispatcher.start('keyed', { prompt: 'x' }));
    expect(lines).toContain('done');
    expect(lines.find((l) => l.startsWith('HTTP/1.1'))).toMatch(/200/);
    expect(lines.filter((l) => l.startsWith('key in'))).toEqual([]);
    const reached = seen.requests.slice(before).find((r) => r.path === '/anthropic/v1/messages');
    expect(reached?.apiKey).toBe(key);
    // The gateway is gone with the run: nothing answers the run's secret any more.
    expect(await world.docker.listContainers({ all: true, filters: { label: [`${LABELS.gateway}=${session.id}`] } })).toEqual([]);
  });
});
