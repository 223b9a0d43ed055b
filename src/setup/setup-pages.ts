import { unreachableReason, newAppUrl, type AppDefinition, type AppManifest } from './app-manifest.js';

/**
 * The pages of cldpd's first-run setup: the one that registers an app (GitHub's manifest
 * flow), the import of an existing one, the done page saying what to do next, and the problem
 * page. Every value put into HTML is escaped here; nothing here reads files, the network or
 * the environment (src/setup/setup-server.ts does).
 */

/**
 * Why cldpd asks for each event and permission, as the setup page says it. One not listed here
 * (app.yml grew) is shown with {@link FALLBACK_REASON}; test/setup/setup-pages.test.ts keeps
 * the two in step.
 */
export const EVENT_REASONS: Readonly<Record<string, string>> = {
  issues: 'to see an issue labelled cldpd:<pod>, which starts an agent in that pod',
  issue_comment: 'to read the /cldpd resume, /cldpd stop and /cldpd status comments on such an issue and on its session\'s pull request',
  pull_request_review: 'to resume a session from a review of its pull request that carries /cldpd resume, with the review\'s line comments',
  pull_request_review_comment: 'to resume a session from a reply in a review thread that carries /cldpd resume',
  check_suite: 'to resume a session when checks fail on the commit its agent pushed (only for repositories that set fixChecks)',
};

/** See {@link EVENT_REASONS}. */
export const PERMISSION_REASONS: Readonly<Record<string, string>> = {
  issues: 'to post one status comment per run, keep it up to date, and answer triggers it refuses',
  contents: "to read the repository's .github/cldpd.yml (which pods it may use, its limits), and as the most a pod's token may have: a run gets a token for its issue's repository only, with just what its pod.json \"github\" asks (contents: write lets its agent push a branch); a pod that asks nothing gets no token",
  pull_requests: 'to open the pull request of a run that pushed its branch (draft by default), to read reviews and their line comments, and as the most a pod\'s token may have',
  checks: 'to read the names, summaries and output of failing checks for fixChecks',
  metadata: 'to check that whoever labels or comments may write to the repository (every app has it)',
};

/** Shown for an event or permission that app.yml lists but the reasons above do not. */
export const FALLBACK_REASON = 'declared in app.yml';

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

/** An href for `url` when it is http(s), else undefined (never a `javascript:` link). */
function safeHref(url: string | undefined): string | undefined {
  if (!url) return undefined;
  try {
    const parsed = new URL(url);
    return parsed.protocol === 'https:' || parsed.protocol === 'http:' ? parsed.href : undefined;
  } catch {
    return undefined;
  }
}

