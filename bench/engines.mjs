// A run spread over two Docker engines: the real `cldpd serve`, one `cldpd worker` on this
// machine's engine and one on a second engine (scripts/second-engine.sh: its own dockerd,
// data root and bridge), one Redis, the fake GitHub of the tests. A burst of 40 labels from
// 4 repositories (10 issues each), delivered as fast as the server takes them; each run a
// busybox pod that prints a line and sleeps 2 s, so the burst outlasts the slots (4 per host).
// Measured: how many sessions each engine ran, and label → start: from sending the delivery
// to the container's start, as each engine's own event log times it.
// Run alone: node bench/engines.mjs (root; needs dockerd, a built dist/, Redis at CLDPD_TEST_REDIS_URL).
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { CLI, ROOT, benchHome, busyboxPod, fmt, percentile, removeBenchHomes } from './lib.mjs';
import { fakeGitHub, freePort, until } from './processes.mjs';

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples');
const REDIS_URL = `${(process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '')}/33`;
const SECRET = 'bench-engines';
const SCRIPT = join(ROOT, 'scripts/second-engine.sh');
const REPOS = ['alpha', 'beta', 'gamma', 'delta'];
const SLOTS = 4;

function settings(text) {
  return Object.fromEntries(text.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

function labelPayload(repo, issue) {
  const found = examples.find((e) => e.name === 'issues').examples.find((e) => e.action === 'labeled');
  const p = structuredClone(found);
  p.installation = { id: 7777, node_id: 'x' };
  Object.assign(p.repository, { name: repo, full_name: `acme/${repo}` });
  p.repository.owner.login = 'acme';
  Object.assign(p.issue, { number: issue, title: `Issue ${issue}`, body: 'Work.', state: 'open', closed_at: null, updated_at: new Date().toISOString(), html_url: `https://github.com/acme/${repo}/issues/${issue}` });
  delete p.issue.pull_request;
  p.sender.login = 'alice';
  p.sender.type = 'User';
  p.label = { ...p.label, name: 'cldpd:burst' };
  return p;
}

async function deliver(port, payload) {
  const body = JSON.stringify(payload);
  const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
  });
  await response.text();
  if (response.status >= 300) throw new Error(`the server answered ${response.status}`);
}

/**
 * Follows the container starts on `docker` for `hostId` as they happen (the engine keeps only
 * its last 256 events, fewer than a burst makes): each start's issue and when (ms).
 */
async function watchStarts(docker, hostId) {
  const stream = await docker.getEvents({ filters: { type: ['container'], event: ['start'], label: [`dev.cldpd.host=${hostId}`] } });
  const seen = [];
  let rest = '';
  stream.on('data', (chunk) => {
    const lines = (rest + chunk.toString('utf8')).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines.filter((l) => l.trim())) {
      const e = JSON.parse(line);
      if (e.Actor.Attributes['dev.cldpd.session']) seen.push({ issue: e.Actor.Attributes['dev.cldpd.issue'], at: e.timeNano / 1e6 });
    }
  });
  return { seen, close: () => stream.destroy() };
}

async function clean(docker, hostId) {
  for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.cldpd.host=${hostId}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  const { Volumes } = await docker.listVolumes({ filters: { label: [`dev.cldpd.host=${hostId}`] } });
  for (const v of Volumes ?? []) await docker.getVolume(v.Name).remove().catch(() => undefined);
}

