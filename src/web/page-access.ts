import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FeedHead } from '../queue/session-feed.js';
import type { PageDecision, PageGate } from './session-routes.js';
import { escapeHtml, renderNotice } from './session-page.js';

/** Whether a repository is public; asked with the app's installation. Rejects when GitHub does not say. */
export type RepoVisibility = (installationId: number, owner: string, repo: string) => Promise<'public' | 'private'>;

/**
 * Whether `login` can read the repository, asked with the app's installation (the
 * collaborator-permission API, which counts organization members and teams too). Rejects
 * when GitHub does not say (an error, a rate limit): that is never taken for a "no".
 */
export type RepoReader = (installationId: number, owner: string, repo: string, login: string) => Promise<boolean>;

/** Where a person signs in with GitHub: the app's own OAuth client (the setup page writes it to `.env`). */
export interface GitHubSignInConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  /** `https://github.com`, or the GitHub Enterprise Server's address. */
  readonly webUrl: string;
  /** `https://api.github.com`, or `<GHES>/api/v3`. */
  readonly apiUrl: string;
}

/** What the page access needs. */
export interface PageAccessOptions {
  readonly visibility: RepoVisibility;
  readonly reads: RepoReader;
  /** Absent: private repositories' pages cannot be shown, and say what the operator sets. */
  readonly signIn?: GitHubSignInConfig;
  /** Signs the sign-in cookies (the session link key serves). */
  readonly key: Buffer;
  /** The address people reach this server by (CLDPD_PUBLIC_URL), for GitHub's callback. */
  readonly publicUrl: string;
  /** Every page needs sign-in, whatever the repository's visibility: on GitHub Enterprise Server "public" means the company. */
  readonly alwaysSignIn?: boolean;
  readonly fetch?: typeof fetch;
  readonly logger: { warn(fields: object, message: string): void };
  readonly now?: () => number;
}

/** The sign-in routes and the gate of session pages. */
export interface PageAccess {
  readonly gate: PageGate;
  /** Answers `/auth/github` and `/auth/github/callback` (true), else leaves the request (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

const STATE_COOKIE = 'cldpd_oauth';
const LOGIN_COOKIE = 'cldpd_login';
/** A sign-in lasts a working day. */
const LOGIN_SECONDS = 8 * 3600;
const STATE_SECONDS = 600;
/** How long an answer of GitHub's (a repository's visibility, a person's access) is trusted before it is asked again. */
const TRUST_MS = 300_000;
const CACHE_MAX = 10_000;

function cookies(req: IncomingMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) found.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return found;
}

/** Only a session page of this server may be returned to after sign-in: never another site. */
function safeReturn(path: string | null): string {
  return path && /^\/sessions\/[A-Za-z0-9._-]+(\?[A-Za-z0-9=&%._-]*)?$/.test(path) ? path : '/';
}

/** A small cache of GitHub's answers, each trusted for TRUST_MS. */
class Answers<T> {
  private readonly known = new Map<string, { value: T; until: number }>();
  constructor(private readonly now: () => number) {}
  get(key: string): T | undefined {
    const hit = this.known.get(key);
    return hit && hit.until > this.now() ? hit.value : undefined;
  }
  set(key: string, value: T): void {
    if (this.known.size >= CACHE_MAX) this.known.clear();
    this.known.set(key, { value, until: this.now() + TRUST_MS });
  }
}

/**
 * Who may open a session page once its signed link verified (session-link.ts): the link
 * alone for a public repository (anyone can read its issues); for a private one (or one
 * whose visibility GitHub does not tell, or any on GitHub Enterprise Server) also GitHub
 * sign-in through the app's OAuth client, after which the app asks GitHub whether that
 * person can read the repository (trusted 5 minutes). Someone who cannot gets the same 404
 * as a bad link; when GitHub does not answer, 503. No person's token is kept: the sign-in
 * cookie holds the login, signed; the OAuth state is a signed cookie too, so nothing a
 * stranger sends is stored.
 */
