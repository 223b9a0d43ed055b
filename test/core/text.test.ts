import { describe, expect, it } from 'vitest';
import { closest, isWellFormed, keepEnd, keepStart, shorten, stripEscapes, toWellFormed } from '../../src/core/text.js';

const EMOJI = '\u{1F600}';
/** Emoji at every parity of position, among one-unit characters. */
const MIXED = `a${EMOJI}${EMOJI}b${EMOJI}cd${EMOJI}${EMOJI}${EMOJI}e`;

describe('keepStart, keepEnd, shorten', () => {
  it.each([
    ['keepStart', keepStart],
    ['keepEnd', keepEnd],
    ['shorten', shorten],
  ])('unicode: %s never splits an emoji, whatever the limit', (_, cut) => {
    for (const text of [MIXED, EMOJI.repeat(7), `x${EMOJI.repeat(7)}`]) {
      for (let max = 0; max <= text.length + 1; max++) {
        const result = cut(text, max);
        expect(isWellFormed(result), `${JSON.stringify(text)} at ${max}`).toBe(true);
        expect(result.length).toBeLessThanOrEqual(max);
        // At most the half of one pair is given up.
        expect(result.length).toBeGreaterThanOrEqual(Math.min(text.length, max) - 1);
      }
    }
  });

  it('unicode: keepStart keeps a start, keepEnd an end, shorten marks the cut', () => {
    expect(keepStart(`ab${EMOJI}c`, 3)).toBe('ab');
    expect(keepStart(`ab${EMOJI}c`, 4)).toBe(`ab${EMOJI}`);
    expect(keepEnd(`a${EMOJI}bc`, 3)).toBe('bc');
    expect(keepEnd(`a${EMOJI}bc`, 4)).toBe(`${EMOJI}bc`);
    expect(shorten(`ab${EMOJI}cd`, 4)).toBe('ab…');
    expect(shorten(`ab${EMOJI}cd`, 6)).toBe(`ab${EMOJI}cd`);
    expect(shorten('abc', 0)).toBe('');
  });

  it('unicode: text that fits comes back as it is, even with a lone surrogate', () => {
    expect(keepStart('a\uD800', 5)).toBe('a\uD800');
    expect(keepEnd('a\uD800', 5)).toBe('a\uD800');
    expect(shorten('a\uD800', 5)).toBe('a\uD800');
  });

  it('unicode: toWellFormed replaces lone surrogates and keeps the length', () => {
    expect(isWellFormed(`a${EMOJI}`)).toBe(true);
    expect(isWellFormed('a\uD83D')).toBe(false);
    expect(toWellFormed('a\uD83Db\uDE00')).toBe('a\uFFFDb\uFFFD');
    expect(toWellFormed(`a${EMOJI}`)).toBe(`a${EMOJI}`);
  });
});

describe('closest', () => {
  const commands = ['start', 'resume', 'stop', 'ps', 'logs', 'volumes', 'pods', 'doctor'];
  it.each([
    ['strat', commands, 'start'],
    ['stpo', commands, 'stop'],
    ['resmue', commands, 'resume'],
    ['vol', commands, 'volumes'],
    ['log', commands, 'logs'],
    ['st', commands, undefined], // starts two, and neither is one edit away: no guess
    ['--al', ['--all', '--json', '--help'], '--all'],
    ['Hello', ['hello', 'web'], 'hello'],
    ['start', commands, undefined],
    ['xyzzy', commands, undefined],
    ['', commands, undefined],
    ['p', ['ps', 'pods'], 'ps'],
  ])('%s → %s', (word, candidates, expected) => {
    expect(closest(word, candidates)).toBe(expected);
  });
});

describe('stripEscapes', () => {
  it('removes colours, cursor moves, titles and control characters, keeping newlines and tabs', () => {
    expect(stripEscapes('\u001b[91mred\u001b[0m\u001b[2J\u001b]0;title\u0007a\tb\nc\u0000')).toBe('reda\tb\nc');
  });
});
