import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { hostname, homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { NO_LIMITS, mergeLimits, parseLimits, type RepoLimits } from './queue/limits-policy.js';

/** A setting that is missing or malformed; the message lists every problem and the fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** GitHub App settings, under Probot's own variable names and defaults. */
export interface GitHubConfig {
  /** `APP_ID`; undefined until the app is registered (cldpd's setup page does that: npm start without credentials). */
  readonly appId: string | undefined;
  /** `PRIVATE_KEY`, or the file named by `PRIVATE_KEY_PATH`. */
  readonly privateKey: string | undefined;
  /** `WEBHOOK_SECRET`; webhooks with another signature are refused. */
  readonly webhookSecret: string | undefined;
  /** API base for GitHub Enterprise Server: `GHE_PROTOCOL://GHE_HOST/api/v3`; undefined for github.com. */
  readonly baseUrl: string | undefined;
  /** `WEBHOOK_PATH`, default `/api/github/webhooks`. */
  readonly webhookPath: string;
  /** `PORT`, default 3000. */
  readonly port: number;
  /** `HOST`, default all interfaces. */
  readonly host: string | undefined;
  /** `WEBHOOK_PROXY_URL` (smee.io) for development. */
  readonly webhookProxyUrl: string | undefined;
  /** GitHub's web address, for sign-in: `https://github.com`, or `GHE_PROTOCOL://GHE_HOST`. */
  readonly webUrl: string;
  /** The app's OAuth client (`GITHUB_CLIENT_ID`, `GITHUB_CLIENT_SECRET`; the setup page writes both): people sign in with it to see private repositories' session pages. */
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  /**
   * `CLDPD_SETUP_ALLOW_HTTP=1`: the first-run setup pages answer a browser on another machine
   * over plain HTTP too (with a warning), though GitHub's registration code and a pasted private
   * key then cross the network unencrypted. Default off: such a browser is told to use an SSH
   * tunnel to localhost or HTTPS instead.
   */
  readonly setupAllowHttp: boolean;
}

/** The live session page and what Redis keeps for it. */
export interface LivePageConfig {
  /** The address people reach `cldpd serve` by, with no trailing slash: `CLDPD_PUBLIC_URL`, default `http://<HOST or this host's name>:<PORT>`. Status comments link session pages under it. */
  readonly publicUrl: string;
  /** Entries of one session's feed Redis keeps (the oldest are trimmed): `CLDPD_LIVE_MAX_ENTRIES`, default 20,000. */
  readonly maxEntries: number;
  /** Bytes of entries (their JSON) one session's feed keeps (the oldest are trimmed): `CLDPD_LIVE_MAX_MB`, default 4 (fractions allowed). */
  readonly maxBytes: number;
  /** How long a session's feed, and its page's link, are kept after its last entry: `CLDPD_LIVE_KEEP_DAYS`, default 7. */
  readonly keepSeconds: number;
  /**
   * Which session pages ask people to sign in with GitHub: `private` (private repositories'
   * only: a public one's issues are anyone's to read) or `always`. `CLDPD_LIVE_SIGN_IN`,
   * default `always` on GitHub Enterprise Server (there "public" means the company) and `private` on github.com.
   */
  readonly signIn: 'private' | 'always';
}

/**
 * Redis reached through Sentinel: the sentinels say which server is the primary, and say it
 * again after a failover. Separate variables rather than one URL: no URL form of a list of
 * sentinels is standard (ioredis and BullMQ parse none), and each password can come from a
 * secret of its own.
 */
export interface RedisSentinelConfig {
  /** `REDIS_SENTINELS`: `host:port,host:port,…` (port 26379 when left out; `[::1]:26379` for IPv6). */
  readonly sentinels: ReadonlyArray<{ readonly host: string; readonly port: number }>;
  /** `REDIS_SENTINEL_NAME`: the name the sentinels monitor the primary under (`sentinel monitor <name> …`). */
  readonly name: string;
  /** `REDIS_SENTINEL_PASSWORD`: the sentinels' own password, when they have one. */
  readonly sentinelPassword: string | undefined;
  /** `REDIS_PASSWORD`: the primary's and replicas' password, when they have one. */
  readonly password: string | undefined;
}

/**
 * The Docker engine, named the way the docker CLI reads it: `DOCKER_HOST` (unix://, or
 * tcp://host:port; the local socket when unset), `DOCKER_TLS_VERIFY` (any value: TLS with the
 * client certificate of `DOCKER_CERT_PATH`, the engine's certificate checked against its
 * ca.pem) and `DOCKER_CERT_PATH` (ca.pem, cert.pem, key.pem; default ~/.docker). Checked
 * when a process opens the engine (src/main/docker-engine.ts), not here: commands that never
 * touch Docker do not fail over it.
 */
export interface EngineConfig {
  readonly host: string | undefined;
  readonly tlsVerify: boolean;
  readonly certPath: string | undefined;
}

/** Settings read from the environment, once, at start-up. */
export interface Config {
  /** cldpd's data directory: sessions, logs and the single-machine Redis live under it. `CLDPD_HOME`, default `~/.cldpd`. */
  readonly home: string;
  /** Where pods are found. `CLDPD_PODS_DIR`, default `<home>/pods`. */
  readonly podsDir: string;
  /** Session records and logs: `<home>/sessions`. */
  readonly sessionsDir: string;
  /** Names this Docker host in labels and its queue. `CLDPD_HOST_ID`, default the hostname. */
  readonly hostId: string;
  /** The user's home, for `~` in pod mounts. */
  readonly userHome: string;
  /** Where this user's Claude Code keeps its state (`cldpd export` puts transcripts there). `CLAUDE_CONFIG_DIR`, default `~/.claude`. */
  readonly claudeConfigDir: string;
  /** pino level. `LOG_LEVEL`, default `info`. */
  readonly logLevel: string;
  /** `CLDPD_LOG_FORMAT`: `json` or `pretty`; undefined: readable lines on a terminal, JSON otherwise. */
  readonly logFormat: 'json' | 'pretty' | undefined;
  /** `REDIS_URL`; without it (and without `REDIS_SENTINELS`) `npm start` runs its own redis-server. */
  readonly redisUrl: string | undefined;
  /** Redis through Sentinel (`REDIS_SENTINELS`, `REDIS_SENTINEL_NAME`, …), instead of `REDIS_URL`; undefined when not set. */
  readonly redisSentinel: RedisSentinelConfig | undefined;
  /** Runs this host takes at once (its slots), from the shared queue and its own together. `CLDPD_CONCURRENCY`, default 2. */
  readonly concurrency: number;
  /** Least time between two edits of one status comment. `CLDPD_STATUS_INTERVAL_SECONDS`, default 10. */
  readonly statusIntervalMs: number;
  /** How long a job stays with a worker that stopped answering before another takes it over. `CLDPD_JOB_LOCK_SECONDS`, default 60. */
  readonly jobLockMs: number;
  /** How often a worker looks for containers of its host that nothing follows. `CLDPD_RECONCILE_SECONDS`, default 60. */
  readonly reconcileMs: number;
  /**
   * A host whose worker has not said it runs for this long is shown as not seen, and a new
   * session of an issue it owned starts elsewhere. `CLDPD_HOST_GONE_SECONDS`, default 600:
   * long enough for a restart or an upgrade. Workers say it every 30 s (or a third of this).
   */
  readonly hostGoneMs: number;
  /**
   * How long after an issue is closed its sessions are removed: containers, volumes, records
   * and logs on their host, live feeds, the keys. `CLDPD_RETENTION_DAYS`, default 14
   * (a fraction of a day is allowed). Reopening the issue first keeps everything.
   */
  readonly retentionMs: number;
  /**
   * Bytes one run may write to its session's log on disk; past it, output lines are counted
   * rather than kept, and the log says where it was cut. `CLDPD_RUN_LOG_MAX_MB`, default 100
   * (a fraction is allowed).
   */
  readonly runLogMaxBytes: number;
  /**
   * The egress gateways of gated pods' runs: `outside`, the Docker network they reach the
   * outside by (`CLDPD_EGRESS_NETWORK`, default cldpd's own isolated `cldpd`); `hosts`, names
   * they resolve to fixed addresses, for names the host's DNS does not know
   * (`CLDPD_EGRESS_HOSTS="git.internal=10.0.0.5,other=10.0.0.6"`).
   */
  readonly gateways: { readonly outside?: string; readonly hosts?: Readonly<Record<string, string>> };
  /**
   * Waiting out the model provider's limits: a run that ends on a usage or rate limit
   * continues by itself (with `prompt`) once it resets, at most `maxWaits` times per session
   * (`CLDPD_PROVIDER_MAX_WAITS`, default 5); a rate refusal waits `retryMs`, doubled each time
   * (`CLDPD_PROVIDER_RETRY_SECONDS`, default 60); `CLDPD_CONTINUE_PROMPT`, default "continue".
   */
  readonly providerWaits: { readonly maxWaits: number; readonly retryMs: number; readonly prompt: string };
  /** How long `serve`, `worker` and `up` take at most to shut down on SIGTERM before they exit anyway. `CLDPD_STOP_SECONDS`, default 20. */
  readonly stopSeconds: number;
  /** GitHub writes (comments posted or edited) one process makes per minute at most. `CLDPD_GITHUB_WRITES_PER_MINUTE`, default 40. */
  readonly githubWritesPerMinute: number;
  /**
   * Where every long-running process (`serve`, `worker`, `up`) serves /metrics, /healthz and
   * /readyz: `CLDPD_METRICS_PORT`, default 9464; 0 turns it off. The webhook port answers
   * /healthz only.
   */
  readonly metricsPort: number;
  /**
   * The address the metrics port listens on: `CLDPD_METRICS_ADDRESS`, default 127.0.0.1, so
   * that only this machine reads the metrics and readiness (pod names, host ids, costs, Redis's
   * errors); 0.0.0.0 (or an address of a private network) lets a Prometheus elsewhere scrape it.
   */
  readonly metricsAddress: string;
  /**
   * The IPv4 network each run's egress network takes a /28 of (see Runner.openGateway):
   * `CLDPD_EGRESS_SUBNETS`, default 10.213.0.0/16 (4096 runs at once). Set it when that
   * network is in use where this host is (a VPN's, a LAN's): a container on it could not
   * reach those addresses through the gateway.
   */
  readonly egressSubnets: string;
  /** The Docker engine this process drives, as the docker CLI's variables name it (see EngineConfig). */
  readonly engine: EngineConfig;
  readonly github: GitHubConfig;
  readonly live: LivePageConfig;
  /**
   * The installation-wide limits of runs and spending, for every repository that does not
   * set its own in `.github/cldpd.yml`: `CLDPD_LIMITS`, JSON or YAML like
   * `{"repository": {"spendPerDayUsd": 50}, "perPerson": {"runsPerDay": 20}}`. Default: none.
   */
  readonly limits: RepoLimits;
}

type Env = Readonly<Record<string, string | undefined>>;

function positiveInt(env: Env, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    problems.push(`${name} is "${raw}"; it must be a whole number greater than 0 (default ${fallback}).`);
    return fallback;
  }
  return value;
}