export function pageAccess(options: PageAccessOptions): PageAccess {
  const doFetch = options.fetch ?? fetch;
  const now = options.now ?? Date.now;
  const secure = options.publicUrl.startsWith('https:');
  const callback = `${options.publicUrl}/auth/github/callback`;
  const visible = new Answers<'public' | 'private'>(now);
  const readers = new Answers<boolean>(now);

  const mac = (value: string): string => createHmac('sha256', options.key).update(`cookie\n${value}`).digest('base64url');
  const seal = (parts: readonly string[]): string => {
    const value = parts.map((p) => Buffer.from(p).toString('base64url')).join('.');
    return `${value}.${mac(value)}`;
  };
  const open = (sealed: string | undefined): string[] | undefined => {
    if (!sealed) return undefined;
    const dot = sealed.lastIndexOf('.');
    const value = sealed.slice(0, dot);
    const expected = Buffer.from(mac(value));
    const given = Buffer.from(sealed.slice(dot + 1));
    if (dot < 0 || given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    const parts = value.split('.').map((p) => Buffer.from(p, 'base64url').toString());
    return Number(parts.at(-1)) > now() ? parts.slice(0, -1) : undefined; // the last part is the expiry
  };
  const cookie = (name: string, value: string, seconds: number): string =>
    `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${seconds}${secure ? '; Secure' : ''}`;

  async function visibilityOf(head: FeedHead): Promise<'public' | 'private'> {
    if (options.alwaysSignIn) return 'private';
    const key = `${head.owner}/${head.repo}`.toLowerCase();
    const known = visible.get(key);
    if (known) return known;
    try {
      const value = await options.visibility(head.installationId, head.owner, head.repo);
      visible.set(key, value);
      return value;
    } catch (err) {
      // Not cached: the next request asks again. Meanwhile the page needs sign-in.
      options.logger.warn({ err, repo: key }, 'could not learn whether the repository is public; its session page needs sign-in for now');
      return 'private';
    }
  }

  const gate: PageGate = async (req, head): Promise<PageDecision> => {
    if ((await visibilityOf(head)) === 'public') return { allow: true, full: false };
    if (!options.signIn) {
      return {
        allow: false, status: 403,
        html: renderNotice('Sign-in is not set up', `This session's repository is private, so its page opens only for people who sign in with GitHub and can read it. This cldpd server has no OAuth client for that yet: its operator sets <code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code> (from the GitHub App's settings page) and adds <code>${escapeHtml(callback)}</code> as the app's callback URL.`),
      };
    }
    const login = open(cookies(req).get(LOGIN_COOKIE))?.[0];
    if (!login) return { allow: false, status: 302, location: `/auth/github?return=${encodeURIComponent(req.url ?? '/')}` };
    const key = `${login}\n${head.owner}/${head.repo}`.toLowerCase();
    let reads = readers.get(key);
    if (reads === undefined) {
      reads = await options.reads(head.installationId, head.owner, head.repo, login); // a rejection is a 503, never a "no"
      readers.set(key, reads);
    }
    return reads ? { allow: true, full: true } : { allow: false, status: 404 };
  };

  function redirect(res: ServerResponse, location: string, setCookies: string[] = []): void {
    res.writeHead(302, { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', ...(setCookies.length > 0 ? { 'set-cookie': setCookies } : {}) });
    res.end();
  }

  function refuse(res: ServerResponse, status: number, title: string, body: string): void {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(renderNotice(title, body));
  }

  function start(res: ServerResponse, url: URL, signIn: GitHubSignInConfig): void {
    const state = randomBytes(18).toString('base64url');
    const authorize = new URL('/login/oauth/authorize', signIn.webUrl);
    authorize.searchParams.set('client_id', signIn.clientId);
    authorize.searchParams.set('redirect_uri', callback);
    authorize.searchParams.set('state', state);
    // The state and where to return live in this browser's signed cookie: a sign-in started
    // elsewhere cannot be finished here, and no request makes the server keep anything.
    redirect(res, authorize.toString(), [cookie(STATE_COOKIE, seal([state, safeReturn(url.searchParams.get('return')), String(now() + STATE_SECONDS * 1000)]), STATE_SECONDS)]);
  }

  async function finish(req: IncomingMessage, res: ServerResponse, url: URL, signIn: GitHubSignInConfig): Promise<void> {
    const [state, returnTo] = open(cookies(req).get(STATE_COOKIE)) ?? [];
    const code = url.searchParams.get('code') ?? '';
    if (!state || !returnTo || state !== url.searchParams.get('state') || !code) {
      refuse(res, 400, 'Sign-in did not complete', 'This sign-in was already used, has expired, or was started in another browser. Open the session page link again.');
      return;
    }
    const exchange = await doFetch(new URL('/login/oauth/access_token', signIn.webUrl), {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'user-agent': 'cldpd' },
      body: JSON.stringify({ client_id: signIn.clientId, client_secret: signIn.clientSecret, code, redirect_uri: callback }),
    });
    const granted = (await exchange.json().catch(() => ({}))) as { access_token?: string; error_description?: string };
    const user = granted.access_token
      ? await doFetch(`${signIn.apiUrl}/user`, { headers: { authorization: `Bearer ${granted.access_token}`, accept: 'application/vnd.github+json', 'user-agent': 'cldpd' } })
      : undefined;
    const { login } = ((await user?.json().catch(() => ({}))) ?? {}) as { login?: string };
    if (!user?.ok || !login) {
      options.logger.warn({ status: user?.status ?? exchange.status, error: granted.error_description }, 'GitHub refused the sign-in');
      refuse(res, 403, 'GitHub refused the sign-in', 'Open the session page link again to sign in anew.');
      return;
    }
    // Only the login is kept, in this browser's signed cookie; the token is dropped here.
    redirect(res, returnTo, [cookie(LOGIN_COOKIE, seal([login, String(now() + LOGIN_SECONDS * 1000)]), LOGIN_SECONDS), cookie(STATE_COOKIE, '', 0)]);
  }

  return {
    gate,
    handle(req, res) {
      if (req.method !== 'GET') return false;
      const path = (req.url ?? '/').split('?', 1)[0];
      if (path !== '/auth/github' && path !== '/auth/github/callback') return false;
      const url = new URL(req.url ?? '/', 'http://cldpd.invalid');
      const signIn = options.signIn;
      if (!signIn) {
        refuse(res, 404, 'Sign-in is not set up', 'This cldpd server has no GitHub OAuth client (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET).');
        return true;
      }
      if (path === '/auth/github') {
        start(res, url, signIn);
        return true;
      }
      finish(req, res, url, signIn).catch((err: unknown) => {
        options.logger.warn({ err }, 'sign-in with GitHub failed');
        if (!res.headersSent) refuse(res, 502, 'Sign-in failed', 'GitHub did not answer; open the session page link again shortly.');
      });
      return true;
    },
  };
}
