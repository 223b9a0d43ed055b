import { formatRule, parseEgressEntry, type EgressAllowList, type EgressRule } from './rules.js';

/** The environment variable the gateway reads its {@link GatewayConfig} from, as JSON. */
export const GATEWAY_ENV = 'CLDPD_GATEWAY';

/** The port the gateway listens on inside its container, on every address it has. */
export const GATEWAY_PORT = 3128;

/**
 * What one run's gateway enforces. Everything the container may reach goes through it: as an
 * HTTP proxy (CONNECT for TLS, absolute-form requests for plain HTTP), each target checked
 * against `allow`; and, when `model` is set, as the model provider's endpoint: a request to
 * `/<secret>/<path>` whose secret's SHA-256 is `model.secretSha256` goes to
 * `model.upstream` + `/<path>` with the container's own credential headers removed and
 * `model.setHeaders` set (the provider's key, which the container never sees).
 */
export interface GatewayConfig {
  readonly port: number;
  /** The address it listens on (its address on the run's network); every address it has when absent. */
  readonly listen?: string;
  readonly allow: EgressAllowList;
  readonly model?: {
    readonly secretSha256: string;
    /** The provider's base URL, like https://api.anthropic.com (a path prefix is kept). */
    readonly upstream: string;
    readonly setHeaders: Readonly<Record<string, string>>;
  };
  /**
   * The names the container reaches the gateway by (its network alias, say), besides its own
   * addresses: an absolute-form request to one of them on `port` is a request to the gateway
   * itself (the model route), not one to pass on.
   */
  readonly names?: readonly string[];
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,256}$/;
const HEADER_VALUE = /^[\t\x20-\x7e\x80-\xff]{0,8192}$/;

/**
 * The {@link GatewayConfig} in `text` (JSON, as in {@link GATEWAY_ENV}), frozen, or what is wrong
 * with it, in words. Every rule must be one {@link parseEgressEntry} would have made.
 */
export function parseGatewayConfig(text: string | undefined): GatewayConfig | { readonly error: string } {
  if (text === undefined || text.trim() === '') return { error: `${GATEWAY_ENV} is not set: it holds the gateway's configuration as JSON` };
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    return { error: `${GATEWAY_ENV} is not JSON (${(error as Error).message})` };
  }
  if (!isObject(value)) return { error: `${GATEWAY_ENV} must be a JSON object` };
  const { port, allow, model, names, listen } = value;
  if (!Number.isInteger(port) || (port as number) < 1 || (port as number) > 65535) return { error: `${GATEWAY_ENV}.port must be a port number (1 to 65535)` };
  if (!isObject(allow) || !Array.isArray(allow.base) || !Array.isArray(allow.layers) || !allow.layers.every(Array.isArray)) {
    return { error: `${GATEWAY_ENV}.allow must be {"base": [rules], "layers": [[rules], …]}` };
  }
  const base = parseRules(allow.base, 'allow.base');
  if ('error' in base) return base;
  const layers: (readonly EgressRule[])[] = [];
  for (const [i, layer] of (allow.layers as unknown[][]).entries()) {
    const rules = parseRules(layer, `allow.layers[${i}]`);
    if ('error' in rules) return rules;
    layers.push(rules.rules);
  }
  let parsedModel: GatewayConfig['model'];
  if (model !== undefined) {
    if (!isObject(model)) return { error: `${GATEWAY_ENV}.model must be an object` };
    if (typeof model.secretSha256 !== 'string' || !SHA256_HEX.test(model.secretSha256)) return { error: `${GATEWAY_ENV}.model.secretSha256 must be a SHA-256 in 64 lowercase hex digits` };
    let upstream: URL;
    try {
      upstream = new URL(String(model.upstream));
    } catch {
      return { error: `${GATEWAY_ENV}.model.upstream must be a URL like https://api.anthropic.com` };
    }
    if ((upstream.protocol !== 'http:' && upstream.protocol !== 'https:') || upstream.username || upstream.password || upstream.search || upstream.hash) {
      return { error: `${GATEWAY_ENV}.model.upstream must be an http: or https: URL without credentials, query or fragment` };
    }
    if (!isObject(model.setHeaders)) return { error: `${GATEWAY_ENV}.model.setHeaders must be an object of header names to values` };
    const setHeaders: Record<string, string> = {};
    for (const [name, header] of Object.entries(model.setHeaders)) {
      if (!HEADER_NAME.test(name) || typeof header !== 'string' || !HEADER_VALUE.test(header)) return { error: `${GATEWAY_ENV}.model.setHeaders has an invalid header ${JSON.stringify(name.slice(0, 64))}` };
      setHeaders[name.toLowerCase()] = header;
    }
    parsedModel = Object.freeze({ secretSha256: model.secretSha256, upstream: upstream.href, setHeaders: Object.freeze(setHeaders) });
  }
  if (names !== undefined && (!Array.isArray(names) || !names.every((name) => typeof name === 'string' && name.length > 0 && name.length <= 253))) {
    return { error: `${GATEWAY_ENV}.names must be a list of host names` };
  }
  if (listen !== undefined && (typeof listen !== 'string' || !/^\d{1,3}(\.\d{1,3}){3}$/.test(listen))) {
    return { error: `${GATEWAY_ENV}.listen must be an IPv4 address` };
  }
  return Object.freeze({
    port: port as number,
    ...(typeof listen === 'string' ? { listen } : {}),
    allow: Object.freeze({ base: base.rules, layers: Object.freeze(layers) }),
    ...(parsedModel ? { model: parsedModel } : {}),
    ...(names ? { names: Object.freeze((names as string[]).map((name) => name.toLowerCase())) } : {}),
  });
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function parseRules(list: unknown[], where: string): { readonly rules: readonly EgressRule[] } | { readonly error: string } {
  const rules: EgressRule[] = [];
  for (const [i, item] of list.entries()) {
    const rule = item as EgressRule;
    const ok = isObject(item) && typeof rule.host === 'string' && typeof rule.wildcard === 'boolean'
      && (rule.port === undefined || Number.isInteger(rule.port));
    const parsed = ok ? parseEgressEntry(formatRule(rule)) : undefined;
    if (!parsed || 'error' in parsed || parsed.host !== rule.host || parsed.wildcard !== rule.wildcard || parsed.port !== rule.port) {
      return { error: `${GATEWAY_ENV}.${where}[${i}] is not a rule like {"host": "registry.npmjs.org", "wildcard": false, "port": 443}` };
    }
    rules.push(Object.freeze(parsed));
  }
  return { rules: Object.freeze(rules) };
}

/**
 * One line the gateway prints on its standard output, as JSON: `listening` once it takes
 * connections, `blocked` for each connection refused (the host and port asked for, and how).
 */
export type GatewayNotice =
  | { readonly event: 'listening'; readonly port: number }
  | { readonly event: 'blocked'; readonly host: string; readonly port: number; readonly via: 'connect' | 'http' | 'tls' };

/** The notice on one output line of the gateway; undefined for anything else (a line it did not write as a notice). */
export function parseNotice(line: string): GatewayNotice | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const value = JSON.parse(line) as Record<string, unknown>;
    if (value.event === 'listening' && typeof value.port === 'number') return { event: 'listening', port: value.port };
    if (value.event === 'blocked' && typeof value.host === 'string' && typeof value.port === 'number'
      && (value.via === 'connect' || value.via === 'http' || value.via === 'tls')) {
      return { event: 'blocked', host: value.host.slice(0, 255), port: value.port, via: value.via };
    }
  } catch {
    // Not a notice.
  }
  return undefined;
}
