import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, requireGitHubApp } from '../src/config.js';

describe('loadConfig', () => {
  it('applies Probot\'s names and defaults and cldpd\'s own', () => {
    const c = loadConfig({ HOME: '/home/me' });
    expect(c.home).toBe('/home/me/.cldpd');
    expect(c.podsDir).toBe('/home/me/.cldpd/pods');
    expect(c.github).toMatchObject({ port: 3000, webhookPath: '/api/github/webhooks', baseUrl: undefined, appId: undefined });
    expect(c.concurrency).toBe(2);
    expect(c.statusIntervalMs).toBe(10_000);
    expect(c.jobLockMs).toBe(60_000);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('takes the quotes off a PRIVATE_KEY passed as the setup page writes it in .env (docker run --env-file keeps them)', () => {
    const pem = '-----BEGIN RSA PRIVATE KEY-----\nMIIB\n-----END RSA PRIVATE KEY-----';
    const written = `"${pem.replace(/\n/g, '\\n')}"`;
    expect(loadConfig({ HOME: '/h', PRIVATE_KEY: written }).github.privateKey).toBe(pem);
    expect(loadConfig({ HOME: '/h', PRIVATE_KEY: `'${pem}'` }).github.privateKey).toBe(pem);
    // Unquoted, or a quote at one end only, it is taken as it is.
    expect(loadConfig({ HOME: '/h', PRIVATE_KEY: pem }).github.privateKey).toBe(pem);
    expect(loadConfig({ HOME: '/h', PRIVATE_KEY: `"${pem}` }).github.privateKey).toBe(`"${pem}`);
  });

  it('reads GitHub Enterprise Server, Redis and overrides', () => {
    const c = loadConfig({ HOME: '/h', GHE_HOST: 'ghe.corp/', GHE_PROTOCOL: 'http', REDIS_URL: 'redis://r:6379', CLDPD_PODS_DIR: '/pods', CLDPD_CONCURRENCY: '5', PRIVATE_KEY: 'a\\nb', APP_ID: '7' });
    expect(c.github.baseUrl).toBe('http://ghe.corp/api/v3');
    expect(c.redisUrl).toBe('redis://r:6379');
    expect(c.podsDir).toBe('/pods');
    expect(c.concurrency).toBe(5);
    expect(c.github.privateKey).toBe('a\nb');
    expect(loadConfig({ HOME: '/h', CLDPD_PODS_DIR: '/pods' }, { podsDir: '/cli' }).podsDir).toBe('/cli');
  });

  it('reports every problem at once', () => {
    let error: unknown;
    try {
      loadConfig({ HOME: '/h', PORT: 'eighty', CLDPD_CONCURRENCY: '0', REDIS_URL: 'localhost:6379', CLDPD_HOST_ID: 'a b', PRIVATE_KEY_PATH: '/nonexistent.pem', GHE_PROTOCOL: 'ftp' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'CLDPD_CONCURRENCY', 'REDIS_URL', 'CLDPD_HOST_ID', 'PRIVATE_KEY_PATH', 'GHE_PROTOCOL']) expect(message).toContain(name);
  });

  it('reads the log format: json or pretty, else chosen by the terminal; anything else is a problem', () => {
    expect(loadConfig({ HOME: '/h' }).logFormat).toBeUndefined();
    expect(loadConfig({ HOME: '/h', CLDPD_LOG_FORMAT: 'json' }).logFormat).toBe('json');
    expect(loadConfig({ HOME: '/h', CLDPD_LOG_FORMAT: 'pretty' }).logFormat).toBe('pretty');
    expect(() => loadConfig({ HOME: '/h', CLDPD_LOG_FORMAT: 'yaml' })).toThrow(/CLDPD_LOG_FORMAT is "yaml"; use json or pretty/);
  });

  it('reads the metrics port: 9464 unless set, 0 for off, anything else outside 0–65535 is a problem', () => {
    expect(loadConfig({ HOME: '/h' }).metricsPort).toBe(9464);
    expect(loadConfig({ HOME: '/h', CLDPD_METRICS_PORT: '0' }).metricsPort).toBe(0);
    expect(loadConfig({ HOME: '/h', CLDPD_METRICS_PORT: '9100' }).metricsPort).toBe(9100);
    for (const bad of ['70000', '-1', 'on', '1.5']) {
      expect(() => loadConfig({ HOME: '/h', CLDPD_METRICS_PORT: bad })).toThrow(new RegExp(`CLDPD_METRICS_PORT is "${bad}"; it must be a port from 1 to 65535, or 0 to turn it off`));
    }
  });

  it('metrics access: the metrics port listens on loopback unless CLDPD_METRICS_ADDRESS says otherwise, whatever HOST is', () => {
    expect(loadConfig({ HOME: '/h', HOST: '0.0.0.0' }).metricsAddress).toBe('127.0.0.1');
    expect(loadConfig({ HOME: '/h', CLDPD_METRICS_ADDRESS: '0.0.0.0' }).metricsAddress).toBe('0.0.0.0');
    expect(loadConfig({ HOME: '/h', CLDPD_METRICS_ADDRESS: '::1' }).metricsAddress).toBe('::1');
    expect(loadConfig({ HOME: '/h', CLDPD_METRICS_ADDRESS: 'metrics.internal' }).metricsAddress).toBe('metrics.internal');
    for (const bad of ['http://0.0.0.0', '10.0.0.1:9464', 'a b']) {
      expect(() => loadConfig({ HOME: '/h', CLDPD_METRICS_ADDRESS: bad })).toThrow(/CLDPD_METRICS_ADDRESS is ".*"; it must be an address to listen on, such as 127\.0\.0\.1/);
    }
  });

  it('reads the egress networks\' pool: 10.213.0.0/16 unless set; anything but an IPv4 network of /28 or larger is a problem', () => {
    expect(loadConfig({ HOME: '/h' }).egressSubnets).toBe('10.213.0.0/16');
    expect(loadConfig({ HOME: '/h', CLDPD_EGRESS_SUBNETS: '172.30.0.0/20' }).egressSubnets).toBe('172.30.0.0/20');
    for (const bad of ['10.213.0.0', '10.213.0.0/29', 'fd00::/64', '300.1.1.1/16', 'ten']) {
      expect(() => loadConfig({ HOME: '/h', CLDPD_EGRESS_SUBNETS: bad })).toThrow(/CLDPD_EGRESS_SUBNETS is ".*"; it must be an IPv4 network of \/28 or larger/);
    }
  });

  it('reads the live page settings: the public address (no path), how much of a feed is kept, and who must sign in', () => {
    const plain = loadConfig({ HOME: '/h', PORT: '3100', HOST: '10.0.0.5' });
    expect(plain.live).toEqual({ publicUrl: 'http://10.0.0.5:3100', maxEntries: 20_000, maxBytes: 4 * 1024 * 1024, keepSeconds: 7 * 86_400, signIn: 'private' });
    expect(loadConfig({ HOME: '/h', CLDPD_LIVE_MAX_MB: '0.5' }).live.maxBytes).toBe(512 * 1024);
    expect(loadConfig({ HOME: '/h', CLDPD_PUBLIC_URL: 'https://cldpd.example.com/' }).live.publicUrl).toBe('https://cldpd.example.com');
    expect(loadConfig({ HOME: '/h', GHE_HOST: 'ghe.corp' }).live.signIn).toBe('always');
    expect(loadConfig({ HOME: '/h', GHE_HOST: 'ghe.corp', CLDPD_LIVE_SIGN_IN: 'private' }).live.signIn).toBe('private');
    expect(loadConfig({ HOME: '/h', GHE_HOST: 'ghe.corp', GHE_PROTOCOL: 'http' }).github.webUrl).toBe('http://ghe.corp');
    expect(() => loadConfig({ HOME: '/h', CLDPD_PUBLIC_URL: 'https://example.com/cldpd' })).toThrow(/CLDPD_PUBLIC_URL is "https:\/\/example.com\/cldpd"; .*with no path/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_PUBLIC_URL: 'example.com' })).toThrow(/CLDPD_PUBLIC_URL/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIVE_SIGN_IN: 'never' })).toThrow(/CLDPD_LIVE_SIGN_IN is "never"/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIVE_MAX_ENTRIES: '0' })).toThrow(/CLDPD_LIVE_MAX_ENTRIES/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIVE_MAX_MB: 'lots' })).toThrow(/CLDPD_LIVE_MAX_MB is "lots"; it must be a number greater than 0/);
  });

  it('reads the installation-wide limits from CLDPD_LIMITS, in JSON, and names what is wrong', () => {
    expect(loadConfig({ HOME: '/h' }).limits).toEqual({ repository: {}, perPerson: {} });
    expect(loadConfig({ HOME: '/h', CLDPD_LIMITS: '{"perPerson": {"runsPerDay": 20}}' }).limits).toEqual({ repository: {}, perPerson: { runsPerDay: 20 } });
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIMITS: '{"perPerson": {"runsPerDay": -2}}' })).toThrow(/CLDPD_LIMITS\.perPerson\.runsPerDay must be 0 or more/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIMITS: '{"people": {}}' })).toThrow(/CLDPD_LIMITS: unknown key "people"/);
    expect(() => loadConfig({ HOME: '/h', CLDPD_LIMITS: '{unclosed' })).toThrow(/CLDPD_LIMITS is not JSON/);
  });

  it('says which GitHub App settings are missing and how to get them', () => {
    expect(() => requireGitHubApp(loadConfig({ HOME: '/h', APP_ID: '1' }))).toThrow(/PRIVATE_KEY \(or PRIVATE_KEY_PATH\), WEBHOOK_SECRET.*npm start/);
    expect(requireGitHubApp(loadConfig({ HOME: '/h', APP_ID: '1', PRIVATE_KEY: 'k' }), { webhookSecret: false })).toMatchObject({ appId: '1', privateKey: 'k' });
  });
});
