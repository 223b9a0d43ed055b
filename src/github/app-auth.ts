import type { Logger } from 'pino';
import { Probot, ProbotOctokit } from 'probot';
import type { OctokitLike } from './comments-api.js';

/** What the app authenticates with, and where GitHub is. */
export interface AppAuthOptions {
  readonly appId: string;
  readonly privateKey: string;
  /** GitHub Enterprise Server's REST API (`https://<host>/api/v3`); github.com when absent. */
  readonly baseUrl?: string | undefined;
  /** Where Probot and the Octokits it makes log. */
  readonly logger: Logger;
}

/**
 * The GitHub App's authentication, as every process uses it. Probot is used for what it is best
 * at: app and installation tokens, fetched and renewed as they expire. Webhooks are cldpd's own
 * (see createWebhookReceiver).
 */
export interface AppAuth {
  /** An Octokit authenticated as installation `installationId`. Rejects when GitHub refuses the app or the installation. */
  octokitFor(installationId: number): Promise<OctokitLike>;
  /** An Octokit authenticated as the app itself (its JSON Web Token): for `GET /app` and installation tokens. */
  appOctokit(): Promise<OctokitLike>;
  /**
   * The app's own login, `<slug>[bot]`, asked of GitHub once and remembered; a failure is not
   * remembered, so the next call asks again.
   */
  appLogin(): Promise<string>;
  /** An Octokit authenticated by `token` alone (no retries on GitHub's throttling), as a run's token is. */
  tokenOctokit(token: string): OctokitLike;
}

/** Builds the app's {@link AppAuth}; nothing is asked of GitHub until an Octokit is used. */
export function appAuth(options: AppAuthOptions): AppAuth {
  const { appId, privateKey, baseUrl, logger } = options;
  const at = baseUrl ? { baseUrl } : {};
  const github = new Probot({ appId, privateKey, log: logger, ...at });
  const appOctokit = async () => (await github.auth()) as unknown as OctokitLike;
  let login: Promise<string> | undefined;
  return {
    octokitFor: async (installationId) => (await github.auth(installationId)) as unknown as OctokitLike,
    appOctokit,
    appLogin: () => (login ??= (async () => {
      const { data } = await (await appOctokit()).request('GET /app');
      return `${(data as { slug: string }).slug}[bot]`;
    })().catch((err: unknown) => {
      login = undefined; // ask again next time
      throw err;
    })),
    tokenOctokit: (token) => new ProbotOctokit({ auth: { token }, log: logger, throttle: { enabled: false }, ...at }) as unknown as OctokitLike,
  };
}
