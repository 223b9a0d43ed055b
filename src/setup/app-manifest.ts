import { parse as parseYaml } from 'yaml';

/**
 * The GitHub App cldpd registers, as pure builders: app.yml read into an {@link AppDefinition},
 * the manifest GitHub's manifest flow takes, and the addresses around it (where webhooks go,
 * which address the browser used, whether it is this machine's). Nothing here reads files, the
 * network or the environment (src/setup/setup-server.ts does).
 */

/** app.yml, shipped in the package root beside `dist/`: `dist/setup/app-manifest.js` → `../../app.yml`. */
export const APP_YML_URL = new URL('../../app.yml', import.meta.url);

/** What app.yml declares: the app cldpd registers, with exactly the events and permissions it uses. */
export interface AppDefinition {
  readonly name: string;
  readonly description: string;
  /** The app's homepage. */
  readonly url: string;
  readonly public: boolean;
  readonly defaultEvents: readonly string[];
  /** Permission name → `read` or `write`. */
  readonly defaultPermissions: Readonly<Record<string, string>>;
}

/** A GitHub App manifest as the manifest flow takes it (`POST <github>/settings/apps/new`, field `manifest`). */
export interface AppManifest {
  readonly name: string;
  readonly url: string;
  readonly description: string;
  readonly hook_attributes: { readonly url: string; readonly active: true };
  readonly redirect_url: string;
  /** Where GitHub sends people back after they sign in to see a private repository's session page. */
  readonly callback_urls: readonly string[];
  readonly setup_url?: string;
  readonly public: false;
  readonly default_events: readonly string[];
  readonly default_permissions: Readonly<Record<string, string>>;
}

/** A malformed app.yml; the message names the field. */
export class AppDefinitionError extends Error {
  override readonly name = 'AppDefinitionError';
}

/**
 * Parses app.yml's text into an {@link AppDefinition}.
 * @throws AppDefinitionError naming the field that is missing or of the wrong type.
 */
export function parseAppDefinition(text: string): AppDefinition {
  const raw: unknown = parseYaml(text);
  if (typeof raw !== 'object' || raw === null) throw new AppDefinitionError('app.yml is not a YAML mapping; reinstall cldpd to restore it.');
  const doc = raw as Record<string, unknown>;
  const text_ = (field: string, fallback?: string): string => {
    const value = doc[field] ?? fallback;
    if (typeof value !== 'string' || value === '') throw new AppDefinitionError(`app.yml: "${field}" must be a non-empty string.`);
    return value;
  };
  const events = doc.default_events;
  if (!Array.isArray(events) || !events.every((e): e is string => typeof e === 'string')) {
    throw new AppDefinitionError('app.yml: "default_events" must be a list of event names.');
  }
  const permissions = doc.default_permissions;
  if (typeof permissions !== 'object' || permissions === null || Array.isArray(permissions)
    || !Object.values(permissions).every((v) => v === 'read' || v === 'write')) {
    throw new AppDefinitionError('app.yml: "default_permissions" must map each permission to read or write.');
  }
  return Object.freeze({
    name: text_('name'),
    description: typeof doc.description === 'string' ? doc.description : '',
    url: text_('url', 'https://github.com/'),
    public: doc.public === true,
    defaultEvents: Object.freeze([...events]),
    defaultPermissions: Object.freeze({ ...(permissions as Record<string, string>) }),
  });
}

/** Where GitHub delivers the app's webhooks: the smee.io channel when one is set, else cldpd's own webhook path. */
export function webhookUrlFor(baseUrl: string, webhookPath: string, webhookProxyUrl?: string): string {
  if (webhookProxyUrl) return webhookProxyUrl;
  return `${baseUrl.replace(/\/+$/, '')}/${webhookPath.replace(/^\/+/, '')}`;
}

/**
 * The manifest for the manifest flow. Its webhook URL is one cldpd serves (`<base><webhookPath>`,
 * or the smee channel cldpd follows); GitHub sends the browser back to `<base>/setup/callback`.
 * No `setup_url`: after installing, cldpd has been restarted as the webhook server, which serves
 * no setup pages.
 */
