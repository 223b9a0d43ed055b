import net from 'node:net';
import tls from 'node:tls';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_HELLO_BYTES, MAX_HELLO_RECORD_BYTES, readClientHello } from '../../src/gateway/sni.js';

/** The first bytes Node's TLS client sends: a real ClientHello. */
async function capturedHello(servername: string | undefined): Promise<Buffer> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  const first = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no ClientHello within 5 s')), 5000);
    server.once('connection', (socket) => {
      const chunks: Buffer[] = [];
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk);
        const all = Buffer.concat(chunks);
        if (all.length >= 5 && all.length >= 5 + all.readUInt16BE(3)) {
          clearTimeout(timer);
          resolve(all);
          socket.destroy();
        }
      });
    });
  });
  const client = tls.connect({ host: '127.0.0.1', port, ...(servername === undefined ? {} : { servername }) });
  client.on('error', () => undefined);
  try {
    return await first;
  } finally {
    client.destroy();
    server.close();
  }
}

/** A ClientHello handshake message (type, 3-byte length, body) with these extensions. */
function helloMessage(extensions: ReadonlyArray<readonly [number, Buffer]>): Buffer {
  const ext = Buffer.concat(extensions.map(([type, data]) => Buffer.concat([u16(type), u16(data.length), data])));
  const body = Buffer.concat([
    Buffer.from([0x03, 0x03]), Buffer.alloc(32, 7), Buffer.from([0]), // version, random, empty session id
    u16(2), Buffer.from([0x13, 0x01]), Buffer.from([1, 0]), // one suite, null compression
    u16(ext.length), ext,
  ]);
  return Buffer.concat([Buffer.from([0x01, body.length >> 16, (body.length >> 8) & 0xff, body.length & 0xff]), body]);
}

function sniExtension(...names: string[]): readonly [number, Buffer] {
  const entries = Buffer.concat(names.map((name) => Buffer.concat([Buffer.from([0]), u16(name.length), Buffer.from(name, 'latin1')])));
  return [0, Buffer.concat([u16(entries.length), entries])];
}

/** `message` in TLS handshake records of at most `size` bytes each. */
function records(message: Buffer, size = 16384): Buffer {
  const parts: Buffer[] = [];
  for (let at = 0; at < message.length; at += size) {
    const piece = message.subarray(at, at + size);
    parts.push(Buffer.from([0x16, 0x03, 0x01]), u16(piece.length), piece);
  }
  return Buffer.concat(parts);
}

function u16(n: number): Buffer {
  return Buffer.from([n >> 8, n & 0xff]);
}

describe('readClientHello', () => {
  it('reads the server name of a real ClientHello, lowercase, and none when the client names none', async () => {
    expect(readClientHello(await capturedHello('Allowed.Test'))).toEqual({ kind: 'hello', serverName: 'allowed.test' });
    expect(readClientHello(await capturedHello(undefined))).toEqual({ kind: 'hello', serverName: undefined });
  });

  it('asks for more bytes on every proper prefix of a hello, and reads it once whole', async () => {
    const hello = await capturedHello('allowed.test');
    for (let n = 0; n < hello.length; n += 1) expect(readClientHello(hello.subarray(0, n)).kind).toBe('partial');
    expect(readClientHello(hello)).toEqual({ kind: 'hello', serverName: 'allowed.test' });
  });

  it('joins a hello split across many small records, and ignores what follows it', () => {
    const message = helloMessage([sniExtension('allowed.test')]);
    for (const size of [1, 3, 50]) {
      const bytes = Buffer.concat([records(message, size), Buffer.from('early data')]);
      expect(readClientHello(bytes)).toEqual({ kind: 'hello', serverName: 'allowed.test' });
    }
  });

  it('passes on what is not TLS', () => {
    expect(readClientHello(Buffer.from('GET / HTTP/1.1\r\n'))).toEqual({ kind: 'not-tls' });
    expect(readClientHello(Buffer.from('SSH-2.0-OpenSSH_9.6\r\n'))).toEqual({ kind: 'not-tls' });
  });

  it('refuses hellos that hide or garble their server name', () => {
    const cases: Array<[string, Buffer]> = [
      ['encrypted ClientHello', records(helloMessage([sniExtension('allowed.test'), [0xfe0d, Buffer.alloc(40)]]))],
      ['two names', records(helloMessage([sniExtension('allowed.test', 'other.test')]))],
      ['server_name twice', records(helloMessage([sniExtension('allowed.test'), sniExtension('other.test')]))],
      ['a name with a NUL', records(helloMessage([sniExtension('allowed.test\0.other.test')]))],
      ['an empty name list', records(helloMessage([[0, u16(0)]]))],
      ['SSLv2-style hello', Buffer.from([0x80, 0x2e, 0x01, 0x03, 0x01])],
      ['another handshake message', records(Buffer.from([0x02, 0, 0, 1, 0]))],
      ['an alert record inside the hello', Buffer.concat([records(helloMessage([sniExtension('a.test')]).subarray(0, 20)), Buffer.from([0x15, 3, 3, 0, 2, 2, 40])])],
      ['record version 2.0', Buffer.from([0x16, 0x02, 0x00, 0x00, 0x05, 1, 0, 0, 1, 0])],
      ['an empty record', Buffer.from([0x16, 0x03, 0x01, 0x00, 0x00])],
      ['extensions longer than the hello', records(Buffer.concat([helloMessage([]).subarray(0, -2), u16(500)]))],
    ];
    for (const [name, bytes] of cases) expect(readClientHello(bytes).kind, name).toBe('invalid');
  });

  it('refuses a hello over the size bound as soon as its header says so, and endless fragments at the record bound', () => {
    const header = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x04, 0x01, 0x01, 0x00, 0x00]); // claims 64 KiB
    expect(readClientHello(header)).toMatchObject({ kind: 'invalid' });
    const big = helloMessage([[0x15, Buffer.alloc(MAX_HELLO_BYTES)]]);
    expect(readClientHello(records(big))).toMatchObject({ kind: 'invalid' });
    const justUnder = helloMessage([sniExtension('allowed.test'), [0x15, Buffer.alloc(MAX_HELLO_BYTES - 200)]]);
    expect(readClientHello(records(justUnder))).toEqual({ kind: 'hello', serverName: 'allowed.test' });
    // One byte per record: six bytes of records for each byte of the hello, over the record bound.
    const tiny = records(justUnder, 1);
    expect(tiny.length).toBeGreaterThan(MAX_HELLO_RECORD_BYTES);
    expect(readClientHello(tiny)).toMatchObject({ kind: 'invalid' });
  });

  it('never throws and answers one of its four kinds, on random bytes and on mutated hellos', async () => {
    const hello = await capturedHello('allowed.test');
    const kinds = ['partial', 'not-tls', 'hello', 'invalid'];
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
      expect(kinds).toContain(readClientHello(bytes).kind);
    }), { numRuns: 3000 });
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat(hello.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), fc.nat(hello.length), (edits, cut) => {
      const bytes = Buffer.from(hello);
      for (const [at, value] of edits) bytes[at] = value;
      const read = readClientHello(bytes.subarray(0, cut));
      expect(kinds).toContain(read.kind);
      if (read.kind === 'hello' && read.serverName !== undefined) expect(read.serverName).toMatch(/^[\x21-\x7e]{1,253}$/);
    }), { numRuns: 3000 });
  });
});
