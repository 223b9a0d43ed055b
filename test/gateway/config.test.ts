import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseGatewayConfig, parseNotice } from '../../src/gateway/config.js';

const SHA = createHash('sha256').update('secret').digest('hex');
const ALLOW = { base: [{ host: 'github.com', wildcard: false }], layers: [[{ host: 'pythonhosted.org', wildcard: true, port: 443 }]] };

describe('parseGatewayConfig', () => {
  it('reads a whole configuration, frozen, header names lowercase', () => {
    const config = parseGatewayConfig(JSON.stringify({
      port: 3128, allow: ALLOW, names: ['Gateway'],
      model: { secretSha256: SHA, upstream: 'https://api.anthropic.com', setHeaders: { 'X-Api-Key': 'sk-ant-x' } },
    }));
    expect(config).toEqual({
      port: 3128, allow: ALLOW, names: ['gateway'],
      model: { secretSha256: SHA, upstream: 'https://api.anthropic.com/', setHeaders: { 'x-api-key': 'sk-ant-x' } },
    });
    expect(Object.isFrozen(config)).toBe(true);
    expect(parseGatewayConfig('{"port":1,"allow":{"base":[],"layers":[]}}')).toEqual({ port: 1, allow: { base: [], layers: [] } });
  });

  it.each([
    [undefined, 'is not set'],
    ['[]', 'JSON object'],
    ['{"port":"3128","allow":{"base":[],"layers":[]}}', 'port'],
    ['{"port":3128,"allow":{"base":[],"layers":[{}]}}', 'allow must be'],
    ['{"port":3128,"allow":{"base":["github.com"],"layers":[]}}', 'allow.base[0]'],
    ['{"port":3128,"allow":{"base":[{"host":"GitHub.com","wildcard":false}],"layers":[]}}', 'allow.base[0]'],
    ['{"port":3128,"allow":{"base":[],"layers":[[{"host":"a.test","wildcard":false,"port":70000}]]}}', 'allow.layers[0][0]'],
    [`{"port":3128,"allow":{"base":[],"layers":[]},"model":{"secretSha256":"${SHA}","upstream":"ftp://x","setHeaders":{}}}`, 'http: or https:'],
    [`{"port":3128,"allow":{"base":[],"layers":[]},"model":{"secretSha256":"${SHA}","upstream":"https://u:p@x","setHeaders":{}}}`, 'without credentials'],
    [`{"port":3128,"allow":{"base":[],"layers":[]},"model":{"secretSha256":"${SHA}","upstream":"https://x","setHeaders":{"a b":"1"}}}`, 'invalid header'],
    [`{"port":3128,"allow":{"base":[],"layers":[]},"model":{"secretSha256":"${SHA}","upstream":"https://x","setHeaders":{"x":"a\\r\\nb: c"}}}`, 'invalid header'],
    ['{"port":3128,"allow":{"base":[],"layers":[]},"names":[1]}', 'names'],
  ])('refuses %s, saying what is wrong', (text, words) => {
    const result = parseGatewayConfig(text);
    expect(result).toHaveProperty('error');
    expect((result as { error: string }).error).toContain(words);
  });
});

describe('parseNotice', () => {
  it('reads the lines the gateway prints and nothing else', () => {
    expect(parseNotice('{"event":"blocked","host":"evil.test","port":443,"via":"tls"}')).toEqual({ event: 'blocked', host: 'evil.test', port: 443, via: 'tls' });
    expect(parseNotice('{"event":"listening","port":3128}')).toEqual({ event: 'listening', port: 3128 });
    expect(parseNotice('{"event":"blocked","host":"x","port":1,"via":"udp"}')).toBeUndefined();
    expect(parseNotice('cldpd gateway: error')).toBeUndefined();
  });
});