export function buildManifest(app: AppDefinition, at: { baseUrl: string; webhookPath: string; webhookProxyUrl?: string | undefined; name?: string | undefined }): AppManifest {
  const base = at.baseUrl.replace(/\/+$/, '');
  return {
    name: at.name || app.name,
    url: app.url,
    description: app.description,
    hook_attributes: { url: webhookUrlFor(base, at.webhookPath, at.webhookProxyUrl), active: true },
    redirect_url: `${base}/setup/callback`,
    callback_urls: [`${base}/auth/github/callback`],
    public: false,
    default_events: app.defaultEvents,
    default_permissions: app.defaultPermissions,
  };
}

const HOST_HEADER = /^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$/;

/**
 * The base URL the browser used to reach cldpd: its `Host` header and the protocol (https only
 * when a proxy in front says so with `X-Forwarded-Proto`). A Host header that is not a host name
 * or address gives `fallback`.
 */
export function requestBaseUrl(hostHeader: string | undefined, forwardedProto: string | undefined, fallback: string): string {
  if (!hostHeader || !HOST_HEADER.test(hostHeader)) return fallback;
  const proto = forwardedProto?.split(',')[0]?.trim().toLowerCase() === 'https' ? 'https' : 'http';
  return `${proto}://${hostHeader.toLowerCase()}`;
}

/**
 * Why GitHub cannot deliver webhooks to `url` (a loopback, private or link-local address, or a
 * name only this network knows), or undefined when it looks reachable from the internet.
 */
export function unreachableReason(url: string): string | undefined {
  let host: string;
  try {
    host = new URL(url).hostname.toLowerCase().replace(/^\[|\]$/g, '');
  } catch {
    return 'it is not a URL';
  }
  if (host === 'localhost' || host.endsWith('.localhost')) return `${host} is this machine only`;
  if (host === '0.0.0.0' || host === '::') return `${host} is no address GitHub can send to`;
  if (/^127\./.test(host) || host === '::1') return `${host} is a loopback address (this machine only)`;
  if (/^(10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/.test(host) || /^f[cd][0-9a-f]{2}:/.test(host) || /^fe80:/.test(host)) {
    return `${host} is a private address, not reachable from the internet`;
  }
  if (!host.includes('.') && !host.includes(':')) return `${host} is a local machine name, unknown outside this network`;
  if (/\.(local|lan|internal|home\.arpa)$/.test(host)) return `${host} is a local network name, unknown outside this network`;
  return undefined;
}

/** Whether `host` (a URL's hostname, brackets allowed) names this machine's loopback: `localhost`, `*.localhost`, 127.0.0.0/8, ::1. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h.endsWith('.localhost') || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h) || h === '::1';
}

/** Whether a socket's remote address (as Node gives it, IPv4-mapped included) is a loopback one. */
export function isLoopbackAddress(address: string): boolean {
  return isLoopbackHost(address.replace(/^::ffff:/i, ''));
}

/** GitHub's web origin: `https://github.com`, or the GitHub Enterprise Server of `apiBaseUrl` (`https://ghe/api/v3` → `https://ghe`). */
export function githubWebUrl(apiBaseUrl: string | undefined): string {
  if (!apiBaseUrl) return 'https://github.com';
  const url = new URL(apiBaseUrl);
  return url.origin;
}

const ORG_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;

/** Whether `name` can be a GitHub organization's login. */
export function isOrgName(name: string): boolean {
  return ORG_NAME.test(name);
}

/** GitHub App names: at most 34 characters, no control characters. */
export function isAppName(name: string): boolean {
  return name.trim() === name && name.length > 0 && name.length <= 34 && !/[\u0000-\u001f\u007f]/.test(name);
}

/** Where the manifest is POSTed: the personal account's new-app page, or the organization's; `state` comes back on the callback. */
export function newAppUrl(githubUrl: string, org: string | undefined, state: string): string {
  const owner = org ? `/organizations/${encodeURIComponent(org)}` : '';
  return `${githubUrl}${owner}/settings/apps/new?state=${encodeURIComponent(state)}`;
}
