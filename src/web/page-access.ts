import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FeedHead } from '../queue/session-feed.js';
import type { PageDecision, PageGate } from './session-routes.js';
import { escapeHtml, renderNotice } from './session-page.js';

/** Whether a repository is public; asked with the app's installation (a failure counts as private). */
export type RepoVisibility = (installationId: number, owner: string, repo: string) => Promise<'public' | 'private'>;

/** Where a person signs in with GitHub: the app's own OAuth client (the setup page writes it to `.env`). */
export interface GitHubSignInConfig {
  readonly clientId: string;
  readonly clientSecret: string;
  /** `https://github.com`, or the GitHub Enterprise Server's address. */
  readonly webUrl: string;
  /** `https://api.github.com`, or `<GHES>/api/v3`. */
  readonly apiUrl: string;
}

/** The few Redis commands sign-in keeps its state with (shared by every server process). */
export type SignInStore = {
  set(key: string, value: string, mode: 'EX', seconds: number): Promise<unknown>;
  get(key: string): Promise<string | null>;
  getdel(key: string): Promise<string | null>;
};

/** What the page access needs. */
export interface PageAccessOptions {
  readonly visibility: RepoVisibility;
  /** Absent: private repositories' pages cannot be shown, and say what the operator sets. */
  readonly signIn?: GitHubSignInConfig;
  readonly store: SignInStore;
  /** The address people reach this server by (CLDPD_PUBLIC_URL), for GitHub's callback. */
  readonly publicUrl: string;
  readonly fetch?: typeof fetch;
  readonly logger: { warn(fields: object, message: string): void };
}

