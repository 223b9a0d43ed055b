import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { APP_YML_URL, buildManifest, parseAppDefinition, type AppManifest } from '../../src/setup/app-manifest.js';
import { EVENT_REASONS, PERMISSION_REASONS, escapeHtml, renderDonePage, renderImportPage, renderProblemPage, renderSetupPage, type SetupPageView } from '../../src/setup/setup-pages.js';

const APP_YML = readFileSync(APP_YML_URL, 'utf8');
const app = parseAppDefinition(APP_YML);
const { webhookPath } = loadConfig({ HOME: '/h' }).github;

function setupView(patch: Partial<SetupPageView> & { baseUrl?: string } = {}): SetupPageView {
  const { baseUrl = 'https://cldpd.example.com', ...rest } = patch;
  return {
    app, manifest: buildManifest(app, { baseUrl, webhookPath }), githubUrl: 'https://github.com', state: 'st4te',
    viaProxy: false, listen: { port: 3000, host: undefined }, ...rest,
  };
}

/** The text of an HTML page, tags dropped and entities read, for "does a reader see this". */
function text(html: string): string {
  return html.replace(/<style>[\s\S]*?<\/style>/g, '').replace(/<\/?(?:li|p|h\d|ul|ol|div|br|label|form|title|main)\b[^>]*>/g, ' ').replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').replace(/\s+/g, ' ');
}

describe('the setup page', () => {
  it('lists each event and permission of app.yml with why', () => {
    const page = text(renderSetupPage(setupView()));
    for (const event of app.defaultEvents) expect(page).toContain(`${event} — ${EVENT_REASONS[event]}`);
    for (const [permission, level] of Object.entries(app.defaultPermissions)) expect(page).toContain(`${permission}: ${level} — ${PERMISSION_REASONS[permission]}`);
    expect(page).not.toContain('declared in app.yml'); // every one has a reason written for it
  });

  it('says what cldpd is, what comes next, and how to open it from another machine', () => {
    const page = text(renderSetupPage(setupView()));
    expect(page).toMatch(/runs coding agents in Docker containers/);
    expect(page).toMatch(/Install it on repositories/);
    expect(page).toMatch(/run npm start again/);
    expect(page).toMatch(/add the label cldpd:hello to an issue/);
    expect(page).toMatch(/from another machine use an SSH tunnel \(ssh -L 3000:localhost:3000 <this machine>, then open http:\/\/localhost:3000\/\?key=…\) or an HTTPS address/);
    expect(page).toMatch(/Plain HTTP from another machine is refused unless CLDPD_SETUP_ALLOW_HTTP=1 is set/);
    expect(page).toMatch(/HOST and PORT choose where cldpd listens/);
    expect(page).not.toMatch(/travels unencrypted/);
  });

  it('setup http: a page opened over plain HTTP from another machine (allowed) says what that risks', () => {
    const page = text(renderSetupPage(setupView({ plainHttp: 'http://192.0.2.7:3000 from 192.0.2.9' })));
    expect(page).toMatch(/This page travels unencrypted: it was opened as http:\/\/192\.0\.2\.7:3000 from 192\.0\.2\.9, over plain HTTP/);
    expect(page).toMatch(/whoever sees the code can\s+exchange it for the app's private key/);
  });

  it('posts the manifest to GitHub (an organization\'s page when one is chosen) with the state', () => {
    const html = renderSetupPage(setupView({ org: 'acme' }));
    expect(html).toContain('action="https://github.com/organizations/acme/settings/apps/new?state=st4te"');
    const value = /name="manifest" value="([^"]*)"/.exec(html)?.[1] ?? '';
    const manifest = JSON.parse(text(value)) as AppManifest;
    expect(manifest.hook_attributes.url).toBe(`https://cldpd.example.com${webhookPath}`);
    expect(manifest.default_events).toEqual(app.defaultEvents);
    expect(renderSetupPage(setupView())).toContain('action="https://github.com/settings/apps/new?state=st4te"');
  });

  it('warns when GitHub cannot reach the webhook URL, and says what to do; not for a public host or a smee channel', () => {
    const local = text(renderSetupPage(setupView({ baseUrl: 'http://localhost:3000' })));
    expect(local).toMatch(/GitHub cannot deliver webhooks to this URL: localhost is this machine only/);
    expect(local).toMatch(/set WEBHOOK_PROXY_URL to its URL/);
    expect(local).toMatch(/open this page through an address GitHub can reach/);
    expect(renderSetupPage(setupView())).not.toContain('id="unreachable"');
    const proxied = setupView({ baseUrl: 'http://localhost:3000', viaProxy: true });
    expect(renderSetupPage({ ...proxied, manifest: buildManifest(app, { baseUrl: 'http://localhost:3000', webhookPath, webhookProxyUrl: 'https://smee.io/x' }) })).not.toContain('id="unreachable"');
  });

  it('escapes every value it shows: a base URL, an organization, a problem', () => {
    const evil = '<script>alert(1)</script>';
    const html = renderSetupPage({
      ...setupView({ baseUrl: `http://x/${evil}` }),
      org: `a"><script>`, problems: [`"${evil}" is not an organization name`],
    });
    expect(html).not.toMatch(/<script/i);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(escapeHtml(`<a href="x" title='y'>&</a>`)).toBe('&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
  });

  it('loads nothing from elsewhere: no scripts, no external styles or images', () => {
    const html = renderSetupPage(setupView());
    expect(html).not.toMatch(/<script|<link|<img|@import|src=/i);
  });
});

