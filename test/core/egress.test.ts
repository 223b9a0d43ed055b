import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GATEWAY_HOLDS_KEY, egressRules, gatedEnv, gatewayConfig, gatewaySecretOf, githubRules, modelRoute, withoutModelKeys } from '../../src/core/egress.js';
import { AGENTS } from '../../src/core/agents/agents.js';
import { allows, formatRule, parseEgressEntry, type EgressAllowList } from '../../src/gateway/rules.js';
import { parseNotice } from '../../src/gateway/config.js';
import { validatePodJson, resolvePodConfig } from '../../src/core/pod-config.js';

const list = (...entries: string[]): EgressAllowList => ({ base: [], layers: [egressRules(entries, 'pod.json')] });

describe('egress entries', () => {
  it.each([
    ['registry.npmjs.org', 'registry.npmjs.org'],
    ['*.PythonHosted.org', '*.pythonhosted.org'],
    ['github.com:443', 'github.com:443'],
    ['10.0.0.5:8080', '10.0.0.5:8080'],
    ['example.com.', 'example.com'],
  ])('%s reads as %s', (entry, shown) => {
    const rule = parseEgressEntry(entry);
    expect('error' in rule).toBe(false);
    if (!('error' in rule)) expect(formatRule(rule)).toBe(shown);
  });

  it.each([
    ['', 'must be a host name'],
    ['*', 'may only start a name'],
    ['*.org', 'whole top-level domain'],
    ['a.*.example.com', 'may only start a name'],
    ['exa mple.com', 'not a host name'],
    ['http://example.com', 'not a host name'],
    ['example.com:0', 'a port is 1 to 65535'],
    ['example.com:70000', 'a port is 1 to 65535'],
    ['*.10.0.0.1', 'not an address'],
    [`${'a'.repeat(64)}.com`, 'not a host name'],
  ])('%j is refused, saying %s', (entry, words) => {
    const rule = parseEgressEntry(entry);
    expect('error' in rule && rule.error).toContain(words);
  });

  it('a name without a port allows HTTP and HTTPS only; with one, only that port', () => {
    expect(allows(list('example.com'), 'example.com', 443)).toBe(true);
    expect(allows(list('example.com'), 'EXAMPLE.com.', 80)).toBe(true);
    expect(allows(list('example.com'), 'example.com', 22)).toBe(false);
    expect(allows(list('example.com:8443'), 'example.com', 8443)).toBe(true);
    expect(allows(list('example.com:8443'), 'example.com', 443)).toBe(false);
  });

  it('a wildcard allows every name under the domain, never the domain itself or a look-alike', () => {
    const rules = list('*.example.com');
    expect(allows(rules, 'a.example.com', 443)).toBe(true);
    expect(allows(rules, 'a.b.example.com', 443)).toBe(true);
    expect(allows(rules, 'example.com', 443)).toBe(false);
    expect(allows(rules, 'evilexample.com', 443)).toBe(false);
    expect(allows(rules, 'example.com.evil.test', 443)).toBe(false);
  });

  it('narrowing: a host passes only when every layer allows it; the base (GitHub) always passes', () => {
    const narrowed: EgressAllowList = { base: githubRules(['https://github.com/acme/web/issues/1']), layers: [egressRules(['*.npmjs.org', 'pypi.org'], 'pod.json'), egressRules(['registry.npmjs.org', 'evil.test'], 'cldpd.yml')] };
    expect(allows(narrowed, 'registry.npmjs.org', 443)).toBe(true);
    expect(allows(narrowed, 'pypi.org', 443)).toBe(false);
    // The repository cannot widen: evil.test is in its list, not the pod's.
    expect(allows(narrowed, 'evil.test', 443)).toBe(false);
    expect(allows(narrowed, 'api.github.com', 443)).toBe(true);
    expect(allows({ base: [], layers: [] }, 'anything.test', 443)).toBe(false);
  });
});