/** The sign-in routes and the gate of session pages. */
export interface PageAccess {
  readonly gate: PageGate;
  /** Answers `/auth/github` and `/auth/github/callback` (true), else leaves the request (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
}

const STATE_COOKIE = 'cldpd_oauth_state';
const LOGIN_COOKIE = 'cldpd_login';
/** A sign-in lasts a working day; GitHub's user tokens expire after 8 hours too. */
const LOGIN_SECONDS = 8 * 3600;
/** How long one person's read access to one repository is trusted before GitHub is asked again. */
const ACCESS_SECONDS = 300;
const VISIBILITY_MS = 300_000;
const KEY = 'cldpd:web';

function cookies(req: IncomingMessage): Map<string, string> {
  const found = new Map<string, string>();
  for (const part of (req.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) found.set(part.slice(0, eq).trim(), part.slice(eq + 1).trim());
  }
  return found;
}

function cookie(name: string, value: string, seconds: number, secure: boolean): string {
  return `${name}=${value}; Path=/; HttpOnly; SameSite=Lax; Max-Age=${seconds}${secure ? '; Secure' : ''}`;
}

/** Only a session page of this server may be returned to after sign-in: never another site. */
function safeReturn(path: string | null): string {
  return path && /^\/sessions\/[A-Za-z0-9._-]+(\?[A-Za-z0-9=&%._-]*)?$/.test(path) ? path : '/';
}

/**
 * Who may open a session page, once its signed link verified (session-link.ts): the link
 * alone for a public repository (anyone can read its issue); for a private one (or one
 * whose visibility cannot be learnt) also GitHub sign-in through the app's OAuth client,
 * and the person's own token must read the repository, asked of GitHub (trusted 5 minutes).
 * Someone who cannot read it gets the same 404 as a bad link.
 */
export function pageAccess(options: PageAccessOptions): PageAccess {
  const doFetch = options.fetch ?? fetch;
  const secure = options.publicUrl.startsWith('https:');
  const callback = `${options.publicUrl.replace(/\/+$/, '')}/auth/github/callback`;
  const visible = new Map<string, { value: 'public' | 'private'; until: number }>();

  async function visibilityOf(head: FeedHead): Promise<'public' | 'private'> {
    const key = `${head.owner}/${head.repo}`.toLowerCase();
    const cached = visible.get(key);
    if (cached && cached.until > Date.now()) return cached.value;
    const value = await options.visibility(head.installationId, head.owner, head.repo).catch((err: unknown) => {
      options.logger.warn({ err, repo: key }, 'could not learn whether the repository is public; its session pages need sign-in');
      return 'private' as const;
    });
    if (visible.size > 10_000) visible.clear();
    visible.set(key, { value, until: Date.now() + VISIBILITY_MS });
    return value;
  }

  async function github(path: string, token: string): Promise<Response> {
    return doFetch(`${options.signIn?.apiUrl}${path}`, { headers: { authorization: `Bearer ${token}`, accept: 'application/vnd.github+json', 'user-agent': 'cldpd' } });
  }

  /** True/false once GitHub said whether the signed-in person reads the repository; undefined when the sign-in is gone. */
  async function canRead(loginId: string, head: FeedHead): Promise<boolean | undefined> {
    const raw = await options.store.get(`${KEY}:login:${loginId}`);
    if (!raw) return undefined;
    const { token } = JSON.parse(raw) as { login: string; token: string };
    const accessKey = `${KEY}:access:${loginId}:${head.owner}/${head.repo}`.toLowerCase();
    const known = await options.store.get(accessKey);
    if (known !== null) return known === '1';
    const response = await github(`/repos/${encodeURIComponent(head.owner)}/${encodeURIComponent(head.repo)}`, token);
    await response.arrayBuffer();
    if (response.status === 401) return undefined;
    const reads = response.status === 200;
    await options.store.set(accessKey, reads ? '1' : '0', 'EX', ACCESS_SECONDS);
    return reads;
  }

  const gate: PageGate = async (req, head): Promise<PageDecision> => {
    if ((await visibilityOf(head)) === 'public') return { allow: true };
    if (!options.signIn) {
      return {
        allow: false, status: 403,
        html: renderNotice('Sign-in is not set up', `This session's repository is private, so its page opens only for people who sign in with GitHub and can read it. This cldpd server has no OAuth client for that yet: its operator sets <code>GITHUB_CLIENT_ID</code> and <code>GITHUB_CLIENT_SECRET</code> (from the GitHub App's settings page) and adds <code>${escapeHtml(callback)}</code> as the app's callback URL.`),
      };
    }
    const loginId = cookies(req).get(LOGIN_COOKIE);
    const reads = loginId && /^[A-Za-z0-9_-]{20,64}$/.test(loginId) ? await canRead(loginId, head) : undefined;
    if (reads === true) return { allow: true };
    if (reads === false) return { allow: false, status: 404 };
    return { allow: false, status: 302, location: `/auth/github?return=${encodeURIComponent(req.url ?? '/')}` };
  };

  function redirect(res: ServerResponse, location: string, setCookies: string[] = []): void {
    res.writeHead(302, { location, 'cache-control': 'no-store', 'referrer-policy': 'no-referrer', ...(setCookies.length > 0 ? { 'set-cookie': setCookies } : {}) });
    res.end();
  }

  function refuse(res: ServerResponse, status: number, title: string, body: string): void {
    res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store', 'referrer-policy': 'no-referrer' });
    res.end(renderNotice(title, body));
  }

  async function start(res: ServerResponse, url: URL, signIn: GitHubSignInConfig): Promise<void> {
    const state = randomBytes(24).toString('base64url');
    await options.store.set(`${KEY}:state:${state}`, safeReturn(url.searchParams.get('return')), 'EX', 600);
    const authorize = new URL('/login/oauth/authorize', signIn.webUrl);
    authorize.searchParams.set('client_id', signIn.clientId);
    authorize.searchParams.set('redirect_uri', callback);
    authorize.searchParams.set('state', state);
    // The state is bound to this browser too: a sign-in started elsewhere cannot be finished here.
    redirect(res, authorize.toString(), [cookie(STATE_COOKIE, state, 600, secure)]);
  }

  async function finish(req: IncomingMessage, res: ServerResponse, url: URL, signIn: GitHubSignInConfig): Promise<void> {
    const state = url.searchParams.get('state') ?? '';
    const code = url.searchParams.get('code') ?? '';
    const returnTo = state && cookies(req).get(STATE_COOKIE) === state ? await options.store.getdel(`${KEY}:state:${state}`) : null;
    if (!returnTo || !code) {
      refuse(res, 400, 'Sign-in did not complete', 'This sign-in link was already used, has expired, or was started in another browser. Open the session page link again.');
      return;
    }
    const exchange = await doFetch(new URL('/login/oauth/access_token', signIn.webUrl), {
      method: 'POST',
      headers: { accept: 'application/json', 'content-type': 'application/json', 'user-agent': 'cldpd' },
      body: JSON.stringify({ client_id: signIn.clientId, client_secret: signIn.clientSecret, code, redirect_uri: callback }),
    });
    const granted = (await exchange.json().catch(() => ({}))) as { access_token?: string; error_description?: string };
    if (!granted.access_token) {
      options.logger.warn({ status: exchange.status, error: granted.error_description }, 'GitHub refused the sign-in code');
      refuse(res, 403, 'GitHub refused the sign-in', 'Open the session page link again to sign in anew.');
      return;
    }
    const user = await github('/user', granted.access_token);
    const { login } = (await user.json().catch(() => ({}))) as { login?: string };
    if (!user.ok || !login) {
      refuse(res, 403, 'GitHub refused the sign-in', 'Open the session page link again to sign in anew.');
      return;
    }
    const loginId = randomBytes(24).toString('base64url');
    await options.store.set(`${KEY}:login:${loginId}`, JSON.stringify({ login, token: granted.access_token }), 'EX', LOGIN_SECONDS);
    redirect(res, returnTo, [cookie(LOGIN_COOKIE, loginId, LOGIN_SECONDS, secure), cookie(STATE_COOKIE, '', 0, secure)]);
  }

  return {
    gate,
    handle(req, res) {
      if (req.method !== 'GET') return false;
      const url = new URL(req.url ?? '/', 'http://cldpd.invalid');
      if (url.pathname !== '/auth/github' && url.pathname !== '/auth/github/callback') return false;
      const signIn = options.signIn;
      if (!signIn) {
        refuse(res, 404, 'Sign-in is not set up', 'This cldpd server has no GitHub OAuth client (GITHUB_CLIENT_ID, GITHUB_CLIENT_SECRET).');
        return true;
      }
      const work = url.pathname === '/auth/github' ? start(res, url, signIn) : finish(req, res, url, signIn);
      work.catch((err: unknown) => {
        options.logger.warn({ err }, 'sign-in with GitHub failed');
        if (!res.headersSent) refuse(res, 502, 'Sign-in failed', 'GitHub or Redis did not answer; open the session page link again shortly.');
      });
      return true;
    },
  };
}
