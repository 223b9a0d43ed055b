import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe } from 'vitest';
import { tempDir } from './pods.js';

/** Where git keeps its helper programs (`git --exec-path`), or undefined when git is not installed. */
function gitExecPath(): string | undefined {
  try {
    return execFileSync('git', ['--exec-path'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return undefined;
  }
}

const EXEC_PATH = gitExecPath();

/** The CGI program that speaks git's smart HTTP (Debian's git installs it as /usr/lib/git-core/git-http-backend). */
export const GIT_HTTP_BACKEND = join(EXEC_PATH ?? '/usr/lib/git-core', 'git-http-backend');

const unavailable = !EXEC_PATH ? 'git is not installed' : !existsSync(GIT_HTTP_BACKEND) ? `${GIT_HTTP_BACKEND} is missing` : undefined;
if (unavailable && process.env.CI === 'true') {
  // In CI the git-server tests must run: a missing git is a failure, never a skip.
  throw new Error(`${unavailable}. CI installs git (scripts/lib.sh install_missing): the git-server tests need the real git client and git-http-backend.`);
}
if (unavailable) {
  console.warn(`\n[git-server] SKIPPED: ${unavailable}. Install Debian's git ("apt-get install -y git"; bash .ci/run does) to run them.\n`);
}

/** `describe` that runs only where git and git-http-backend are installed (always in CI, where their absence fails the run). */
export const describeWithGit = unavailable ? describe.skip : describe;

/** The fixed identity and dates of commits the server makes itself, so their shas are the same on every run. */
const SERVER_COMMITTER = {
  GIT_AUTHOR_NAME: 'Fake GitHub',
  GIT_AUTHOR_EMAIL: 'noreply@github.test',
  GIT_AUTHOR_DATE: '2024-01-01T00:00:00Z',
  GIT_COMMITTER_NAME: 'Fake GitHub',
  GIT_COMMITTER_EMAIL: 'noreply@github.test',
  GIT_COMMITTER_DATE: '2024-01-01T00:00:00Z',
};

/** The two smart-HTTP services: `git-upload-pack` serves clone and fetch, `git-receive-pack` takes a push. */
export type GitService = 'git-upload-pack' | 'git-receive-pack';

/**
 * What one token may do, as an installation token's scope: one repository (`owner/name`) or
 * several; until `expiresAt` (ms since the epoch; never when absent); push only when `write`.
 */
export interface TokenGrant {
  readonly repo: string | readonly string[];
  readonly expiresAt?: number;
  readonly write?: boolean;
}

/**
 * How a request's credentials fared: `none` (no Basic auth), `unknown`, `revoked`, `expired`,
 * `other-repo` (valid, for other repositories), `read-only` (valid, but a push) are refused;
 * `ok` is passed on to git-http-backend.
 */
export type AuthOutcome = 'none' | 'unknown' | 'revoked' | 'expired' | 'other-repo' | 'read-only' | 'ok';

/**
 * A git request the server received. The token itself is never stored: `tokenFingerprint`
 * identifies it (compare with `tokenFingerprint(token)`), so a record can be printed.
 */
export interface GitRequest {
  readonly at: number;
  readonly method: string;
  /** The URL path, without the query. */
  readonly path: string;
  /** `owner/name`, as addressed (undefined when the path names no repository). */
  readonly repo: string | undefined;
  readonly service: GitService | undefined;
  /** The Basic auth username (any is accepted, as on GitHub; the helper cldpd gives pods sends `x-access-token`). */
  readonly user: string | undefined;
  readonly tokenFingerprint: string | undefined;
  readonly auth: AuthOutcome;
  /** The client's address as the server saw it (a container's own address when it came from one). */
  readonly remoteAddress: string | undefined;
  /** Whether the body came chunked (git sends a body larger than http.postBuffer, 1 MiB, so). */
  readonly chunked: boolean;
  /** Whether the body came gzipped (git so sends a fetch's negotiation over 1 KB); http-backend inflates it. */
  readonly gzip: boolean;
  /** Bytes of body received so far, as sent (before any gzip is undone). */
  bodyBytes: number;
  /** The HTTP status answered; 0 until the answer's head is written. */
  status: number;
}

/** A branch of a repository on the server. */
export interface GitBranch {
  readonly name: string;
  readonly sha: string;
}

/** One commit, as `log()` lists it. */
export interface GitCommit {
  readonly sha: string;
  readonly parents: readonly string[];
  readonly authorName: string;
  readonly authorEmail: string;
  readonly subject: string;
  /** The whole message (subject, blank line, body), without its trailing newlines. */
  readonly message: string;
}

/** Options of `createRepo`. */
export interface CreateRepoOptions {
  /** The branch HEAD names and the first commit is on; `main` when absent. */
  readonly defaultBranch?: string;
  /** Path → content of the first commit; a README.md naming the repository when absent. */
  readonly files?: Record<string, string>;
}

/** A short, stable fingerprint of a token: what `GitRequest.tokenFingerprint` holds instead of the token. */
export function tokenFingerprint(token: string): string {
  return createHash('sha256').update(token).digest('hex').slice(0, 12);
}

/**
 * The address containers on the Docker network `network` reach this host by: the network's
 * gateway (172.17.0.1 on Docker's default `bridge`). An engine does not always list it: a
 * freshly installed one's default bridge has only `Subnet` in `IPAM.Config`. Then it is this
 * host's own address inside that subnet, which the bridge interface holds once it is up; while
 * no container runs on it the interface is down and unlisted, so with `probeImage` (any image
 * with `/bin/busybox`) a container is started on the network and the gateway the engine gave
 * its endpoint is read. Pods on cldpd's own isolated network need that network's gateway, so
 * the network must exist already. Rejects, naming the network and what it lists, when none
 * of these finds it (an IPv6-only network, no probe image given).
 */
export async function dockerGateway(
  network = 'bridge',
  docker: Docker = new Docker(),
  options: { probeImage?: string; interfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]> } = {},
): Promise<string> {
  const info = (await docker.getNetwork(network).inspect()) as { IPAM?: { Config?: Array<{ Gateway?: string; Subnet?: string }> } };
  const configs = info.IPAM?.Config ?? [];
  const listed = configs.map((c) => c.Gateway).find((g) => g !== undefined && IPV4.test(g));
  if (listed) return listed;
  const subnets = configs.map((c) => c.Subnet).filter((s): s is string => s !== undefined && IPV4_CIDR.test(s));
  const own = Object.values((options.interfaces ?? networkInterfaces)())
    .flatMap((addresses) => addresses ?? [])
    .find((a) => a.family === 'IPv4' && subnets.some((subnet) => inSubnet(a.address, subnet)));
  if (own) return own.address;
  const endpoint = options.probeImage ? await endpointGateway(docker, network, options.probeImage) : undefined;
  if (endpoint) return endpoint;
  throw new Error(
    `Docker network ${network} lists no IPv4 gateway and this host has no address up in its subnet${subnets.length ? `s (${subnets.join(', ')})` : ' (it lists none)'}${options.probeImage ? `, nor did a container of ${options.probeImage} on it get one` : '; pass a probeImage to ask a container on it'}`,
  );
}

/** The IPv4 gateway the engine gives a container of `image` started on `network` (removed again). */
async function endpointGateway(docker: Docker, network: string, image: string): Promise<string | undefined> {
  const container = await docker.createContainer({ Image: image, Entrypoint: ['/bin/busybox'], Cmd: ['sleep', '30'], Labels: { 'dev.cldpd.test': 'gateway-probe' }, HostConfig: { NetworkMode: network, AutoRemove: false } });
  try {
    await container.start();
    const inspected = (await container.inspect()) as { NetworkSettings?: { Networks?: Record<string, { Gateway?: string }> } };
    const gateway = inspected.NetworkSettings?.Networks?.[network]?.Gateway;
    return gateway && IPV4.test(gateway) ? gateway : undefined;
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const IPV4_CIDR = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\/\d{1,2}$/;

/** An IPv4 address as a 32-bit unsigned number. */
function ipv4Number(address: string): number {
  return address.split('.').reduce((n, part) => n * 256 + Number(part), 0);
}

/** Whether IPv4 `address` lies in `cidr` (`a.b.c.d/n`). */
export function inSubnet(address: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/') as [string, string];
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipv4Number(address) / size) === Math.floor(ipv4Number(base) / size);
}

const NAME = /^[A-Za-z0-9_.-]+$/;

/** Whether `name` can be a GitHub owner or repository name (and is no path trick). */
function isName(name: string): boolean {
  return NAME.test(name) && !/^\.+$/.test(name);
}

/** Runs git with a clean environment (no user or system config), resolving with its stdout. */
function git(args: readonly string[], options: { env?: Record<string, string>; input?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      'git',
      args,
      { env: { PATH: process.env.PATH ?? '/usr/bin:/bin', GIT_CONFIG_NOSYSTEM: '1', GIT_CONFIG_GLOBAL: '/dev/null', LANG: 'C', ...options.env }, maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(new Error(`git ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout)),
    );
    // A command that reads no stdin may exit before this lands: the broken pipe is no error.
    child.stdin?.on('error', () => undefined);
    child.stdin?.end(options.input ?? '');
  });
}

/** Splits a CGI response's head off: its status (200 when it names none), headers and where the body starts. */
function parseCgiHead(buffer: Buffer): { status: number; headers: Record<string, string>; bodyAt: number } | undefined {
  const crlf = buffer.indexOf('\r\n\r\n');
  const lf = buffer.indexOf('\n\n');
  const end = crlf >= 0 && (lf < 0 || crlf < lf) ? { at: crlf, length: 4 } : lf >= 0 ? { at: lf, length: 2 } : undefined;
  if (!end) return undefined;
  let status = 200;
  const headers: Record<string, string> = {};
  for (const line of buffer.subarray(0, end.at).toString('latin1').split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const value = line.slice(colon + 1).trim();
    if (/^status$/i.test(name)) status = Number.parseInt(value, 10) || 500;
    else headers[name] = value;
  }
  return { status, headers, bodyAt: end.at + end.length };
}

/**
 * A real git smart-HTTP server for tests, addressed like GitHub
 * (`http://host:port/<owner>/<repo>.git`, or without `.git`), backed by git-http-backend run
 * as CGI, one child per request. Every request needs HTTP Basic auth whose password is a
 * token given to `allow()` for that repository and not expired (any username, as on GitHub);
 * a push needs a token with `write`. Refusals are GitHub's: 401 with
 * `WWW-Authenticate: Basic realm="GitHub"` (so git asks its credential helper), 403 for a
 * read-only token's push, 404 for a repository that does not exist. `GET /healthz` answers
 * `ok` without auth. Records every git request in `requests`. `close()` ends it.
 */
export class GitServer {
  /** Every git request received, oldest first (not /healthz). */
  readonly requests: GitRequest[] = [];
  /** What git-http-backend wrote to stderr, one entry per request that wrote any. */
  readonly backendErrors: string[] = [];
  private readonly grants = new Map<string, TokenGrant & { revoked?: boolean }>();
  private readonly children = new Set<ChildProcess>();
  private server: Server | undefined;
  private root = '';
  private localHost = '127.0.0.1';
  /** The port it listens on; 0 before `start()`. */
  port = 0;

  /** Binds a free port on `host` (every interface by default, so containers reach it too). */
  async start(host = '0.0.0.0'): Promise<this> {
    this.root = await tempDir('cldpd-git-');
    await mkdir(join(this.root, 'repos'));
    await mkdir(join(this.root, 'home'));
    const server = createServer((req, res) => this.handle(req, res));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, host, resolve);
    });
    this.port = (server.address() as AddressInfo).port;
    if (host !== '0.0.0.0' && host !== '::') this.localHost = host;
    return this;
  }

  /** `http://<host>:<port>`, as this host reaches it. */
  get url(): string {
    return this.urlFrom(this.localHost);
  }

  /** `http://<address>:<port>`: the server as a client reaches it by `address` (a container: `dockerGateway()`). */
  urlFrom(address: string): string {
    return `http://${address}:${this.port}`;
  }

  /** A repository's clone URL, from this host or (given `address`) from elsewhere. */
  repoUrl(owner: string, repo: string, address = this.localHost): string {
    return `${this.urlFrom(address)}/${owner}/${repo}.git`;
  }

  /** The bare repository's directory, for a test that looks into it with git itself. Throws on a name GitHub would refuse. */
  repoDir(owner: string, repo: string): string {
    if (!isName(owner) || !isName(repo)) throw new Error(`not a GitHub repository name: ${owner}/${repo}`);
    // GitHub's names are case-insensitive.
    return join(this.root, 'repos', owner.toLowerCase(), `${repo.toLowerCase()}.git`);
  }

  /**
   * Creates a bare repository with one commit (the server's fixed identity and date) on the
   * default branch, which HEAD names. Resolves with that commit's sha; rejects when the
   * repository exists.
   */
  async createRepo(owner: string, repo: string, options: CreateRepoOptions = {}): Promise<string> {
    const dir = this.repoDir(owner, repo);
    if (existsSync(dir)) throw new Error(`${owner}/${repo} exists already`);
    const branch = options.defaultBranch ?? 'main';
    await mkdir(dir, { recursive: true });
    await git(['init', '--quiet', '--bare', `--initial-branch=${branch}`, dir]);
    // REMOTE_USER (always set here) enables receive-pack already; the config says so to anyone reading the repository.
    await git(['--git-dir', dir, 'config', 'http.receivepack', 'true']);
    return this.commit(owner, repo, { branch, files: options.files ?? { 'README.md': `# ${owner}/${repo}\n` }, message: 'Initial commit' });
  }

  /**
   * Commits `files` (path → content, over the branch's tree) on `branch` server-side, as
   * someone else's push would; creates the branch when it does not exist. Resolves with the sha.
   */
  async commit(owner: string, repo: string, change: { branch: string; files: Record<string, string>; message?: string }): Promise<string> {
    const dir = this.repoDir(owner, repo);
    const index = join(this.root, `index-${process.hrtime.bigint()}`);
    const env = { ...SERVER_COMMITTER, GIT_INDEX_FILE: index };
    const ref = `refs/heads/${change.branch}`;
    const parent = (await git(['--git-dir', dir, 'for-each-ref', '--format=%(objectname)', ref])).trim();
    try {
      if (parent) await git(['--git-dir', dir, 'read-tree', parent], { env });
      for (const [path, content] of Object.entries(change.files)) {
        const blob = (await git(['--git-dir', dir, 'hash-object', '-w', '--stdin'], { input: content })).trim();
        await git(['--git-dir', dir, 'update-index', '--add', '--cacheinfo', `100644,${blob},${path}`], { env });
      }
      const tree = (await git(['--git-dir', dir, 'write-tree'], { env })).trim();
      const sha = (await git(['--git-dir', dir, 'commit-tree', tree, ...(parent ? ['-p', parent] : []), '-m', change.message ?? `Update ${change.branch}`], { env })).trim();
      await git(['--git-dir', dir, 'update-ref', ref, sha, parent || '0'.repeat(40)]);
      return sha;
    } finally {
      await rm(index, { force: true });
    }
  }

  /** The repository's branches with their head shas, by name. */
  async branches(owner: string, repo: string): Promise<GitBranch[]> {
    const out = await git(['--git-dir', this.repoDir(owner, repo), 'for-each-ref', '--format=%(refname) %(objectname)', 'refs/heads/']);
    return out
      .split('\n')
      .filter(Boolean)
      .map((line) => {
        const [ref = '', sha = ''] = line.split(' ');
        return { name: ref.replace(/^refs\/heads\//, ''), sha };
      });
  }

  /** The content of `path` at `ref` (a branch, tag or sha). Rejects when either is missing. */
  readFile(owner: string, repo: string, ref: string, path: string): Promise<string> {
    return git(['--git-dir', this.repoDir(owner, repo), 'show', `${ref}:${path}`]);
  }

  /** The commits reachable from `ref`, newest first. Rejects when `ref` is missing. */
  async log(owner: string, repo: string, ref: string): Promise<GitCommit[]> {
    const out = await git(['--git-dir', this.repoDir(owner, repo), 'log', '-z', '--format=%H%x1f%P%x1f%an%x1f%ae%x1f%B', ref, '--']);
    return out
      .split('\0')
      .filter(Boolean)
      .map((record) => {
        const [sha = '', parents = '', authorName = '', authorEmail = '', body = ''] = record.split('\x1f');
        const message = body.replace(/\n+$/, '');
        return { sha, parents: parents.split(' ').filter(Boolean), authorName, authorEmail, subject: message.split('\n')[0] ?? '', message };
      });
  }

  /** Lets `token` in as `grant` says, replacing what it allowed before. */
  allow(token: string, grant: TokenGrant): void {
    this.grants.set(token, { ...grant });
  }

  /** Refuses `token` from now on (`auth: 'revoked'`). No-op for a token never allowed. */
  revoke(token: string): void {
    const grant = this.grants.get(token);
    if (grant) this.grants.set(token, { ...grant, revoked: true });
  }

  /** Makes `token` expired from now on (`auth: 'expired'`), as an installation token past its hour. No-op for a token never allowed. */
  expire(token: string): void {
    const grant = this.grants.get(token);
    if (grant) this.grants.set(token, { ...grant, expiresAt: Date.now() - 1 });
  }

  /**
   * The pushes git-http-backend took (POST git-receive-pack answered 200), oldest first. Not
   * the probe git sends before a chunked push to learn whether its credentials work (a body
   * of one flush-pkt, `0000`, that updates nothing).
   */
  pushes(): GitRequest[] {
    return this.requests.filter((r) => r.method === 'POST' && r.service === 'git-receive-pack' && r.status === 200 && r.bodyBytes > 4);
  }

  /** Kills the CGI children still running, stops listening and removes the repositories. Idempotent. */
  async close(): Promise<void> {
    await Promise.all(
      [...this.children].map(
        (child) =>
          new Promise<void>((resolve) => {
            child.once('close', () => resolve());
            child.kill('SIGKILL');
          }),
      ),
    );
    const server = this.server;
    this.server = undefined;
    if (server) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    if (this.root) await rm(this.root, { recursive: true, force: true });
  }

  private authorize(authorization: string | undefined, repo: string, service: GitService | undefined): { user?: string; fingerprint?: string; auth: AuthOutcome } {
    const basic = /^Basic\s+(\S+)$/i.exec(authorization ?? '');
    if (!basic) return { auth: 'none' };
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    const user = colon < 0 ? decoded : decoded.slice(0, colon);
    const token = colon < 0 ? '' : decoded.slice(colon + 1);
    const seen = { user, fingerprint: tokenFingerprint(token) };
    const grant = this.grants.get(token);
    if (!grant) return { ...seen, auth: 'unknown' };
    if (grant.revoked) return { ...seen, auth: 'revoked' };
    if (grant.expiresAt !== undefined && grant.expiresAt <= Date.now()) return { ...seen, auth: 'expired' };
    const repos = (typeof grant.repo === 'string' ? [grant.repo] : grant.repo).map((r) => r.toLowerCase());
    if (!repos.includes(repo.toLowerCase())) return { ...seen, auth: 'other-repo' };
    if (service === 'git-receive-pack' && !grant.write) return { ...seen, auth: 'read-only' };
    return { ...seen, auth: 'ok' };
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    const m = /^\/([^/]+)\/([^/]+?)(?:\.git)?(\/.*)?$/.exec(url.pathname);
    const [owner = '', name = '', rest = ''] = m ? m.slice(1) : [];
    const valid = isName(owner) && isName(name);
    // info/refs names its service in the query; the POSTs in the path.
    const named = rest === '/info/refs' ? url.searchParams.get('service') : rest.slice(1);
    const service = named === 'git-upload-pack' || named === 'git-receive-pack' ? named : undefined;
    const { user, fingerprint, auth } = valid ? this.authorize(req.headers.authorization, `${owner}/${name}`, service) : { auth: 'none' as const };
    const record: GitRequest = {
      at: Date.now(),
      method: req.method ?? 'GET',
      path: url.pathname,
      repo: valid ? `${owner}/${name}` : undefined,
      service,
      user,
      tokenFingerprint: fingerprint,
      auth,
      remoteAddress: req.socket.remoteAddress?.replace(/^::ffff:/, ''),
      chunked: /chunked/i.test(req.headers['transfer-encoding'] ?? ''),
      gzip: /gzip/i.test(req.headers['content-encoding'] ?? ''),
      bodyBytes: 0,
      status: 0,
    };
    this.requests.push(record);
    const answer = (status: number, text: string, headers: Record<string, string> = {}): void => {
      record.status = status;
      req.resume();
      // As text/plain, git shows the body to its user as "remote: ...".
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers }).end(text);
    };
    if (!valid || !rest) return answer(404, 'Not Found\n');
    if (auth === 'read-only') return answer(403, `Permission to ${owner}/${name}.git denied to ${user ?? 'x-access-token'}.\n`);
    if (auth !== 'ok') return answer(401, 'Invalid username or token. Password authentication is not supported for Git operations.\n', { 'www-authenticate': 'Basic realm="GitHub"' });
    if (!existsSync(this.repoDir(owner, name))) return answer(404, 'Repository not found.\n');
    this.cgi(req, res, record, `/${owner.toLowerCase()}/${name.toLowerCase()}.git${rest}`, url.search.replace(/^\?/, ''));
  }

  /** Runs git-http-backend for one request: the body streamed in, its CGI head parsed, its body streamed out. */
  private cgi(req: IncomingMessage, res: ServerResponse, record: GitRequest, pathInfo: string, query: string): void {
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: join(this.root, 'home'),
      GIT_CONFIG_NOSYSTEM: '1',
      GIT_CONFIG_GLOBAL: '/dev/null',
      GIT_PROJECT_ROOT: join(this.root, 'repos'),
      GIT_HTTP_EXPORT_ALL: '1',
      // What http-backend buffers of an upload-pack request (10 MB by default): fetch negotiations of big histories.
      GIT_HTTP_MAX_REQUEST_BUFFER: '256M',
      GATEWAY_INTERFACE: 'CGI/1.1',
      SERVER_PROTOCOL: `HTTP/${req.httpVersion}`,
      REQUEST_METHOD: record.method,
      PATH_INFO: pathInfo,
      QUERY_STRING: query,
      REMOTE_USER: record.user || 'x-access-token',
      REMOTE_ADDR: record.remoteAddress ?? '',
    };
    if (req.headers['content-type']) env.CONTENT_TYPE = req.headers['content-type'];
    // A chunked body has none: then http-backend reads the body to EOF, so it must see stdin end.
    if (req.headers['content-length']) env.CONTENT_LENGTH = req.headers['content-length'];
    // Every other header as CGI's HTTP_*: Content-Encoding (gzip bodies) and Git-Protocol (v2) matter.
    for (const [name, value] of Object.entries(req.headers)) {
      if (value === undefined || /^(authorization|content-type|content-length|proxy)$/i.test(name)) continue;
      env[`HTTP_${name.toUpperCase().replace(/-/g, '_')}`] = Array.isArray(value) ? value.join(', ') : value;
    }
    const child = spawn(GIT_HTTP_BACKEND, [], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    this.children.add(child);
    child.once('close', () => this.children.delete(child));
    // http-backend may answer (an error) without reading the whole body: the broken pipe is no error of ours.
    child.stdin.on('error', () => undefined);
    req.on('data', (chunk: Buffer) => (record.bodyBytes += chunk.length));
    req.pipe(child.stdin);
    res.once('close', () => {
      if (!res.writableFinished) child.kill('SIGKILL');
    });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    let head: Buffer = Buffer.alloc(0);
    let headDone = false;
    const fail = (why: string): void => {
      if (res.headersSent) return void res.destroy();
      headDone = true;
      record.status = 502;
      res.writeHead(502, { 'content-type': 'text/plain' }).end(`git-http-backend: ${why}\n`);
    };
    const readHead = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      const parsed = parseCgiHead(head);
      if (!parsed) return;
      headDone = true;
      child.stdout.off('data', readHead);
      record.status = parsed.status;
      res.writeHead(parsed.status, parsed.headers);
      if (parsed.bodyAt < head.length) res.write(head.subarray(parsed.bodyAt));
      child.stdout.pipe(res);
    };
    child.stdout.on('data', readHead);
    child.on('error', (err) => fail(err.message));
    child.once('close', () => {
      if (stderr.trim()) this.backendErrors.push(`${record.method} ${record.path}: ${stderr.trim()}`);
      if (!headDone) fail(`exited without a CGI head (${stderr.trim() || 'no stderr'})`);
    });
  }
}