function positiveNumber(env: Env, name: string, fallback: number, problems: string[], max: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = /^\s*\d*\.?\d+\s*$/.test(raw) ? Number(raw) : NaN;
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    problems.push(`${name} is "${raw}"; it must be a number greater than 0 and at most ${max} (default ${fallback}).`);
    return fallback;
  }
  return value;
}

/** A yes/no setting: `1`/`true`/`yes` or `0`/`false`/`no`; unset or empty is `fallback`. */
function flag(env: Env, name: string, fallback: boolean, problems: string[]): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  problems.push(`${name} is "${env[name]}"; use 1 (yes) or 0 (no).`);
  return fallback;
}

/** A TCP port, or 0 for "off". */
function portOrOff(env: Env, name: string, fallback: number, problems: string[]): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0 || value > 65535) {
    problems.push(`${name} is "${raw}"; it must be a port from 1 to 65535, or 0 to turn it off (default ${fallback}).`);
    return fallback;
  }
  return value;
}

/** An address to listen on: an IPv4 or IPv6 address, or a host name. */
function listenAddress(env: Env, name: string, fallback: string, problems: string[]): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (isIP(raw) === 0 && !/^(?=.*[A-Za-z])[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$/.test(raw)) {
    problems.push(`${name} is "${raw}"; it must be an address to listen on, such as 127.0.0.1 (this machine only, the default), 0.0.0.0 (every interface) or ::1.`);
    return fallback;
  }
  return raw;
}

