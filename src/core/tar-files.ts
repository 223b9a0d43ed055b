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
function header(name: string, size: number, mode: number, type: '0'): Buffer {
  const block = Buffer.alloc(BLOCK);
  put(block, 0, 100, name);
  put(block, 100, 8, octal(mode, 8));
  put(block, 108, 8, octal(0, 8)); // uid: root
  put(block, 116, 8, octal(0, 8)); // gid: root
  put(block, 124, 12, octal(size, 12));
  put(block, 136, 12, octal(Math.floor(Date.now() / 1000), 12));
  put(block, 148, 8, '        '); // the checksum counts itself as spaces
  put(block, 156, 1, type);
  put(block, 257, 6, 'ustar\0');
  put(block, 263, 2, '00');
  put(block, 265, 32, 'root');
  put(block, 297, 32, 'root');
  let sum = 0;
  for (const byte of block) sum += byte;
  put(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/**
 * Pure: a tar archive (ustar) of `files`, rooted at `/`, each owned by root with its own
 * mode: what Docker's archive upload (`PUT /containers/{id}/archive?path=/`) takes; Docker
 * makes missing parent directories (0755) and leaves existing ones as they are. Paths must
 * be absolute and under 100 bytes.
 */
export function tarOf(files: readonly ContainerFile[]): Buffer {
  const blocks: Buffer[] = [];
  for (const file of files) {
    const name = file.path.slice(1);
    if (!file.path.startsWith('/') || name.split('/').some((p) => p === '..' || p === '') || Buffer.byteLength(name) >= 100) throw new Error(`not a path cldpd writes: ${file.path}`);
    const content = Buffer.from(file.content, 'utf8');
    blocks.push(header(name, content.length, file.mode, '0'), content, Buffer.alloc((BLOCK - (content.length % BLOCK)) % BLOCK));
  }
  blocks.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(blocks);
}
