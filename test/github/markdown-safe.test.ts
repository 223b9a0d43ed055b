import { describe, expect, it } from 'vitest';
import { isSafeMarkdown, keepMarkdownEnd, safeMarkdown } from '../../src/github/markdown-safe.js';

/** A wide header and many one-character rows: a CommonMark parser with GFM tables fills in every missing cell. */
const fillingTable = (columns: number, rows: number) => `|${'a|'.repeat(columns)}\n|${'-|'.repeat(columns)}\n${'x @octocat\n'.repeat(rows)}\n`;

describe('an answer whose tables would fill in cells', () => {
  const answer = fillingTable(100, 660).repeat(5);

  it('cell fill: is shown whole as a code block, not parsed as Markdown', () => {
    const safe = safeMarkdown(answer);
    expect(safe.startsWith('```\n')).toBe(true);
    expect(safe.endsWith('\n```')).toBe(true);
    expect(isSafeMarkdown(answer)).toBe(false);
  });

  it('cell fill: its end, cut to fit a comment, stays a code block', () => {
    const { text } = keepMarkdownEnd(safeMarkdown(answer), 20_000);
    expect(text.startsWith('```')).toBe(true);
  });

  it('an ordinary table is still Markdown, its mentions defused', () => {
    const table = '| who | issue |\n|---|---|\n| @octocat | #12 |\n';
    const safe = safeMarkdown(table);
    expect(safe.startsWith('|')).toBe(true);
    expect(safe).not.toContain('| @octocat');
    expect(isSafeMarkdown(safe)).toBe(true);
  });
});

describe('issue and pull request URLs', () => {
  it.each([
    'Fixes https://github.com/other/repo/issues/1',
    'resolves https://ghe.example/acme/web/pull/12 and closes [this](https://github.com/a/x/issues/9)',
  ])('issue urls: %j no longer references or closes anything, and reads safe', (answer) => {
    const safe = safeMarkdown(answer);
    expect(safe).not.toMatch(/\/(issues|pull)\/\d/);
    expect(isSafeMarkdown(safe)).toBe(true);
    expect(isSafeMarkdown(answer)).toBe(false);
  });

  it('issue urls: in code they are kept as written', () => {
    expect(safeMarkdown('see `https://github.com/a/x/issues/9`')).toBe('see `https://github.com/a/x/issues/9`');
  });
});