/** `text` escaped, with its Markdown code spans (as app.yml's description has them) shown as code. */
function inlineCode(text: string): string {
  return escapeHtml(text).replace(/`([^`]+)`/g, '<code>$1</code>');
}

const STYLE = `
  body { font: 15px/1.55 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #1f2328; background: #f6f8fa; margin: 0; }
  main { max-width: 760px; margin: 24px auto; background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: 8px 32px 24px; }
  h1 { font-size: 26px; margin-bottom: 4px; } h2 { font-size: 19px; margin-top: 28px; border-bottom: 1px solid #d8dee4; padding-bottom: 4px; }
  code, pre, textarea { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 13px; }
  code { background: #eff1f3; border-radius: 4px; padding: 1px 5px; overflow-wrap: break-word; }
  .lead { color: #59636e; margin-top: 0; }
  .why { color: #59636e; }
  .warn { background: #fff8c5; border: 1px solid #d4a72c; border-radius: 6px; padding: 10px 14px; }
  .ok { background: #dafbe1; border: 1px solid #4ac26b; border-radius: 6px; padding: 10px 14px; }
  .problem { background: #ffebe9; border: 1px solid #ff8182; border-radius: 6px; padding: 10px 14px; }
  form.inline { display: flex; gap: 8px; flex-wrap: wrap; align-items: end; }
  label { display: block; font-weight: 600; margin-top: 14px; } label span { font-weight: 400; color: #59636e; }
  input[type=text], textarea { width: 100%; box-sizing: border-box; border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 8px; font-size: 14px; }
  form.inline label { flex: 1 1 200px; margin-top: 0; }
  button { background: #1f883d; color: #fff; border: 1px solid #1a7f37; border-radius: 6px; padding: 7px 16px; font-size: 15px; font-weight: 600; cursor: pointer; }
  button.secondary { background: #f6f8fa; color: #1f2328; border-color: #d0d7de; font-weight: 500; }
  ol li, ul li { margin: 6px 0; }
`;

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>
${body}
</main></body></html>
`;
}

function reasonFor(reasons: Readonly<Record<string, string>>, name: string): string {
  return Object.hasOwn(reasons, name) ? (reasons[name] as string) : FALLBACK_REASON;
}

/** The events and permissions the app asks for, each with why. Shared by the setup and import pages. */
function accessList(app: AppDefinition): string {
  const events = app.defaultEvents.map((e) => `<li><code>${escapeHtml(e)}</code> <span class="why">— ${escapeHtml(reasonFor(EVENT_REASONS, e))}</span></li>`);
  const permissions = Object.entries(app.defaultPermissions).map(([p, level]) =>
    `<li><code>${escapeHtml(p)}: ${escapeHtml(level)}</code> <span class="why">— ${escapeHtml(reasonFor(PERMISSION_REASONS, p))}</span></li>`);
  return `<h3>Events it receives</h3>
<ul id="events">${events.join('')}</ul>
<h3>Permissions it asks for</h3>
<ul id="permissions">${permissions.join('')}</ul>
<p class="why">Nothing else. For a bot that must never push, lower <code>contents</code> to read and drop
<code>pull_requests</code> in the app's settings: pods that ask for more are then refused their token, saying why.</p>`;
}

/** What to do after the app exists; `installUrl` when known. */
function nextSteps(installUrl: string | undefined): string {
  const install = installUrl
    ? `<a href="${escapeHtml(installUrl)}">${escapeHtml(installUrl)}</a>`
    : "the app's page on GitHub → <b>Install App</b>";
  return `<ol id="next-steps">
<li><b>Install it on repositories</b>: ${install} (choose only the repositories cldpd may act on).</li>
<li><b>Restart cldpd</b>: stop this process (Ctrl+C) and run <code>npm start</code> again; it reads <code>.env</code> and starts taking webhooks.</li>
<li><b>Try it</b>: in one of those repositories, add the label <code>cldpd:hello</code> to an issue. cldpd answers on the issue and runs the <code>hello</code> pod.</li>
</ol>`;
}

/** Where cldpd listens, for the word on reaching it from another machine. */
export interface ListenView {
  readonly port: number;
  /** `HOST`; undefined for all interfaces. */
  readonly host: string | undefined;
}

function otherMachines(listen: ListenView): string {
  const all = !listen.host || listen.host === '0.0.0.0' || listen.host === '::';
  const where = all
    ? `cldpd listens on every interface, port ${listen.port}.`
    : `cldpd listens on <code>${escapeHtml(listen.host ?? '')}</code>, port ${listen.port} only.`;
  return `<h2>Opening this page from another machine</h2>
<p>${where} GitHub sends the registration code back to the address you opened this page with, and whoever sees
that code can exchange it once for the app's private key: so from another machine use an SSH tunnel
(<code>ssh -L ${listen.port}:localhost:${listen.port} &lt;this machine&gt;</code>, then open
<code>http://localhost:${listen.port}/?key=…</code>) or an HTTPS address (a proxy in front that sets
<code>X-Forwarded-Proto: https</code>). Plain HTTP from another machine is refused unless
<code>CLDPD_SETUP_ALLOW_HTTP=1</code> is set. The webhook URL above is built from the address you opened this page with;
<code>HOST</code> and <code>PORT</code> choose where cldpd listens.</p>`;
}

/**
 * The warning on a page opened over plain HTTP from another machine (allowed by
 * `CLDPD_SETUP_ALLOW_HTTP`): `how` is how it was opened (address and peer).
 */
function plainHttpWarning(how: string | undefined): string {
  if (!how) return '';
  return `<div class="problem" id="plain-http"><b>This page travels unencrypted</b>: it was opened as ${escapeHtml(how)}, over plain HTTP
across a network. GitHub's registration code (and any private key pasted here) crosses it the same way, and whoever sees the code can
exchange it for the app's private key. Open it through <code>ssh -L</code> to localhost or over HTTPS instead, unless you trust every
machine on the way (<code>CLDPD_SETUP_ALLOW_HTTP</code> is set).</div>`;
}

function webhookSection(webhookUrl: string, viaProxy: boolean): string {
  const reason = viaProxy ? undefined : unreachableReason(webhookUrl);
  const warning = reason
    ? `<div class="warn" id="unreachable"><b>GitHub cannot deliver webhooks to this URL</b>: ${escapeHtml(reason)}. GitHub refuses to register an app
with it, and cldpd would never hear of a label. Either
<ul><li>create a channel at <a href="https://smee.io/new">smee.io/new</a>, set <code>WEBHOOK_PROXY_URL</code> to its URL in <code>.env</code>,
run <code>npm install --no-save smee-client</code> and restart: cldpd forwards the channel to itself; or</li>
<li>open this page through an address GitHub can reach (a public host name, or a tunnel to this port).</li></ul></div>`
    : '';
  const how = viaProxy
    ? 'This is your smee.io channel (<code>WEBHOOK_PROXY_URL</code>): cldpd follows it and checks every delivery\'s signature.'
    : 'cldpd serves this path, and checks every delivery\'s signature with the secret GitHub creates.';
  return `<h2>Where GitHub sends webhooks</h2>
<p><code id="webhook-url">${escapeHtml(webhookUrl)}</code></p>
<p class="why">${how}</p>
${warning}`;
}

/** Everything the setup page shows. */
export interface SetupPageView {
  readonly app: AppDefinition;
  /** The manifest the form sends (see {@link buildManifest}). */
  readonly manifest: AppManifest;
  /** `https://github.com` or the GHE origin (see {@link githubWebUrl}). */
  readonly githubUrl: string;
  /** The organization the app is registered under; undefined for the personal account. */
  readonly org?: string | undefined;
  /** What was typed as organization or name and is not one, shown as a problem. */
  readonly problems?: readonly string[];
  /** Passed to GitHub and checked on the callback. */
  readonly state: string;
  readonly viaProxy: boolean;
  readonly listen: ListenView;
  /** How the page was opened when that is plain HTTP from another machine (then a warning says what that risks). */
  readonly plainHttp?: string | undefined;
}

/**
 * The page `npm start` serves until the app is registered: what cldpd is, what the app may do
 * and why, where its webhooks go (with a warning when GitHub cannot reach that), the form that
 * hands the manifest to GitHub, and the steps that follow.
 */
export function renderSetupPage(view: SetupPageView): string {
  const { app, manifest, githubUrl, org, state } = view;
  const owner = org ? `the organization <b>${escapeHtml(org)}</b>` : 'your personal account';
  const problems = (view.problems ?? []).map((p) => `<p class="problem">${escapeHtml(p)}</p>`).join('');
  return page('Set up cldpd', `<h1>Set up cldpd</h1>
<p class="lead">${inlineCode(app.description)}</p>
<p>cldpd runs coding agents in Docker containers (pods) on this machine when someone labels a GitHub issue
<code>cldpd:&lt;pod&gt;</code>, and reports on the issue as they run. It talks to GitHub as a GitHub App of its own,
which does not exist yet. This page registers it on GitHub for you; cldpd then keeps its credentials in <code>.env</code>.</p>
${plainHttpWarning(view.plainHttp)}

<h2>What the app may do, and why</h2>
${accessList(app)}

${webhookSection(manifest.hook_attributes.url, view.viaProxy)}

<h2>Register it</h2>
${problems}
<p>The app <b>${escapeHtml(manifest.name)}</b> will belong to ${owner}. GitHub shows it filled in from this page: check it and
click <b>Create GitHub App</b>. GitHub then sends you back here, and cldpd writes the app's id, private key and webhook secret to <code>.env</code>.</p>
<form method="post" action="${escapeHtml(newAppUrl(githubUrl, org, state))}">
<input type="hidden" name="manifest" value="${escapeHtml(JSON.stringify(manifest))}">
<button type="submit" id="register">Register ${escapeHtml(manifest.name)} on ${escapeHtml(new URL(githubUrl).host)}</button>
</form>
<p class="why">GitHub App names are unique across ${escapeHtml(new URL(githubUrl).host)}: if this one is taken, choose another here or on GitHub's page.</p>
<form class="inline" method="get" action="/">
<label>Organization <span>(empty: your personal account)</span><input type="text" name="org" value="${escapeHtml(org ?? '')}" placeholder="my-org"></label>
<label>App name<input type="text" name="name" value="${escapeHtml(manifest.name)}"></label>
<button type="submit" class="secondary">Change</button>
</form>

<h2>Already have a GitHub App for cldpd?</h2>
<p><a href="/setup/import">Enter its credentials instead</a> (app id, private key, webhook secret).</p>

<h2>After registration</h2>
${nextSteps(undefined)}

${otherMachines(view.listen)}`);
}

/** What the done page shows after `.env` is written. Never a secret's value. */
export interface DonePageView {
  readonly appName: string;
  /** The app's page on GitHub (`https://github.com/apps/<slug>`); undefined when GitHub was not asked. */
  readonly htmlUrl?: string | undefined;
  /** Absolute path of the `.env` written. */
  readonly envPath: string;
  /** The names written to `.env`. */
  readonly keys: readonly string[];
  readonly webhookUrl: string;
  /** A remark, such as that GitHub could not be asked to confirm imported credentials. */
  readonly note?: string | undefined;
}

/** The page after registration or import: which app, what `.env` now holds (names only), and the next steps. */
export function renderDonePage(view: DonePageView): string {
  const href = safeHref(view.htmlUrl);
  const name = href ? `<a href="${escapeHtml(href)}">${escapeHtml(view.appName)}</a>` : `<b>${escapeHtml(view.appName)}</b>`;
  const installUrl = href ? `${href.replace(/\/+$/, '')}/installations/new` : undefined;
  return page('cldpd is registered', `<h1>cldpd is registered</h1>
<p class="ok">The GitHub App ${name} is cldpd's. Its credentials are in <code>${escapeHtml(view.envPath)}</code>.</p>
${view.note ? `<p class="warn">${escapeHtml(view.note)}</p>` : ''}
<h2>Next</h2>
${nextSteps(installUrl)}
<h2>What .env now holds</h2>
<ul id="env-keys">${view.keys.map((k) => `<li><code>${escapeHtml(k)}</code></li>`).join('')}</ul>
<p class="why">Only you can read the file (mode 0600); its other lines were kept. It holds the app's private key and
webhook secret: keep it out of version control and backups you share. GitHub sends webhooks to <code>${escapeHtml(view.webhookUrl)}</code>.</p>`);
}

/** What the import page shows: the form, filled with what was sent when it comes back with problems. */
export interface ImportPageView {
  readonly app: AppDefinition;
  /** The webhook URL to set in the app's settings. */
  readonly webhookUrl: string;
  readonly viaProxy: boolean;
  readonly githubUrl: string;
  /** Guards the form against posts from other sites. */
  readonly token: string;
  /** A fresh random secret offered for the webhook secret field. */
  readonly suggestedSecret: string;
  readonly values?: { readonly appId?: string; readonly privateKey?: string; readonly webhookSecret?: string };
  readonly problems?: readonly string[];
  /** How the page was opened when that is plain HTTP from another machine (then a warning says what that risks). */
  readonly plainHttp?: string | undefined;
}

/**
 * The import page: for an app made by hand or before, the three values cldpd needs, where to
 * find each in the app's settings, and the exact webhook URL to set there.
 */
export function renderImportPage(view: ImportPageView): string {
  const settings = `${view.githubUrl}/settings/apps`;
  const values = view.values ?? {};
  const problems = (view.problems ?? []).map((p) => `<li>${escapeHtml(p)}</li>`).join('');
  return page('Use an existing GitHub App with cldpd', `<h1>Use an existing GitHub App</h1>
<p class="lead">cldpd writes these to <code>.env</code>; nothing leaves this machine except a check with GitHub that the key belongs to the app.</p>
${plainHttpWarning(view.plainHttp)}
${problems ? `<div class="problem" id="problems"><b>Not saved:</b><ul>${problems}</ul></div>` : ''}
<p>Open the app's settings: <a href="${escapeHtml(settings)}">${escapeHtml(settings)}</a> → <b>Edit</b> on the app
(for an organization's app: the organization's <b>Settings → Developer settings → GitHub Apps</b>).</p>
<h2>1. Set its webhook</h2>
<p>Under <b>General → Webhook</b>: tick <b>Active</b>, set <b>Webhook URL</b> to</p>
<p><code id="webhook-url">${escapeHtml(view.webhookUrl)}</code></p>
<p>and <b>Webhook secret</b> to the value in the form below. Save.</p>
${view.viaProxy || !unreachableReason(view.webhookUrl) ? '' : `<p class="warn">GitHub cannot deliver to this URL (${escapeHtml(unreachableReason(view.webhookUrl) ?? '')}): set <code>WEBHOOK_PROXY_URL</code> to a <a href="https://smee.io/new">smee.io channel</a> and restart, or open this page through an address GitHub can reach.</p>`}
<p>Under <b>Permissions &amp; events</b> it needs at least:</p>
${accessList(view.app)}
<h2>2. Enter its credentials</h2>
<form method="post" action="/setup/import">
<input type="hidden" name="token" value="${escapeHtml(view.token)}">
<label for="app_id">App ID <span>— at the top of the app's General page ("App ID: 123456")</span></label>
<input type="text" id="app_id" name="app_id" inputmode="numeric" autocomplete="off" value="${escapeHtml(values.appId ?? '')}">
<label for="private_key">Private key <span>— General → Private keys → <b>Generate a private key</b> downloads a .pem file; open it in a text editor and paste all of it</span></label>
<textarea id="private_key" name="private_key" rows="8" spellcheck="false" placeholder="-----BEGIN RSA PRIVATE KEY-----&#10;…&#10;-----END RSA PRIVATE KEY-----">${escapeHtml(values.privateKey ?? '')}</textarea>
<label for="webhook_secret">Webhook secret <span>— GitHub never shows the current one: keep this new random value and paste it into the app's Webhook secret field too</span></label>
<input type="text" id="webhook_secret" name="webhook_secret" autocomplete="off" value="${escapeHtml(values.webhookSecret ?? view.suggestedSecret)}">
<p><button type="submit" id="save">Save to .env</button></p>
</form>
<p><a href="/">Back: register a new app instead</a></p>`);
}

/** A problem page: what went wrong and what to do. */
export interface ProblemView {
  readonly title: string;
  /** What happened, in plain words. */
  readonly problem: string;
  /** What to do about it, one step each. */
  readonly steps: readonly string[];
}

/** The page for a failed callback or import: the problem named, then what to do. */
export function renderProblemPage(view: ProblemView): string {
  return page(view.title, `<h1>${escapeHtml(view.title)}</h1>
<p class="problem" id="problem">${escapeHtml(view.problem)}</p>
<h2>What to do</h2>
<ol>${view.steps.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ol>
<p><a href="/">Back to the setup page</a></p>`);
}
