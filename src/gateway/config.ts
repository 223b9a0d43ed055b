import type { EgressAllowList } from './rules.js';

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
  readonly allow: EgressAllowList;
  readonly model?: {
    readonly secretSha256: string;
    /** The provider's base URL, like https://api.anthropic.com (a path prefix is kept). */
    readonly upstream: string;
    readonly setHeaders: Readonly<Record<string, string>>;
  };
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
