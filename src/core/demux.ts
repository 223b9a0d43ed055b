import type { OutputChunk } from './runner.js';

const HEADER = 8;

/**
 * Splits Docker's multiplexed attach/exec/logs stream (non-TTY) into stdout and stderr chunks.
 * Each frame is an 8-byte header — stream type, three zero bytes, big-endian payload size —
 * then the payload. Pulling from the source only as fast as the consumer pulls from this
 * generator keeps memory bounded (back-pressure all the way to the container).
 */
export async function* demuxDockerStream(source: AsyncIterable<Buffer | string>): AsyncGenerator<OutputChunk> {
  let buffer: Buffer = Buffer.alloc(0);
  for await (const piece of source) {
    const bytes = typeof piece === 'string' ? Buffer.from(piece) : piece;
    buffer = buffer.length === 0 ? bytes : Buffer.concat([buffer, bytes]);
    let offset = 0;
    while (buffer.length - offset >= HEADER) {
      const size = buffer.readUInt32BE(offset + 4);
      if (buffer.length - offset < HEADER + size) break;
      const kind = buffer[offset];
      const data = buffer.subarray(offset + HEADER, offset + HEADER + size);
      offset += HEADER + size;
      // Type 0 is stdin echoed back; it carries nothing cldpd wrote, so only 1 and 2 matter.
      if (kind === 1 || kind === 2) yield { stream: kind === 2 ? 'stderr' : 'stdout', data };
    }
    buffer = offset === buffer.length ? Buffer.alloc(0) : buffer.subarray(offset);
  }
  if (buffer.length > 0) {
    throw new Error(`Docker stream ended inside a frame (${buffer.length} bytes left over)`);
  }
}
