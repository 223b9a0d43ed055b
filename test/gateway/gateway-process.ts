// The built gateway (dist/gateway/gateway.mjs) as its container runs it, in a child process,
// and the clients and servers its tests talk to over real sockets and real TLS.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { parseNotice, type GatewayConfig, type GatewayNotice } from '../../src/gateway/config.js';

export const GATEWAY = fileURLToPath(new URL('../../dist/gateway/gateway.mjs', import.meta.url));

/** A directory for one test file's files, under the test run's temporary root. */
export function tempDir(prefix: string): string {
  return mkdtempSync(join(process.env.CLDPD_TEST_TMP ?? tmpdir(), prefix));
}

/** A self-signed certificate (made by the openssl CLI) for `names`, as PEM. */
export function selfSigned(dir: string, names: readonly string[]): { readonly key: string; readonly cert: string; readonly certFile: string } {
  const keyFile = join(dir, 'key.pem');
  const certFile = join(dir, 'cert.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '1',
    '-subj', `/CN=${names[0]}`, '-addext', `subjectAltName=${names.map((name) => `DNS:${name}`).join(',')}`], { stdio: 'ignore' });
  return { key: execFileSync('cat', [keyFile]).toString(), cert: execFileSync('cat', [certFile]).toString(), certFile };
}

/** A TCP port nobody listens on right now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

/** Waits until `check` holds, polling every 20 ms, for at most `timeoutMs`. */
export async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * The gateway process, resolving names through the OS as in its container: it runs in a mount
 * namespace of its own (`unshare --mount`) where `hosts` is bind-mounted over /etc/hosts, as
 * Docker's ExtraHosts fills a container's /etc/hosts; the machine's own file is not touched.
 */
export class GatewayProcess {
  readonly child: ChildProcess;
  readonly notices: GatewayNotice[] = [];
  readonly exited: Promise<number | null>;
  stderr = '';
  private stdout = '';

  constructor(config: GatewayConfig | string, hosts: string, env: NodeJS.ProcessEnv = {}) {
    const hostsFile = join(tempDir('gateway-hosts-'), 'hosts');
    writeFileSync(hostsFile, hosts);
    this.child = spawn('unshare', ['--mount', 'sh', '-c', 'mount --bind "$0" /etc/hosts && exec "$1" "$2"', hostsFile, process.execPath, GATEWAY], {
      env: { PATH: process.env.PATH, ...env, CLDPD_GATEWAY: typeof config === 'string' ? config : JSON.stringify(config) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      this.stdout += chunk;
      const lines = this.stdout.split('\n');
      this.stdout = lines.pop()!;
      for (const line of lines) {
        const notice = parseNotice(line);
        if (notice) this.notices.push(notice);
      }
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Resolves once the gateway printed its `listening` notice. */
  async listening(): Promise<number> {
    await until('the gateway to listen', () => this.notices.some((n) => n.event === 'listening') || this.child.exitCode !== null);
    const notice = this.notices.find((n) => n.event === 'listening');
    if (!notice) throw new Error(`the gateway exited: ${this.stderr}`);
    return notice.port;
  }

  /** The `blocked` notices so far. */
  blocked(): Array<Extract<GatewayNotice, { event: 'blocked' }>> {
    return this.notices.filter((n): n is Extract<GatewayNotice, { event: 'blocked' }> => n.event === 'blocked');
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGTERM');
    return this.exited;
  }
}

/** What a raw exchange returned: the status line's code, the head and the body as text. */
export interface RawAnswer {
  readonly status: number;
  readonly head: string;
  readonly body: string;
}

/** Sends `request` as bytes to the gateway and reads everything until the connection closes (5 s at most). */
export function rawExchange(port: number, request: string | Buffer, options: { readonly halfClose?: boolean } = {}): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of the answer within 5 s: ${Buffer.concat(chunks).toString('latin1').slice(0, 200)}`));
    }, 5000);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString('latin1');
      const split = text.indexOf('\r\n\r\n');
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), head: split < 0 ? text : text.slice(0, split), body: split < 0 ? '' : text.slice(split + 4) });
    });
    if (options.halfClose) socket.end(request);
    else socket.write(request);
  });
}

/** A CONNECT tunnel through the gateway: its answer's status and, on 200, the open socket. */
export function openTunnel(port: number, authority: string): Promise<{ readonly status: number; readonly head: string; readonly socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer to CONNECT ${authority} within 20 s`));
    }, 20_000);
    const onData = (chunk: Buffer): void => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf('\r\n\r\n');
      if (end < 0) return;
      clearTimeout(timer);
      socket.off('data', onData);
      const head = received.subarray(0, end).toString('latin1');
      const rest = received.subarray(end + 4);
      if (rest.length > 0) socket.unshift(rest);
      resolve({ status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0), head: `${head}\r\n\r\n${rest.toString('latin1')}`, socket });
    };
    socket.on('data', onData);
    socket.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    socket.write(`CONNECT ${authority} HTTP/1.1\r\nHost: ${authority}\r\n\r\n`);
  });
}

/**
 * GET `path` over TLS inside a CONNECT tunnel to `authority`, the ClientHello naming `servername`
 * ('' for none); resolves with the response text, or rejects with the TLS error.
 */
export async function httpsThroughTunnel(port: number, authority: string, servername: string, ca: string, path = '/'): Promise<string> {
  const tunnel = await openTunnel(port, authority);
  if (tunnel.status !== 200) throw new Error(`CONNECT answered ${tunnel.status}`);
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket: tunnel.socket, servername, ca, checkServerIdentity: () => undefined });
    let text = '';
    const timer = setTimeout(() => {
      secure.destroy();
      reject(new Error('no answer over TLS within 10 s'));
    }, 10_000);
    secure.on('secureConnect', () => secure.write(`GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`));
    secure.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    secure.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    secure.on('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
  });
}
