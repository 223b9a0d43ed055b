import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'puppeteer-core';
import { expect, it } from 'vitest';
import { describeWithChromium, offlinePage, useChromium } from '../fakes/chromium.js';
import { APP_YML_URL, buildManifest, parseAppDefinition } from '../../src/setup/app-manifest.js';
import { renderDonePage, renderImportPage, renderProblemPage, renderSetupPage } from '../../src/setup/setup-pages.js';

const app = parseAppDefinition(readFileSync(APP_YML_URL, 'utf8'));
const webhookPath = '/api/github/webhooks';
const setupAt = (baseUrl: string, plainHttp?: string) => renderSetupPage({
  app, manifest: buildManifest(app, { baseUrl, webhookPath }), githubUrl: 'https://github.com', state: '0f'.repeat(16),
  viaProxy: false, listen: { port: 3000, host: undefined }, plainHttp,
});

/** Every page a newcomer meets, as the setup server serves it. */
const PAGES: Array<[string, string]> = [
  ['setup-localhost', setupAt('http://localhost:3000')],
  ['setup-public', setupAt('https://cldpd.example.com')],
  ['setup-plain-http', setupAt('http://cldpd.example.com:3000', 'http://cldpd.example.com:3000 from 192.0.2.9')],
  ['done', renderDonePage({
    appName: 'cldpd-lab', htmlUrl: 'https://github.com/apps/cldpd-lab', envPath: '/home/me/cldpd/.env',
    keys: ['APP_ID', 'PRIVATE_KEY', 'WEBHOOK_SECRET', 'GITHUB_CLIENT_ID', 'GITHUB_CLIENT_SECRET'], webhookUrl: `https://cldpd.example.com${webhookPath}`,
  })],
  ['import', renderImportPage({ app, webhookUrl: `https://cldpd.example.com${webhookPath}`, viaProxy: false, githubUrl: 'https://github.com', token: 'ab'.repeat(16), suggestedSecret: '3f'.repeat(20) })],
  ['import-problems', renderImportPage({
    app, webhookUrl: `https://cldpd.example.com${webhookPath}`, viaProxy: false, githubUrl: 'https://github.com', token: 'ab'.repeat(16), suggestedSecret: '3f'.repeat(20),
    values: { appId: '42a', privateKey: 'not a key', webhookSecret: '' },
    problems: ['App ID must be the number shown as "App ID" at the top of the app\'s General settings page (digits only).', 'Private key is not a PEM private key: paste the whole .pem file GitHub downloaded.'],
  })],
  ['problem', renderProblemPage({ title: 'The registration code is used or expired', problem: 'GitHub did not accept the code (HTTP 404): a code works once, within an hour.', steps: ['Register again from the setup page.'] })],
];

describeWithChromium('the setup pages as a browser shows them (headless Chromium)', () => {
  const { browser, shots: SHOTS } = useChromium('setup-page');

  /** Whether the element matching `selector` is on screen: laid out with a size, not hidden. */
  const visible = (page: Page, selector: string) => page.$eval(selector, (el) => {
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    return box.width > 0 && box.height > 0 && style.visibility !== 'hidden' && style.display !== 'none';
  }).catch(() => false);

  it.each(PAGES)('render: %s', async (name, html) => {
    // Nothing may be fetched: a request at all means an image, font or script got through.
    const { page, requests } = await offlinePage(browser());
    try {
      await page.setViewport({ width: 900, height: 700 });
      await page.setContent(html, { waitUntil: 'load' });
      await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
      const text = await page.evaluate(() => document.body.innerText);
      expect(requests).toEqual([]);
      expect(text).not.toMatch(/<\/?(?:code|b|a|p|li|ul|ol|span|div|h\d|script)[ >]/); // no markup shown as text: nothing double-escaped

      if (name.startsWith('setup')) {
        expect(await visible(page, '#permissions')).toBe(true);
        const permissions = await page.$$eval('#permissions li', (items) => items.map((li) => (li as HTMLElement).innerText));
        expect(permissions).toEqual(Object.entries(app.defaultPermissions).map(([p, level]) => expect.stringMatching(new RegExp(`^${p}: ${level} — .+`))));
        expect(await page.$$eval('#events li', (items) => items.length)).toBe(app.defaultEvents.length);
        expect(await visible(page, 'form button#register')).toBe(true);
        expect(await page.$eval('form:has(#register)', (f) => [(f as HTMLFormElement).method, (f as HTMLFormElement).action])).toEqual(['post', expect.stringMatching(/^https:\/\/github\.com\/settings\/apps\/new\?state=/)]);
        expect(text).toContain(`Where GitHub sends webhooks`);
        expect(text).toMatch(/Install it on repositories/);
        expect(await visible(page, '#unreachable')).toBe(name === 'setup-localhost');
        // setup http: plain HTTP from another machine (allowed) is said at the top, in the problem colour.
        expect(await visible(page, '#plain-http')).toBe(name === 'setup-plain-http');
        if (name === 'setup-plain-http') expect(text).toMatch(/This page travels unencrypted: it was opened as http:\/\/cldpd\.example\.com:3000 from 192\.0\.2\.9/);
      }
      if (name === 'done') {
        expect(await visible(page, '#next-steps')).toBe(true);
        expect(await page.$$eval('#next-steps a', (links) => links.map((a) => (a as HTMLAnchorElement).href))).toEqual(['https://github.com/apps/cldpd-lab/installations/new']);
        expect(text).toMatch(/cldpd:hello/);
        expect(text).toMatch(/run npm start again/);
      }
      if (name.startsWith('import')) {
        expect(await visible(page, 'button#save')).toBe(true);
        for (const field of ['#app_id', '#private_key', '#webhook_secret']) expect(await visible(page, field)).toBe(true);
        expect(text).toContain(`https://cldpd.example.com${webhookPath}`);
        expect(await visible(page, '#problems')).toBe(name === 'import-problems');
      }
      if (name === 'problem') {
        expect(await visible(page, '#problem')).toBe(true);
        expect(text).toMatch(/What to do\s+1?\.?\s*Register again/);
      }
    } finally {
      await page.close();
    }
  }, 60_000);
});
