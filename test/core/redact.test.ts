import { describe, expect, it } from 'vitest';
import { createRedactor, hideHostPaths, hideSecrets } from '../../src/core/redact.js';

describe('createRedactor', () => {
  it.each([
    [['abcdef'], 'x abcdef y abcdef', 'x [redacted] y [redacted]'],
    [['abc'], 'abc stays: too short to hunt', 'abc stays: too short to hunt'],
    [['secret-long', 'secret'], 'secret-long secret', '[redacted] [redacted]'],
    [[], 'key sk-ant-api03-abcdefghijklmnopqrstuvwxyz', 'key [redacted]'],
    [[], 'AKIAABCDEFGHIJKLMNOP', '[redacted]'],
    [[], '-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----', '[redacted]'],
  ])('%j in %j', (secrets, text, expected) => {
    expect(createRedactor(secrets)(text)).toBe(expected);
  });

  const secret = 'line one\n\t"quoted" pass=xyz\\end';
  const fold = (t: string) => t.replace(/\s+/g, ' ');
  const text = `before ${secret} after`;

  it.each([
    ['as it is', text, 'before [redacted] after'],
    ['JSON-escaped', JSON.stringify(text), '"before [redacted] after"'],
    ['whitespace-folded', fold(text), 'before [redacted] after'],
    ['folded, then JSON-escaped', JSON.stringify(fold(text)), '"before [redacted] after"'],
  ])('secrets in part: a secret with a newline, a tab, a quote and a backslash is hidden %s', (_, seen, expected) => {
    expect(createRedactor([secret])(seen)).toBe(expected);
  });

  it('secrets in part: a folded form shorter than the least secret length is not hunted', () => {
    expect(createRedactor(['ab\n\n\n\n\ncd'])('ab cd stays')).toBe('ab cd stays');
  });

  const key = 'Zq8vL2mN4pR7tX1yB6cD9fG3hJ5kW0sE';
  it.each([
    ['a line break', `key ${key.slice(0, 24)}\n${key.slice(24)} end`],
    ['a Windows line break and indent', `key ${key.slice(0, 24)}\r\n    ${key.slice(24)} end`],
    ['spaces between characters', `key ${[...key].join(' ')} end`],
    ['a JSON-escaped line break', `key ${key.slice(0, 24)}\\n${key.slice(24)} end`],
    ['a line break, then folded to one line', `key ${key.slice(0, 24)} ${key.slice(24)} end`],
  ])('split secret: a value broken by %s is hidden whole', (_, seen) => {
    expect(createRedactor([key])(seen)).toBe('key [redacted] end');
  });

  it('split secret: a value of mostly whitespace is still found as it is', () => {
    expect(createRedactor(['ab\n\n\n\n\ncd'])('x ab\n\n\n\n\ncd y')).toBe('x [redacted] y');
  });

  it('split secret: 30 values hunted through 20 MiB of text find the one at its end', () => {
    const text = `${'0123456789abcdef'.repeat(64)}\n`.repeat(20 * 1024);
    const values = Array.from({ length: 30 }, (_, i) => `${key}${i}`);
    expect(createRedactor(values)(`${text}${key}0`)).toBe(`${text}[redacted]`);
  });
});

describe('hideSecrets', () => {
  it('hides every token in text', () => {
    expect(hideSecrets('a ghs_1 b ghs_2 ghs_1', ['ghs_1', 'ghs_2'])).toBe('a [redacted] b [redacted] [redacted]');
  });
});

describe('hideHostPaths', () => {
  const places = { podsDir: '/home/ann/.cldpd/pods', home: '/home/ann/.cldpd', userHome: '/home/ann' };
  it.each([
    ['/home/ann/.cldpd/pods/web/pod.json is not valid JSON', '<pods>/web/pod.json is not valid JSON'],
    ['see /home/ann/.cldpd/sessions/web-1.jsonl', 'see <cldpd home>/sessions/web-1.jsonl'],
    ['the key in /home/ann/key.pem', 'the key in ~/key.pem'],
    ['nothing of this host', 'nothing of this host'],
  ])('%s', (text, shown) => {
    expect(hideHostPaths(text, places)).toBe(shown);
  });

  it('leaves a root folder alone: "/" would hide every path', () => {
    expect(hideHostPaths('/etc/passwd', { podsDir: '/', home: '/', userHome: '/' })).toBe('/etc/passwd');
  });
});
