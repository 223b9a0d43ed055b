import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the fake GitHub API received. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly body: Record<string, unknown>;
  readonly at: number;
}

/** A comment on the fake GitHub. */
export interface FakeComment {
  id: number;
  issue: string;
  body: string;
  edits: number;
  html_url: string;
}

/**
 * A local HTTP fake of the GitHub REST API, reached through GHE_HOST (paths under /api/v3):
 * installation tokens, collaborator permissions, repository contents, issue comments.
 * Records every request; can be told to fail for a while.
 */
export class FakeGitHub {
  readonly requests: RecordedRequest[] = [];
  readonly comments: FakeComment[] = [];
  /** login → role_name; anyone else is not a collaborator (404). */
  readonly roles = new Map<string, string>();
  /** `owner/repo` → contents of .github/cldpd.yml. */
  readonly settings = new Map<string, string>();
  /** While positive, comment writes answer with this status (and count down). */
  failWrites: { status: number; times: number; retryAfter?: number } | undefined;
  private server: Server | undefined;
  private nextId = 1000;

  /** `127.0.0.1:<port>`, for GHE_HOST. */
  host = '';

  async start(): Promise<this> {
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server?.listen(0, '127.0.0.1', resolve));
    this.host = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
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
    this.requests.push({ method, path, body, at: Date.now() });
    const send = (status: number, data: unknown, headers: Record<string, string> = {}): void => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(data));
    };
    let m: RegExpExecArray | null;
    if (method === 'POST' && /^\/app\/installations\/\d+\/access_tokens$/.test(path)) {
      return send(201, { token: 'ghs_faketoken', expires_at: new Date(Date.now() + 3600_000).toISOString(), permissions: {}, repository_selection: 'all' });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/collaborators\/([^/]+)\/permission$/.exec(path))) {
      const role = this.roles.get(decodeURIComponent(m[3] as string));
      if (!role) return send(404, { message: 'Not Found' });
      return send(200, { permission: role === 'maintain' ? 'write' : role === 'triage' ? 'read' : role, role_name: role, user: { login: m[3] } });
    }
    if (method === 'GET' && (m = /^\/repos\/([^/]+)\/([^/]+)\/contents\/(.+)$/.exec(path))) {
      const settings = this.settings.get(`${m[1]}/${m[2]}`);
      if (settings === undefined || decodeURIComponent(m[3] as string) !== '.github/cldpd.yml') return send(404, { message: 'Not Found' });
      return send(200, { type: 'file', encoding: 'base64', content: Buffer.from(settings).toString('base64') });
    }
    if ((method === 'POST' || method === 'PATCH') && this.failWrites && this.failWrites.times > 0 && path.includes('/comments')) {
      this.failWrites.times -= 1;
      const headers: Record<string, string> = this.failWrites.retryAfter !== undefined ? { 'retry-after': String(this.failWrites.retryAfter) } : {};
      return send(this.failWrites.status, { message: this.failWrites.status === 403 ? 'You have exceeded a secondary rate limit' : 'Server Error' }, headers);
    }
    if ((m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/(\d+)\/comments$/.exec(path))) {
      const issue = `${m[1]}/${m[2]}#${m[3]}`;
      if (method === 'POST') {
        const id = this.nextId++;
        const comment: FakeComment = { id, issue, body: String(body.body ?? ''), edits: 0, html_url: `http://github.test/${m[1]}/${m[2]}/issues/${m[3]}#issuecomment-${id}` };
        this.comments.push(comment);
        return send(201, { id, body: comment.body, html_url: comment.html_url });
      }
      return send(200, this.commentsOn(issue).map((c) => ({ id: c.id, body: c.body, html_url: c.html_url })));
    }
    if (method === 'PATCH' && (m = /^\/repos\/([^/]+)\/([^/]+)\/issues\/comments\/(\d+)$/.exec(path))) {
      const comment = this.comments.find((c) => c.id === Number(m?.[3]));
      if (!comment) return send(404, { message: 'Not Found' });
      comment.body = String(body.body ?? '');
      comment.edits += 1;
      return send(200, { id: comment.id, body: comment.body, html_url: comment.html_url });
    }
    send(404, { message: `fake GitHub has no route for ${method} ${path}` });
  }
}