describe('GitHub hosts', () => {
  it('github.com brings its git, API, archive, upload and raw hosts; nothing of other sites', () => {
    const rules = { base: githubRules(['https://github.com/acme/web/issues/1']), layers: [] };
    for (const host of ['github.com', 'api.github.com', 'codeload.github.com', 'uploads.github.com', 'objects.githubusercontent.com', 'raw.githubusercontent.com']) {
      expect(allows(rules, host, 443)).toBe(true);
    }
    expect(allows(rules, 'gist.example.com', 443)).toBe(false);
  });

  it('an Enterprise Server brings itself, with its port, and its subdomains', () => {
    const rules = { base: githubRules(['https://ghe.acme.test:8443/acme/web/issues/1', 'https://ghe.acme.test:8443/acme/web.git', undefined]), layers: [] };
    expect(allows(rules, 'ghe.acme.test', 8443)).toBe(true);
    expect(allows(rules, 'media.ghe.acme.test', 8443)).toBe(true);
    expect(allows(rules, 'ghe.acme.test', 443)).toBe(false);
    expect(githubRules(['not a url'])).toEqual([]);
  });
});

describe('the model key', () => {
  it('a key in the pod is held by the gateway: the container gets the endpoint through the gateway with a per-run secret, and no key', () => {
    const env = { ANTHROPIC_API_KEY: 'sk-ant-real', ANTHROPIC_BASE_URL: 'http://fake.test:9000/', OTHER: 'kept' };
    const route = modelRoute(env);
    expect(route.gateway?.upstream).toBe('http://fake.test:9000');
    expect(route.gateway?.setHeaders).toEqual({ 'x-api-key': 'sk-ant-real' });
    expect(route.gateway?.secretSha256).toBe(createHash('sha256').update(route.secret ?? '').digest('hex'));
    const gated = gatedEnv({ address: '10.213.0.2', port: 3128 }, route, env);
    expect(gated.ANTHROPIC_BASE_URL).toBe(`http://10.213.0.2:3128/${route.secret}`);
    expect(gated.ANTHROPIC_API_KEY).toBe(GATEWAY_HOLDS_KEY);
    expect(JSON.stringify(gated)).not.toContain('sk-ant-real');
    expect(gated).toMatchObject({ OTHER: 'kept', HTTPS_PROXY: 'http://10.213.0.2:3128', http_proxy: 'http://10.213.0.2:3128', NO_PROXY: expect.stringContaining('10.213.0.2') });
    // Each run its own secret.
    expect(modelRoute(env).secret).not.toBe(route.secret);
  });

  it('tokens go as a bearer; a pod with no key reaches the provider\'s host itself', () => {
    expect(modelRoute({ CLAUDE_CODE_OAUTH_TOKEN: 'oauth-1' }).gateway?.setHeaders).toEqual({ authorization: 'Bearer oauth-1' });
    expect(modelRoute({}).direct).toEqual({ host: 'api.anthropic.com', wildcard: false, port: 443 });
    expect(modelRoute({}).secret).toBeUndefined();
    expect(() => modelRoute({ ANTHROPIC_API_KEY: 'k', ANTHROPIC_BASE_URL: 'ftp://x' })).toThrow(/http or https/);
  });

  it('each agent\'s key and endpoint: Codex\'s as a bearer to OpenAI, Gemini\'s as x-goog-api-key; another agent\'s variables are not touched', () => {
    const env = { OPENAI_API_KEY: 'sk-openai-real', ANTHROPIC_API_KEY: 'sk-ant-other', OTHER: 'kept' };
    const route = modelRoute(env, undefined, AGENTS.codex.provider);
    expect(route.gateway).toMatchObject({ upstream: 'https://api.openai.com/v1', setHeaders: { authorization: 'Bearer sk-openai-real' } });
    const gated = gatedEnv({ address: '10.213.0.2', port: 3128 }, route, env, AGENTS.codex);
    expect(gated.OPENAI_BASE_URL).toBe(`http://10.213.0.2:3128/${route.secret}`);
    expect(gated.OPENAI_API_KEY).toBe(GATEWAY_HOLDS_KEY);
    expect(gated.ANTHROPIC_BASE_URL).toBeUndefined();
    expect(gated.CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).toBeUndefined();
    expect(gatewaySecretOf(gated)).toBe(route.secret);
    expect(withoutModelKeys({ OPENAI_API_KEY: 'x', OPENAI_BASE_URL: 'y', CODEX_API_KEY: 'z', OTHER: 'kept' }, AGENTS.codex.provider)).toEqual({ OTHER: 'kept' });

    const gemini = modelRoute({ GEMINI_API_KEY: 'AIza-real', GOOGLE_GEMINI_BASE_URL: 'http://fake.test:9/' }, undefined, AGENTS.gemini.provider);
    expect(gemini.gateway).toMatchObject({ upstream: 'http://fake.test:9', setHeaders: { 'x-goog-api-key': 'AIza-real' } });
    expect(modelRoute({}, undefined, AGENTS.gemini.provider).direct).toEqual({ host: 'generativelanguage.googleapis.com', wildcard: false, port: 443 });
    expect(() => modelRoute({ GEMINI_API_KEY: 'two words' }, undefined, AGENTS.gemini.provider)).toThrow(/GEMINI_API_KEY value\) has spaces/);
    // The first key a provider lists wins its header: a second never overwrites it.
    expect(modelRoute({ CODEX_API_KEY: 'first', OPENAI_API_KEY: 'second' }, undefined, AGENTS.codex.provider).gateway?.setHeaders).toEqual({ authorization: 'Bearer first' });
  });

  it('the gateway\'s configuration: GitHub and the direct provider as the base, the pod\'s list, then the repository\'s', () => {
    const config = gatewayConfig({ open: false, rules: egressRules(['pypi.org'], 'pod.json') }, egressRules(['pypi.org'], 'cldpd.yml'), githubRules(['https://github.com/a/b/issues/1']), modelRoute({}));
    expect(config.model).toBeUndefined();
    expect(config.allow.layers).toHaveLength(2);
    expect(allows(config.allow, 'api.anthropic.com', 443)).toBe(true);
  });
});

