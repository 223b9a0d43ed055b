/** A line cut from a byte stream; `partial` when it hit the length limit before its newline. */
export interface SplitLine {
  readonly line: string;
  readonly partial: boolean;
}

const NEWLINE = 0x0a;

/**
 * 1 MiB: longer lines are emitted in pieces of this size, all but the last marked partial,
 * so memory stays bounded. A line of L bytes always gives ceil(L / limit) pieces.
 */
export const DEFAULT_MAX_LINE_BYTES = 1024 * 1024;

/**
 * Cuts a byte stream into UTF-8 lines. A newline byte never occurs inside a multi-byte UTF-8
 * sequence, so cutting bytes at newlines never splits a character; pieces of an over-long
 * line are cut at a character boundary. A trailing "\r" is removed.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  /** Whether the last piece handed out was partial (its line is not finished). */
  private open = false;

  constructor(private readonly maxLineBytes = DEFAULT_MAX_LINE_BYTES) {}

  /** Feeds bytes; returns the lines they complete, in order. */
  push(data: Buffer): SplitLine[] {
    const lines: SplitLine[] = [];
    let start = 0;
    for (;;) {
      const nl = data.indexOf(NEWLINE, start);
      if (nl === -1) break;
      let bytes = data.subarray(start, nl);
      if (this.pendingBytes > 0) {
        bytes = Buffer.concat([...this.pending, bytes]);
        this.pending = [];
        this.pendingBytes = 0;
      }
      this.emitComplete(bytes, lines);
      start = nl + 1;
    }
    if (start < data.length) {
      const rest = data.subarray(start);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
      if (this.pendingBytes > this.maxLineBytes) this.emitOverlong(lines);
    }
    if (lines.length > 0) this.open = (lines[lines.length - 1] as SplitLine).partial;
    return lines;
  }

  /**
   * Returns what is left after the stream ended: the last line when it had no newline. A
   * line whose pieces were all emitted as partial is closed with an empty final piece, so
   * every line ends with a piece that is not partial.
   */
  end(): SplitLine[] {
    if (this.pendingBytes === 0) return this.open ? [{ line: '', partial: false }] : [];
    const bytes = Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    const lines: SplitLine[] = [];
    this.emitComplete(bytes, lines);
    return lines;
  }

  private emitComplete(bytes: Buffer, lines: SplitLine[]): void {
    let end = bytes.length;
    if (end > 0 && bytes[end - 1] === 0x0d) end -= 1;
    while (end > this.maxLineBytes) {
      const cut = charBoundary(bytes, this.maxLineBytes);
      lines.push({ line: bytes.toString('utf8', 0, cut), partial: true });
      bytes = bytes.subarray(cut);
      end -= cut;
    }
    lines.push({ line: bytes.toString('utf8', 0, end), partial: false });
  }

  private emitOverlong(lines: SplitLine[]): void {
    let bytes = Buffer.concat(this.pending);
    // Only whole characters may be cut off (the rest of the last one may still be on its
    // way), and only while more than a piece is waiting: a line of exactly n pieces is then
    // cut the same way whatever the chunks, which re-attaching relies on to skip lines.
    while (completeLength(bytes) > this.maxLineBytes) {
      const whole = bytes.subarray(0, completeLength(bytes));
      const cut = charBoundary(whole, this.maxLineBytes);
      lines.push({ line: bytes.toString('utf8', 0, cut), partial: true });
      bytes = bytes.subarray(cut);
    }
    this.pending = bytes.length > 0 ? [Buffer.from(bytes)] : [];
    this.pendingBytes = bytes.length;
  }
}

/** The length of the longest prefix of `bytes` that ends with a complete UTF-8 character. */
function completeLength(bytes: Buffer): number {
  let start = bytes.length - 1;
  while (start > 0 && bytes.length - start < 4 && ((bytes[start] ?? 0) & 0xc0) === 0x80) start -= 1;
  if (start < 0) return 0;
  const lead = bytes[start] ?? 0;
  const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
  return bytes.length - start >= need ? bytes.length : start;
}

/**
 * Where to cut `bytes` near `limit` without splitting a UTF-8 sequence: the largest boundary
 * ≤ `limit`, or, when one character is longer than the limit, the end of that character.
 */
function charBoundary(bytes: Buffer, limit: number): number {
  const continuation = (i: number): boolean => ((bytes[i] ?? 0) & 0xc0) === 0x80 && i < bytes.length;
  let cut = limit;
  while (cut > 0 && continuation(cut)) cut -= 1;
  if (cut > 0) return cut;
  cut = limit;
  while (continuation(cut)) cut += 1;
  return cut;
}
