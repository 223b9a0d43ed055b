import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/github/redact.js';

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
});
