import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FeedHead, SessionFeedStore, StoredEntry } from '../queue/session-feed.js';
import { FeedFollower } from './feed-follower.js';
import { within } from '../core/within.js';
import { SESSION_CSS, SESSION_JS } from './session-assets.js';
import type { SessionLinkSigner } from './session-link.js';
import { renderEntry, renderGap, renderHeader, renderSessionPage } from './session-page.js';

/** Whether a person may see a session: yes, or the answer to give instead (a sign-in redirect, a refusal). */
export type PageDecision =
  /** `full`: the person is known to read the repository, so tool output and instructions are shown in words. */
  | { readonly allow: true; readonly full: boolean }
  | { readonly allow: false; readonly status: number; readonly location?: string; readonly html?: string };

/** Decides, after the link verified, who may see the session of `head` (see PageAccess in page-access.ts). */
export type PageGate = (req: IncomingMessage, head: FeedHead) => Promise<PageDecision>;

/** What the session page routes need. */
export interface SessionRoutesOptions {
  readonly store: Pick<SessionFeedStore, 'head' | 'newest' | 'poll'>;
  readonly links: SessionLinkSigner;
  readonly gate: PageGate;
  readonly logger: { warn(fields: object, message: string): void };
  /** How often open pages look for new entries; default 200 ms. */
  readonly pollMs?: number;
  /**
   * Pages followed live at once by this process; default 100 (keep it well under the HTTP
   * server's connection limit, 256: each holds a connection). More get 503 and their browser tries again.
   */
  readonly maxFollowers?: number;
  /** Pages followed live at once from one address; default 20. */
  readonly maxFollowersPerAddress?: number;
  /** How long one live tail lasts before it is ended (the browser reconnects, and the link and access are checked again); default 5 minutes. */
  readonly streamMs?: number;
  readonly now?: () => number;
}

/** What the session routes answer, and what they hold open. */
export interface SessionRoutes {
  /** Answers the request when it is the session page's (true), else leaves it (false). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  /** Live tails open now. */
  readonly followers: number;
  /** Ends every live tail and stops polling. */
  close(): void;
}

/** No script but the page's own, no style but its own, nothing loaded from elsewhere, never framed. */
const PAGE_HEADERS = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  // The link's signature is in its URL: never hand it to a site the page links to.
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-store',
};

const SESSION_PATH = /^\/sessions\/([A-Za-z0-9._-]{1,120})(\/events)?$/;

/** Larger than this waiting to go to one slow browser, and its live tail is closed (it reconnects where it was). */
const MAX_BUFFERED = 1024 * 1024;

/**
 * What a page shows when it opens: the newest entries, at most this many and at most
 * {@link PAGE_BYTES} of their HTML; a note says how many earlier ones it leaves out.
 */
const PAGE_ENTRIES = 5000;
const PAGE_BYTES = 1024 * 1024;
/** Entries read from Redis at a time, newest first, until the page has what it shows. */
const READ_BATCH = 100;

/** How long a page waits for Redis (and GitHub, through the gate) before it answers 503. */
const READ_MS = 10_000;

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store' });
  res.end('Not found\n');
}

/** `<stream id>/<n>`: a live tail's position, as its browser hands it back when it reconnects. */
function parsePosition(raw: string | undefined): { id: string; n: number } | undefined {
  const match = /^(\d{1,20}-\d{1,20})\/(\d{1,12})$/.exec(raw ?? '');
  return match ? { id: match[1] as string, n: Number(match[2]) } : undefined;
}

/**
 * The live session page: `GET /sessions/<id>?exp&sig` (the transcript so far, server-rendered)
 * and `GET /sessions/<id>/events?exp&sig` (Server-Sent Events: each new entry's HTML, with
 * `<stream id>/<n>` as its event id, so a reconnecting browser resumes exactly after the
 * last entry it has). A link that is unsigned, tampered with or expired, or a session the
 * feed no longer holds, gets the same 404 as any unknown path; then `gate` decides.
 */
