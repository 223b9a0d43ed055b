import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isWellFormed } from '../../src/core/text.js';
import type { OctokitLike } from '../../src/github/comments-api.js';

/** A request the fake GitHub API received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
}

/** A request the fake GitHub API refused as GitHub would, with the status and message it answered. */
export interface RejectedRequest extends RecordedRequest {
  readonly status: number;
  readonly message: string;
}

/** A comment on the fake GitHub. */
export interface FakeComment {
  id: number;
  issue: string;
  body: string;
  edits: number;
  html_url: string;
  /** Who wrote it: the app unless a test says otherwise. */
  author?: { login: string; type: string };
  /** When it was last written (ms), for `since`. */
  updatedAt?: number;
  /** Every body it had, oldest first: the one posted, then each edit's. */
  history?: string[];
}

/** A pull request on the fake GitHub. */
export interface FakePull {
  /** `owner/repo`. */
  repo: string;
  number: number;
  title: string;
  /** The head branch (of the same repository). */
  head: string;
  base: string;
  body: string | null;
  draft: boolean;
  html_url: string;
  state: 'open' | 'closed';
  merged?: boolean;
  /** Who opened it: the app (an installation token) or a person. */
  user: { login: string; type: string };
}

/** The app's own login on the fake GitHub (`GET /app` answers slug "cldpd"). */
export const FAKE_APP_LOGIN = 'cldpd[bot]';

/**
 * A local HTTP fake of the GitHub REST API, reached through GHE_HOST (paths under /api/v3):
 * installation tokens, collaborator permissions, repository contents, issue comments.
 * Records every request; can be told to fail for a while. Like GitHub, it refuses (422) a
 * comment body that is not well-formed Unicode, and lists each such refusal in `rejected`.
 */
