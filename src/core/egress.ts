import { createHash, randomBytes } from 'node:crypto';
import { GATEWAY_PORT, type GatewayConfig } from '../gateway/config.js';
import { parseEgressEntry, type EgressRule } from '../gateway/rules.js';
import { containerEnv, type ContainerSpecInput } from './container-spec.js';
import { CldpdError } from './errors.js';
import { LABELS } from './labels.js';
import type { Pod } from './pod.js';
import type { PodConfig } from './pod-config.js';
import { ISOLATED_NETWORK, type GatewayHandle, type Runner } from './runner.js';
import type { Agent, ModelProvider } from './agents/agent.js';
import { AGENTS } from './agents/agents.js';
import { claudeAgent } from './agents/claude-agent.js';
import { podAgent } from './pod-agent.js';

/**
 * How a pod's runs reach the network (pod.json `egress`): `open`, as Docker gives it (the
 * pod's `network`), or only through the run's gateway, to the hosts `rules` list and to what
 * cldpd itself needs (the model provider, the GitHub hosts).
 */
export type EgressSetting = PodConfig['egress'];

/**
 * Where an agent's model requests go when no gateway carries its key: the pod's endpoint
 * variable (`env`: its own and inherited variables), else the provider's default.
 */
export function modelUrlOf(env: Readonly<Record<string, string>>, provider: ModelProvider): string {
  return env[provider.urlVar] || provider.defaultUrl;
}

/** The variables that carry `provider`'s credential: held by the gateway, never given to a gated container. */
function modelKeys(provider: ModelProvider): string[] {
  return provider.keys.map((k) => k.name);
}


/** Parses entries as pod.json or .github/cldpd.yml writes them; throws `InvalidPod` naming the first bad one. */
export function egressRules(entries: readonly string[], where: string): EgressRule[] {
  return entries.map((entry, i) => {
    const rule = parseEgressEntry(entry);
    if ('error' in rule) throw new CldpdError('InvalidPod', `${where} egress[${i}] ${rule.error}`);
    return rule;
  });
}

/** The hosts github.com's git, API, archives, uploads and raw files are served from. */
const GITHUB_COM: readonly EgressRule[] = Object.freeze(egressRules(['github.com', 'api.github.com', 'codeload.github.com', 'uploads.github.com', '*.githubusercontent.com'], 'GitHub'));

/**
 * The GitHub hosts a run needs: for an issue on github.com, its git, API, archive, upload and
 * raw-file hosts; on GitHub Enterprise Server, the server (with its port, when the URL has one)
 * and its subdomains (assets, uploads, media under subdomain isolation). `urls` are the issue's
 * URL and the repository's clone URL, when known.
 */
export function githubRules(urls: ReadonlyArray<string | undefined>): EgressRule[] {
  const rules = new Map<string, EgressRule>();
  const add = (rule: EgressRule): void => {
    rules.set(`${rule.wildcard ? '*.' : ''}${rule.host}:${rule.port ?? ''}`, rule);
  };
  for (const url of urls) {
    if (!url) continue;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      continue;
    }
    const host = parsed.hostname.toLowerCase().replace(/^\[|\]$/g, '');
    if (host === 'github.com' || host.endsWith('.github.com')) {
      for (const rule of GITHUB_COM) add(rule);
      continue;
    }
    const port = parsed.port ? Number(parsed.port) : undefined;
    add(port === undefined ? { host, wildcard: false } : { host, wildcard: false, port });
    if (!/^[\d.]+$/.test(host) && host.includes('.')) add(port === undefined ? { host, wildcard: true } : { host, wildcard: true, port });
  }
  return [...rules.values()];
}

/** What a gated run's gateway does for the model provider, and what the agent's container gets instead of the key. */
export interface ModelRoute {
  /** Set when the pod configures a key: the gateway carries it. */
  readonly gateway?: GatewayConfig['model'];
  /** The per-run secret in the agent's model URL; hidden from every line the run prints. */
  readonly secret?: string;
  /** Set when the pod configures no key (its agent signs in by its own files): the provider's host is reached through the proxy instead. */
  readonly direct?: EgressRule;
}

/**
 * Where a gated run's model requests go, for the pod's agent's `provider` (Claude Code's when
 * not given). With a key in the pod's environment (`env`: the pod's own and inherited
 * variables), the gateway holds it and a new per-run secret names the run; with none, the
 * agent keeps whatever signs it in, and only the provider's host is allowed. Throws
 * `InvalidPod` when the pod's endpoint variable is no http(s) URL, or a key has spaces or a
 * line break.
 */
