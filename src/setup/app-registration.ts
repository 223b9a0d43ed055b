import { createPrivateKey, createSign, type KeyObject } from 'node:crypto';

/**
 * The app's registration with GitHub, as the setup checks it: what the manifest conversion
 * answers, the JSON Web Token that asks GitHub about an imported key, the import form's fields
 * checked, and the `.env` keys each way writes.
 */

/** The keys the manifest flow gives, in the order `.env` gets them. */
export const REGISTERED_KEYS = ['APP_ID', 'PRIVATE_KEY', 'WEBHOOK_SECRET', 'GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET', 'CLDPD_PUBLIC_URL'] as const;
/** The keys an import of an existing app gives. */
export const IMPORTED_KEYS = ['APP_ID', 'PRIVATE_KEY', 'WEBHOOK_SECRET'] as const;

/** What GitHub's manifest conversion answers (the fields cldpd uses). */
export interface Conversion {
  readonly id: number;
  readonly name: string;
  readonly html_url: string;
  readonly pem: string;
  readonly webhook_secret: string;
  readonly client_id: string;
  readonly client_secret: string;
}

/** Whether `data` is a manifest conversion with every field cldpd uses. */
export function isConversion(data: unknown): data is Conversion {
  const d = data as Partial<Record<keyof Conversion, unknown>> | null;
  return typeof d === 'object' && d !== null && typeof d.id === 'number' && typeof d.pem === 'string' && d.pem !== ''
    && typeof d.webhook_secret === 'string' && d.webhook_secret !== '' && typeof d.client_id === 'string'
    && typeof d.client_secret === 'string' && typeof d.html_url === 'string' && typeof d.name === 'string';
}

/** A JSON Web Token that authenticates as the app (RS256, ten minutes at most, as GitHub requires). */
export function appJwt(appId: string, key: KeyObject, now = Math.floor(Date.now() / 1000)): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const unsigned = `${part({ alg: 'RS256', typ: 'JWT' })}.${part({ iat: now - 60, exp: now + 540, iss: appId })}`;
  return `${unsigned}.${createSign('RSA-SHA256').update(unsigned).sign(key, 'base64url')}`;
}

/** The headers of cldpd's setup requests to GitHub's REST API. */
export const GITHUB_HEADERS = { accept: 'application/vnd.github+json', 'user-agent': 'cldpd-setup', 'x-github-api-version': '2022-11-28' };

/** The form fields of the import page, checked; `problems` names each field that is wrong and how to fix it. */
export function checkImport(form: URLSearchParams): { appId: string; privateKey: string; webhookSecret: string; key: KeyObject | undefined; problems: string[] } {
  const appId = (form.get('app_id') ?? '').trim();
  const privateKey = `${(form.get('private_key') ?? '').replace(/\r\n?/g, '\n').trim()}\n`;
  const webhookSecret = (form.get('webhook_secret') ?? '').trim();
  const problems: string[] = [];
  if (!/^\d{1,12}$/.test(appId)) problems.push('App ID must be the number shown as "App ID" at the top of the app\'s General settings page (digits only).');
  let key: KeyObject | undefined;
  if (privateKey.trim() === '') {
    problems.push('Private key is empty: paste the whole .pem file, from -----BEGIN to the -----END line.');
  } else {
    try {
      key = createPrivateKey(privateKey);
      if (key.asymmetricKeyType !== 'rsa') {
        problems.push(`Private key is an ${key.asymmetricKeyType ?? 'unknown'} key; GitHub Apps use RSA keys: generate one under General → Private keys.`);
        key = undefined;
      }
    } catch {
      problems.push('Private key is not a PEM private key: paste the whole .pem file GitHub downloaded, from -----BEGIN RSA PRIVATE KEY----- to -----END RSA PRIVATE KEY-----, unchanged.');
    }
  }
  if (webhookSecret === '') problems.push('Webhook secret is empty: use the suggested value (or your own) here and in the app\'s Webhook secret field.');
  else if (/[\u0000-\u001f\u007f]/.test(webhookSecret)) problems.push('Webhook secret has control characters; use letters, digits and punctuation.');
  return { appId, privateKey, webhookSecret, key, problems };
}
