import { createHmac, createVerify, generateKeyPairSync } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseEnv } from 'node:util';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { AppManifest } from '../../src/setup/app-manifest.js';
import { createWebhookReceiver, type VerifiedDelivery } from '../../src/github/webhook-receiver.js';
import { startSetupServer, type RunningSetupServer, type SetupServerOptions } from '../../src/setup/setup-server.js';

const silent = pino({ level: 'silent' });
const keyPair = () => generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } });
const APP = keyPair();
const OTHER = keyPair();
const CONVERSION = {
  id: 424242, slug: 'cldpd-lab', name: 'cldpd-lab', html_url: 'https://github.com/apps/cldpd-lab', owner: { login: 'octocat' },
  client_id: 'Iv23liAbCdEf', client_secret: 'c0ffee'.repeat(6), webhook_secret: 'e3b0c44298fc1c149afbf4c8996fb924', pem: APP.privateKey,
};

/** A fake of the GitHub API parts the setup uses: the manifest conversion and GET /app with the app's JWT. */
let github: Server;
let githubUrl: string;
const conversions: string[] = [];
beforeAll(async () => {
  github = createServer((req, res) => {
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    const conversion = /^\/app-manifests\/([^/]+)\/conversions$/.exec(req.url ?? '');
    if (req.method === 'POST' && conversion) {
      conversions.push(conversion[1] as string);
      return conversion[1] === 'good-code' ? json(201, CONVERSION) : json(404, { message: 'Not Found' });
    }
    if (req.method === 'GET' && req.url === '/app') {
      const [header, payload, signature] = (req.headers.authorization ?? '').replace(/^Bearer /, '').split('.');
      const valid = signature !== undefined && createVerify('RSA-SHA256').update(`${header}.${payload}`).verify(APP.publicKey, signature, 'base64url');
      const claims = valid ? JSON.parse(Buffer.from(payload as string, 'base64url').toString()) as { iss: string; exp: number; iat: number } : undefined;
      if (!claims || claims.iss !== String(CONVERSION.id) || claims.exp - claims.iat > 600) return json(401, { message: 'A JSON web token could not be decoded' });
      return json(200, { id: CONVERSION.id, name: CONVERSION.name, html_url: CONVERSION.html_url });
    }
    json(404, { message: 'Not Found' });
  });
  await new Promise<void>((r) => github.listen(0, '127.0.0.1', r));
  githubUrl = `http://127.0.0.1:${(github.address() as AddressInfo).port}`;
});
afterAll(async () => {
  github.closeAllConnections();
  await new Promise((r) => github.close(r));
});

let dir: string;
let envPath: string;
let setup: RunningSetupServer;
let base: string;
const config = loadConfig({ HOME: '/home/nobody' });

async function start(options: Partial<SetupServerOptions> = {}): Promise<void> {
  setup = await startSetupServer(config, silent, { envPath, apiBaseUrl: githubUrl, port: 0, host: '127.0.0.1', ...options });
  base = `http://127.0.0.1:${setup.port}`;
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cldpd-setup-'));
  envPath = join(dir, '.env');
  conversions.length = 0;
  await start();
});
afterEach(async () => {
  await setup.close();
  await rm(dir, { recursive: true, force: true });
});

/** The browser of whoever opened the address with the setup key (the cookie it was given). */
function withKey(init: RequestInit = {}): RequestInit {
  return { ...init, headers: { ...(init.headers as Record<string, string> | undefined), cookie: `cldpd_setup=${setup.key}` } };
}

async function get(path: string): Promise<{ status: number; html: string }> {
  const res = await fetch(`${base}${path}`, withKey());
  return { status: res.status, html: await res.text() };
}

function stateOf(html: string): string {
  return /settings\/apps\/new\?state=([0-9a-f]+)"/.exec(html)?.[1] ?? '';
}

