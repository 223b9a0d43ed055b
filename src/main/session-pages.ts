import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import type { OctokitLike } from '../github/comments-api.js';
import { repoReader, repoVisibility } from '../github/repo-access.js';
import { SessionFeedStore } from '../queue/session-feed.js';
import { pageAccess } from '../web/page-access.js';
import { sessionLinkKey, sessionLinkSigner, type SessionLinkSigner } from '../web/session-link.js';
import { sessionRoutes } from '../web/session-routes.js';

/** The feed store of a deployment, as its config bounds it. */
export function feedStore(redis: Redis, config: Config): SessionFeedStore {
  return new SessionFeedStore(redis, { maxEntries: config.live.maxEntries, maxBytes: config.live.maxBytes, keepSeconds: config.live.keepSeconds });
}

/** The signer of session page links under the deployment's public address. */
export function linkSigner(config: Config, privateKey: string): SessionLinkSigner {
  return sessionLinkSigner(sessionLinkKey(privateKey), config.live.publicUrl);
}

/** The session pages of `cldpd serve`: what its HTTP server hands them, and what it closes. */
export interface SessionPages {
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

/**
 * Builds the live session pages (src/web/session-routes.ts) with sign-in for private
 * repositories (src/web/page-access.ts): the feed is read from Redis only, so this server
 * needs no Docker and may run on another machine than the workers.
 */
export function sessionPages(config: Config, privateKey: string, redis: Redis, octokitFor: (installationId: number) => Promise<OctokitLike>, logger: Logger): SessionPages {
  const { clientId, clientSecret, webUrl, baseUrl } = config.github;
  const log = logger.child({ name: 'session-pages' });
  const key = sessionLinkKey(privateKey);
  const access = pageAccess({
    visibility: repoVisibility(octokitFor),
    reads: repoReader(octokitFor),
    ...(clientId && clientSecret ? { signIn: { clientId, clientSecret, webUrl, apiUrl: baseUrl ?? 'https://api.github.com' } } : {}),
    key,
    publicUrl: config.live.publicUrl,
    alwaysSignIn: config.live.signIn === 'always',
    logger: log,
  });
  const routes = sessionRoutes({ store: feedStore(redis, config), links: sessionLinkSigner(key, config.live.publicUrl), gate: access.gate, logger: log });
  return {
    handle: (req, res) => access.handle(req, res) || routes.handle(req, res),
    close: () => routes.close(),
  };
}