export class FakeGitHub {
  readonly requests: RecordedRequest[] = [];
  /** Requests refused as invalid (not the `failWrites` faults); a test asserts this stays empty. */
  readonly rejected: RejectedRequest[] = [];
  readonly comments: FakeComment[] = [];
  /** login (or `owner/repo:login` for one repository) → role_name; anyone else is not a collaborator (404). */
  readonly roles = new Map<string, string>();
  /** `owner/repo#n` → open or closed, for GET of an issue; an issue not set is 404 (deleted). */
  readonly issueStates = new Map<string, 'open' | 'closed'>();
  /** `owner/repo` → contents of .github/cldpd.yml. */
  readonly settings = new Map<string, string>();
  /** While positive, comment writes answer with this status (and count down). */
  failWrites: { status: number; times: number; retryAfter?: number } | undefined;
  /** `owner/repo` → what `GET /repos/{owner}/{repo}` answers (a test points clone_url at its git server). */
  readonly repos = new Map<string, { cloneUrl: string; defaultBranch: string }>();
  /** Installation tokens minted so far, with what each was asked for. */
  readonly tokens: Array<{ token: string; installationId: number; repositories?: string[]; permissions?: Record<string, string>; expiresAt: number }> = [];
  /** How long a minted token is said to live (GitHub: an hour). */
  tokenLifetimeMs = 3600_000;
  /** Called with each token minted for named repositories: a test lets its git server accept it. */
  onToken: ((token: FakeGitHub['tokens'][number]) => void) | undefined;
  /** Tokens revoked (`DELETE /installation/token` with the token itself), in order; revoking one again, or an expired one, is refused (401) as GitHub does. */
  readonly revoked: string[] = [];
  /** Called with each token revoked: a test makes its git server refuse it. */
  onRevoke: ((token: string) => void) | undefined;
  /** The branch heads of a repository, for `git/matching-refs/heads/` (a test answers from its git server); 404 when unset. */
  heads: ((owner: string, repo: string) => Promise<Array<{ name: string; sha: string }>>) | undefined;
  /** Pull requests opened through the API (or put here by a test), in every repository. */
  readonly pulls: FakePull[] = [];
  /** While positive, `POST …/pulls` answers with this status and message (and counts down), as GitHub refusing it would. */
  refusePulls: { status: number; message: string; times: number } | undefined;
  /** When set, how long `POST …/pulls` waits after the pull request is opened before it answers, in ms (a crash in between leaves it opened). */
  pullAnswerDelayMs = 0;
  /** When set, how long `GET …/pulls` (a list) waits before it answers, in ms (a worker killed meanwhile). */
  pullListDelayMs = 0;
  /** `owner/repo` of repositories without draft pull requests (GitHub's free plan, private repositories): a draft is refused (422). */
  readonly noDrafts = new Set<string>();
  /** `owner/repo#n` → the issue's title for `GET` of an issue; `Issue <n>` when unset (as the e2e payloads name them). */
  readonly issueTitles = new Map<string, string>();
  /** What `GET /app` says the app is sent and may do: by default an app registered before reviews and checks. */
  app: { events: string[]; permissions: Record<string, string> } = { events: ['issues', 'issue_comment'], permissions: { issues: 'write', contents: 'write', pull_requests: 'write', metadata: 'read' } };
  /** Pull requests a test sets up, by `owner/repo#n`, for `GET …/pulls/{n}`: head branch and commit, and whether the head is in a fork. */
  readonly pullHeads = new Map<string, { ref: string; sha: string; fork?: boolean }>();
  /** Reviews by `owner/repo#pull` and id, for `GET …/pulls/{n}/reviews/{id}`. */
  readonly reviews = new Map<string, { body: string; state: string; user: string }>();
  /** Review comments of pull requests, for `GET …/pulls/{n}/comments` (`pull`: `owner/repo#n`). */
  readonly reviewComments: Array<{ pull: string; id: number; reviewId: number; path: string; line?: number; startLine?: number; diffHunk: string; body: string; user: string; inReplyTo?: number }> = [];
  /** Check runs per commit, for `GET …/commits/{sha}/check-runs`. */
  readonly checkRuns = new Map<string, Array<{ name: string; conclusion: string; title?: string; summary?: string; text?: string }>>();
  /** `owner/repo` → whether `GET /repos/{owner}/{repo}` says it is public (default private). */
  readonly visibility = new Map<string, 'public' | 'private'>();
  /** Who signs in through the OAuth authorize page (GitHub would ask the browser's user). */
  signInAs = 'alice';
  /** The OAuth client the app has (the manifest flow's client_id and client_secret). */
  readonly oauthClient = { id: 'Iv1.fakeclient', secret: 'fake-client-secret' };
  /** User tokens handed out by sign-in → whose they are. */
  readonly userTokens = new Map<string, string>();
  private readonly oauthCodes = new Map<string, { login: string; redirectUri: string }>();
  /** While positive, token requests for named repositories answer 422 as GitHub does for a permission the app lacks (and count down). */
  refuseTokens = 0;
  /** When set, how long each comment write waits before it is applied and answered, in ms (a slow API). */
  writeDelay: ((request: RecordedRequest) => number) | undefined;
  private server: Server | undefined;
  private nextId = 1000;

  /** `127.0.0.1:<port>`, for GHE_HOST. */
  host = '';

  /** Listens on `address` (containers reach it when it is 0.0.0.0); `host` is always the loopback one. */
  async start(address = '127.0.0.1'): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, address, resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  /** The port it listens on. */
  get port(): number {
    return Number(this.host.split(':')[1]);
  }

  async close(): Promise<void> {
    await new Promise<void>((resolve) => this.server?.close(() => resolve()));
  }

  /** Comments on one issue (`owner/repo#n`), oldest first. */
  commentsOn(issue: string): FakeComment[] {
    return this.comments.filter((c) => c.issue === issue);
  }