/** The burst; resolves with each engine's sessions and label → start percentiles. */
export async function benchEngines() {
  const answered = (() => {
    try {
      execFileSync('bash', [SCRIPT, 'env']);
      return new Docker({ socketPath: '/run/cldpd-engine-b/docker.sock' }).ping().then(() => true, () => false);
    } catch {
      return false;
    }
  })();
  const startedHere = !(await answered);
  const engineB = settings(execFileSync('bash', [SCRIPT, 'start'], { encoding: 'utf8' }));
  const local = new Docker();
  const remote = new Docker({ socketPath: engineB.ENGINE_B_SOCKET.slice('unix://'.length) });
  const home = benchHome('cldpd-bench-engines-');
  const tag = randomBytes(3).toString('hex');
  const hosts = { a: `bench-a-${tag}`, b: `bench-b-${tag}` };
  const redis = new Redis(REDIS_URL);
  const github = await fakeGitHub();
  const children = [];
  try {
    await redis.flushdb();
    busyboxPod(home, 'burst', { command: ['sh', '-c', 'echo working; sleep 2'], egress: 'open', stopGraceSeconds: 1 });
    // The image built on each engine first: the burst measures dispatch, not a build.
    for (const host of [undefined, engineB.ENGINE_B_SOCKET]) {
      execFileSync(process.execPath, [CLI, 'start', 'burst', '--prompt', 'warm'], { env: { PATH: process.env.PATH, HOME: home, CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), ...(host ? { DOCKER_HOST: host } : {}) }, stdio: 'ignore' });
    }
    await github.start();
    github.roles.set('alice', 'write');
    const port = await freePort();
    const { generateKeyPairSync } = await import('node:crypto');
    const base = {
      PATH: process.env.PATH, HOME: home, APP_ID: '12345',
      PRIVATE_KEY: generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey,
      WEBHOOK_SECRET: SECRET, PORT: String(port), HOST: '127.0.0.1', GHE_HOST: github.host, GHE_PROTOCOL: 'http', REDIS_URL,
      CLDPD_HOME: home, CLDPD_PODS_DIR: join(home, 'pods'), CLDPD_HOST_ID: hosts.a, CLDPD_STATUS_INTERVAL_SECONDS: '1', CLDPD_METRICS_PORT: '0',
      CLDPD_CONCURRENCY: String(SLOTS), LOG_LEVEL: 'warn', NODE_ENV: 'production',
      // The fake GitHub has no secondary rate limits: the shared write budget (40 a minute by default) would pace the status edits of 40 runs, not the dispatch.
      CLDPD_GITHUB_WRITES_PER_MINUTE: '2000',
    };
    const envs = [['serve', base, 'serve.log'], ['worker', base, 'worker-a.log'],
      ['worker', { ...base, CLDPD_HOST_ID: hosts.b, CLDPD_HOME: join(home, 'b'), DOCKER_HOST: engineB.ENGINE_B_SOCKET }, 'worker-b.log']];
    for (const [mode, env, log] of envs) {
      const out = createWriteStream(join(home, log));
      const child = spawn(process.execPath, [CLI, mode], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout.pipe(out);
      child.stderr.pipe(out);
      children.push(child);
    }
    await until('the server', async () => (await fetch(`http://127.0.0.1:${port}/ping`).then((r) => r.status).catch(() => 0)) === 200, 30_000);
    await until('both workers', async () => (await redis.exists(`cldpd:host:${hosts.a}`, `cldpd:host:${hosts.b}`)) === 2, 30_000);

    const watching = [await watchStarts(local, hosts.a), await watchStarts(remote, hosts.b)];
    const sent = new Map();
    // Round robin over the repositories, as a burst from four teams arrives.
    const labels = [];
    for (let issue = 1; issue <= 10; issue += 1) for (const repo of REPOS) labels.push([repo, issue]);
    const t0 = Date.now();
    for (const [repo, issue] of labels) {
      sent.set(`acme/${repo}#${issue}`, Date.now());
      await deliver(port, labelPayload(repo, issue));
    }
    const burstMs = Date.now() - t0;
    const found = { a: watching[0].seen, b: watching[1].seen };
    await until('40 runs started', async () => found.a.length + found.b.length >= labels.length, Number(process.env.BENCH_ENGINES_TIMEOUT_MS ?? 300_000), 500).catch((err) => {
      throw new Error(`${err.message}: ${found.a.length} on host A, ${found.b.length} on host B; the processes' logs are in ${home}`);
    });
    for (const w of watching) w.close();
    // The issue label is the issue's URL: https://github.com/acme/<repo>/issues/<n>.
    const keyOf = (url) => {
      const m = /github\.com\/(acme\/[a-z]+)\/issues\/(\d+)$/.exec(url ?? '');
      return m ? `${m[1]}#${m[2]}` : undefined;
    };
    const waits = [...found.a, ...found.b].map((s) => s.at - (sent.get(keyOf(s.issue)) ?? NaN));
    if (waits.some((w) => Number.isNaN(w))) throw new Error(`a start's issue label was not recognised: ${found.a[0]?.issue}`);
    // When the intake queued each run (its drain job's timestamp): label → queued is the intake, queued → start the dispatch.
    const queuedAt = new Map();
    for (const [repo, issue] of labels) {
      const at = await redis.hget(`bull:cldpd-run:drain-acme.${repo}-${issue}-1-any`, 'timestamp');
      if (at) queuedAt.set(`acme/${repo}#${issue}`, Number(at));
    }
    const dispatch = [...found.a, ...found.b].map((s) => s.at - (queuedAt.get(keyOf(s.issue)) ?? NaN)).filter((w) => !Number.isNaN(w));
    const intake = [...queuedAt].map(([key, at]) => at - (sent.get(key) ?? NaN)).filter((w) => !Number.isNaN(w));
    return {
      sessions: { a: found.a.length, b: found.b.length }, slots: SLOTS, burstMs,
      p50: percentile(waits, 50), p99: percentile(waits, 99), max: Math.max(...waits), n: waits.length,
      intake: { p50: percentile(intake, 50), p99: percentile(intake, 99), n: intake.length },
      dispatch: { p50: percentile(dispatch, 50), p99: percentile(dispatch, 99), n: dispatch.length },
    };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r)))));
    await github.close();
    redis.disconnect();
    await clean(local, hosts.a);
    await clean(remote, hosts.b).catch(() => undefined);
    if (startedHere) execFileSync('bash', [SCRIPT, 'stop']);
  }
}

