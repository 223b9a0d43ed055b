import { createHmac, createPrivateKey, timingSafeEqual } from 'node:crypto';

/** How a session page link is signed: a key only cldpd's processes hold, and the link's lifetime. */
export interface SessionLinkSigner {
  /** The link to session `sessionId`'s page under `base`, valid until `expiresAt` (ms since the epoch, rounded up to a second). */
  link(sessionId: string, expiresAt: number): string;
  /** Whether `sig` signs session `sessionId` until `exp` (seconds since the epoch) and that time is still ahead of `now`. */
  verify(sessionId: string, exp: string | null, sig: string | null, now?: number): boolean;
}

/**
 * Derives the signing key of session page links from the GitHub App's private key, which
 * every server and worker of one deployment holds and nobody else does: no setting to add,
 * and a new private key (the one step that recovers from a leaked one) also ends every link.
 */
export function sessionLinkKey(privateKey: string): Buffer {
  // The key itself, not its text: a file read with a trailing newline, the "\n"-escaped
  // variable, PKCS#1 or PKCS#8 all give every process the same link key.
  let material: Buffer | string = privateKey.trim();
  try {
    material = createPrivateKey(privateKey).export({ type: 'pkcs8', format: 'der' });
  } catch {
    // Not a PEM key (tests may use any text): its text is the key.
  }
  return createHmac('sha256', material).update('cldpd session page link v1').digest();
}

function signature(key: Buffer, sessionId: string, exp: number): string {
  return createHmac('sha256', key).update(`${sessionId}\n${exp}`).digest('base64url');
}

/**
 * Signs and checks session page links: `<base>/sessions/<id>?exp=<unix seconds>&sig=<HMAC>`.
 * The signature covers the session id and the expiry, so a link opens one session only,
 * until its time; a changed id, time or signature does not verify.
 */
export function sessionLinkSigner(key: Buffer, base: string): SessionLinkSigner {
  const root = base.replace(/\/+$/, '');
  return {
    link(sessionId, expiresAt) {
      const exp = Math.ceil(expiresAt / 1000);
      return `${root}/sessions/${encodeURIComponent(sessionId)}?exp=${exp}&sig=${signature(key, sessionId, exp)}`;
    },
    verify(sessionId, exp, sig, now = Date.now()) {
      if (!exp || !sig || !/^\d{1,12}$/.test(exp)) return false;
      const expected = Buffer.from(signature(key, sessionId, Number(exp)));
      const given = Buffer.from(sig);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) return false;
      return Number(exp) * 1000 > now;
    },
  };
}