  /** Writes (POST/PATCH of comments) received so far. */
  writes(): RecordedRequest[] {
    return this.requests.filter((r) => (r.method === 'POST' || r.method === 'PATCH') && r.path.includes('/comments'));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    let text = '';
    for await (const chunk of req) text += chunk;
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/^\/api\/v3/, '');
    const body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
    const method = req.method ?? 'GET';
    const recorded: RecordedRequest = { method, path, body, at: Date.now() };
    this.requests.push(recorded);
    const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(data));
    };
    let m: RegExpExecArray | null;
    if (method === 'GET' && path === '/app') return send(200, { id: 1, slug: 'cldpd', name: 'cldpd', ...this.app });
    const bearer = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const user = bearer ? this.userTokens.get(bearer) : undefined;
    if (method === 'GET' && url.pathname === '/login/oauth/authorize') {
      // GitHub asks its user to approve, then sends the browser back with a one-time code.
      const redirectUri = url.searchParams.get('redirect_uri') ?? '';
      if (url.searchParams.get('client_id') !== this.oauthClient.id || !redirectUri) return send(404, { message: 'Not Found' });
      const code = randomBytes(10).toString('hex');
      this.oauthCodes.set(code, { login: this.signInAs, redirectUri });
      const back = new URL(redirectUri);
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state') ?? '');
      res.writeHead(302, { location: back.toString() });
      res.end();
      return;
    }
    if (method === 'POST' && url.pathname === '/login/oauth/access_token') {
      const grant = this.oauthCodes.get(String(body.code));
      this.oauthCodes.delete(String(body.code));
      if (!grant || body.client_id !== this.oauthClient.id || body.client_secret !== this.oauthClient.secret || body.redirect_uri !== grant.redirectUri) {
        return send(200, { error: 'bad_verification_code', error_description: 'The code passed is incorrect or expired.' });
      }
      const token = `ghu_${randomBytes(18).toString('hex')}`;
      this.userTokens.set(token, grant.login);
      return send(200, { access_token: token, token_type: 'bearer', scope: '' });
    }
    if (method === 'GET' && path === '/user') return user ? send(200, { login: user, id: 1 }) : send(401, { message: 'Bad credentials' });
    if (method === 'DELETE' && path === '/installation/token') {
      // GitHub: the token in the Authorization header revokes itself; a revoked or unknown one is bad credentials.
      const minted = this.tokens.find((t) => t.token === bearer);
      if (!bearer || !minted || minted.expiresAt <= Date.now() || this.revoked.includes(bearer)) return send(401, { message: 'Bad credentials' });
      this.revoked.push(bearer);
      this.onRevoke?.(bearer);
      res.writeHead(204);
      res.end();
      return;
    }
    if (method === 'POST' && (m = /^\/app\/installations\/(\d+)\/access_tokens$/.exec(path))) {
      const repositories = body.repositories as string[] | undefined;
      if (repositories && this.refuseTokens > 0) {
        this.refuseTokens -= 1;
        return send(422, { message: 'The permissions requested are not granted to this installation.' });
      }
      const minted = {
        token: `ghs_${randomBytes(18).toString('hex')}`, installationId: Number(m[1]), expiresAt: Date.now() + this.tokenLifetimeMs,
        ...(repositories ? { repositories } : {}), ...(body.permissions ? { permissions: body.permissions as Record<string, string> } : {}),
      };
      this.tokens.push(minted);
      if (repositories) this.onToken?.(minted);
      return send(201, { token: minted.token, expires_at: new Date(minted.expiresAt).toISOString(), permissions: minted.permissions ?? {}, repository_selection: repositories ? 'selected' : 'all' });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/git\/matching-refs\/heads\/(.*)$/.exec(path))) {
      if (!this.heads) return send(404, { message: 'Not Found' });
      const page = Number(url.searchParams.get('page') ?? 1);
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const prefix = decodeURIComponent(m[3] as string);
      const all = (await this.heads(m[1] as string, m[2] as string)).filter((h) => h.name.startsWith(prefix)).map((h) => ({ ref: `refs/heads/${h.name}`, object: { sha: h.sha, type: 'commit' } }));
      return send(200, all.slice((page - 1) * perPage, page * perPage));
    }
    // Pull requests' heads, reviews, review comments and check runs, as a test set them up.
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)$/.exec(path))) {
      const key = `${m[1]}/${m[2]}#${m[3]}`;
      const opened = this.pulls.find((p) => p.repo === `${m?.[1]}/${m?.[2]}` && p.number === Number(m?.[3]));
      const head = this.pullHeads.get(key) ?? (opened ? { ref: opened.head, sha: '0'.repeat(40) } : undefined);
      if (!head) return send(404, { message: 'Not Found' });
      return send(200, { number: Number(m[3]), state: 'open', html_url: `https://github.com/${m[1]}/${m[2]}/pull/${m[3]}`, head: { ref: head.ref, sha: head.sha, repo: { id: head.fork ? 2 : 1 } }, base: { ref: 'main', repo: { id: 1 } } });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/reviews\/(\d+)$/.exec(path))) {
      const review = this.reviews.get(`${m[1]}/${m[2]}#${m[3]}/${m[4]}`);
      if (!review) return send(404, { message: 'Not Found' });
      return send(200, { id: Number(m[4]), body: review.body, state: review.state, user: { login: review.user, type: 'User' } });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/pulls\/(\d+)\/comments$/.exec(path))) {
      const pull = `${m[1]}/${m[2]}#${m[3]}`;
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const page = Number(url.searchParams.get('page') ?? 1);
      const all = this.reviewComments.filter((c) => c.pull === pull).sort((a, b) => (url.searchParams.get('direction') === 'desc' ? b.id - a.id : a.id - b.id));
      return send(200, all.slice((page - 1) * perPage, page * perPage).map((c) => ({
        id: c.id, pull_request_review_id: c.reviewId, path: c.path, line: c.line ?? null, start_line: c.startLine ?? null, diff_hunk: c.diffHunk, body: c.body,
        user: { login: c.user, type: 'User' }, ...(c.inReplyTo ? { in_reply_to_id: c.inReplyTo } : {}),
      })));
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/commits\/([0-9a-f]+)\/check-runs$/.exec(path))) {
      const runs = this.checkRuns.get(m[3] as string) ?? [];
      return send(200, { total_count: runs.length, check_runs: runs.map((r, i) => ({ id: i + 1, name: r.name, status: 'completed', conclusion: r.conclusion, html_url: `https://github.com/${m?.[1]}/${m?.[2]}/runs/${i + 1}`, output: { title: r.title ?? null, summary: r.summary ?? null, text: r.text ?? null } })) });
    }
    // ── Pull requests: list (state, head filters), open (one open per head, drafts), as GitHub does ──
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/pulls$/.exec(path))) {
      const repo = `${m[1]}/${m[2]}`;
      const asApi = (p: FakePull) => ({ number: p.number, title: p.title, body: p.body, html_url: p.html_url, state: p.state, draft: p.draft, merged_at: p.merged ? new Date(0).toISOString() : null, head: { ref: p.head }, base: { ref: p.base }, user: p.user });
      if (method === 'POST') {
        if (this.refusePulls && this.refusePulls.times > 0) {
          this.refusePulls.times -= 1;
          return send(this.refusePulls.status, { message: this.refusePulls.message });
        }
        const head = String(body.head ?? '');
        const base = String(body.base ?? '');
        const title = String(body.title ?? '');
        const invalid = (message: string) => {
          this.rejected.push({ ...recorded, status: 422, message });
          return send(422, { message: 'Validation Failed', errors: [{ resource: 'PullRequest', code: 'custom', message }] });
        };
        if (!title || title.length > 256 || !isWellFormed(title)) return invalid('title is missing, over 256 characters or not well-formed');
        if (typeof body.body === 'string' && (body.body.length > 65_536 || !isWellFormed(body.body))) return invalid('body is too long (maximum is 65536 characters) or not well-formed');
        if (!head || !base || head === base) return invalid(`head ${head} and base ${base} must be two branches`);
        if (this.pulls.some((p) => p.repo === repo && p.head === head && p.state === 'open')) {
          // Not a mistake of the caller: what GitHub answers when it is asked twice (a retry, a race).
          return send(422, { message: `Validation Failed: A pull request already exists for ${m[1]}:${head}.`, errors: [{ resource: 'PullRequest', code: 'custom', message: `A pull request already exists for ${m[1]}:${head}.` }] });
        }
        if (body.draft === true && this.noDrafts.has(repo)) return send(422, { message: 'Validation Failed: Draft pull requests are not supported in this repository.' });
        const number = this.pulls.filter((p) => p.repo === repo).length + 1;
        const pull: FakePull = {
          repo, number, title, head, base, body: typeof body.body === 'string' ? body.body : null, draft: body.draft === true,
          html_url: `https://github.com/${repo}/pull/${number}`, state: 'open', user: user ? { login: user, type: 'User' } : { login: FAKE_APP_LOGIN, type: 'Bot' },
        };
        this.pulls.push(pull);
        if (this.pullAnswerDelayMs > 0) await new Promise((r) => setTimeout(r, this.pullAnswerDelayMs));
        return send(201, asApi(pull));
      }
      if (this.pullListDelayMs > 0) await new Promise((r) => setTimeout(r, this.pullListDelayMs));
      const state = url.searchParams.get('state') ?? 'open';
      const head = url.searchParams.get('head') ?? '';
      const branch = head.includes(':') ? head.slice(head.indexOf(':') + 1) : head;
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const found = this.pulls.filter((p) => p.repo === repo && (!head || p.head === branch) && (state === 'all' || p.state === state)).reverse();
      return send(200, found.slice(0, perPage).map(asApi));
    }
    // ── end of pull requests ──
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)$/.exec(path))) {
      const repo = this.repos.get(`${m[1]}/${m[2]}`);
      const visibility = this.visibility.get(`${m[1]}/${m[2]}`);
      if (!repo && visibility) return send(200, { full_name: `${m[1]}/${m[2]}`, name: m[2], owner: { login: m[1] }, private: visibility === 'private', visibility });
      if (!repo) return send(404, { message: 'Not Found' });
      return send(200, { full_name: `${m[1]}/${m[2]}`, name: m[2], owner: { login: m[1] }, clone_url: repo.cloneUrl, html_url: `https://github.com/${m[1]}/${m[2]}`, default_branch: repo.defaultBranch, private: visibility !== 'public' });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)$/.exec(path))) {
      const state = this.issueStates.get(`${m[1]}/${m[2]}#${m[3]}`);
      if (!state) return send(404, { message: 'Not Found' });
      return send(200, { number: Number(m[3]), state, title: this.issueTitles.get(`${m[1]}/${m[2]}#${m[3]}`) ?? `Issue ${m[3]}`, html_url: `https://github.com/${m[1]}/${m[2]}/issues/${m[3]}` });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/.exec(path))) {
      const login = decodeURIComponent(m[3] as string);
      const role = this.roles.get(`${m[1]}/${m[2]}:${login}`) ?? this.roles.get(login);
      if (!role) return send(404, { message: 'Not Found' });
      return send(200, { permission: role === 'maintain' ? 'write' : role === 'triage' ? 'read' : role, role_name: role, user: { login: m[3] } });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/.exec(path))) {
      const settings = this.settings.get(`${m[1]}/${m[2]}`);
      if (settings === undefined || decodeURIComponent(m[3] as string) !== '.github/cldpd.yml') return send(404, { message: 'Not Found' });
      return send(200, { type: 'file', encoding: 'base64', content: Buffer.from(settings).toString('base64') });
    }
    const delay = (method === 'POST' || method === 'PATCH') && path.includes('/comments') ? this.writeDelay?.(recorded) ?? 0 : 0;
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    if ((method === 'POST' || method === 'PATCH') && this.failWrites && this.failWrites.times > 0 && path.includes('/comments')) {
      this.failWrites.times -= 1;
      const headers: Record<string, string> = this.failWrites.retryAfter !== undefined ? { 'retry-after': String(this.failWrites.retryAfter) } : {};
      return send(this.failWrites.status, { message: this.failWrites.status === 403 ? 'You have exceeded a secondary rate limit' : 'Server Error' }, headers);
    }
    if ((method === 'POST' || method === 'PATCH') && path.includes('/comments') && typeof body.body === 'string' && !isWellFormed(body.body)) {
      // GitHub answers so for half a surrogate pair (an emoji cut in two).
      const message = 'Validation Failed: body is not well-formed Unicode';
      this.rejected.push({ ...recorded, status: 422, message });
      return send(422, { message, errors: [{ resource: 'IssueComment', field: 'body', code: 'invalid' }] });
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path))) {
      const issue = `${m[1]}/${m[2]}#${m[3]}`;
      if (method === 'POST') {
        const id = this.nextId++;
        const comment: FakeComment = { id, issue, body: String(body.body ?? ''), edits: 0, html_url: `http://github.test/${m[1]}/${m[2]}/issues/${m[3]}#issuecomment-${id}`, updatedAt: Date.now() };
        comment.history = [comment.body];
        this.comments.push(comment);
        return send(201, { id, body: comment.body, html_url: comment.html_url });
      }
      const since = url.searchParams.has('since') ? Date.parse(url.searchParams.get('since') ?? '') : 0;
      const perPage = Number(url.searchParams.get('per_page') ?? 30);
      const page = Number(url.searchParams.get('page') ?? 1);
      const listed = this.commentsOn(issue).filter((c) => (c.updatedAt ?? 0) >= since).slice((page - 1) * perPage, page * perPage);
      return send(200, listed.map((c) => ({ id: c.id, body: c.body, html_url: c.html_url, user: c.author ?? { login: FAKE_APP_LOGIN, type: 'Bot' }, updated_at: new Date(c.updatedAt ?? 0).toISOString() })));
    }
    if (method === 'PATCH' && (m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(path))) {
      const comment = this.comments.find((c) => c.id === Number(m?.[3]));
      if (!comment) return send(404, { message: 'Not Found' });
      comment.body = String(body.body ?? '');
      comment.edits += 1;
      comment.updatedAt = Date.now();
      (comment.history ??= []).push(comment.body);
      return send(200, { id: comment.id, body: comment.body, html_url: comment.html_url });
    }
    send(404, { message: `fake GitHub has no route for ${method} ${path}` });
  }
}

