// The egress gateway's HTTP proxy: CONNECT tunnels and absolute-form requests to the hosts a
// run may reach, and the model provider's endpoint behind a per-run secret.
import { createHash, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import type { GatewayConfig, GatewayNotice } from './config.js';
import { allows, isHostName, normalHost, type EgressAllowList, type EgressRule } from './rules.js';
import { readClientHello } from './sni.js';

/** The most client connections open at once; one more is answered 503 and closed. */
export const MAX_CONNECTIONS = 512;
/** The most bytes of a request's head (request line and headers), Node's `maxHeaderSize`; more is answered 431. */
export const MAX_HEADER_BYTES = 16 * 1024;
/** How long a client has to send its request head. */
export const HEADERS_TIMEOUT_MS = 20_000;
/** The buffer each tunnel reads its upstream host's bytes into. */
const RELAY_BUFFER_BYTES = 128 * 1024;
/** How long a tunnel waits for the client's first bytes (its ClientHello) before it is closed. */
export const HELLO_TIMEOUT_MS = 10_000;
/** How long the gateway waits for an upstream host to accept a connection (name resolution included). */
export const CONNECT_TIMEOUT_MS = 15_000;
/** How long a connection is idle before TCP keepalive probes ask whether its peer is still there. */
const KEEPALIVE_MS = 60_000;
/** The most reads a ClientHello may arrive in (real clients send it in one to three). */
const MAX_HELLO_READS = 64;

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-authenticate', 'proxy-authorization', 'proxy-connection', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const MODEL_CREDENTIALS = new Set(['x-api-key', 'x-goog-api-key', 'authorization', 'proxy-authorization', 'host']);
// A fatal TLS alert, access_denied (RFC 8446 §6.2): what a TLS client is told when its hello is refused.
const TLS_ACCESS_DENIED = Buffer.from([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x31]);

/** A host and port a client asked for. */
interface Target {
  readonly host: string;
  readonly port: number;
}

/**
 * One run's egress gateway: an HTTP proxy that lets a client reach only what `config.allow`
 * allows, and (with `config.model`) the model provider's endpoint behind the run's secret.
 * Each refused connection is reported to `notify` as a `blocked` notice. Errors of one
 * connection end that connection only. {@link close} ends every connection.
 */
export class Gateway {
  private readonly server: http.Server;
  private readonly clients = new Set<net.Socket>();
  private readonly upstreams = new Set<net.Socket>();
  private readonly refused = new WeakSet<net.Socket>();
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxFreeSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxFreeSockets: 16 });
  private readonly addressOnly: EgressAllowList;
  /** Names the container's /etc/hosts pins (Docker's ExtraHosts, the operator's CLDPD_EGRESS_HOSTS): reached where they point. */
  private readonly pinned = pinnedNames();
  /**
   * Resolves a listed name for a connection, refusing addresses no name of the open internet
   * should lead to: loopback and unspecified ones, link-local ones (where clouds serve instance
   * metadata and its credentials) and multicast. A pinned name is exempt. Private addresses
   * pass (an Enterprise Server, a registry inside the company): a listed name is trusted there.
   */
  private readonly lookup: net.LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return (callback as (e: NodeJS.ErrnoException | null, a: string, f?: number) => void)(error, '', 4);
      const found = addresses as dns.LookupAddress[];
      const usable = this.pinned.has(normalHost(hostname)) ? found : found.filter((a) => !forbiddenAddress(a.address));
      if (usable.length === 0) {
        const refused = Object.assign(new Error(`${hostname} resolves only to addresses the gateway does not reach (loopback, link-local such as cloud metadata, or multicast)`), { code: 'EADDRNOTALLOWED' });
        return (callback as (e: NodeJS.ErrnoException | null, a: string, f?: number) => void)(refused, '', 4);
      }
      if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, usable);
      const first = usable[0] as dns.LookupAddress;
      return (callback as (e: null, a: string, f: number) => void)(null, first.address, first.family);
    });
  };
  /** The rules that name their port: the only ones a tunnel that does not speak TLS may pass (see inspectTunnel). */
  private readonly portNamed: EgressAllowList;

  constructor(private readonly config: GatewayConfig, private readonly notify: (notice: GatewayNotice) => void) {
    // An address is allowed only by a rule naming it exactly: never by a wildcard ("*.0.0.1").
    const exact = (rules: readonly EgressRule[]) => rules.filter((rule) => !rule.wildcard);
    this.addressOnly = { base: exact(config.allow.base), layers: config.allow.layers.map(exact) };
    const named = (rules: readonly EgressRule[]) => rules.filter((rule) => rule.port !== undefined);
    this.portNamed = { base: named(config.allow.base), layers: config.allow.layers.map(named) };
    this.server = http.createServer({ maxHeaderSize: MAX_HEADER_BYTES, headersTimeout: HEADERS_TIMEOUT_MS, requestTimeout: 0 });
    // A client that closes its side once its request is sent (HTTP/1.0 tools, `nc`) still gets
    // its answer: without this Node aborts the request at the client's end of input.
    (this.server as http.Server & { httpAllowHalfOpen: boolean }).httpAllowHalfOpen = true;
    this.server.on('connection', (socket: net.Socket) => this.onConnection(socket));
    this.server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => this.onRequest(req, res));
    this.server.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => this.onConnect(req, socket, head));
    this.server.on('clientError', (error: NodeJS.ErrnoException, socket: net.Socket) => {
      if (socket.writable && !this.refused.has(socket)) {
        const status = error.code === 'HPE_HEADER_OVERFLOW' ? 431 : 400;
        endWith(socket, rawResponse(status, status === 431 ? `the request head is over ${MAX_HEADER_BYTES} bytes\n` : 'not an HTTP request this gateway understands\n'));
      } else {
        socket.destroy();
      }
    });
  }

  /** Starts listening on `host`:`config.port`; resolves with the port once it does. */
  listen(host = '0.0.0.0'): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.config.port, host, () => {
        this.server.off('error', reject);
        resolve((this.server.address() as net.AddressInfo).port);
      });
    });
  }

  /** Stops taking connections and ends every open one (destroying what has not closed within a second). */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of [...this.clients, ...this.upstreams]) socket.end();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
    const timer = setTimeout(() => {
      for (const socket of [...this.clients, ...this.upstreams]) socket.destroy();
    }, 1000);
    await closed;
    clearTimeout(timer);
  }

  private onConnection(socket: net.Socket): void {
    socket.on('error', () => socket.destroy());
    if (this.clients.size >= MAX_CONNECTIONS) {
      this.refused.add(socket);
      endWith(socket, rawResponse(503, `the gateway has ${MAX_CONNECTIONS} connections open, its most\n`));
      return;
    }
    socket.setNoDelay(true);
    // A peer that went away without a word is found out, and its connection no longer counts.
    socket.setKeepAlive(true, KEEPALIVE_MS);
    this.clients.add(socket);
    socket.once('close', () => this.clients.delete(socket));
  }

  private trackUpstream(socket: net.Socket): void {
    if (this.upstreams.has(socket)) return;
    this.upstreams.add(socket);
    socket.once('close', () => this.upstreams.delete(socket));
  }

  /** True when the allow-list lets a connection reach `host` (normalised) on `port`. */
  private permitted(host: string, port: number): boolean {
    if (net.isIP(host) !== 0 || looksNumeric(host)) return net.isIPv4(host) && allows(this.addressOnly, host, port);
    return isHostName(host) && allows(this.config.allow, host, port);
  }

  /**
   * True when a tunnel to `host`:`port` may carry what is not TLS: only by a rule that names
   * the port. A name listed without one (HTTP and HTTPS) gets TLS tunnels, whose name is
   * checked, and plain HTTP as absolute-form requests, whose Host is: never a raw tunnel,
   * where a `Host` of another site would reach whatever shares the listed host's front (a CDN).
   */
  private rawPermitted(host: string, port: number): boolean {
    const list = net.isIP(host) !== 0 ? { base: this.portNamed.base.filter((r) => !r.wildcard), layers: this.portNamed.layers.map((l) => l.filter((r) => !r.wildcard)) } : this.portNamed;
    return allows(list, host, port);
  }

  private block(target: Target, via: 'connect' | 'http' | 'tls'): void {
    this.notify({ event: 'blocked', host: printable(target.host), port: target.port, via });
  }

  // CONNECT host:port: allowed hosts only; then the client's first bytes, a ClientHello naming that host.
  private onConnect(req: http.IncomingMessage, client: net.Socket, head: Buffer): void {
    if (this.refused.has(client)) return;
    const target = parseAuthority(req.url ?? '');
    if (!target) {
      endWith(client, rawResponse(400, 'CONNECT needs a target of the form host:port\n'));
      return;
    }
    if (!this.permitted(target.host, target.port)) {
      this.block(target, 'connect');
      endWith(client, rawResponse(403, refusal(target)));
      return;
    }
    let established = false;
    // What the upstream host sends is read into one buffer per tunnel and written to the client
    // before the next read: large reads, no allocation per chunk. Before the tunnel is open to it
    // (the ClientHello still being read), a host that speaks first is held, up to a bound.
    const early: Buffer[] = [];
    let earlyBytes = 0;
    let relay: ((chunk: Buffer) => void) | undefined;
    // noDelay: a relay passes each write on as it comes; Nagle's wait would add a delayed ACK to exchanges.
    const upstream: net.Socket = net.connect({
      host: target.host, port: target.port, lookup: this.lookup, allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: KEEPALIVE_MS,
      onread: {
        buffer: Buffer.allocUnsafe(RELAY_BUFFER_BYTES),
        callback: (size: number, buffer: Uint8Array): boolean => {
          const chunk = Buffer.from(buffer.buffer, buffer.byteOffset, size);
          if (relay) {
            relay(chunk);
            return false;
          }
          earlyBytes += size;
          if (earlyBytes > RELAY_BUFFER_BYTES) upstream.destroy();
          else early.push(Buffer.from(chunk));
          return true;
        },
      },
    });
    this.trackUpstream(upstream);
    const connectTimer = setTimeout(() => {
      upstream.destroy();
      endWith(client, rawResponse(504, `${printable(target.host)}:${target.port} did not accept a connection within ${CONNECT_TIMEOUT_MS / 1000} s\n`));
    }, CONNECT_TIMEOUT_MS);
    upstream.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      upstream.destroy();
      if (established) client.destroy();
      else endWith(client, rawResponse(502, `could not connect to ${printable(target.host)}:${target.port} (${error.code === 'EADDRNOTALLOWED' ? error.message : error.code ?? error.message})\n`));
    });
    const abandon = (): void => {
      clearTimeout(connectTimer);
      upstream.destroy();
    };
    client.once('close', abandon);
    upstream.once('connect', () => {
      clearTimeout(connectTimer);
      established = true;
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      this.inspectTunnel(client, upstream, head, target, abandon, () => {
        for (const chunk of early.splice(0)) client.write(chunk);
        relay = (chunk) => {
          if (client.destroyed) upstream.destroy();
          else client.write(chunk, (error) => (error ? upstream.destroy() : upstream.resume()));
        };
        upstream.once('end', () => client.end());
      });
    });
  }

  private inspectTunnel(client: net.Socket, upstream: net.Socket, head: Buffer, target: Target, abandon: () => void, openRelay: () => void): void {
    let buffered = head;
    let reads = 0;
    const timer = setTimeout(() => {
      client.destroy();
      upstream.destroy();
    }, HELLO_TIMEOUT_MS);
    const decide = (): boolean => {
      const read = readClientHello(buffered);
      if (read.kind === 'partial' && reads < MAX_HELLO_READS) return false;
      clearTimeout(timer);
      client.off('data', onData);
      client.off('close', abandon);
      // TLS sends no server name for an address: a hello to a listed address may name none.
      const address = net.isIP(target.host) !== 0;
      const matches = read.kind === 'hello' && (read.serverName === undefined ? address : read.serverName === target.host);
      if (read.kind === 'not-tls' && !this.rawPermitted(target.host, target.port)) {
        this.block(target, 'http');
        upstream.destroy();
        endWith(client, rawResponse(403, `${printable(target.host)} is listed without a port: a tunnel to it must speak TLS (its name is checked), and plain HTTP to it goes as a proxy request, not through a tunnel. To let a tunnel carry anything else, list "${printable(target.host)}:${target.port}" in the pod's "egress"\n`));
        return true;
      }
      if (read.kind === 'not-tls' || matches) {
        upstream.write(buffered);
        client.pipe(upstream);
        openRelay();
        client.on('error', () => upstream.destroy());
        upstream.on('error', () => client.destroy());
        // Once one side has closed, the other closes after what it still has to write.
        upstream.once('close', () => client.destroySoon());
        client.once('close', () => upstream.destroySoon());
        return true;
      }
      this.block(read.kind === 'hello' && read.serverName !== undefined ? { host: read.serverName, port: target.port } : target, 'tls');
      upstream.destroy();
      endWith(client, TLS_ACCESS_DENIED);
      return true;
    };
    const onData = (chunk: Buffer): void => {
      reads += 1;
      buffered = Buffer.concat([buffered, chunk]);
      decide();
    };
    if (buffered.length === 0 || !decide()) client.on('data', onData);
  }

  private onRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    if (this.refused.has(req.socket)) return;
    req.on('error', () => req.destroy());
    res.on('error', () => res.destroy());
    const url = req.url ?? '';
    if (url.startsWith('/')) {
      if (this.config.model) this.modelRoute(req, res, url);
      else reply(req, res, 400, 'This is cldpd\'s egress gateway: use it as the HTTP proxy (HTTP_PROXY, HTTPS_PROXY).\n');
      return;
    }
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      reply(req, res, 400, 'the request target is neither a path nor an absolute http: URL\n');
      return;
    }
    if (parsed.protocol !== 'http:') {
      reply(req, res, 400, `a proxy request for ${parsed.protocol} goes through CONNECT, not as an absolute-form request\n`);
      return;
    }
    const target: Target = { host: normalHost(parsed.hostname), port: Number(parsed.port || 80) };
    if (this.config.model && this.isSelf(target, req.socket)) {
      this.modelRoute(req, res, `${parsed.pathname}${parsed.search}`);
      return;
    }
    const hostHeader = req.headers.host;
    if (hostHeader !== undefined) {
      const named = parseHostHeader(hostHeader);
      if (!named || named.host !== target.host || named.port !== target.port) {
        const shown = named ?? { host: hostHeader, port: target.port };
        this.block(shown, 'http');
        reply(req, res, 403, `The Host header (${printable(hostHeader)}) names another host than the request's URL (${printable(target.host)}:${target.port}): refused.\n`);
        return;
      }
    }
    if (!this.permitted(target.host, target.port)) {
      this.block(target, 'http');
      reply(req, res, 403, refusal(target));
      return;
    }
    const headers = forwardHeaders(req, HOP_BY_HOP);
    headers.host = hostHeader ?? parsed.host;
    this.forward(req, res, http, this.httpAgent, { host: target.host, port: target.port, path: `${parsed.pathname}${parsed.search}`, headers, lookup: this.lookup });
  }

  /** True when `target` is this gateway itself: its port, and a name or address it is reached by. */
  private isSelf(target: Target, socket: net.Socket): boolean {
    if (target.port !== this.config.port) return false;
    const host = target.host;
    if (host === 'localhost' || host === os.hostname().toLowerCase() || this.config.names?.includes(host)) return true;
    if (socket.localAddress !== undefined && normalHost(socket.localAddress).replace(/^::ffff:/, '') === host) return true;
    return Object.values(os.networkInterfaces()).some((list) => list?.some((entry) => entry.address.toLowerCase() === host));
  }

  // /<secret>/<rest> → model.upstream + /<rest>, the client's credentials replaced by the run's.
  private modelRoute(req: http.IncomingMessage, res: http.ServerResponse, pathAndQuery: string): void {
    const model = this.config.model!;
    const match = /^\/([^/?#]*)([^#]*)/.exec(pathAndQuery);
    const secret = match?.[1] ?? '';
    const digest = createHash('sha256').update(secret).digest();
    if (secret === '' || !timingSafeEqual(digest, Buffer.from(model.secretSha256, 'hex'))) {
      reply(req, res, 401, 'This URL does not carry the run\'s model credential (the model endpoint as the run was given it).\n');
      return;
    }
    // Not carried: a client that asks for a WebSocket first (Codex CLI) falls back to HTTPS at once on 426, after seven tries on anything else.
    if (req.headers.upgrade !== undefined) {
      reply(req, res, 426, 'The gateway carries no WebSocket to the model provider: send the request over HTTP.\n');
      return;
    }
    let rest = match?.[2] ?? '';
    const path = rest.split('?')[0]!;
    // An encoded slash or backslash is a separator to some servers: nothing may climb out of the provider's path prefix.
    if (path.includes('\\') || /%(2f|5c)/i.test(path) || path.split('/').some((segment) => isDotSegment(segment))) {
      reply(req, res, 400, 'a model request\'s path may not hold "." or ".." segments or encoded slashes\n');
      return;
    }
    if (!rest.startsWith('/')) rest = `/${rest}`;
    const upstream = new URL(model.upstream);
    const headers = forwardHeaders(req, new Set([...HOP_BY_HOP, ...MODEL_CREDENTIALS]));
    Object.assign(headers, model.setHeaders);
    const secure = upstream.protocol === 'https:';
    this.forward(req, res, secure ? https : http, secure ? this.httpsAgent : this.httpAgent, {
      host: normalHost(upstream.hostname),
      port: Number(upstream.port || (secure ? 443 : 80)),
      path: `${upstream.pathname.replace(/\/+$/, '')}${rest}`,
      headers,
    });
  }

  /** Sends `req` on upstream with `options` and streams the answer back, both ways without buffering. */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, lib: typeof http | typeof https, agent: http.Agent, options: http.RequestOptions): void {
    const outgoing = lib.request({ ...options, method: req.method, agent });
    let connectTimer: NodeJS.Timeout | undefined;
    outgoing.on('socket', (socket: net.Socket) => {
      this.trackUpstream(socket);
      socket.setNoDelay(true);
      if (!socket.connecting) return;
      connectTimer = setTimeout(() => outgoing.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      socket.once('connect', () => clearTimeout(connectTimer));
    });
    outgoing.on('error', (error: NodeJS.ErrnoException) => {
      clearTimeout(connectTimer);
      if (res.headersSent) res.destroy();
      else reply(req, res, error.code === 'ETIMEDOUT' ? 504 : 502, `could not reach ${printable(options.host ?? '')}:${options.port} (${error.code === 'EADDRNOTALLOWED' ? error.message : error.code ?? error.message})\n`);
    });
    outgoing.on('response', (answer: http.IncomingMessage) => {
      clearTimeout(connectTimer);
      answer.on('error', () => res.destroy());
      const headers = forwardHeaders(answer, HOP_BY_HOP);
      res.writeHead(answer.statusCode ?? 502, answer.statusMessage, headers);
      res.flushHeaders();
      answer.pipe(res);
    });
    res.once('close', () => {
      if (!res.writableFinished) outgoing.destroy();
    });
    req.pipe(outgoing);
  }
}

/** The names /etc/hosts maps (at most its first MiB); none when it cannot be read. */
function pinnedNames(): Set<string> {
  try {
    const text = readFileSync('/etc/hosts', 'utf8').slice(0, 1024 * 1024);
    return new Set(text.split('\n').flatMap((line) => line.replace(/#.*/, '').trim().split(/\s+/).slice(1)).map(normalHost).filter(Boolean));
  } catch {
    return new Set();
  }
}

/** True for an address a listed name may not lead to: loopback, unspecified, link-local (169.254/16, fe80::/10) and multicast. */
export function forbiddenAddress(address: string): boolean {
  if (net.isIPv4(address)) {
    const [a = 0, b = 0] = address.split('.').map(Number);
    return a === 127 || a === 0 || (a === 169 && b === 254) || a >= 224;
  }
  const v6 = address.toLowerCase();
  if (v6.startsWith('::ffff:') && net.isIPv4(v6.slice(7))) return forbiddenAddress(v6.slice(7));
  return v6 === '::1' || v6 === '::' || /^fe[89ab]/.test(v6) || v6.startsWith('ff');
}

/** The headers of `message` without `drop` and without those its Connection header names; `transfer-encoding: chunked` kept on requests so the body keeps its framing. */
function forwardHeaders(message: http.IncomingMessage, drop: ReadonlySet<string>): http.OutgoingHttpHeaders {
  const named = new Set(String(message.headers.connection ?? '').split(',').map((token) => token.trim().toLowerCase()).filter(Boolean));
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(message.headers)) {
    if (value === undefined || drop.has(name) || named.has(name)) continue;
    headers[name] = value;
  }
  if (message.method !== undefined && /\bchunked\b/i.test(String(message.headers['transfer-encoding'] ?? ''))) headers['transfer-encoding'] = 'chunked';
  return headers;
}

/** host:port of a CONNECT request (IPv6 in brackets), normalised; undefined when it is not one. */
export function parseAuthority(authority: string): Target | undefined {
  const match = /^(\[[0-9a-fA-F:.]{2,45}\]|[^\s:[\]/@?#]{1,253}):(\d{1,5})$/.exec(authority);
  if (!match) return undefined;
  const port = Number(match[2]);
  if (port < 1 || port > 65535) return undefined;
  const host = normalHost(match[1]!);
  if (host === '' || (match[1]!.startsWith('[') && net.isIPv6(host) === false)) return undefined;
  return { host, port };
}

function parseHostHeader(value: string): Target | undefined {
  try {
    const url = new URL(`http://${value}`);
    if (url.username || url.password || url.pathname !== '/' || url.search || url.hash) return undefined;
    return { host: normalHost(url.hostname), port: Number(url.port || 80) };
  } catch {
    return undefined;
  }
}

// A name whose last label is a number is an address in some form ("127.1", "0x7f.1", "2130706433"):
// resolvers read it as one, so it is treated as one.
function looksNumeric(host: string): boolean {
  const last = host.slice(host.lastIndexOf('.') + 1);
  return /^(\d+|0x[0-9a-f]*)$/.test(last);
}

function isDotSegment(segment: string): boolean {
  let decoded = segment;
  try {
    decoded = decodeURIComponent(segment);
  } catch {
    return true;
  }
  return decoded === '.' || decoded === '..';
}

/** `text` safe to print: printable ASCII, at most 255 characters. */
function printable(text: string): string {
  return text.replace(/[^\x21-\x7e]/g, '?').slice(0, 255);
}

function refusal(target: Target): string {
  const host = printable(target.host);
  return `${host}:${target.port} is not in this pod's egress list, so the gateway refused it.\n`
    + `To allow it, add "${host}" (ports 80 and 443) or "${host}:${target.port}" to "egress" in the pod's pod.json.\n`;
}

function rawResponse(status: number, body: string): Buffer {
  const reason = http.STATUS_CODES[status] ?? 'Error';
  return Buffer.from(`HTTP/1.1 ${status} ${reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
}

/** Writes `data` and closes the socket, destroying it if the peer does not read it within a second. */
function endWith(socket: net.Socket, data: Buffer): void {
  if (socket.destroyed) return;
  socket.end(data);
  setTimeout(() => socket.destroy(), 1000).unref();
}

function reply(req: http.IncomingMessage, res: http.ServerResponse, status: number, body: string): void {
  req.resume();
  if (res.headersSent) {
    res.destroy();
    return;
  }
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
  res.end(body);
}
