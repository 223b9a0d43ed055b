import { randomBytes, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { resolve } from 'node:path';
import type { Logger } from 'pino';
import type { Config } from '../config.js';
import {
  APP_YML_URL, buildManifest, githubWebUrl, isAppName, isLoopbackAddress, isLoopbackHost, isOrgName, parseAppDefinition, requestBaseUrl, webhookUrlFor,
  type AppDefinition,
} from './app-manifest.js';
import { GITHUB_HEADERS, IMPORTED_KEYS, REGISTERED_KEYS, appJwt, checkImport, isConversion } from './app-registration.js';
import { EnvFileError, checkWritable, writeEnvFile } from './env-file.js';
import { renderDonePage, renderImportPage, renderProblemPage, renderSetupPage, type DonePageView, type ProblemView } from './setup-pages.js';

/** Options of {@link startSetupServer}; each has the real thing as default. */
export interface SetupServerOptions {
  /** The `.env` written; default `.env` in the working directory. */
  readonly envPath?: string;
  /** app.yml's text; default the app.yml shipped with cldpd. */
  readonly appYml?: string;
  /** GitHub's REST API: default `config.github.baseUrl` (GitHub Enterprise Server) or `https://api.github.com`. */
  readonly apiBaseUrl?: string;
  readonly fetch?: typeof fetch;
  /** The URL GitHub and browsers reach cldpd at; default what each browser used (its Host header). */
  readonly baseUrl?: string;
  /** Default `config.github.port`; 0 picks a free port. */
  readonly port?: number;
  /** Default `config.github.host` (all interfaces when unset). */
  readonly host?: string | undefined;
}

/** A running setup server. */
export interface RunningSetupServer {
  /** The port bound (the one asked for, or the one picked for 0). */
  readonly port: number;
  /**
   * The setup key: the pages answer only a browser that opened `/?key=<key>` (the address
   * cldpd logs), since whoever completes the setup decides which app cldpd obeys.
   */
  readonly key: string;
  /** Stops listening and ends open connections. Idempotent. */
  close(): Promise<void>;
}

const MAX_FORM_BYTES = 64 * 1024;

/** A step of the setup that failed, with the page that says what to do. */
class SetupProblem extends Error {
  override readonly name = 'SetupProblem';
  constructor(readonly status: number, readonly view: ProblemView, options?: { cause?: unknown }) {
    super(view.problem, options);
  }
}

function fsCode(err: unknown): string {
  return (err as NodeJS.ErrnoException).code ?? (err instanceof Error ? err.message : 'error');
}

function readForm(req: IncomingMessage): Promise<URLSearchParams | undefined> {
  return new Promise((resolveForm, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_FORM_BYTES) {
        // Read no more; the answer goes out, then the connection (see importCredentials).
        req.off('data', onData);
        req.pause();
        chunks.length = 0;
        resolveForm(undefined);
        return;
      }
      chunks.push(chunk);
    };
    if (Number(req.headers['content-length'] ?? 0) > MAX_FORM_BYTES) return resolveForm(undefined);
    req.on('data', onData);
    req.on('end', () => resolveForm(new URLSearchParams(Buffer.concat(chunks).toString('utf8'))));
    req.on('error', reject);
  });
}

