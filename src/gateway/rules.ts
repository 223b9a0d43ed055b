// The allow-list of a run's egress gateway. This directory runs inside the gateway's own
// container with nothing but Node: it imports `node:` modules and its own files only.

/** The ports a host listed without one may be reached on: HTTP and HTTPS. */
export const DEFAULT_PORTS: readonly number[] = Object.freeze([80, 443]);

/** One entry of an egress allow-list: a host (exactly, or every name under `*.suffix`) and its port, or {@link DEFAULT_PORTS}. */
export interface EgressRule {
  /** Lowercase, without a trailing dot; for a wildcard, the suffix without `*.`. */
  readonly host: string;
  readonly wildcard: boolean;
  readonly port?: number;
}

/**
 * What a run may reach: a connection is allowed when a `base` rule allows it (what cldpd
 * itself needs: the issue's GitHub hosts), or when every one of `layers` does (the pod's
 * list, then the repository's narrower one). No layers: nothing beyond `base`.
 */
export interface EgressAllowList {
  readonly base: readonly EgressRule[];
  readonly layers: ReadonlyArray<readonly EgressRule[]>;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;
const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** `host` in the form rules compare: lowercase, no trailing dot, no IPv6 brackets. */
export function normalHost(host: string): string {
  const lower = host.trim().toLowerCase().replace(/\.$/, '');
  return lower.startsWith('[') && lower.endsWith(']') ? lower.slice(1, -1) : lower;
}

/** True for a host name of letters, digits and hyphens in dot-separated labels, or an IPv4 address. */
export function isHostName(host: string): boolean {
  if (IPV4.test(host)) return true;
  return host.length <= 253 && host.split('.').every((label) => LABEL.test(label));
}

/**
 * Parses one entry as written in pod.json or .github/cldpd.yml: `"registry.npmjs.org"`,
 * `"*.pythonhosted.org"`, `"github.com:443"`, `"10.0.0.5:8080"`. Returns the rule, or what is
 * wrong with it, in words.
 */
export function parseEgressEntry(text: string): EgressRule | { readonly error: string } {
  if (typeof text !== 'string' || text.trim() === '') return { error: 'must be a host name like "registry.npmjs.org", "*.pythonhosted.org" or "github.com:443"' };
  const match = /^(.*?)(?::(\d{1,5}))?$/.exec(text.trim());
  const name = normalHost(match?.[1] ?? '');
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (port !== undefined && (port < 1 || port > 65535)) return { error: `has port ${port}: a port is 1 to 65535` };
  const wildcard = name.startsWith('*.');
  const host = wildcard ? name.slice(2) : name;
  if (host.includes('*')) return { error: `${JSON.stringify(text)}: "*" may only start a name, as in "*.example.com"` };
  if (!isHostName(host)) return { error: `${JSON.stringify(text)} is not a host name (letters, digits, "-" and "." only, optionally "*." first and ":port" last)` };
  if (wildcard && !host.includes('.')) return { error: `${JSON.stringify(text)} would allow a whole top-level domain: name the domain, as in "*.example.${host}"` };
  if (wildcard && IPV4.test(host)) return { error: `${JSON.stringify(text)}: "*." goes before a domain name, not an address` };
  return port === undefined ? { host, wildcard } : { host, wildcard, port };
}

/** True when `rule` allows `host` (normalised, see {@link normalHost}) on `port`. */
export function ruleAllows(rule: EgressRule, host: string, port: number): boolean {
  if (rule.port !== undefined ? rule.port !== port : !DEFAULT_PORTS.includes(port)) return false;
  return rule.wildcard ? host.endsWith(`.${rule.host}`) : host === rule.host;
}

/** True when `list` allows `host` on `port` (see {@link EgressAllowList}). */
export function allows(list: EgressAllowList, host: string, port: number): boolean {
  const name = normalHost(host);
  if (list.base.some((rule) => ruleAllows(rule, name, port))) return true;
  return list.layers.length > 0 && list.layers.every((layer) => layer.some((rule) => ruleAllows(rule, name, port)));
}

/** A rule as pod.json writes it. */
export function formatRule(rule: EgressRule): string {
  return `${rule.wildcard ? '*.' : ''}${rule.host}${rule.port !== undefined ? `:${rule.port}` : ''}`;
}