/** The gateways' subnet pool: an IPv4 network of /28 or larger, in private address space or not (the operator's choice). */
function egressSubnets(env: Env, problems: string[]): string {
  const raw = env.CLDPD_EGRESS_SUBNETS;
  if (raw === undefined || raw === '') return '10.213.0.0/16';
  const match = /^(\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2})$/.exec(raw.trim());
  if (!match || isIP(match[1] as string) !== 4 || Number(match[2]) > 28) {
    problems.push(`CLDPD_EGRESS_SUBNETS is "${raw}"; it must be an IPv4 network of /28 or larger that nothing else on this host uses, such as 10.213.0.0/16 (the default).`);
    return '10.213.0.0/16';
  }
  return raw.trim();
}

/** Host ids name queues and labels: keep them to safe characters. */
function gatewaysFrom(env: Env, problems: string[]): Config['gateways'] {
  const hosts: Record<string, string> = {};
  for (const pair of (env.CLDPD_EGRESS_HOSTS ?? '').split(',').map((p) => p.trim()).filter(Boolean)) {
    const [name = '', address = ''] = pair.split('=').map((p) => p.trim());
    if (!/^[a-z0-9.-]+$/i.test(name) || !/^[0-9a-f.:]+$/i.test(address)) {
      problems.push(`CLDPD_EGRESS_HOSTS has "${pair}": write name=address pairs separated by commas, like "git.internal=10.0.0.5"`);
      continue;
    }
    hosts[name.toLowerCase()] = address;
  }
  const outside = env.CLDPD_EGRESS_NETWORK?.trim();
  return Object.freeze({ ...(outside ? { outside } : {}), ...(Object.keys(hosts).length > 0 ? { hosts: Object.freeze(hosts) } : {}) });
}

