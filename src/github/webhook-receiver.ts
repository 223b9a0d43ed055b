import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/** GitHub caps webhook payloads at 25 MB; a larger body is not GitHub's. */
export const MAX_WEBHOOK_BYTES = 25 * 1024 * 1024;

/** What the receiver hands on: a verified delivery, named by what its signature covers. */
export interface VerifiedDelivery {
  /** The SHA-256 of the signed body: the same for a redelivery and for a replay of it. */
  readonly key: string;
  /** GitHub's `X-GitHub-Delivery` id: for logs only, since the signature does not cover it. */
  readonly deliveryId: string;
  readonly event: string;
  readonly payload: unknown;
}

/**
 * What became of a request to the webhook path. `accepted`: queued for its intake step (a
 * redelivery too); `ignored`: verified, but nothing cldpd acts on; `bad_signature`: no
 * signature, or one that does not match the body; `refused`: turned away before its body was
 * read (method, content type, missing event header), or while it trickled in in tiny pieces; `too_large`: over the body limit;
 * `busy`: too many large bodies at once; `bad_json`: signed, but not JSON; `failed`: it could
 * not be queued (GitHub may redeliver it).
 */
export type DeliveryOutcome = 'accepted' | 'ignored' | 'bad_signature' | 'refused' | 'too_large' | 'busy' | 'bad_json' | 'failed';

/** Options of {@link createWebhookReceiver}. */
export interface WebhookReceiverOptions {
  readonly secret: string;
  readonly path: string;
  /**
   * Handles a verified delivery; the response waits for it (it only enqueues). Resolves with
   * `ignored` when it acted on nothing; anything else counts as `accepted`.
   */
  readonly receive: (delivery: VerifiedDelivery) => Promise<'accepted' | 'ignored' | void>;
  /**
   * Told what became of each request to the webhook path, once it is answered, with the
   * `X-GitHub-Event` it named ('' when none). The event header is not signed: whoever counts
   * by it must bound what it keeps. Must not throw.
   */
  readonly observe?: (event: string, outcome: DeliveryOutcome) => void;
  readonly log: { warn(fields: object, message: string): void; error(fields: object, message: string): void };
  /** Largest body read; default {@link MAX_WEBHOOK_BYTES}. */
  readonly maxBodyBytes?: number;
  /**
   * Bytes of unverified bodies held at once across all requests, beyond the first
   * {@link SMALL_BODY_BYTES} of each; default 4 × the largest body.
   */
  readonly maxBufferedBytes?: number;
}

/**
 * The part of every body that never counts against the shared allowance: the deliveries
 * cldpd acts on (an issue and a comment of at most 65,536 characters each) fit in it, so a
 * stranger holding the allowance with large bodies cannot turn GitHub's deliveries away.
 */
export const SMALL_BODY_BYTES = 1024 * 1024;

/**
 * A body may arrive in this many pieces whatever their size; past it, pieces must average at
 * least {@link MIN_PIECE_BYTES}. Each piece costs an event and two hash updates, so a body
 * streamed a byte at a time is refused (400) rather than paid for a million times per MiB.
 */
export const FREE_PIECES = 1024;
/** The least average size of a body's pieces past the first {@link FREE_PIECES}. */
export const MIN_PIECE_BYTES = 64;
/** The first buffer a body is copied into; it doubles as the body grows. */
const FIRST_CAPACITY = 16 * 1024;

const SIGNATURE = /^sha256=([0-9a-f]{64})$/;
const JSON_TYPE = /^\s*application\/json\s*(?:;|$)/i;

function answer(res: ServerResponse, status: number, text: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) return;
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', ...headers });
  res.end(`${text}\n`);
}

function header(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}

/**
 * The webhook endpoint. Everything that can be refused without reading the body is refused
 * first (method, path, content type, headers, a signature of the wrong shape, a declared size
 * over the limit); the body is then read into one buffer with a limit per request, a limit on
 * the large unverified bodies all requests hold together and a least average piece size,
 * hashed as it arrives, and dropped unless its HMAC matches. So a stranger can make cldpd hold
 * at most `maxBufferedBytes` plus 1 MiB per open connection (the server bounds those), however
 * the body is cut up, never parse anything, and never reach Redis. A verified delivery is handed on keyed by the hash of its
 * body, which the signature covers: a replay with a new delivery id is the same delivery.
 */