/**
 * An OctokitLike that talks to `github` as an installation's Octokit would (the route's
 * placeholders filled, the rest as query or JSON body); a refusal rejects with its `status`.
 */
export function fakeOctokit(github: FakeGitHub, token?: string): OctokitLike {
  return {
    async request(route, parameters = {}) {
      const [method = 'GET', template = '/'] = route.split(' ');
      const rest: Record<string, unknown> = { ...parameters };
      const path = template.replace(/\{(\w+)\}/g, (_, name: string) => {
        const value = rest[name];
        delete rest[name];
        return encodeURIComponent(String(value));
      });
      const url = new URL(`http://${github.host}/api/v3${path}`);
      if (method === 'GET') for (const [k, v] of Object.entries(rest)) url.searchParams.set(k, String(v));
      const headers = { 'content-type': 'application/json', ...(token ? { authorization: `token ${token}` } : {}) };
      const response = await fetch(url, { method, headers, ...(method === 'GET' || method === 'DELETE' ? {} : { body: JSON.stringify(rest) }) });
      const data = response.status === 204 ? undefined : (await response.json()) as unknown;
      if (!response.ok) throw Object.assign(new Error((data as { message?: string }).message ?? `HTTP ${response.status}`), { status: response.status });
      return { data };
    },
  };
}
