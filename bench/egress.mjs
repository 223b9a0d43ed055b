// 12. The egress gateway: what going through it costs a run, against reaching the same server
// directly. The built gateway (dist/gateway/gateway.mjs) in a process of its own, as in its
// container but without Docker; the server in another process, the client in this one.
// Run alone with `node bench/egress.mjs` (prints a table) or as `node bench/run.mjs --only=egress`.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import { CLI, ROOT, benchHome, busyboxPod, fmt, percentile, stats, timed } from './lib.mjs';

const MB = 1e6;
/** The speed of the paced download, MB/s: a fast network link (800 Mbit/s). */
const PACED_MBS = 100;

// The server: GET /big sends `size` bytes (Content-Length), anything else "ok"; every answer closes its connection.
const SERVER = `
const http = require('node:http');
const chunk = Buffer.alloc(1 << 18, 120);
http.createServer((req, res) => {
  if (req.url.startsWith('/big')) {
    const query = new URL(req.url, 'http://x').searchParams;
    const size = Number(query.get('size'));
    // rate (MB/s), when given, paces the answer as a network link of that speed would.
    const rate = Number(query.get('rate') || 0) * 1e6;
    const started = Date.now();
    let left = size;
    res.writeHead(200, { 'content-length': left, connection: 'close' });
    const pump = () => {
      while (left > 0) {
        if (rate && size - left >= rate * (Date.now() - started) / 1000) return setTimeout(pump, 1);
        const piece = left >= chunk.length ? chunk : chunk.subarray(0, left);
        left -= piece.length;
        if (!res.write(piece)) return res.once('drain', pump);
      }
      res.end();
    };
    pump();
  } else {
    res.writeHead(200, { 'content-length': 2, connection: 'close' });
    res.end('ok');
  }
}).listen(0, '127.0.0.1', function () { process.stdout.write(this.address().port + '\\n'); });
`;

