import { describe, expect, it } from 'vitest';
import { LineSplitter } from '../../src/core/line-splitter.js';

function split(chunks: (string | Buffer)[], max?: number): Array<[string, boolean]> {
  const s = new LineSplitter(max);
  const lines = chunks.flatMap((c) => s.push(typeof c === 'string' ? Buffer.from(c) : c));
  return [...lines, ...s.end()].map((l) => [l.line, l.partial]);
}

describe('LineSplitter', () => {
  it.each<[string, (string | Buffer)[], Array<[string, boolean]>]>([
    ['one line', ['a\n'], [['a', false]]],
    ['several lines in a chunk', ['a\nb\nc\n'], [['a', false], ['b', false], ['c', false]]],
    ['a line across chunks', ['ab', 'c', 'd\ne\n'], [['abcd', false], ['e', false]]],
    ['last line without newline', ['a\nb'], [['a', false], ['b', false]]],
    ['empty lines kept', ['\n\nx\n'], [['', false], ['', false], ['x', false]]],
    ['CRLF', ['a\r\nb\r\n'], [['a', false], ['b', false]]],
    ['lone CR kept inside', ['a\rb\n'], [['a\rb', false]]],
    ['nothing', [], []],
    ['multi-byte char split across chunks', [Buffer.from('é\n').subarray(0, 1), Buffer.from('é\n').subarray(1)], [['é', false]]],
  ])('%s', (_, chunks, expected) => {
    expect(split(chunks)).toEqual(expected);
  });

  it('cuts an over-long line into partial pieces without losing a byte', () => {
    const lines = split(['abcdefghij', 'klm\nz\n'], 4);
    expect(lines).toEqual([['abcd', true], ['efgh', true], ['ijkl', true], ['m', false], ['z', false]]);
    expect(lines.filter(([, p]) => p).map(([l]) => l).join('') + 'm').toBe('abcdefghijklm');
  });

  it.each([
    ['in one chunk', ['abcdefgh\n']],
    ['newline in a later chunk', ['abcdefgh', '\n']],
    ['byte by byte', 'abcdefgh\n'.split('')],
  ])('cuts a line of exactly two pieces the same way %s', (_, chunks) => {
    expect(split(chunks, 4)).toEqual([['abcd', true], ['efgh', false]]);
  });

  it('never cuts inside a multi-byte character', () => {
    const lines = split(['ééé\n'], 3);
    expect(lines.map(([l]) => l)).toEqual(['é', 'é', 'é']);
  });

  it('handles a long line arriving in one chunk', () => {
    const lines = split(['x'.repeat(10) + '\n'], 4);
    expect(lines).toEqual([['xxxx', true], ['xxxx', true], ['xx', false]]);
  });
});

describe('LineSplitter at the end of a stream', () => {
  it('ends an unfinished over-long line with a piece that is not partial', () => {
    const s = new LineSplitter(4);
    expect(s.push(Buffer.from('abcdefgh')).map((l) => l.partial)).toEqual([true]);
    expect(s.end()).toEqual([{ line: 'efgh', partial: false }]);
  });

  it('adds nothing when the last line was complete', () => {
    const s = new LineSplitter(4);
    s.push(Buffer.from('ab\n'));
    expect(s.end()).toEqual([]);
  });
});