/** The report's section. */
export function enginesSection(r, when) {
  return `## 14. A run spread over two engines

\`node bench/engines.mjs\` (${when}): the real \`cldpd serve\`, one \`cldpd worker\` on this machine's Docker engine and one on a second \`dockerd\` (scripts/second-engine.sh: its own data root, exec root and bridge, on the same 2 cores), one Redis, the fake GitHub. A burst of ${r.n} labels from 4 repositories (10 issues each, round robin, sent one after another as fast as the server acknowledges them: ${fmt(r.burstMs)} ms for all), on a cached busybox pod whose run prints a line and sleeps 2 s (\`"egress": "open"\`), ${r.slots} slots per host. Label → start: from sending the delivery to the container's start, as each engine's event log times it.

| | sessions |
|---|---|
| host A (this machine's engine) | ${r.sessions.a} |
| host B (the second engine) | ${r.sessions.b} |

Label → start: **p50 ${fmt(r.p50 / 1000, 1)} s, p99 ${fmt(r.p99 / 1000, 1)} s** (max ${fmt(r.max / 1000, 1)} s, n=${r.n}). Split at the moment the intake queues the run (its drain job's timestamp in Redis):

| | p50 (s) | p99 (s) | n |
|---|---|---|---|
| label → queued (the intake: permission, settings, the "queued" comment) | ${fmt(r.intake.p50 / 1000, 1)} | ${fmt(r.intake.p99 / 1000, 1)} | ${r.intake.n} |
| queued → start (a worker with a free slot, on either engine) | ${fmt(r.dispatch.p50 / 1000, 1)} | ${fmt(r.dispatch.p99 / 1000, 1)} | ${r.dispatch.n} |

The burst's wait is the intake's: each label gets its "queued" comment before its run is queued, and the server's GitHub client keeps 3 s between two new comments (GitHub's guidance for requests that notify people; @octokit/plugin-throttling), so the 40th label is queued about 39 × 3 s after the first whatever the number of engines. Once queued, a run waits only for a free slot: ${r.slots * 2} slots over two engines and runs of 2 s empty the queue faster than the intake fills it. Neither engine is favoured: each worker takes runs from the shared queue whenever it has a free slot.
`;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.env.BENCH_KEEP) process.on('exit', removeBenchHomes);
  const r = await benchEngines();
  console.log(JSON.stringify(r));
  console.log(enginesSection(r, `${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC`));
}
