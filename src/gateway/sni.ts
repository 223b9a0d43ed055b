// The first bytes of a CONNECT tunnel, read before the gateway passes anything on: a TLS
// ClientHello must name (SNI) the host the tunnel was allowed for.

/** The most bytes of a ClientHello handshake message the gateway reads (real ones are 0.3–3 KB). */
export const MAX_HELLO_BYTES = 16 * 1024;

/** The most bytes of TLS records the gateway buffers while a ClientHello arrives in fragments. */
export const MAX_HELLO_RECORD_BYTES = 32 * 1024;

const HANDSHAKE = 0x16;
const CLIENT_HELLO = 0x01;
const EXT_SERVER_NAME = 0x0000;
// Encrypted ClientHello (and its draft, ESNI) hides the real server name behind the outer one.
const EXT_ENCRYPTED = new Set([0xfe0d, 0xffce]);

/**
 * What the first bytes of a tunnel are:
 * - `partial`: the start of a ClientHello, more bytes needed;
 * - `not-tls`: not TLS at all (passed on as they are);
 * - `hello`: a complete ClientHello, with its server name (lowercase; undefined when it names none);
 * - `invalid`: TLS that cannot be read as one well-formed ClientHello within the bounds, or one that
 *   hides its server name (SSLv2-style hello, encrypted ClientHello), with the reason in words.
 */
export type ClientHelloRead =
  | { readonly kind: 'partial' }
  | { readonly kind: 'not-tls' }
  | { readonly kind: 'hello'; readonly serverName: string | undefined }
  | { readonly kind: 'invalid'; readonly reason: string };

const PARTIAL: ClientHelloRead = Object.freeze({ kind: 'partial' });
const invalid = (reason: string): ClientHelloRead => ({ kind: 'invalid', reason });

/**
 * Reads the ClientHello at the start of `bytes` (everything the client has sent so far), across
 * as many TLS records as it was split into. Pure; call again with more bytes while `partial`.
 * Never reads past {@link MAX_HELLO_RECORD_BYTES} nor accepts a hello over {@link MAX_HELLO_BYTES}.
 */
export function readClientHello(bytes: Uint8Array): ClientHelloRead {
  if (bytes.length === 0) return PARTIAL;
  const first = bytes[0]!;
  if (first !== HANDSHAKE) {
    // An SSLv2-compatible hello (length with the top bit set, then message type 1) carries no server name.
    if ((first & 0x80) !== 0 && bytes.length >= 3 && bytes[2] === CLIENT_HELLO) return invalid('an SSLv2-style ClientHello, which names no server');
    if ((first & 0x80) !== 0 && bytes.length < 3) return PARTIAL;
    return { kind: 'not-tls' };
  }
  // Join the records' payloads until the handshake message is complete.
  const message: number[] = [];
  let offset = 0;
  let needed = -1;
  while (needed < 0 || message.length < needed) {
    if (offset >= MAX_HELLO_RECORD_BYTES) return invalid(`no complete ClientHello in the first ${MAX_HELLO_RECORD_BYTES} bytes`);
    if (bytes.length < offset + 5) return bytes.length > offset && bytes[offset] !== HANDSHAKE ? invalid('a record that is not a handshake inside the ClientHello') : PARTIAL;
    const type = bytes[offset]!;
    const major = bytes[offset + 1]!;
    const minor = bytes[offset + 2]!;
    const length = (bytes[offset + 3]! << 8) | bytes[offset + 4]!;
    if (type !== HANDSHAKE) return invalid('a record that is not a handshake inside the ClientHello');
    if (major !== 3 || minor > 4) return invalid(`a record of version ${major}.${minor}`);
    if (length === 0 || length > 16384) return invalid(`a record of ${length} bytes`);
    const end = offset + 5 + length;
    const available = Math.min(end, bytes.length);
    for (let i = offset + 5; i < available; i += 1) {
      message.push(bytes[i]!);
      if (needed < 0 && message.length === 4) {
        if (message[0] !== CLIENT_HELLO) return invalid(`a handshake message of type ${message[0]}, not a ClientHello`);
        needed = 4 + ((message[1]! << 16) | (message[2]! << 8) | message[3]!);
        if (needed - 4 > MAX_HELLO_BYTES) return invalid(`a ClientHello of ${needed - 4} bytes (at most ${MAX_HELLO_BYTES})`);
      }
      if (needed >= 0 && message.length >= needed) break;
    }
    if (needed >= 0 && message.length >= needed) break;
    if (bytes.length < end) return PARTIAL;
    offset = end;
  }
  return parseHello(Uint8Array.from(message.slice(4, needed)));
}