function hostIdFrom(raw: string, problems: string[]): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(raw)) {
    problems.push(`CLDPD_HOST_ID is "${raw}"; use letters, digits, ".", "_" and "-" (at most 63 characters).`);
  }
  return raw;
}

function redisSentinelFrom(env: Env, problems: string[]): RedisSentinelConfig | undefined {
  const list = env.REDIS_SENTINELS?.trim();
  if (!list) {
    if (env.REDIS_SENTINEL_NAME) problems.push('REDIS_SENTINEL_NAME is set without REDIS_SENTINELS: list the sentinels too (REDIS_SENTINELS=host:26379,host:26379,host:26379).');
    return undefined;
  }
  if (env.REDIS_URL) problems.push('REDIS_URL and REDIS_SENTINELS are both set: keep REDIS_SENTINELS (the sentinels say where the primary is; its password is REDIS_PASSWORD) and remove REDIS_URL.');
  const sentinels: Array<{ host: string; port: number }> = [];
  for (const item of list.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([^\s:/[\]]+))(?::(\d{1,5}))?$/.exec(item);
    const port = m?.[3] === undefined ? 26379 : Number(m[3]);
    if (!m || port < 1 || port > 65535) {
      problems.push(`REDIS_SENTINELS has "${item}"; each sentinel is host:port (port 26379 when left out), separated by commas.`);
      continue;
    }
    sentinels.push({ host: (m[1] ?? m[2]) as string, port });
  }
  const name = env.REDIS_SENTINEL_NAME?.trim() ?? '';
  if (!name) problems.push('REDIS_SENTINELS is set without REDIS_SENTINEL_NAME: set it to the name the sentinels monitor the primary under (their "sentinel monitor <name> …" line).');
  return Object.freeze({ sentinels: Object.freeze(sentinels), name, sentinelPassword: env.REDIS_SENTINEL_PASSWORD || undefined, password: env.REDIS_PASSWORD || undefined });
}

function limitsFrom(env: Env, problems: string[]): RepoLimits {
  const raw = env.CLDPD_LIMITS;
  if (!raw) return NO_LIMITS;
  try {
    return mergeLimits(NO_LIMITS, parseLimits(JSON.parse(raw) as unknown, 'CLDPD_LIMITS'));
  } catch (err) {
    problems.push(`${(err as Error).message.startsWith('CLDPD_LIMITS') ? '' : 'CLDPD_LIMITS is not JSON: '}${(err as Error).message.split('\n')[0]} (example: {"perPerson": {"runsPerDay": 20}}).`);
    return NO_LIMITS;
  }
}