export function sessionRoutes(options: SessionRoutesOptions): SessionRoutes {
  const now = options.now ?? Date.now;
  const follower = new FeedFollower(options.store, options.pollMs ?? 200, (err) => options.logger.warn({ err }, 'could not read the live session feeds'));
  const open = new Set<ServerResponse>();
  const perAddress = new Map<string, number>();

  let closed = false;

  /** The session's head and how much the person may see, or undefined once the request was answered otherwise. */
  async function admit(req: IncomingMessage, res: ServerResponse, sessionId: string, url: URL, stream: boolean): Promise<{ head: FeedHead; full: boolean } | undefined> {
    if (!options.links.verify(sessionId, url.searchParams.get('exp'), url.searchParams.get('sig'), now())) {
      notFound(res);
      return undefined;
    }
    const head = await within(READ_MS, options.store.head(sessionId));
    if (!head || head.sessionId !== sessionId) {
      notFound(res);
      return undefined;
    }
    const decision = await within(READ_MS, options.gate(req, head));
    if (res.destroyed || res.writableEnded) return undefined; // the browser left meanwhile
    if (decision.allow) return { head, full: decision.full };
    if (stream && decision.status !== 404) {
      // A live tail is never sent to sign in: 204 tells the browser to stop; the page's
      // script reloads the page, which asks for the sign-in.
      res.writeHead(204, { 'cache-control': 'no-store' });
      res.end();
      return undefined;
    }
    res.writeHead(decision.status, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8', ...(decision.location ? { location: decision.location } : {}) });
    res.end(decision.html ?? (decision.status === 404 ? 'Not found\n' : ''));
    return undefined;
  }

  async function page(req: IncomingMessage, res: ServerResponse, sessionId: string, url: URL): Promise<void> {
    const admitted = await admit(req, res, sessionId, url, false);
    if (!admitted) return;
    const { head, full } = admitted;
    // Newest first, until there is enough to fill the page (an entry's JSON is about as long as its HTML).
    const entries: StoredEntry[] = [];
    let bytes = 0;
    while (entries.length < PAGE_ENTRIES && bytes < PAGE_BYTES) {
      const batch = await within(READ_MS, options.store.newest(sessionId, READ_BATCH, entries.at(-1)?.id));
      for (const stored of batch) bytes += Buffer.byteLength(JSON.stringify(stored.entry));
      entries.push(...batch);
      if (batch.length < READ_BATCH) break;
    }
    entries.reverse();
    const signed = `exp=${encodeURIComponent(url.searchParams.get('exp') ?? '')}&sig=${encodeURIComponent(url.searchParams.get('sig') ?? '')}`;
    const html = renderSessionPage({ head, entries, eventsUrl: `/sessions/${encodeURIComponent(sessionId)}/events?${signed}`, now: now(), full, maxEntries: PAGE_ENTRIES, maxBytes: PAGE_BYTES });
    res.writeHead(200, { ...PAGE_HEADERS, 'content-type': 'text/html; charset=utf-8' });
    res.end(html);
  }

  async function events(req: IncomingMessage, res: ServerResponse, sessionId: string, url: URL): Promise<void> {
    // Listened for first: a browser that leaves while it is admitted must leave nothing behind.
    let stop = (): void => undefined;
    res.on('close', () => stop());
    const admitted = await admit(req, res, sessionId, url, true);
    if (!admitted) return;
    const address = req.socket.remoteAddress ?? '';
    if (closed || follower.followers >= (options.maxFollowers ?? 100) || (perAddress.get(address) ?? 0) >= (options.maxFollowersPerAddress ?? 20)) {
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '10' });
      res.end('Too many live pages are open on this server; try again shortly.\n');
      return;
    }
    const { head, full } = admitted;
    const lastEventId = req.headers['last-event-id'];
    // A reconnecting browser says where it was; a new one, where its page ended.
    const from = parsePosition(typeof lastEventId === 'string' ? lastEventId : undefined) ?? parsePosition(url.searchParams.get('after') ?? undefined) ?? { id: '0-0', n: 0 };
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', 'x-content-type-options': 'nosniff' });
    res.write('retry: 2000\n\n');
    open.add(res);
    perAddress.set(address, (perAddress.get(address) ?? 0) + 1);
    let shown = from.n;
    const send = (entries: readonly StoredEntry[], latest: FeedHead | undefined): void => {
      if (res.writableEnded || res.destroyed) return;
      let chunk = '';
      for (const stored of entries) {
        const gap = stored.n > shown + 1 ? renderGap(shown + 1, stored.n - 1) : '';
        chunk += `id: ${stored.id}/${stored.n}\nevent: entry\ndata: ${JSON.stringify({ n: stored.n, html: gap + renderEntry(stored, full) })}\n\n`;
        shown = Math.max(shown, stored.n);
      }
      if (latest) chunk += `event: head\ndata: ${JSON.stringify({ html: renderHeader(latest, now()) })}\n\n`;
      if (!res.write(chunk) && res.writableLength > MAX_BUFFERED) res.destroy();
    };
    send([], head);
    const unfollow = follower.follow(sessionId, { cursor: from.id, deliver: send });
    // Proxies close a response that stays silent; a comment line every 15 s keeps it open.
    const ping = setInterval(() => {
      if (!res.writableEnded && !res.destroyed) res.write(': ping\n\n');
    }, 15_000);
    ping.unref();
    // A tail ends after a while, and when its link does: the browser reconnects where it
    // was, and the link and the person's access are checked again.
    const expires = Number(url.searchParams.get('exp')) * 1000 - now();
    const end = setTimeout(() => res.end(), Math.max(1000, Math.min(options.streamMs ?? 300_000, expires)));
    end.unref();
    stop = () => {
      stop = () => undefined;
      unfollow();
      clearInterval(ping);
      clearTimeout(end);
      open.delete(res);
      const left = (perAddress.get(address) ?? 1) - 1;
      if (left > 0) perAddress.set(address, left);
      else perAddress.delete(address);
    };
    if (res.destroyed) stop();
  }

  function asset(res: ServerResponse, type: string, body: string): void {
    res.writeHead(200, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'public, max-age=300', 'x-content-type-options': 'nosniff' });
    res.end(body);
  }

  return {
    get followers() {
      return follower.followers;
    },
    handle(req, res) {
      if (req.method !== 'GET') return false;
      let url: URL;
      try {
        url = new URL(req.url ?? '/', 'http://cldpd.invalid');
      } catch {
        return false; // not a path this serves (a URL that does not parse, such as "//")
      }
      if (url.pathname === '/assets/session.js') {
        asset(res, 'text/javascript', SESSION_JS);
        return true;
      }
      if (url.pathname === '/assets/session.css') {
        asset(res, 'text/css', SESSION_CSS);
        return true;
      }
      const match = SESSION_PATH.exec(url.pathname);
      if (!match) return false;
      const sessionId = match[1] as string;
      const work = match[2] ? events(req, res, sessionId, url) : page(req, res, sessionId, url);
      work.catch((err: unknown) => {
        options.logger.warn({ err, session: sessionId }, 'could not serve a session page');
        if (!res.headersSent) {
          res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5' });
          res.end('The session page cannot be read right now (Redis or GitHub does not answer); try again shortly.\n');
        } else res.destroy();
      });
      return true;
    },
    close() {
      closed = true;
      follower.close();
      for (const res of open) res.end();
      open.clear();
    },
  };
}
