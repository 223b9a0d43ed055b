import { describe, expect, it } from 'vitest';
import { sessionLinkKey, sessionLinkSigner } from '../../src/web/session-link.js';

describe('session page links', () => {
  const signer = sessionLinkSigner(sessionLinkKey('-----BEGIN RSA PRIVATE KEY-----\nabc\n-----END RSA PRIVATE KEY-----'), 'https://cldpd.example.com/');
  const now = Date.UTC(2026, 10, 23);
  const parts = (link: string) => {
    const url = new URL(link);
    return { id: decodeURIComponent(url.pathname.split('/')[2] ?? ''), exp: url.searchParams.get('exp'), sig: url.searchParams.get('sig') };
  };

  it('a link opens its own session until it expires', () => {
    const link = signer.link('hello-0a1b2c3d', now + 3600_000);
    expect(link).toMatch(/^https:\/\/cldpd\.example\.com\/sessions\/hello-0a1b2c3d\?exp=\d+&sig=[A-Za-z0-9_-]{43}$/);
    const { id, exp, sig } = parts(link);
    expect(signer.verify(id, exp, sig, now)).toBe(true);
    expect(signer.verify(id, exp, sig, now + 3600_000)).toBe(false);
  });

  it.each([
    ['another session', (p: ReturnType<typeof parts>) => ({ ...p, id: 'hello-0a1b2c3e' })],
    ['a later expiry', (p: ReturnType<typeof parts>) => ({ ...p, exp: String(Number(p.exp) + 86_400) })],
    ['a changed signature', (p: ReturnType<typeof parts>) => ({ ...p, sig: `${(p.sig ?? '').slice(0, -1)}${p.sig?.endsWith('A') ? 'B' : 'A'}` })],
    ['no signature', (p: ReturnType<typeof parts>) => ({ ...p, sig: null })],
    ['no expiry', (p: ReturnType<typeof parts>) => ({ ...p, exp: null })],
    ['an expiry that is not a number', (p: ReturnType<typeof parts>) => ({ ...p, exp: `${p.exp}.5` })],
  ])('a link with %s does not verify', (_name, tamper) => {
    const t = tamper(parts(signer.link('hello-0a1b2c3d', now + 3600_000)));
    expect(signer.verify(t.id, t.exp, t.sig, now)).toBe(false);
  });

  it('a link signed with another app key does not verify', () => {
    const other = sessionLinkSigner(sessionLinkKey('another key'), 'https://cldpd.example.com');
    const { id, exp, sig } = parts(other.link('hello-0a1b2c3d', now + 3600_000));
    expect(signer.verify(id, exp, sig, now)).toBe(false);
  });
});

describe('the session link key', () => {
  it('is the same for one private key however it is written: PKCS#1 or PKCS#8, with or without a final newline', async () => {
    const { generateKeyPairSync } = await import('node:crypto');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
    const pkcs1 = privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
    const pkcs8 = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const key = sessionLinkKey(pkcs1);
    expect(sessionLinkKey(`${pkcs1.trim()}\n\n`).equals(key)).toBe(true);
    expect(sessionLinkKey(pkcs8).equals(key)).toBe(true);
    expect(sessionLinkKey(generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString()).equals(key)).toBe(false);
  });
});