/** The body of a ClientHello handshake message (after its 4-byte header). */
function parseHello(body: Uint8Array): ClientHelloRead {
  const reader = new Reader(body);
  reader.skip(2 + 32); // client_version, random
  reader.skip(reader.u8()); // session_id
  const suites = reader.u16();
  if (suites < 2 || suites % 2 !== 0) return invalid('a ClientHello without cipher suites');
  reader.skip(suites);
  const compressions = reader.u8();
  if (compressions < 1) return invalid('a ClientHello without compression methods');
  reader.skip(compressions);
  if (reader.failed) return invalid('a truncated ClientHello');
  if (reader.remaining === 0) return reader.failed ? invalid('a truncated ClientHello') : { kind: 'hello', serverName: undefined };
  const extensionsLength = reader.u16();
  if (reader.failed || extensionsLength !== reader.remaining) return invalid('a ClientHello whose extensions do not fill it');
  const seen = new Set<number>();
  let serverName: string | undefined;
  while (reader.remaining > 0) {
    const type = reader.u16();
    const length = reader.u16();
    const data = reader.bytes(length);
    if (reader.failed || data === undefined) return invalid('a truncated extension');
    if (seen.has(type)) return invalid(`extension ${type} twice`);
    seen.add(type);
    if (EXT_ENCRYPTED.has(type)) return invalid('an encrypted ClientHello, which hides the server it is for');
    if (type === EXT_SERVER_NAME) {
      const name = parseServerName(data);
      if (typeof name !== 'string') return name;
      serverName = name;
    }
  }
  return { kind: 'hello', serverName };
}

/** The server_name extension's one host_name (RFC 6066 §3), or why it is unreadable. */
function parseServerName(data: Uint8Array): string | ClientHelloRead {
  const reader = new Reader(data);
  const listLength = reader.u16();
  if (reader.failed || listLength !== reader.remaining || listLength === 0) return invalid('a malformed server_name extension');
  const nameType = reader.u8();
  const name = reader.bytes(reader.u16());
  if (reader.failed || name === undefined || nameType !== 0) return invalid('a malformed server_name extension');
  if (reader.remaining !== 0) return invalid('a server_name extension naming more than one server');
  if (name.length === 0 || name.length > 253 || name.some((c) => c <= 0x20 || c >= 0x7f)) return invalid('a server name that is not a host name');
  return String.fromCharCode(...name).toLowerCase().replace(/\.$/, '');
}

/** Bounds-checked big-endian reads; any read past the end sets `failed` instead of throwing. */
class Reader {
  private at = 0;
  failed = false;
  constructor(private readonly data: Uint8Array) {}
  get remaining(): number { return this.failed ? 0 : this.data.length - this.at; }
  private take(n: number): number {
    if (this.failed || n < 0 || this.at + n > this.data.length) { this.failed = true; return -1; }
    const start = this.at;
    this.at += n;
    return start;
  }
  u8(): number { const i = this.take(1); return i < 0 ? 0 : this.data[i]!; }
  u16(): number { const i = this.take(2); return i < 0 ? 0 : (this.data[i]! << 8) | this.data[i + 1]!; }
  skip(n: number): void { this.take(n); }
  bytes(n: number): Uint8Array | undefined { const i = this.take(n); return i < 0 ? undefined : this.data.subarray(i, i + n); }
}