export function modelRoute(env: Readonly<Record<string, string>>, secret?: string, provider: ModelProvider = claudeAgent.provider): ModelRoute {
  const { urlVar, defaultUrl } = provider;
  const upstream = (env[urlVar] || defaultUrl).replace(/\/+$/, '');
  let url: URL;
  try {
    url = new URL(upstream);
  } catch {
    throw new CldpdError('InvalidPod', `${urlVar} "${upstream}" is not a URL: give the model provider's endpoint, like ${defaultUrl}.`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new CldpdError('InvalidPod', `${urlVar} "${upstream}" must be an http or https URL.`);
  const setHeaders: Record<string, string> = {};
  for (const key of provider.keys) {
    const value = env[key.name];
    if (!value || setHeaders[key.header] !== undefined) continue;
    if (/[\r\n\0]/.test(value) || value !== value.trim() || /\s/.test(value)) {
      throw new CldpdError('InvalidPod', `The pod's model key (the ${key.name} value) has spaces or a line break around or inside it: set it again without them.`);
    }
    setHeaders[key.header] = key.scheme ? `${key.scheme} ${value}` : value;
  }
  if (Object.keys(setHeaders).length === 0) {
    const port = url.port ? Number(url.port) : url.protocol === 'https:' ? 443 : 80;
    return { direct: { host: url.hostname.toLowerCase(), wildcard: false, port } };
  }
  if (url.search || url.hash || url.username || url.password) throw new CldpdError('InvalidPod', `${urlVar} "${upstream}" must be a plain base URL, like ${defaultUrl}: no query, fragment or user name.`);
  const runSecret = secret ?? randomBytes(24).toString('hex');
  return { secret: runSecret, gateway: { secretSha256: createHash('sha256').update(runSecret).digest('hex'), upstream, setHeaders } };
}

/**
 * The environment a gated container gets on top of its own (and in place of its model
 * variables): the gateway as every common client's proxy (curl reads the lowercase names,
 * most others either), nothing proxied for the container itself, and the model endpoint
 * through the gateway when it carries the key. A placeholder key keeps clients that insist on
 * one quiet; the gateway replaces it.
 */
export function gatedEnv(handle: Pick<GatewayHandle, 'address' | 'port'>, route: ModelRoute, env: Readonly<Record<string, string>>, agent: Agent = claudeAgent): Record<string, string> {
  const proxy = `http://${handle.address}:${handle.port}`;
  const noProxy = `localhost,127.0.0.1,::1,${handle.address}`;
  const { provider } = agent;
  const out = withoutModelKeys(env, provider);
  Object.assign(out, {
    HTTP_PROXY: proxy, HTTPS_PROXY: proxy, http_proxy: proxy, https_proxy: proxy,
    NO_PROXY: noProxy, no_proxy: noProxy,
    npm_config_proxy: proxy, npm_config_https_proxy: proxy,
    // Node's own fetch and http read the proxy variables when told to (Node 24 and later; 22.21).
    NODE_USE_ENV_PROXY: '1',
  });
  // The agent's start-up calls home (feature flags, telemetry, update checks) to hosts the
  // gateway would refuse: refusals on every run's status otherwise.
  for (const [name, value] of Object.entries(agent.quietEnv)) if (env[name] === undefined) out[name] = value;
  const keys = modelKeys(provider);
  if (route.gateway && route.secret) {
    out[provider.urlVar] = gatewayModelUrl(handle, route.secret);
    // Which variable the agent sees tells it how to sign its requests; the value is no key.
    for (const name of keys) if (env[name]) out[name] = GATEWAY_HOLDS_KEY;
  } else {
    for (const name of [...keys, provider.urlVar]) if (env[name] !== undefined) out[name] = env[name] as string;
  }
  return out;
}

/** `env` without `provider`'s key and endpoint (Claude Code's when not given): what a gated container's process gets when its gateway is not found. */
export function withoutModelKeys(env: Readonly<Record<string, string>>, provider: ModelProvider = claudeAgent.provider): Record<string, string> {
  const keys = modelKeys(provider);
  return Object.fromEntries(Object.entries(env).filter(([name]) => !keys.includes(name) && name !== provider.urlVar));
}

/** The per-run secret in a gated container's model endpoint, whichever agent's (see gatedEnv); undefined for an open one. */
export function gatewaySecretOf(env: Readonly<Record<string, string>>): string | undefined {
  const proxy = env.HTTPS_PROXY;
  if (proxy === undefined) return undefined;
  for (const { provider } of Object.values(AGENTS)) {
    const url = env[provider.urlVar];
    if (url?.startsWith(`${proxy}/`)) return url.slice(proxy.length + 1) || undefined;
  }
  return undefined;
}

/** What a gated container finds in its model key variables: the gateway puts the real key on each request. */
export const GATEWAY_HOLDS_KEY = 'held-by-the-cldpd-gateway';

/** The gateway configuration of one run. */
export function gatewayConfig(setting: Extract<EgressSetting, { open: false }>, narrower: readonly EgressRule[] | undefined, github: readonly EgressRule[], route: ModelRoute): GatewayConfig {
  const base = [...github, ...(route.direct ? [route.direct] : [])];
  const layers = [setting.rules, ...(narrower ? [narrower] : [])];
  return { port: GATEWAY_PORT, allow: { base, layers }, ...(route.gateway ? { model: route.gateway } : {}) };
}

/** A gated run's gateway, open: what the container's spec takes from it, and the run's secret to hide. */
export interface Gate {
  readonly handle: GatewayHandle;
  /** The agent's model endpoint through the gateway, when it holds the key (see CommandValues.modelUrl). */
  readonly modelUrl?: string;
  readonly egress: NonNullable<ContainerSpecInput['egress']>;
  readonly secrets: readonly string[];
}

/** What {@link openGate} needs to know of a run. */
export interface GateInput {
  readonly pod: Pod;
  /** The name of the container the gateway serves: the gateway and its network are named after it. */
  readonly name: string;
  readonly sessionId: string;
  readonly run: number;
  readonly hostId: string;
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  /** Where the gateways reach the outside and the names they resolve to fixed addresses (see GatewaySpec). */
  readonly gateways?: { readonly outside?: string; readonly hosts?: Readonly<Record<string, string>> } | undefined;
  /** The URL and the repository's clone URL, when known: their GitHub hosts are reached (see githubRules). */
  readonly githubUrls: ReadonlyArray<string | undefined>;
  /** The repository's narrower list (`.github/cldpd.yml` `egress`), as written there. */
  readonly narrower?: readonly string[] | undefined;
}

/**
 * Opens the egress gateway of a container of a gated pod (see PodConfig.egress), after
 * closing any left under its name from before (its secret is not this run's). Undefined for
 * an open pod; a repository's narrower list gates even an open pod, unless it has no network.
 * Throws `InvalidPod` for a bad narrower entry, `ContainerFailed` when no gateway starts.
 */
export async function openGate(runner: Runner, input: GateInput): Promise<Gate | undefined> {
  const { pod } = input;
  const narrower = input.narrower ? egressRules(input.narrower, '.github/cldpd.yml') : undefined;
  const own = pod.config.egress;
  const setting = !own.open ? own : narrower && pod.config.network !== 'none' ? { open: false as const, rules: narrower } : undefined;
  if (!setting) return undefined;
  const agent = podAgent(pod);
  const route = modelRoute(containerEnv(pod, input.hostEnv, input.sessionId), undefined, agent.provider);
  const config = gatewayConfig(setting, own.open ? undefined : narrower, githubRules(input.githubUrls), route);
  await runner.closeGateway(input.name);
  const handle = await runner.openGateway({
    name: input.name,
    labels: { [LABELS.gateway]: input.sessionId, [LABELS.gatewayHost]: input.hostId, [LABELS.pod]: pod.name, [LABELS.run]: String(input.run) },
    config,
    outside: input.gateways?.outside ?? ISOLATED_NETWORK,
    ...(input.gateways?.hosts ? { hosts: input.gateways.hosts } : {}),
  });
  return {
    handle, egress: { network: handle.network, env: (all) => gatedEnv(handle, route, all, agent), dns: handle.address }, secrets: route.secret ? [route.secret] : [],
    ...(route.gateway && route.secret ? { modelUrl: gatewayModelUrl(handle, route.secret) } : {}),
  };
}

/** The model endpoint a gated container is given: the gateway, under the run's secret. */
export function gatewayModelUrl(handle: Pick<GatewayHandle, 'address' | 'port'>, secret: string): string {
  return `http://${handle.address}:${handle.port}/${secret}`;
}