export function createWebhookReceiver(options: WebhookReceiverOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const maxBody = options.maxBodyBytes ?? MAX_WEBHOOK_BYTES;
  const maxBuffered = options.maxBufferedBytes ?? 4 * maxBody;
  let buffered = 0;

  return (req, res) => {
    const path = (req.url ?? '').split('?')[0]?.replace(/\/+$/, '') ?? '';
    // The configured path, and the root: an app registered through the setup page (GitHub's
    // manifest flow, as Probot writes it) sends its webhooks to "<base URL>/".
    if (path !== options.path.replace(/\/+$/, '') && !(path === '' && req.method === 'POST')) return false;
    const event = header(req, 'x-github-event');
    const observe = (outcome: DeliveryOutcome): void => {
      try {
        options.observe?.(event ?? '', outcome);
      } catch {
        // Counting a delivery never changes how it is answered.
      }
    };
    if (req.method !== 'POST') {
      answer(res, 405, 'Webhooks are POSTed here.', { allow: 'POST' });
      observe('refused');
      return true;
    }
    const refuse = (status: number, text: string, outcome: DeliveryOutcome = 'refused'): true => {
      answer(res, status, text, { connection: 'close' });
      observe(outcome);
      // Read nothing more: once the answer is out, the connection goes, body and all.
      res.once('finish', () => req.destroy());
      return true;
    };
    if (!JSON_TYPE.test(header(req, 'content-type') ?? '')) return refuse(415, 'Content-Type must be application/json.');
    // The event is not signed either: it only routes, and each route checks the payload has its event's shape.
    const deliveryId = header(req, 'x-github-delivery') ?? '';
    const signature = SIGNATURE.exec(header(req, 'x-hub-signature-256') ?? '')?.[1];
    if (!event) return refuse(400, 'X-GitHub-Event is missing.');
    if (!signature) return refuse(401, 'X-Hub-Signature-256 is missing or is not "sha256=<64 hex>".', 'bad_signature');
    const declared = Number(header(req, 'content-length') ?? Number.NaN);
    if (declared > maxBody) return refuse(413, `The body is over ${maxBody} bytes.`, 'too_large');

    const hmac = createHmac('sha256', options.secret);
    const digest = createHash('sha256');
    // A body in one piece is kept as it came; one in several is copied into one buffer that
    // grows by doubling (never sized from Content-Length, which costs a stranger nothing to
    // claim): what a request holds is that
    // buffer, whatever the size of the pieces it arrives in (a Buffer per 1-byte piece would
    // cost some 200 bytes of heap per byte).
    let first: Buffer | undefined;
    let body: Buffer | undefined;
    let size = 0;
    let pieces = 0;
    let held = 0;
    let done = false;
    const release = () => {
      buffered -= held;
      held = 0;
    };
    const fail = (status: number, text: string, outcome: DeliveryOutcome) => {
      if (done) return;
      done = true;
      release();
      body = first = undefined;
      answer(res, status, text, { connection: 'close' });
      observe(outcome);
      req.destroy();
    };
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      pieces += 1;
      if (size > maxBody) return fail(413, `The body is over ${maxBody} bytes.`, 'too_large');
      if (pieces > FREE_PIECES && size < pieces * MIN_PIECE_BYTES) {
        return fail(400, `The body arrives in pieces of under ${MIN_PIECE_BYTES} bytes (${pieces} pieces for ${size} bytes); send it in larger writes.`, 'refused');
      }
      // What the request holds once this piece is in: the piece alone, or the buffer.
      const holds = first === undefined && body === undefined ? chunk.length : size > (body?.length ?? 0)
        ? Math.min(maxBody, Math.max(size, 2 * (body?.length ?? 0), FIRST_CAPACITY))
        : body?.length ?? 0;
      const large = Math.max(0, holds - SMALL_BODY_BYTES - held);
      if (buffered + large > maxBuffered) return fail(503, 'Too many large deliveries at once; retry later.', 'busy');
      buffered += large;
      held += large;
      if (first === undefined && body === undefined) {
        first = chunk;
      } else {
        if (!body || size > body.length) {
          const grown = Buffer.allocUnsafe(holds);
          (body ?? first)?.copy(grown, 0, 0, size - chunk.length);
          body = grown;
          first = undefined;
        }
        chunk.copy(body, size - chunk.length);
      }
      hmac.update(chunk);
      digest.update(chunk);
    });
    req.on('error', () => {
      done = true;
      release();
      body = first = undefined;
    });
    req.on('close', () => {
      if (!done) {
        done = true;
        release();
        body = first = undefined;
      }
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      const text = (body ?? first)?.toString('utf8', 0, size) ?? '';
      body = first = undefined;
      release();
      if (!timingSafeEqual(hmac.digest(), Buffer.from(signature, 'hex'))) {
        answer(res, 401, 'The signature does not match the body.');
        return observe('bad_signature');
      }
      let payload: unknown;
      try {
        payload = JSON.parse(text);
      } catch {
        answer(res, 400, 'The body is not JSON.');
        return observe('bad_json');
      }
      options.receive({ key: digest.digest('hex'), deliveryId, event, payload }).then(
        (handled) => {
          answer(res, 200, 'ok');
          observe(handled === 'ignored' ? 'ignored' : 'accepted');
        },
        (err: unknown) => {
          options.log.error({ err, delivery: deliveryId }, 'could not accept a webhook delivery');
          answer(res, 500, 'The delivery could not be queued; GitHub may redeliver it.');
          observe('failed');
        },
      );
    });
    return true;
  };
}
