import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { loadConfig } from '../../src/config.js';
import { APP_YML_URL, buildManifest, githubWebUrl, newAppUrl, parseAppDefinition, requestBaseUrl, unreachableReason, webhookUrlFor } from '../../src/setup/app-manifest.js';

const APP_YML = readFileSync(APP_YML_URL, 'utf8');
const app = parseAppDefinition(APP_YML);
const { webhookPath } = loadConfig({ HOME: '/h' }).github;

describe('the manifest', () => {
  it('has exactly app.yml\'s events and permissions, is private, and says where GitHub comes back', () => {
    const raw = parseYaml(APP_YML) as { name: string; default_events: string[]; default_permissions: Record<string, string> };
    const manifest = buildManifest(app, { baseUrl: 'https://cldpd.example.com/', webhookPath });
    expect(manifest.default_events).toEqual(raw.default_events);
    expect(manifest.default_permissions).toEqual(raw.default_permissions);
    expect(manifest).toMatchObject({ name: raw.name, public: false, redirect_url: 'https://cldpd.example.com/setup/callback', callback_urls: ['https://cldpd.example.com/auth/github/callback'] });
    expect(manifest).not.toHaveProperty('setup_url');
  });

  it('sends webhooks to a path cldpd serves: <base> + WEBHOOK_PATH, or the smee channel cldpd follows', () => {
    const manifest = buildManifest(app, { baseUrl: 'http://10.0.0.5:3000', webhookPath });
    expect(manifest.hook_attributes).toEqual({ url: `http://10.0.0.5:3000${webhookPath}`, active: true });
    expect(new URL(manifest.hook_attributes.url).pathname).toBe('/api/github/webhooks');
    expect(buildManifest(app, { baseUrl: 'http://x', webhookPath: '/hooks/', webhookProxyUrl: 'https://smee.io/abc' }).hook_attributes.url).toBe('https://smee.io/abc');
    expect(webhookUrlFor('https://a.example/', 'hooks')).toBe('https://a.example/hooks');
  });

  it('takes a chosen name, else app.yml\'s', () => {
    expect(buildManifest(app, { baseUrl: 'http://x', webhookPath, name: 'cldpd-lab' }).name).toBe('cldpd-lab');
  });

  it('refuses a malformed app.yml, naming the field', () => {
    expect(() => parseAppDefinition('name: x\ndefault_events: issues\ndefault_permissions: {}')).toThrow(/default_events/);
    expect(() => parseAppDefinition('name: x\ndefault_events: [issues]\ndefault_permissions: { issues: admin }')).toThrow(/default_permissions.*read or write/);
  });
});

describe('addresses', () => {
  it('base URL from the Host header; https only when a proxy says so; a bogus Host falls back', () => {
    expect(requestBaseUrl('Box:3000', undefined, 'http://localhost:3000')).toBe('http://box:3000');
    expect(requestBaseUrl('cldpd.example.com', 'https', 'f')).toBe('https://cldpd.example.com');
    expect(requestBaseUrl('[::1]:3000', 'http', 'f')).toBe('http://[::1]:3000');
    expect(requestBaseUrl('<script>:1', undefined, 'http://localhost:3000')).toBe('http://localhost:3000');
    expect(requestBaseUrl(undefined, undefined, 'fallback')).toBe('fallback');
  });

  it.each([
    ['http://localhost:3000/api/github/webhooks', true], ['http://127.0.0.1:3000/', true], ['http://[::1]:3000/', true],
    ['http://192.168.1.20:3000/', true], ['http://10.1.2.3/', true], ['http://172.20.0.2/', true], ['http://mybox:3000/', true],
    ['http://mybox.local:3000/', true], ['https://cldpd.example.com/api/github/webhooks', false], ['http://203.0.113.9:3000/', false],
    ['https://smee.io/abc', false], ['http://172.32.0.1/', false],
  ])('%s unreachable from GitHub: %s', (url, unreachable) => {
    expect(unreachableReason(url) !== undefined).toBe(unreachable);
  });

  it('GitHub\'s web origin, and the new-app URL for an account or an organization (GHE too)', () => {
    expect(githubWebUrl(undefined)).toBe('https://github.com');
    expect(githubWebUrl(loadConfig({ HOME: '/h', GHE_HOST: 'ghe.corp' }).github.baseUrl)).toBe('https://ghe.corp');
    expect(newAppUrl('https://github.com', undefined, 's1')).toBe('https://github.com/settings/apps/new?state=s1');
    expect(newAppUrl('https://ghe.corp', 'acme', 's1')).toBe('https://ghe.corp/organizations/acme/settings/apps/new?state=s1');
  });
});