function sameToken(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * cldpd's first-run setup, served while no GitHub App credentials exist (`npm start`, `cldpd serve`):
 * - `GET /` the setup page: it hands GitHub a manifest built from app.yml (GitHub's manifest flow);
 * - `GET /setup/callback?code=&state=` GitHub's redirect after registration: the code is
 *   converted (`POST <api>/app-manifests/{code}/conversions`) and the app's credentials written to `.env`;
 * - `GET|POST /setup/import` the credentials of an existing app, checked, then written to `.env`;
 * - `GET /ping`.
 * Each failure is a page that names it and what to do, and a log line. Webhooks that arrive
 * before cldpd restarts with its credentials get 503. Never shows or logs a secret.
 *
 * A browser on another machine over plain HTTP (neither https, by the address or a proxy's
 * `X-Forwarded-Proto`, nor a loopback address and name, as an SSH tunnel gives) is refused the
 * setup and import pages, and told how to open them safely, unless `config.github.setupAllowHttp`
 * (then they carry a warning): GitHub's registration code would cross the network in the clear,
 * and GitHub converts it, once and without authentication, into the app's private key. A code
 * GitHub calls used that this process never sent is reported as such: delete the app.
 */
export async function startSetupServer(config: Config, logger: Logger, options: SetupServerOptions = {}): Promise<RunningSetupServer> {
  const log = logger.child({ name: 'setup' });
  const app: AppDefinition = parseAppDefinition(options.appYml ?? readFileSync(APP_YML_URL, 'utf8'));
  const envPath = resolve(options.envPath ?? '.env');
  const apiBase = (options.apiBaseUrl ?? config.github.baseUrl ?? 'https://api.github.com').replace(/\/+$/, '');
  const githubUrl = githubWebUrl(config.github.baseUrl);
  const doFetch = options.fetch ?? fetch;
  const { webhookPath, webhookProxyUrl } = config.github;
  const port = options.port ?? config.github.port;
  const host = 'host' in options ? options.host : config.github.host;
  // Sent to GitHub as `state` and put in the import form: a callback or import that does not
  // carry it did not start from this server's pages.
  const token = randomBytes(16).toString('hex');
  // Only whoever can read cldpd's log may set it up: the pages are served on every interface.
  const key = randomBytes(16).toString('hex');
  const KEY_COOKIE = 'cldpd_setup';
  const hasKey = (req: IncomingMessage): boolean => {
    const cookie = /(?:^|;\s*)cldpd_setup=([0-9a-f]+)/.exec(headerOf(req, 'cookie') ?? '')?.[1] ?? '';
    return sameToken(cookie, key);
  };
  let bound = port;
  let done: DonePageView | undefined;
  let usedCode: string | undefined;
  // The codes this process sent GitHub to convert: one GitHub calls used that is not among
  // them was converted by someone else, who holds the app's private key.
  const sentCodes = new Set<string>();

  const baseUrlOf = (req: IncomingMessage) => options.baseUrl?.replace(/\/+$/, '')
    ?? requestBaseUrl(req.headers.host, headerOf(req, 'x-forwarded-proto'), `http://localhost:${bound}`);

  /**
   * How the browser reached this page when that is plain HTTP across a network (its address,
   * and the peer's when not this machine's loopback), else undefined: a page opened by https,
   * or from this machine (or an SSH tunnel) by a loopback address and name.
   */
  const plainHttpFromAfar = (req: IncomingMessage): string | undefined => {
    const base = new URL(baseUrlOf(req));
    if (base.protocol === 'https:') return undefined;
    const peer = req.socket.remoteAddress ?? '';
    if (isLoopbackAddress(peer) && isLoopbackHost(base.hostname)) return undefined;
    return isLoopbackAddress(peer) ? base.origin : `${base.origin} from ${peer.replace(/^::ffff:/i, '')}`;
  };
  const tunnelStep = () => `From your own computer, open it through an SSH tunnel: run "ssh -L ${bound}:localhost:${bound} <you>@<this machine>", then open http://localhost:${bound}/?key=<the key cldpd printed>.`;
  const httpsStep = 'Or put an HTTPS proxy in front of cldpd (one that sets X-Forwarded-Proto: https) and open the page by its https:// address.';
  const acceptStep = 'Or, on a network where you trust every machine on the way, set CLDPD_SETUP_ALLOW_HTTP=1 and restart cldpd: the pages then answer plain HTTP with a warning.';

  const send = (res: ServerResponse, status: number, html: string) => {
    res.writeHead(status, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'x-frame-options': 'DENY',
      'referrer-policy': 'no-referrer',
      'content-security-policy': "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; frame-ancestors 'none'",
    });
    res.end(html);
  };
  const problem = (res: ServerResponse, err: SetupProblem) => {
    // What went wrong is the page's text; a stack only when something underneath failed.
    const fields = err.cause === undefined ? { status: err.status } : { status: err.status, err: err.cause };
    if (err.status >= 500) log.error(fields, `setup: ${err.view.problem}`);
    else log.warn(fields, `setup: ${err.view.problem}`);
    send(res, err.status, renderProblemPage(err.view));
  };

  const setupPage = (req: IncomingMessage, url: URL) => {
    const problems: string[] = [];
    const org = url.searchParams.get('org')?.trim() || undefined;
    const name = url.searchParams.get('name')?.trim() || undefined;
    if (org && !isOrgName(org)) problems.push(`"${org}" is not an organization name (letters, digits and single hyphens, at most 39): registering for your personal account instead.`);
    if (name && !isAppName(name)) problems.push(`"${name}" cannot be a GitHub App name (1 to 34 characters): using "${app.name}".`);
    const manifest = buildManifest(app, { baseUrl: baseUrlOf(req), webhookPath, webhookProxyUrl, name: name && isAppName(name) ? name : undefined });
    return renderSetupPage({
      app, manifest, githubUrl, org: org && isOrgName(org) ? org : undefined, problems, state: token,
      viaProxy: Boolean(webhookProxyUrl), listen: { port: bound, host }, plainHttp: plainHttpFromAfar(req),
    });
  };

  const importPage = (req: IncomingMessage, extra: { values?: { appId: string; privateKey: string; webhookSecret: string }; problems?: string[] } = {}) => renderImportPage({
    app, webhookUrl: webhookUrlFor(baseUrlOf(req), webhookPath, webhookProxyUrl), viaProxy: Boolean(webhookProxyUrl),
    githubUrl, token, suggestedSecret: randomBytes(20).toString('hex'), plainHttp: plainHttpFromAfar(req), ...extra,
  });

  const writeEnv = async (values: Record<string, string>, registered: string | undefined): Promise<void> => {
    try {
      await writeEnvFile(envPath, values);
    } catch (err) {
      const steps = [
        `Make ${envPath} writable by the user running cldpd (or start cldpd from a directory that user owns).`,
        ...(registered
          ? [`The app exists on GitHub (${registered}), but its credentials could not be kept: open its settings, generate a private key and set a new webhook secret, then enter them at /setup/import.`]
          : ['Then send this form again.']),
      ];
      throw new SetupProblem(500, { title: '.env could not be written', problem: err instanceof EnvFileError ? err.message : `cldpd could not write ${envPath} (${fsCode(err)}).`, steps }, { cause: err });
    }
  };

  const callback = async (req: IncomingMessage, res: ServerResponse, url: URL) => {
    const code = url.searchParams.get('code') ?? '';
    const state = url.searchParams.get('state') ?? '';
    if (done && usedCode === code) return send(res, 200, renderDonePage(done)); // a reload of the done page
    if (!/^[A-Za-z0-9_-]{1,200}$/.test(code)) {
      throw new SetupProblem(400, { title: 'No registration code', problem: 'This address is where GitHub sends you back after creating the app, with a code; this request has none.', steps: ['Start from the setup page and click the register button.'] });
    }
    if (!sameToken(state, token)) {
      throw new SetupProblem(400, {
        title: 'This registration did not start here',
        problem: 'GitHub sent back a registration started from another setup page, or from this one before cldpd restarted, so cldpd does not take its credentials.',
        steps: [
          'If you created this app yourself just now: open its settings on GitHub, generate a private key and set a webhook secret, then enter them on the import page (/setup/import).',
          'Or delete that app on GitHub and register again from the setup page.',
        ],
      });
    }
    try {
      await checkWritable(envPath);
    } catch (err) {
      throw new SetupProblem(500, {
        title: '.env cannot be written',
        problem: `cldpd cannot write ${envPath} (${fsCode(err)}), so it has not fetched the new app's credentials yet.`,
        steps: [`Make ${envPath} (and its directory) writable by the user running cldpd.`, 'Then reload this page: the code GitHub sent stays valid for an hour.'],
      }, { cause: err });
    }
    const sentBefore = sentCodes.has(code);
    if (sentCodes.size < 100) sentCodes.add(code);
    let response: Response;
    try {
      response = await doFetch(`${apiBase}/app-manifests/${encodeURIComponent(code)}/conversions`, { method: 'POST', headers: GITHUB_HEADERS, signal: AbortSignal.timeout(20_000) });
    } catch (err) {
      throw new SetupProblem(502, {
        title: 'GitHub did not answer',
        problem: `cldpd could not reach ${apiBase} to fetch the new app's credentials (${err instanceof Error ? err.message : 'network error'}).`,
        steps: ['Check that this machine reaches GitHub (a proxy or firewall may stop it).', 'Then reload this page: the code GitHub sent stays valid for an hour.'],
      }, { cause: err });
    }
    const data: unknown = await response.json().catch(() => undefined);
    if ((response.status === 404 || response.status === 422) && !sentBefore) {
      // GitHub sends the browser back at once, with a code that works for an hour: refused on
      // its first use here, it was converted already, and not by cldpd.
      const apps = `${githubUrl}/settings/apps`;
      log.error({ status: response.status }, `setup: GitHub says the registration code was used, and cldpd never converted it: someone else may hold the new app's private key. Delete the app (${apps}, or the organization's Settings → Developer settings → GitHub Apps) and register again over HTTPS or an SSH tunnel.`);
      throw new SetupProblem(409, {
        title: 'Someone else may have the app\'s private key',
        problem: `GitHub did not accept the registration code (HTTP ${response.status}), and this cldpd never sent it before: the code works once, so someone who saw it on its way here has most likely converted it and holds the new app's private key and webhook secret.`,
        steps: [
          `Delete the app now: open ${apps} (for an organization: ${githubUrl}/organizations/<organization>/settings/apps), choose the app, Advanced → Delete GitHub App.`,
          `Then register a new one from the setup page, opened over HTTPS or through an SSH tunnel to localhost (ssh -L ${bound}:localhost:${bound} <this machine>), never over plain HTTP across a network.`,
          'If you are sure the code expired instead (more than an hour passed since GitHub sent you back), register again from the setup page.',
        ],
      });
    }
    if (response.status === 404 || response.status === 422) {
      throw new SetupProblem(400, {
        title: 'The registration code is used or expired',
        problem: `GitHub did not accept the code (HTTP ${response.status}): a code works once, within an hour.`,
        steps: [
          'If the app was created: its credentials were already fetched (look in .env) or can be made again in its settings on GitHub; enter them on the import page (/setup/import).',
          'Otherwise register again from the setup page.',
        ],
      });
    }
    if (!response.ok || !isConversion(data)) {
      throw new SetupProblem(502, {
        title: 'GitHub gave an unexpected answer',
        problem: `Converting the registration code gave HTTP ${response.status} without the app's credentials.`,
        steps: ['Reload this page to ask again (the code stays valid for an hour, if it was not used).', 'If it persists, register again from the setup page.'],
      });
    }
    await writeEnv({
      APP_ID: String(data.id), PRIVATE_KEY: data.pem, WEBHOOK_SECRET: data.webhook_secret,
      GITHUB_CLIENT_ID: data.client_id, GITHUB_CLIENT_SECRET: data.client_secret,
      // The address this browser reached cldpd by: the manifest registered its sign-in
      // callback there, and status comments link session pages under it.
      CLDPD_PUBLIC_URL: baseUrlOf(req),
    }, data.html_url);
    usedCode = code;
    done = { appName: data.name, htmlUrl: data.html_url, envPath, keys: REGISTERED_KEYS, webhookUrl: webhookUrlFor(baseUrlOf(req), webhookPath, webhookProxyUrl) };
    log.info({ app: data.name, appId: data.id, env: envPath }, `GitHub App ${data.name} registered; its credentials are in ${envPath}. Install it on repositories (${data.html_url}/installations/new), then restart cldpd.`);
    send(res, 200, renderDonePage(done));
  };

  const importCredentials = async (req: IncomingMessage, res: ServerResponse) => {
    const form = await readForm(req);
    if (!form) {
      res.setHeader('connection', 'close');
      res.once('finish', () => req.destroy());
    }
    if (!form) throw new SetupProblem(413, { title: 'The form is too large', problem: `A private key and two values fit in ${MAX_FORM_BYTES / 1024} KiB; this form was larger.`, steps: ['Paste only the .pem file\'s text into the private key field.'] });
    if (!sameToken(form.get('token') ?? '', token)) {
      throw new SetupProblem(403, { title: 'This form is out of date', problem: 'The form was not sent from this cldpd\'s import page (or cldpd restarted since it was opened).', steps: ['Open /setup/import again and send the form from there.'] });
    }
    const checked = checkImport(form);
    const values = { appId: checked.appId, privateKey: checked.privateKey.trim() === '' ? '' : checked.privateKey, webhookSecret: checked.webhookSecret };
    if (checked.problems.length > 0 || !checked.key) return send(res, 400, importPage(req, { values, problems: checked.problems }));

    // Ask GitHub whether this key is this app's: a mismatch found now is not a mystery at the first webhook.
    let appName = `GitHub App ${checked.appId}`;
    let htmlUrl: string | undefined;
    let note: string | undefined;
    try {
      const response = await doFetch(`${apiBase}/app`, { headers: { ...GITHUB_HEADERS, authorization: `Bearer ${appJwt(checked.appId, checked.key)}` }, signal: AbortSignal.timeout(20_000) });
      if (response.status === 401 || response.status === 404) {
        return send(res, 400, importPage(req, { values, problems: [`GitHub does not accept this private key for App ID ${checked.appId} (HTTP ${response.status}): the key belongs to another app, or was deleted. Check the App ID, or generate a new key in the app's settings.`] }));
      }
      const data = (await response.json().catch(() => undefined)) as { name?: unknown; html_url?: unknown } | undefined;
      if (response.ok && typeof data?.name === 'string') appName = data.name;
      if (response.ok && typeof data?.html_url === 'string') htmlUrl = data.html_url;
      if (!response.ok) note = `GitHub answered HTTP ${response.status} when asked to confirm the key; it is saved unconfirmed.`;
    } catch (err) {
      log.warn({ err }, 'setup: could not ask GitHub to confirm the imported key');
      note = `cldpd could not reach ${apiBase} to confirm the key belongs to App ID ${checked.appId}; it is saved unconfirmed.`;
    }
    await writeEnv({ APP_ID: checked.appId, PRIVATE_KEY: checked.privateKey, WEBHOOK_SECRET: checked.webhookSecret }, undefined);
    done = { appName, htmlUrl, envPath, keys: IMPORTED_KEYS, webhookUrl: webhookUrlFor(baseUrlOf(req), webhookPath, webhookProxyUrl), note };
    log.info({ app: appName, appId: checked.appId, env: envPath }, `GitHub App ${appName} imported; its credentials are in ${envPath}. Restart cldpd.`);
    send(res, 200, renderDonePage(done));
  };

  const http = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://setup.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const route = `${req.method ?? 'GET'} ${path}`;
    void (async () => {
      if (route === 'GET /ping') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        return void res.end('PONG');
      }
      if (req.method === 'POST' && (path === '/' || path === webhookPath.replace(/\/+$/, ''))) {
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '60' });
        return void res.end('cldpd is still being set up: restart it once .env holds the app\'s credentials.\n');
      }
      const given = url.searchParams.get('key');
      if (req.method === 'GET' && given !== null && sameToken(given, key)) {
        // The key goes into a cookie and out of the address bar (and of any history or referrer).
        url.searchParams.delete('key');
        res.writeHead(303, { location: `${url.pathname}${url.search}`, 'set-cookie': `${KEY_COOKIE}=${key}; HttpOnly; SameSite=Lax; Path=/`, 'cache-control': 'no-store' });
        return void res.end();
      }
      if (!hasKey(req)) {
        return send(res, 403, renderProblemPage({
          title: 'Open the address cldpd printed',
          problem: 'Whoever completes this setup decides which GitHub App cldpd obeys, so the pages answer only a browser that opened the address with the setup key.',
          steps: ['Look at the terminal (or log) where cldpd runs: it printed "open http://…/?key=…". Open that address.'],
        }));
      }
      if (done && (route === 'POST /setup/import' || (route === 'GET /setup/callback' && url.searchParams.get('code') !== usedCode))) {
        return send(res, 409, renderProblemPage({
          title: 'cldpd is set up already',
          problem: `Its credentials are in ${envPath}; this process takes no others.`,
          steps: ['Restart cldpd (npm start) to use them.', `To use another app, edit ${envPath} (or delete it) and restart.`],
        }));
      }
      // The callback is not among the refused: a code that reached it has crossed the network
      // already, and converting it at once is what leaves an onlooker nothing to convert.
      const fromAfar = done ? undefined : plainHttpFromAfar(req);
      if (fromAfar && ['GET /', 'GET /setup/import', 'POST /setup/import'].includes(route)) {
        if (!config.github.setupAllowHttp) {
          if (req.method === 'POST') {
            // The form is not read: the key in it went over the wire already and is not kept.
            res.setHeader('connection', 'close');
            res.once('finish', () => req.destroy());
          }
          log.warn({ opened: fromAfar }, `setup: refused a setup page opened as ${fromAfar} over plain HTTP; open it through an SSH tunnel to localhost or over HTTPS, or set CLDPD_SETUP_ALLOW_HTTP=1`);
          return send(res, 403, renderProblemPage(req.method === 'POST'
            ? {
              title: 'The private key crossed the network unencrypted',
              problem: `This form was sent to ${fromAfar} over plain HTTP, so the private key in it could be read on the way. cldpd did not save it.`,
              steps: [
                'In the app\'s settings on GitHub (General → Private keys), delete the key you pasted and generate a new one.',
                tunnelStep().replace('/?key=', '/setup/import?key='), httpsStep, acceptStep,
              ],
            }
            : {
              title: 'Open this page over HTTPS or from this machine',
              problem: `This page was opened as ${fromAfar}: plain HTTP across a network. GitHub sends the registration code back the same way, and whoever sees that code can exchange it once, without signing in, for the new app's private key and webhook secret. So cldpd does not offer the registration here.`,
              steps: [tunnelStep(), httpsStep, acceptStep],
            }));
        }
        log.warn({ opened: fromAfar }, `setup: serving the setup page over plain HTTP to another machine (${fromAfar}) because CLDPD_SETUP_ALLOW_HTTP is set; the registration code and any pasted key cross the network unencrypted`);
      }
      if (route === 'GET /') return send(res, 200, done ? renderDonePage(done) : setupPage(req, url));
      if (route === 'GET /setup/import') return send(res, 200, importPage(req));
      if (route === 'POST /setup/import') return importCredentials(req, res);
      if (route === 'GET /setup/callback') return callback(req, res, url);
      send(res, 404, renderProblemPage({ title: 'Not found', problem: `cldpd is being set up and serves nothing at ${path}.`, steps: ['Open the setup page at /.'] }));
    })().catch((err: unknown) => {
      if (err instanceof SetupProblem) return problem(res, err);
      log.error({ err }, 'setup: request failed');
      if (!res.headersSent) send(res, 500, renderProblemPage({ title: 'Something went wrong', problem: err instanceof Error ? err.message : 'An unexpected error.', steps: ['Look at cldpd\'s log for details, then try again.'] }));
      else res.end();
    });
  });
  http.requestTimeout = 60_000;
  http.headersTimeout = 20_000;
  http.maxConnections = 64;

  await new Promise<void>((resolveListen, reject) => {
    http.once('error', reject);
    http.listen(port, host, () => {
      http.off('error', reject);
      resolveListen();
    });
  });
  const address = http.address();
  bound = typeof address === 'object' && address ? address.port : port;
  let closing: Promise<void> | undefined;
  return {
    port: bound,
    key,
    close: () => (closing ??= new Promise<void>((resolveClose) => {
      http.close(() => resolveClose());
      http.closeAllConnections();
    })),
  };
}

function headerOf(req: IncomingMessage, name: string): string | undefined {
  const value = req.headers[name];
  return typeof value === 'string' ? value : undefined;
}