describe('the done page', () => {
  const view = { appName: 'cldpd-lab', htmlUrl: 'https://github.com/apps/cldpd-lab', envPath: '/srv/cldpd/.env', keys: ['APP_ID', 'PRIVATE_KEY', 'WEBHOOK_SECRET'], webhookUrl: 'https://c.example/api/github/webhooks' };

  it('names the app, links its installation, says restart and label cldpd:hello, and lists what .env holds by name', () => {
    const html = renderDonePage(view);
    expect(html).toContain('<a href="https://github.com/apps/cldpd-lab">cldpd-lab</a>');
    expect(html).toContain('href="https://github.com/apps/cldpd-lab/installations/new"');
    const page = text(html);
    expect(page).toMatch(/Restart cldpd: stop this process \(Ctrl\+C\) and run npm start again/);
    expect(page).toMatch(/cldpd:hello/);
    expect(page).toMatch(/APP_ID PRIVATE_KEY WEBHOOK_SECRET/);
    expect(page).toContain('/srv/cldpd/.env');
  });

  it('links nothing that is not http(s), and escapes the name', () => {
    const html = renderDonePage({ ...view, appName: '<b>x</b>', htmlUrl: 'javascript:alert(1)' });
    expect(html).not.toContain('javascript:');
    expect(html).toContain('&lt;b&gt;x&lt;/b&gt;');
  });
});

describe('the import page', () => {
  const view = { app, webhookUrl: `https://c.example${webhookPath}`, viaProxy: false, githubUrl: 'https://github.com', token: 't0k', suggestedSecret: 'abc123' };

  it('gives the exact webhook URL to set, where each value is, and a form with the token', () => {
    const html = renderImportPage(view);
    const page = text(html);
    expect(page).toContain(`set Webhook URL to https://c.example${webhookPath}`);
    expect(page).toMatch(/App ID — at the top of the app's General page/);
    expect(page).toMatch(/Generate a private key/);
    expect(page).toMatch(/Webhook secret — GitHub never shows the current one/);
    expect(html).toContain('name="token" value="t0k"');
    expect(html).toContain('name="webhook_secret" autocomplete="off" value="abc123"');
    expect(html).toMatch(/<button type="submit" id="save">/);
  });

  it('shows the problems and what was sent, escaped', () => {
    const html = renderImportPage({ ...view, values: { appId: '<1>', privateKey: '</textarea><script>', webhookSecret: 's' }, problems: ['App ID must be <digits>'] });
    expect(html).not.toMatch(/<script|<\/textarea><script/);
    expect(html).toContain('App ID must be &lt;digits&gt;');
    expect(html).toContain('value="&lt;1&gt;"');
  });

  it('a problem page names the problem and the steps', () => {
    const page = text(renderProblemPage({ title: 'GitHub did not answer', problem: 'cldpd could not reach <api>', steps: ['Check the network.', 'Reload.'] }));
    expect(page).toContain('cldpd could not reach <api>');
    expect(page).toMatch(/What to do Check the network\. Reload\./);
  });
});