describe('pod.json egress', () => {
  it('absent: gated with nothing listed; "open": open; a network of its own without egress: open', () => {
    const config = (json: object) => {
      const checked = validatePodJson(json);
      if (!checked.ok) throw new Error(checked.problems.join('; '));
      return resolvePodConfig('p', checked.value, '/home/me').egress;
    };
    expect(config({})).toEqual({ open: false, rules: [] });
    expect(config({ egress: 'open' })).toEqual({ open: true });
    expect(config({ network: 'host' })).toEqual({ open: true });
    expect(config({ egress: ['pypi.org', '*.npmjs.org'] })).toEqual({ open: false, rules: [{ host: 'pypi.org', wildcard: false }, { host: 'npmjs.org', wildcard: true }] });
  });

  it.each([
    [{ egress: 'closed' }, 'field "egress" must be "open" or a list of hosts'],
    [{ egress: ['*.org'] }, 'field "egress[0]"'],
    [{ egress: ['pypi.org'], network: 'host' }, 'leave "network" out'],
    [{ egress: Array.from({ length: 201 }, (_, i) => `h${i}.test`) }, 'at most 200 hosts'],
  ])('%j is refused: %s', (json, words) => {
    const checked = validatePodJson(json);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.problems.join('\n')).toContain(words);
  });
});

describe('gateway notices', () => {
  it('reads its own lines, bounds the host, and ignores anything else', () => {
    expect(parseNotice('{"event":"blocked","host":"evil.test","port":443,"via":"connect"}')).toEqual({ event: 'blocked', host: 'evil.test', port: 443, via: 'connect' });
    expect(parseNotice(`{"event":"blocked","host":"${'a'.repeat(1000)}","port":443,"via":"tls"}`)?.event === 'blocked').toBe(true);
    expect((parseNotice(`{"event":"blocked","host":"${'a'.repeat(1000)}","port":443,"via":"tls"}`) as { host: string }).host).toHaveLength(255);
    expect(parseNotice('{"event":"blocked","host":"x","port":"443","via":"connect"}')).toBeUndefined();
    expect(parseNotice('{"event":"blocked","host":"x","port":443,"via":"smtp"}')).toBeUndefined();
    expect(parseNotice('listening on 3128')).toBeUndefined();
    expect(parseNotice('{not json')).toBeUndefined();
  });
});
