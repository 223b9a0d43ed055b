import type { ContainerFile } from './runner.js';

const BLOCK = 512;

/** Writes `text` into `header` at `offset`, at most `length` bytes. */
function put(header: Buffer, offset: number, length: number, text: string): void {
  header.write(text, offset, Math.min(length, Buffer.byteLength(text)), 'utf8');
}

/** A numeric field: octal digits, zero-padded, NUL-terminated. */
function octal(value: number, length: number): string {
  return `${value.toString(8).padStart(length - 1, '0')}\0`;
}

/** One ustar header block. */
function header(name: string, size: number, mode: number, type: '0', owner = { uid: 0, gid: 0 }): Buffer {
  const block = Buffer.alloc(BLOCK);
  put(block, 0, 100, name);
  put(block, 100, 8, octal(mode, 8));
  put(block, 108, 8, octal(owner.uid, 8));
  put(block, 116, 8, octal(owner.gid, 8));
  put(block, 124, 12, octal(size, 12));
  put(block, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
  put(block, 148, 8, '        '); // the checksum counts itself as spaces
  put(block, 156, 1, type);
  put(block, 257, 6, 'ustar\0');
  put(block, 263, 2, '00');
  if (owner.uid === 0) put(block, 265, 32, 'root');
  if (owner.gid === 0) put(block, 297, 32, 'root');
  let sum = 0;
  for (const byte of block) sum += byte;
  put(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/**
 * Pure: a tar archive (ustar) of `files`, rooted at `/`, each owned by root (or its
 * `owner`, by number) with its own mode: what Docker's archive upload (`PUT /containers/{id}/archive?path=/`) takes; Docker
 * makes missing parent directories (0755) and leaves existing ones as they are. Paths must
 * be absolute and under 100 bytes.
 */
export function tarOf(files: readonly ContainerFile[]): Buffer {
  const blocks: Buffer[] = [];
  for (const file of files) {
    const name = file.path.slice(1);
    if (!file.path.startsWith('/') || name.split('/').some((p) => p === '..' || p === '') || Buffer.byteLength(name) >= 100) throw new Error(`not a path cldpd writes: ${file.path}`);
    const content = Buffer.from(file.content, 'utf8');
    blocks.push(header(name, content.length, file.mode, '0', file.owner), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}

/** A number field of a tar header: octal text, or base-256 when its first byte has the high bit. */
function numberAt(block: Buffer, offset: number, length: number): number {
  const field = block.subarray(offset, offset + length);
  if ((field[0] ?? 0) & 0x80) {
    let value = (field[0] ?? 0) & 0x7f;
    for (const byte of field.subarray(1)) value = value * 256 + byte;
    return value;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text ? parseInt(text, 8) : 0;
}

/** The `size` record of a PAX extended header, when it has one. */
function paxSize(data: Buffer): number | undefined {
  const found = /(?:^|\n)\d+ size=(\d+)\n/.exec(data.toString('utf8'));
  return found ? Number(found[1]) : undefined;
}

/**
 * Pure: the first entry of a tar archive (what Docker's archive download gives for one
 * path) when it is a regular file: its bytes, owner and mode; `{ kind }` naming what it is
 * otherwise. PAX and GNU long-name headers before it are read past (a PAX `size` is taken).
 */
export function firstFileOf(archive: Buffer): { readonly content: Buffer; readonly uid: number; readonly gid: number; readonly mode: number } | { readonly kind: string } {
  let at = 0;
  let size: number | undefined;
  while (at + BLOCK <= archive.length) {
    const block = archive.subarray(at, at + BLOCK);
    if (block.every((b) => b === 0)) break;
    const type = String.fromCharCode(block[156] ?? 0);
    const length = size ?? numberAt(block, 124, 12);
    const body = at + BLOCK;
    if (type === 'x' || type === 'g' || type === 'L' || type === 'K') {
      if (type === 'x') size = paxSize(archive.subarray(body, body + length));
      at = body + Math.ceil(length / BLOCK) * BLOCK;
      continue;
    }
    if (type !== '0' && type !== '\0' && type !== '7') return { kind: type === '5' ? 'a directory' : type === '2' ? 'a symbolic link' : `a special file (tar type ${type})` };
    if (body + length > archive.length) return { kind: 'a file cut short' };
    return { content: archive.subarray(body, body + length), uid: numberAt(block, 108, 8), gid: numberAt(block, 116, 8), mode: numberAt(block, 100, 8) & 0o7777 };
  }
  return { kind: 'nothing' };
}