function privateKeyFrom(env: Env, problems: string[]): string | undefined {
  if (env.PRIVATE_KEY) {
    // `docker run --env-file .env` keeps the quotes the setup page writes around the PEM (a
    // PEM never starts with one): they go, as a .env reader takes them off.
    const quoted = /^(["'])([\s\S]*)\1$/.exec(env.PRIVATE_KEY.trim());
    return (quoted ? (quoted[2] as string) : env.PRIVATE_KEY).replace(/\\n/g, '\n');
  }
  if (!env.PRIVATE_KEY_PATH) return undefined;
  try {
    return readFileSync(env.PRIVATE_KEY_PATH, 'utf8');
  } catch (err) {
    problems.push(`PRIVATE_KEY_PATH is ${env.PRIVATE_KEY_PATH}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'}).`);
    return undefined;
  }
}

/**
 * Parses the environment into a frozen Config, reporting every problem at once as a
 * {@link ConfigError}. The only reader of `process.env` besides the inheritEnv pass-through
 * of pods (and docker-modem's own reading of `DOCKER_HOST`, `DOCKER_CERT_PATH` and the like).
 */
export function loadConfig(env: Env = process.env, overrides: { podsDir?: string | undefined } = {}): Config {
  const problems: string[] = [];
  const userHome = env.HOME || homedir();
  const home = resolve(env.CLDPD_HOME || join(userHome, '.cldpd'));
  const podsDir = resolve(overrides.podsDir || env.CLDPD_PODS_DIR || join(home, 'pods'));
  const gheHost = env.GHE_HOST?.replace(/\/+$/, '');
  const protocol = env.GHE_PROTOCOL || 'https';
  if (protocol !== 'https' && protocol !== 'http') problems.push(`GHE_PROTOCOL is "${protocol}"; use https or http.`);
  const port = positiveInt(env, 'PORT', 3000, problems);
  const redisUrl = env.REDIS_URL || undefined;
  const logFormat = env.CLDPD_LOG_FORMAT || undefined;
  if (logFormat !== undefined && logFormat !== 'json' && logFormat !== 'pretty') {
    problems.push(`CLDPD_LOG_FORMAT is "${logFormat}"; use json or pretty, or leave it empty (readable lines on a terminal, JSON otherwise).`);
  }
  const publicUrl = (env.CLDPD_PUBLIC_URL || '').replace(/\/+$/, '');
  if (publicUrl && !/^https?:\/\/[^/?#\s]+$/.test(publicUrl)) problems.push(`CLDPD_PUBLIC_URL is "${publicUrl}"; it must be the http(s) address people open cldpd serve by, with no path, such as https://cldpd.example.com.`);
  const liveSignIn = env.CLDPD_LIVE_SIGN_IN || (gheHost ? 'always' : 'private');
  if (liveSignIn !== 'private' && liveSignIn !== 'always') problems.push(`CLDPD_LIVE_SIGN_IN is "${liveSignIn}"; use private (sign-in for private repositories' session pages) or always.`);
  const everyInterface = !env.HOST || env.HOST === '0.0.0.0' || env.HOST === '::';
  const ownHost = everyInterface ? hostname() : env.HOST?.includes(':') ? `[${env.HOST}]` : env.HOST;
  if (redisUrl && !/^rediss?:\/\//.test(redisUrl)) problems.push(`REDIS_URL is "${redisUrl}"; it must start with redis:// or rediss://.`);
  const config: Config = Object.freeze({
    home,
    podsDir,
    sessionsDir: join(home, 'sessions'),
    hostId: hostIdFrom(env.CLDPD_HOST_ID || hostname(), problems),
    userHome,
    claudeConfigDir: resolve(env.CLAUDE_CONFIG_DIR || join(userHome, '.claude')),
    logLevel: env.LOG_LEVEL || 'info',
    logFormat: logFormat === 'json' || logFormat === 'pretty' ? logFormat : undefined,
    redisUrl,
    redisSentinel: redisSentinelFrom(env, problems),
    concurrency: positiveInt(env, 'CLDPD_CONCURRENCY', 2, problems),
    statusIntervalMs: positiveInt(env, 'CLDPD_STATUS_INTERVAL_SECONDS', 10, problems) * 1000,
    jobLockMs: positiveInt(env, 'CLDPD_JOB_LOCK_SECONDS', 60, problems) * 1000,
    reconcileMs: positiveInt(env, 'CLDPD_RECONCILE_SECONDS', 60, problems) * 1000,
    hostGoneMs: positiveInt(env, 'CLDPD_HOST_GONE_SECONDS', 600, problems) * 1000,
    retentionMs: positiveNumber(env, 'CLDPD_RETENTION_DAYS', 14, problems, 36_500) * 86_400_000,
    runLogMaxBytes: Math.round(positiveNumber(env, 'CLDPD_RUN_LOG_MAX_MB', 100, problems, 1_000_000) * 1024 * 1024),
    gateways: gatewaysFrom(env, problems),
    providerWaits: Object.freeze({
      maxWaits: positiveInt(env, 'CLDPD_PROVIDER_MAX_WAITS', 5, problems),
      retryMs: positiveInt(env, 'CLDPD_PROVIDER_RETRY_SECONDS', 60, problems) * 1000,
      prompt: env.CLDPD_CONTINUE_PROMPT || 'continue',
    }),
    stopSeconds: positiveInt(env, 'CLDPD_STOP_SECONDS', 20, problems),
    githubWritesPerMinute: positiveInt(env, 'CLDPD_GITHUB_WRITES_PER_MINUTE', 40, problems),
    metricsPort: portOrOff(env, 'CLDPD_METRICS_PORT', 9464, problems),
    metricsAddress: listenAddress(env, 'CLDPD_METRICS_ADDRESS', '127.0.0.1', problems),
    egressSubnets: egressSubnets(env, problems),
    engine: Object.freeze({
      host: env.DOCKER_HOST || undefined,
      tlsVerify: Boolean(env.DOCKER_TLS_VERIFY),
      certPath: env.DOCKER_CERT_PATH || undefined,
    }),
    github: Object.freeze({
      appId: env.APP_ID || undefined,
      privateKey: privateKeyFrom(env, problems),
      webhookSecret: env.WEBHOOK_SECRET || undefined,
      baseUrl: gheHost ? `${protocol}://${gheHost}/api/v3` : undefined,
      webhookPath: env.WEBHOOK_PATH || '/api/github/webhooks',
      port,
      host: env.HOST || undefined,
      webhookProxyUrl: env.WEBHOOK_PROXY_URL || undefined,
      webUrl: gheHost ? `${protocol}://${gheHost}` : 'https://github.com',
      clientId: env.GITHUB_CLIENT_ID || undefined,
      clientSecret: env.GITHUB_CLIENT_SECRET || undefined,
      setupAllowHttp: flag(env, 'CLDPD_SETUP_ALLOW_HTTP', false, problems),
    }),
    limits: limitsFrom(env, problems),
    live: Object.freeze({
      publicUrl: publicUrl || `http://${ownHost}:${port}`,
      maxEntries: positiveInt(env, 'CLDPD_LIVE_MAX_ENTRIES', 20_000, problems),
      maxBytes: Math.round(positiveNumber(env, 'CLDPD_LIVE_MAX_MB', 4, problems, 1024) * 1024 * 1024),
      keepSeconds: positiveInt(env, 'CLDPD_LIVE_KEEP_DAYS', 7, problems) * 86_400,
      signIn: liveSignIn === 'always' ? 'always' : 'private',
    }),
  });
  if (problems.length > 0) throw new ConfigError(`cldpd cannot start:\n- ${problems.join('\n- ')}`);
  return config;
}

/**
 * Throws a {@link ConfigError} naming every GitHub App setting a process that talks to
 * GitHub still lacks. Workers need no webhook secret.
 */
export function requireGitHubApp(config: Config, needs: { webhookSecret: boolean } = { webhookSecret: true }): { appId: string; privateKey: string; webhookSecret: string } {
  const { appId, privateKey, webhookSecret } = config.github;
  const missing = [!appId && 'APP_ID', !privateKey && 'PRIVATE_KEY (or PRIVATE_KEY_PATH)', needs.webhookSecret && !webhookSecret && 'WEBHOOK_SECRET'].filter(Boolean);
  if (missing.length > 0 || !appId || !privateKey) {
    throw new ConfigError(`cldpd needs the GitHub App's ${missing.join(', ')}. Run "npm start" once without them to register the app through GitHub's setup page (it writes .env), or copy them from the app's settings; see .env.example.`);
  }
  return { appId, privateKey, webhookSecret: webhookSecret ?? '' };
}
