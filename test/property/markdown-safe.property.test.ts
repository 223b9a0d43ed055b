import fc from 'fast-check';
import { marked } from 'marked';
import { describe, expect, it } from 'vitest';
import { safeMarkdown } from '../../src/github/markdown-safe.js';

/** Words that would notify, link, load or hide, and the characters Markdown structure is made of. */
const word = fc.constantFrom('@octocat', '@acme/core', '#12', 'acme/web#3', 'GH-7', '![x](http://e.test/p.png)', '<img src=x>', '<div hidden>', '</div>',
  '<!-- c -->', '<details>', 'text', 'a@b.c', '`code @in`', '``', '`', '\\`', '\\', '&#64;x', '*', '_', '[', ']', '(', ')', '|', ' ');
const words = fc.array(word, { minLength: 1, maxLength: 6 }).map((w) => w.join(' '));

/** Blocks nested the ways CommonMark reads differently from a line scanner: lists, quotes, fences, indentation, lazy lines. */
const { block } = fc.letrec<{ block: string[] }>((tie) => ({
  block: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.array(words, { minLength: 1, maxLength: 3 }), // a paragraph
    fc.tuple(words, fc.constantFrom('    ', '  ', '\t', '     '), words).map(([a, indent, b]) => [a, `${indent}${b}`]), // a lazy or indented continuation
    fc.tuple(fc.constantFrom('```', '~~~', '````', '```a`b', '``` x', '  ```'), fc.array(words, { maxLength: 2 }), fc.boolean())
      .map(([fence, inside, closed]) => [fence, ...inside, ...(closed ? [fence.trim().replace(/[^`~].*$/, '')] : [])]), // a fence, closed or not
    fc.array(words, { minLength: 1, maxLength: 2 }).map((lines) => lines.map((l) => `    ${l}`)), // indented code
    fc.tuple(fc.constantFrom('- ', '* ', '1. ', '10) '), tie('block') as fc.Arbitrary<string[]>, fc.constantFrom('  ', '   ', '    ', '      '))
      .map(([marker, inner, indent]) => inner.map((l, i) => (i === 0 ? marker : indent) + l)), // a list item
    (tie('block') as fc.Arbitrary<string[]>).map((inner) => inner.map((l) => `> ${l}`)), // a quote
    fc.constant<string[]>(['']),
  ),
}));
const document = fc.array(block, { minLength: 1, maxLength: 5 }).map((blocks) => blocks.flat().join('\n'));

/** Tags Markdown itself makes; any other tag in the rendering is raw HTML that got through. */
const MARKDOWN_TAGS = new Set(['p', 'ul', 'ol', 'li', 'blockquote', 'h1', 'h2', 'h3', 'h4', 'h5', 'h6', 'em', 'strong', 'a', 'br', 'hr', 'del', 'table', 'thead', 'tbody', 'tr', 'th', 'td', 'input', 'pre', 'code']);

function decode(html: string): string {
  return html.replace(/&#(\d+);/g, (_, n: string) => String.fromCodePoint(Number(n))).replace(/&#x([0-9a-f]+);/gi, (_, n: string) => String.fromCodePoint(parseInt(n, 16)))
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&');
}

describe('property: safeMarkdown as GitHub renders it', () => {
  it('markdown bypass: in nested Markdown (lists, quotes, fences, indentation, lazy lines), no mention, reference, image or raw HTML survives outside code', () => {
    fc.assert(fc.property(document, (answer) => {
      const html = marked.parse(safeMarkdown(answer), { gfm: true, async: false });
      // GitHub links and notifies nothing in code: what is left is what a reader sees as prose.
      const prose = html.replace(/<pre>[\s\S]*?<\/pre>/g, '').replace(/<code>[\s\S]*?<\/code>/g, '');
      expect(prose).not.toMatch(/<img\b/i);
      for (const [, name] of prose.matchAll(/<\/?([A-Za-z][A-Za-z0-9-]*)/g)) expect(MARKDOWN_TAGS, `tag <${name}> in ${JSON.stringify(answer)}`).toContain((name as string).toLowerCase());
      const text = decode(prose.replace(/<[^>]*>/g, ''));
      expect(text).not.toMatch(/(^|[^\w])@[A-Za-z0-9]/m);
      expect(text).not.toMatch(/#\d|\bGH-\d/i);
    }), { numRuns: 2000 });
  });
});
