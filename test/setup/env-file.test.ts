import { parseEnv } from 'node:util';
import { describe, expect, it } from 'vitest';
import { EnvFileError, formatEnvValue, mergeEnvFile } from '../../src/setup/env-file.js';

describe('.env writing', () => {
  it('replaces a key in place, drops its repeats and the lines of a multi-line value, keeps everything else', () => {
    const existing = 'A=1\nPRIVATE_KEY="-----BEGIN\nold\n-----END"\n# note\nexport APP_ID=7\nAPP_ID=8\nB="x y"\n';
    const merged = mergeEnvFile(existing, { APP_ID: '9', PRIVATE_KEY: 'new\nkey', C: 'c' });
    expect(merged).toBe('A=1\nPRIVATE_KEY="new\\nkey"\n# note\nAPP_ID=9\nB="x y"\n\n# The GitHub App, written by cldpd\'s setup page.\nC=c\n');
    expect(parseEnv(merged)).toEqual({ A: '1', PRIVATE_KEY: 'new\nkey', APP_ID: '9', B: 'x y', C: 'c' });
  });

  it.each(['plain-Value_1.2', 'with space', 'hash # not a comment', "it's", 'say "hi"', 'both \' and "', '', 'a\\nb'])('%j reads back unchanged', (value) => {
    expect(parseEnv(`K=${formatEnvValue('K', value)}\n`).K).toBe(value);
  });

  it('refuses a value no quoting can hold', () => {
    expect(() => formatEnvValue('K', `'"\`x`)).toThrow(EnvFileError);
  });
});