/** CPU seconds (user + system) process `pid` has used so far. */
function cpuSeconds(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /, '').split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/** Starts a child process and resolves with it and the first line it prints. */
function startChild(args, env) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    const timer = setTimeout(() => reject(new Error(`no first line from ${args.join(' ')} within 10 s`)), 10_000);
    child.stdout.setEncoding('utf8').on('data', function onData(chunk) {
      out += chunk;
      const end = out.indexOf('\n');
      if (end < 0) return;
      clearTimeout(timer);
      child.stdout.off('data', onData);
      child.stdout.resume();
      resolve({ child, line: out.slice(0, end) });
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited with ${code}`)));
  });
}

/**
 * One exchange on a new connection: optionally CONNECT through the gateway first, then a
 * GET of `path`; resolves with the bytes of the answer's body and the ms from connecting to its last byte.
 */
function exchange({ port, tunnelTo, path, absolute }) {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const socket = net.connect(port, '127.0.0.1');
    let head = Buffer.alloc(0);
    let phase = tunnelTo ? 'connect' : 'answer';
    let body = 0;
    let length = -1;
    const finish = () => {
      clearTimeout(timer);
      resolve({ bytes: body, ms: Number(process.hrtime.bigint() - started) / 1e6 });
      socket.destroy();
    };
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no end of ${path} within 120 s`));
    }, 120_000);
    const request = absolute ? `GET http://${absolute}${path} HTTP/1.1\r\nHost: ${absolute}\r\n\r\n` : `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;
    socket.on('connect', () => socket.write(tunnelTo ? `CONNECT ${tunnelTo} HTTP/1.1\r\nHost: ${tunnelTo}\r\n\r\n` : request));
    socket.on('data', (chunk) => {
      if (phase === 'body') {
        body += chunk.length;
        if (body >= length) finish();
        return;
      }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (phase === 'connect') {
        if (!head.subarray(0, 12).toString().includes(' 200')) return reject(new Error(`CONNECT answered ${head.toString().slice(0, 40)}`));
        phase = 'answer';
        head = Buffer.alloc(0);
        socket.write(request);
        return;
      }
      phase = 'body';
      length = Number(/\r\ncontent-length: *(\d+)/i.exec(head.subarray(0, end).toString('latin1'))?.[1] ?? -1);
      body += head.length - end - 4;
      // The answer ends at its last byte (Content-Length), whether or not its connection stays open.
      if (length >= 0 && body >= length) finish();
    });
    socket.on('error', reject);
    socket.on('close', finish);
  });
}

/**
 * Direct against through the gateway, taking turns: `runs` downloads of `size` bytes (a plain
 * HTTP GET inside a CONNECT tunnel) and `small` short requests each on a new connection
 * (CONNECT then GET; and absolute-form GET through the proxy).
 */
export async function benchEgress({ size = 100 * MB, runs = 5, small = 200 } = {}) {
  const server = await startChild(['-e', SERVER]);
  const upstream = Number(server.line);
  const gatewayPort = await new Promise((resolve) => {
    const probe = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
  const config = { port: gatewayPort, allow: { base: [{ host: '127.0.0.1', wildcard: false, port: upstream }], layers: [] } };
  const gateway = await startChild([join(ROOT, 'dist/gateway/gateway.mjs')], { CLDPD_GATEWAY: JSON.stringify(config) });
  const target = `127.0.0.1:${upstream}`;
  try {
    const direct = () => ({ port: upstream });
    const viaConnect = () => ({ port: gatewayPort, tunnelTo: target });
    const viaHttp = () => ({ port: gatewayPort, absolute: target });
    // Warm-up: both paths, and Node's JIT in all three processes.
    for (let i = 0; i < 20; i += 1) await Promise.all([exchange({ ...direct(), path: '/s' }), exchange({ ...viaConnect(), path: '/s' })]);
    await exchange({ ...direct(), path: `/big?size=${10 * MB}` });
    await exchange({ ...viaConnect(), path: `/big?size=${10 * MB}` });

    const directMBs = [];
    const gatewayMBs = [];
    let gatewayCpu = 0;
    for (let i = 0; i < runs; i += 1) {
      for (const [how, into] of i % 2 ? [[viaConnect, gatewayMBs], [direct, directMBs]] : [[direct, directMBs], [viaConnect, gatewayMBs]]) {
        const cpuBefore = cpuSeconds(gateway.child.pid);
        const r = await exchange({ ...how(), path: `/big?size=${size}` });
        if (r.bytes !== size) throw new Error(`download lost data: ${r.bytes} of ${size} bytes`);
        if (into === gatewayMBs) gatewayCpu += cpuSeconds(gateway.child.pid) - cpuBefore;
        into.push(size / MB / (r.ms / 1000));
      }
    }
    // The same download paced at PACED_MBS, as over a fast network link.
    const pacedDirect = [];
    const pacedGateway = [];
    for (let i = 0; i < Math.min(runs, 3); i += 1) {
      for (const [how, into] of i % 2 ? [[viaConnect, pacedGateway], [direct, pacedDirect]] : [[direct, pacedDirect], [viaConnect, pacedGateway]]) {
        const r = await exchange({ ...how(), path: `/big?size=${size}&rate=${PACED_MBS}` });
        if (r.bytes !== size) throw new Error(`paced download lost data: ${r.bytes} of ${size} bytes`);
        into.push(size / MB / (r.ms / 1000));
      }
    }
    const ms = { direct: [], connect: [], http: [] };
    for (let i = 0; i < small; i += 1) {
      const order = [['direct', direct], ['connect', viaConnect], ['http', viaHttp]];
      for (let k = 0; k < order.length; k += 1) {
        const [name, how] = order[(i + k) % order.length];
        const r = await exchange({ ...how(), path: '/s' });
        if (r.bytes !== 2) throw new Error(`${name}: a small answer of ${r.bytes} bytes`);
        ms[name].push(r.ms);
      }
    }
    const at = (values) => ({ p50: percentile(values, 50), p99: percentile(values, 99) });
    const latency = { direct: at(ms.direct), connect: at(ms.connect), http: at(ms.http) };
    return {
      size, runs, small,
      direct: stats(directMBs),
      gateway: stats(gatewayMBs),
      ratio: stats(gatewayMBs).median / stats(directMBs).median,
      // Over all the gateway's downloads together: /proc counts CPU time in 10 ms ticks.
      paced: { direct: stats(pacedDirect), gateway: stats(pacedGateway), ratio: stats(pacedGateway).median / stats(pacedDirect).median },
      relayPerCpuSecond: (runs * size) / MB / Math.max(0.01, gatewayCpu),
      latency,
      addedConnect: { p50: latency.connect.p50 - latency.direct.p50, p99: latency.connect.p99 - latency.direct.p99 },
      addedHttp: { p50: latency.http.p50 - latency.direct.p50, p99: latency.http.p99 - latency.direct.p99 },
    };
  } finally {
    gateway.child.kill('SIGTERM');
    server.child.kill('SIGTERM');
  }
}

/**
 * What a gated run's start costs on Docker: `cldpd start` of a busybox pod that echoes, gated
 * (its run's network and gateway opened and closed) against the same pod open, taking turns.
 */
export async function benchGatedStart({ runs = 5 } = {}) {
  const home = benchHome();
  busyboxPod(home, 'bench-gated', { command: ['echo', 'ok'] });
  busyboxPod(home, 'bench-open', { command: ['echo', 'ok'], egress: 'open' });
  const env = { ...process.env, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: 'bench' };
  const start = (pod) => timed(process.execPath, [CLI, 'start', pod, '--prompt', 'x'], { env });
  // Warm-up: the images, and the gateway's own image once.
  for (const pod of ['bench-open', 'bench-gated']) {
    const r = await start(pod);
    if (r.code !== 0) throw new Error(`${pod} failed (exit ${r.code}): ${r.stdout}${r.stderr ?? ''}`);
  }
  const ms = { open: [], gated: [] };
  for (let i = 0; i < runs; i += 1) {
    for (const pod of i % 2 ? ['bench-gated', 'bench-open'] : ['bench-open', 'bench-gated']) {
      const r = await start(pod);
      if (r.code !== 0 || !r.stdout.includes('ok')) throw new Error(`${pod} failed (exit ${r.code}): ${r.stdout}${r.stderr ?? ''}`);
      ms[pod === 'bench-open' ? 'open' : 'gated'].push(r.ms);
    }
  }
  return { runs, open: stats(ms.open), gated: stats(ms.gated) };
}

/** The section of the report, as markdown lines. */
export function egressSection(e, heading = '## 12. Egress gateway') {
  const s = (x, d = 0) => `${fmt(x.median, d)} (${fmt(x.min, d)}–${fmt(x.max, d)}, n=${x.n})`;
  return [heading, '',
    `The built gateway (\`node dist/gateway/gateway.mjs\`, its allow-list naming the server) in a process of its own, on this machine without Docker; the server (Node, \`http\`) in another process, the client in a third. Throughput: ${e.runs} downloads of ${fmt(e.size / MB)} MB each way, a plain HTTP GET, direct against inside a CONNECT tunnel through the gateway, taking turns; then ${e.paced.direct.n} each way with the server pacing its answer at ${PACED_MBS} MB/s, as a fast network link would. Per connection: ${e.small} short requests each way, each on a new connection (connect, [CONNECT,] GET, a 2-byte answer, close), timed from connecting to the answer's end.`, '',
    '| path | download (MB/s) | per connection p50 (ms) | p99 (ms) |', '|---|---|---|---|',
    `| direct | ${s(e.direct)} | ${fmt(e.latency.direct.p50, 2)} | ${fmt(e.latency.direct.p99, 2)} |`,
    `| through the gateway, CONNECT | ${s(e.gateway)} | ${fmt(e.latency.connect.p50, 2)} | ${fmt(e.latency.connect.p99, 2)} |`,
    `| direct, paced at ${PACED_MBS} MB/s | ${s(e.paced.direct, 1)} | — | — |`,
    `| through the gateway, CONNECT, paced at ${PACED_MBS} MB/s | ${s(e.paced.gateway, 1)} | — | — |`,
    `| through the gateway, absolute-form GET | — | ${fmt(e.latency.http.p50, 2)} | ${fmt(e.latency.http.p99, 2)} |`, '',
    ...(e.start ? [
      `A gated run's start on Docker: \`cldpd start\` of a busybox pod that echoes \`ok\`, on a cached image, gated (its run's network and gateway container made, then removed) against the same pod with \`"egress": "open"\`, ${e.start.runs} runs each, taking turns: **${s(e.start.gated)} ms** gated against ${s(e.start.open)} ms open, ${fmt(e.start.gated.median - e.start.open.median)} ms more.`, '',
    ] : []),
    `Throughput ratio: **${fmt(e.ratio, 2)}×** on loopback (target ≥ 0.9×: ${e.ratio >= 0.9 ? 'met' : '**missed**'}); **${fmt(e.paced.ratio, 2)}×** paced at ${PACED_MBS} MB/s (${e.paced.ratio >= 0.9 ? 'met' : '**missed**'}). Added per connection through CONNECT: **${fmt(e.addedConnect.p50, 2)} ms** at p50 (target ≤ 5 ms: ${e.addedConnect.p50 <= 5 ? 'met' : '**missed**'}), ${fmt(e.addedConnect.p99, 2)} ms at p99; through an absolute-form request: ${fmt(e.addedHttp.p50, 2)} ms at p50, ${fmt(e.addedHttp.p99, 2)} ms at p99. The gateway relays ${fmt(e.relayPerCpuSecond)} MB per second of its own CPU time (user + system, from /proc): a download slower than that, as any over a network is, is not slowed by it; on loopback all three processes compete for the machine's ${os.cpus().length} cores.`, ''];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const quick = process.argv.includes('--quick');
  const result = { ...(await benchEgress({ runs: quick ? 2 : 5, small: quick ? 50 : 200 })), start: await benchGatedStart({ runs: quick ? 2 : 5 }) };
  console.log(egressSection(result, '## Egress gateway').join('\n'));
}