function manifestOf(html: string): AppManifest {
  const value = /name="manifest" value="([^"]*)"/.exec(html)?.[1] ?? '';
  return JSON.parse(value.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')) as AppManifest;
}

async function postImport(fields: Record<string, string>): Promise<{ status: number; html: string }> {
  const token = /name="token" value="([0-9a-f]+)"/.exec((await get('/setup/import')).html)?.[1] ?? '';
  const res = await fetch(`${base}/setup/import`, withKey({ method: 'POST', body: new URLSearchParams({ token, ...fields }) }));
  return { status: res.status, html: await res.text() };
}

describe('the setup server', () => {
  it('answers only the browser that opened the logged address with the setup key; once set up, takes no other credentials', async () => {
    await start();
    // Someone else on the network: no key, no page, no token to forge a form with.
    for (const path of ['/', '/setup/import', '/setup/callback?code=abc&state=x']) {
      const res = await fetch(`${base}${path}`);
      expect(res.status, path).toBe(403);
      expect(await res.text()).toContain('Open the address cldpd printed');
    }
    expect((await fetch(`${base}/setup/import`, { method: 'POST', body: new URLSearchParams({ app_id: '9', private_key: APP.privateKey, webhook_secret: 's' }) })).status).toBe(403);
    expect((await fetch(`${base}/?key=${'0'.repeat(32)}`, { redirect: 'manual' })).status).toBe(403);
    // The operator: the key becomes a cookie and leaves the address bar.
    const opened = await fetch(`${base}/?key=${setup.key}&org=acme`, { redirect: 'manual' });
    expect(opened.status).toBe(303);
    expect(opened.headers.get('location')).toBe('/?org=acme');
    expect(opened.headers.get('set-cookie')).toBe(`cldpd_setup=${setup.key}; HttpOnly; SameSite=Lax; Path=/`);
    expect((await get('/')).status).toBe(200);
    // Set up once: a second set of credentials is refused, the first kept.
    expect((await postImport({ app_id: '424242', private_key: APP.privateKey, webhook_secret: 'first-secret' })).status).toBe(200);
    const kept = await readFile(envPath, 'utf8');
    const again = await postImport({ app_id: '424242', private_key: APP.privateKey, webhook_secret: 'second-secret' });
    expect(again.status).toBe(409);
    expect(again.html).toContain('cldpd is set up already');
    expect(await readFile(envPath, 'utf8')).toBe(kept);
  });

  it('GET / serves the setup page, whose manifest sends webhooks to this server\'s webhook path; /ping answers', async () => {
    const { status, html } = await get('/');
    expect(status).toBe(200);
    expect(html).toContain('<h1>Set up cldpd</h1>');
    expect(manifestOf(html).hook_attributes.url).toBe(`${base}/api/github/webhooks`);
    expect(manifestOf(html).redirect_url).toBe(`${base}/setup/callback`);
    expect(html).toContain('id="unreachable"'); // 127.0.0.1: GitHub cannot deliver there, and the page says so
    expect(await (await fetch(`${base}/ping`)).text()).toBe('PONG');
    expect((await get('/?org=%3Cscript%3E')).html).toContain('&quot;&lt;script&gt;&quot; is not an organization name');
  });

  it('the callback converts the code and writes .env that Node reads back exactly, PEM included; other lines are kept', async () => {
    await writeFile(envPath, '# mine\nPORT=3000\nAPP_ID=\nWEBHOOK_SECRET=\nREDIS_URL=redis://r:6379\n');
    const state = stateOf((await get('/')).html);
    const { status, html } = await get(`/setup/callback?code=good-code&state=${state}`);
    expect(status).toBe(200);
    expect(conversions).toEqual(['good-code']);
    expect(html).toContain('href="https://github.com/apps/cldpd-lab/installations/new"');
    expect(html).toContain('cldpd:hello');
    for (const secret of [CONVERSION.webhook_secret, CONVERSION.client_secret, 'PRIVATE KEY-----']) expect(html).not.toContain(secret);

    const text = await readFile(envPath, 'utf8');
    expect(text).toMatch(/^# mine\nPORT=3000\nAPP_ID=424242\nWEBHOOK_SECRET=e3b0c/);
    expect(text).toMatch(/^PRIVATE_KEY="-----BEGIN RSA PRIVATE KEY-----\\nMII/m);
    const env = parseEnv(text);
    expect(env).toMatchObject({
      PORT: '3000', REDIS_URL: 'redis://r:6379', APP_ID: '424242', PRIVATE_KEY: APP.privateKey, WEBHOOK_SECRET: CONVERSION.webhook_secret,
      GITHUB_CLIENT_ID: CONVERSION.client_id, GITHUB_CLIENT_SECRET: CONVERSION.client_secret,
    });
    // Where the manifest registered the sign-in callback, and where session page links point.
    expect(env.CLDPD_PUBLIC_URL).toMatch(/^http:\/\/(127\.0\.0\.1|localhost):\d+$/);
    expect((await stat(envPath)).mode & 0o777).toBe(0o600);

    // What `npm start` does next: process.loadEnvFile, then loadConfig.
    const saved = { ...process.env };
    try {
      for (const key of Object.keys(env)) delete process.env[key];
      process.loadEnvFile(envPath);
      expect(process.env.PRIVATE_KEY).toBe(APP.privateKey);
      expect(loadConfig({ ...process.env, HOME: '/h' }).github).toMatchObject({ appId: '424242', privateKey: APP.privateKey, webhookSecret: CONVERSION.webhook_secret });
    } finally {
      for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
      Object.assign(process.env, saved);
    }

    // A reload of the done page, or the setup page, does not register a second app.
    expect((await get(`/setup/callback?code=good-code&state=${state}`)).status).toBe(200);
    expect((await get('/')).html).toContain('cldpd is registered');
    expect(conversions).toEqual(['good-code']);
  });

  it('setup http: a code GitHub calls used that this cldpd never sent says someone else may hold the key: delete the app, at its URL; a reload of one it sent says used or expired; .env is untouched', async () => {
    await writeFile(envPath, 'PORT=3000\n');
    const state = stateOf((await get('/')).html);
    const first = await get(`/setup/callback?code=used-code&state=${state}`);
    expect(first.status).toBe(409);
    expect(first.html).toContain('Someone else may have the app&#39;s private key');
    expect(first.html).toContain('Delete the app now: open https://github.com/settings/apps');
    expect(first.html).toContain('https://github.com/organizations/&lt;organization&gt;/settings/apps');
    expect(first.html).toContain(`ssh -L ${setup.port}:localhost:${setup.port}`);
    // Sent once by this cldpd (and refused): a reload is no sign of anyone else.
    const again = await get(`/setup/callback?code=used-code&state=${state}`);
    expect(again.status).toBe(400);
    expect(again.html).toMatch(/The registration code is used or expired/);
    expect(again.html).toMatch(/register again from the setup page/);
    expect(conversions).toEqual(['used-code', 'used-code']);
    expect(await readFile(envPath, 'utf8')).toBe('PORT=3000\n');
  });

  describe('setup http: plain HTTP from another machine', () => {
    /** This machine's address on a network (not loopback): a browser elsewhere reaches cldpd by it, and cldpd sees it as the peer. */
    const external = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;

    async function from(address: string, path: string, init: RequestInit = {}): Promise<{ status: number; html: string }> {
      const res = await fetch(`http://${address}:${setup.port}${path}`, withKey(init));
      return { status: res.status, html: await res.text() };
    }

    it('setup http: a browser on another machine over plain HTTP gets no registration form and no import form, and is told to tunnel or use HTTPS; a posted key is not saved', async () => {
      expect(external, 'this machine has no non-loopback IPv4 address to be reached by from "another machine"').toBeTruthy();
      await setup.close();
      await start({ host: '0.0.0.0' });
      const page = await from(external as string, '/');
      expect(page.status).toBe(403);
      expect(page.html).toContain('Open this page over HTTPS or from this machine');
      expect(page.html).toContain(`opened as http://${external}:${setup.port} from ${external}: plain HTTP across a network`);
      expect(page.html).toContain(`ssh -L ${setup.port}:localhost:${setup.port}`);
      expect(page.html).toContain('X-Forwarded-Proto: https');
      expect(page.html).toContain('CLDPD_SETUP_ALLOW_HTTP=1');
      expect(page.html).not.toContain('name="manifest"');
      expect(stateOf(page.html)).toBe('');
      const form = await from(external as string, '/setup/import');
      expect(form.status).toBe(403);
      expect(form.html).not.toContain('name="token"');
      const posted = await from(external as string, '/setup/import', { method: 'POST', body: new URLSearchParams({ token: 'x', app_id: '424242', private_key: APP.privateKey, webhook_secret: 's' }) });
      expect(posted.status).toBe(403);
      expect(posted.html).toContain('The private key crossed the network unencrypted');
      expect(posted.html).toContain('delete the key you pasted and generate a new one');
      await expect(stat(envPath)).rejects.toMatchObject({ code: 'ENOENT' });
      // This machine (or an SSH tunnel, which arrives from loopback too) by a loopback name: served.
      const local = await from('127.0.0.1', '/');
      expect(local.status).toBe(200);
      expect(manifestOf(local.html).redirect_url).toBe(`http://127.0.0.1:${setup.port}/setup/callback`);
      expect(local.html).not.toContain('id="plain-http"');
      // Behind an HTTPS proxy: GitHub sends the code back by https.
      const proxied = await from(external as string, '/', { headers: { 'x-forwarded-proto': 'https' } });
      expect(proxied.status).toBe(200);
      expect(manifestOf(proxied.html).redirect_url).toBe(`https://${external}:${setup.port}/setup/callback`);
      expect(conversions).toEqual([]);
    });

    it('setup http: CLDPD_SETUP_ALLOW_HTTP=1 serves plain HTTP from another machine, with a warning on the page', async () => {
      expect(external).toBeTruthy();
      await setup.close();
      setup = await startSetupServer(loadConfig({ HOME: '/home/nobody', CLDPD_SETUP_ALLOW_HTTP: '1' }), silent, { envPath, apiBaseUrl: githubUrl, port: 0, host: '0.0.0.0' });
      const page = await from(external as string, '/');
      expect(page.status).toBe(200);
      expect(page.html).toContain('id="plain-http"');
      expect(page.html).toContain('This page travels unencrypted');
      expect(manifestOf(page.html).redirect_url).toBe(`http://${external}:${setup.port}/setup/callback`);
      const form = await from(external as string, '/setup/import');
      expect(form.status).toBe(200);
      expect(form.html).toContain('id="plain-http"');
      expect(() => loadConfig({ HOME: '/home/nobody', CLDPD_SETUP_ALLOW_HTTP: 'maybe' })).toThrow(/CLDPD_SETUP_ALLOW_HTTP is "maybe"; use 1 \(yes\) or 0 \(no\)/);
    });
  });

  it('a callback that did not start from this server\'s page is refused before GitHub is asked', async () => {
    const { status, html } = await get('/setup/callback?code=good-code&state=0123456789abcdef0123456789abcdef');
    expect(status).toBe(400);
    expect(html).toMatch(/This registration did not start here/);
    expect(conversions).toEqual([]);
  });

  it('GitHub unreachable: a 502 page that says to check the network and reload', async () => {
    await setup.close();
    await start({ fetch: () => Promise.reject(new TypeError('fetch failed')) });
    const { status, html } = await get(`/setup/callback?code=good-code&state=${stateOf((await get('/')).html)}`);
    expect(status).toBe(502);
    expect(html).toMatch(/GitHub did not answer/);
    expect(html).toMatch(/stays valid for an hour/);
  });

  it('.env not writable: says so before the code is spent', async () => {
    await setup.close();
    envPath = join(dir, 'missing-dir', '.env');
    await start();
    const { status, html } = await get(`/setup/callback?code=good-code&state=${stateOf((await get('/')).html)}`);
    expect(status).toBe(500);
    expect(html).toMatch(/\.env cannot be written/);
    expect(html).toContain('ENOENT');
    expect(conversions).toEqual([]);
  });

  it('the import form checks the key with GitHub and writes .env', async () => {
    const { status, html } = await postImport({ app_id: ' 424242 ', private_key: APP.privateKey.replace(/\n/g, '\r\n'), webhook_secret: 'my secret #1' });
    expect(status).toBe(200);
    expect(html).toContain('<a href="https://github.com/apps/cldpd-lab">cldpd-lab</a>');
    expect(html).not.toContain('my secret');
    const env = parseEnv(await readFile(envPath, 'utf8'));
    expect(env).toEqual({ APP_ID: '424242', PRIVATE_KEY: APP.privateKey, WEBHOOK_SECRET: 'my secret #1' });
    expect((await stat(envPath)).mode & 0o777).toBe(0o600);
  });

  it('the import form refuses a bad PEM, a non-numeric id, an empty secret, a key of another app, or a post from elsewhere', async () => {
    const bad = await postImport({ app_id: '42a', private_key: '-----BEGIN RSA PRIVATE KEY-----\nnot a key\n-----END RSA PRIVATE KEY-----', webhook_secret: '' });
    expect(bad.status).toBe(400);
    expect(bad.html).toMatch(/Private key is not a PEM private key: paste the whole \.pem file/);
    expect(bad.html).toMatch(/App ID must be the number/);
    expect(bad.html).toMatch(/Webhook secret is empty/);
    const other = await postImport({ app_id: '424242', private_key: OTHER.privateKey, webhook_secret: 's' });
    expect(other.status).toBe(400);
    expect(other.html).toMatch(/GitHub does not accept this private key for App ID 424242/);
    const forged = await fetch(`${base}/setup/import`, withKey({ method: 'POST', body: new URLSearchParams({ app_id: '1', private_key: APP.privateKey, webhook_secret: 's' }) }));
    expect(forged.status).toBe(403);
    await expect(stat(envPath)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('a form over 64 KiB is refused with a page, not read', async () => {
    const { status, html } = await postImport({ app_id: '1', private_key: 'x'.repeat(70 * 1024), webhook_secret: 's' });
    expect(status).toBe(413);
    expect(html).toMatch(/The form is too large/);
  });

  it('webhooks that arrive before the restart get 503', async () => {
    expect((await fetch(`${base}/api/github/webhooks`, { method: 'POST', body: '{}' })).status).toBe(503);
  });

  it('a webhook signed with the written secret, POSTed to the manifest\'s hook path, is taken by the real receiver', async () => {
    const manifest = manifestOf((await get('/')).html);
    await get(`/setup/callback?code=good-code&state=${stateOf((await get('/')).html)}`);
    const secret = parseEnv(await readFile(envPath, 'utf8')).WEBHOOK_SECRET as string;
    const received: VerifiedDelivery[] = [];
    const receiver = createWebhookReceiver({ secret, path: config.github.webhookPath, log: { warn: () => undefined, error: () => undefined }, receive: async (d) => void received.push(d) });
    const server = createServer((req, res) => {
      if (!receiver(req, res)) res.writeHead(404).end();
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const body = JSON.stringify({ action: 'labeled', label: { name: 'cldpd:hello' } });
      const res = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}${new URL(manifest.hook_attributes.url).pathname}`, {
        method: 'POST', body,
        headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': 'd1', 'x-hub-signature-256': `sha256=${createHmac('sha256', secret).update(body).digest('hex')}` },
      });
      expect(res.status).toBe(200);
      expect(received.map((d) => d.event)).toEqual(['issues']);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
