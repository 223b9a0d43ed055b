import { describe, expect, it } from 'vitest';
import { firstFileOf, tarOf } from '../../src/core/tar-files.js';

/** A PAX extended header block and its records, as Go's archive/tar writes one before a file. */
function pax(records: string): Buffer {
  const body = Buffer.from(records);
  const header = tarOf([{ path: '/PaxHeaders/x', content: '', mode: 0o644 }]).subarray(0, 512);
  header.write('x', 156);
  header.write(`${body.length.toString(8).padStart(11, '0')}\0`, 124);
  header.fill(' ', 148, 156);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return Buffer.concat([header, body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}

describe('tar archives of single files (what Docker gives for one path)', () => {
  it('export: a file written with an owner reads back with its bytes, owner and mode', () => {
    const archive = tarOf([{ path: '/home/agent/.claude.json', content: '{"a":1}', mode: 0o600, owner: { uid: 1000, gid: 1001 } }]);
    const read = firstFileOf(archive);
    expect(read).toEqual({ content: Buffer.from('{"a":1}'), uid: 1000, gid: 1001, mode: 0o600 });
  });

  it('export: a PAX header before the file is read past, and its size taken', () => {
    const file = tarOf([{ path: '/t.jsonl', content: 'line\n', mode: 0o644 }]);
    const read = firstFileOf(Buffer.concat([pax('15 size=000005\n'), file]));
    expect(read).toMatchObject({ content: Buffer.from('line\n') });
  });

  it.each([
    ['a directory', '5', 'a directory'],
    ['a symbolic link', '2', 'a symbolic link'],
  ])('export: %s is said to be one, not read', (_, type, kind) => {
    const archive = tarOf([{ path: '/x', content: '', mode: 0o755 }]);
    archive.write(type, 156);
    expect(firstFileOf(archive)).toEqual({ kind });
  });

  it('export: an archive cut short or empty is said to be so', () => {
    const archive = tarOf([{ path: '/x', content: 'x'.repeat(2000), mode: 0o644 }]);
    expect(firstFileOf(archive.subarray(0, 1024))).toEqual({ kind: 'a file cut short' });
    expect(firstFileOf(Buffer.alloc(1024))).toEqual({ kind: 'nothing' });
  });
});
