// The wait a single label sees behind another repository's burst: 20 labels on one
// repository, then one on another, on a host with two slots. Measured on this build (fair
// share: repositories take turns) and, when `before` names another build's CLI (first come,
// first served), on that one, with the same server, worker, engine and pod.
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import Docker from 'dockerode';
import { Redis } from 'ioredis';
import { benchHome, busyboxPod, stats } from './lib.mjs';
import { fakeGitHub, startServeAndWorker, until } from './processes.mjs';

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples');
const EXAMPLES = examples.default ?? examples;
const REDIS_BASE = (process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '');
const REDIS_DB = 40;
const SECRET = 'bench-fair-share';
const OWNER = 'acme';
const INSTALLATION = 4848;
const BURST = 20;

/** GitHub's `issues.labeled` example: `label` on `repo`'s issue `number`, by `sender`. */
function labeled(repo, number, sender) {
  const found = EXAMPLES.find((e) => e.name === 'issues')?.examples.find((e) => e.action === 'labeled');
  const payload = structuredClone(found);
  payload.installation = { id: INSTALLATION, node_id: 'x' };
  Object.assign(payload.repository, { name: repo, full_name: `${OWNER}/${repo}`, html_url: `https://github.com/${OWNER}/${repo}` });
  payload.repository.owner.login = OWNER;
  Object.assign(payload.sender, { login: sender, type: 'User' });
  Object.assign(payload.issue, { number, html_url: `https://github.com/${OWNER}/${repo}/issues/${number}`, title: `Issue ${number}`, body: 'Work.', updated_at: new Date().toISOString(), closed_at: null, state: 'open' });
  delete payload.issue.pull_request;
  payload.label = { ...payload.label, name: 'cldpd:slow' };
  return payload;
}

async function deliver(port, payload) {
  const body = JSON.stringify(payload);
  const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-github-event': 'issues', 'x-github-delivery': randomUUID(), 'user-agent': 'GitHub-Hookshot/bench', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
  });
  await response.text();
  if (response.status >= 300) throw new Error(`the server answered ${response.status}`);
}

/**
 * One round on `cli`: resolves with the single label's wait, from the slots freeing (the
 * burst's first two runs held them until it was queued) to its container's creation (ms),
 * and how many of the burst's runs started in between.
 */
async function round(cli) {
  const redisUrl = `${REDIS_BASE}/${REDIS_DB}`;
  const redis = new Redis(redisUrl);
  const home = benchHome('cldpd-bench-fair-');
  const hostId = `bench-fair-${randomBytes(4).toString('hex')}`;
  const github = await fakeGitHub();
  const docker = new Docker();
  const children = [];
  const created = new Map();
  const events = await docker.getEvents({ filters: { type: ['container'], event: ['create'], label: [`dev.cldpd.host=${hostId}`, 'dev.cldpd.session'] } });
  let buffered = '';
  events.on('data', (chunk) => {
    buffered += chunk.toString('utf8');
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines.filter(Boolean)) {
      const event = JSON.parse(line);
      const url = event.Actor.Attributes['dev.cldpd.issue'] ?? '';
      if (!created.has(url)) created.set(url, event.timeNano / 1e6);
    }
  });
  try {
    await redis.flushdb();
    // Each run holds its slot until the gate opens, then works for a second: the burst fills
    // both slots and queues the rest behind them, as long runs do.
    const gate = join(home, 'gate');
    mkdirSync(gate, { recursive: true });
    busyboxPod(home, 'slow', { command: ['sh', '-c', 'echo working; until [ -e /gate/open ]; do sleep 0.1; done; sleep 1'], network: 'none', mounts: [{ source: gate, target: '/gate', readOnly: true }] });
    await github.start();
    for (const login of ['ann', 'bob']) github.roles.set(login, 'write');
    const port = await startServeAndWorker({ home, github, redis, redisUrl, secret: SECRET, hostId, children, cli, extra: { CLDPD_CONCURRENCY: '2', CLDPD_GITHUB_WRITES_PER_MINUTE: '2000' } });
    const status = (repo, n) => github.commentsOn(`${OWNER}/${repo}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'));
    // A warm-up run builds the pod's image, so no round waits for a build.
    writeFileSync(join(gate, 'open'), '');
    await deliver(port, labeled('warm', 1, 'ann'));
    await until('the warm-up run', () => /cldpd: finished/.test(status('warm', 1)?.body ?? ''), 120_000);
    rmSync(join(gate, 'open'));
    for (let n = 1; n <= BURST; n++) await deliver(port, labeled('big', n, 'ann'));
    await until('the burst queued', () => Array.from({ length: BURST }, (_, i) => status('big', i + 1)).every(Boolean), 180_000);
    await deliver(port, labeled('small', 1, 'bob'));
    // Its run is queued right after its comment is posted.
    await until('the single label queued', () => Boolean(status('small', 1)), 60_000);
    await new Promise((r) => setTimeout(r, 1000));
    const labelledAt = Date.now();
    writeFileSync(join(gate, 'open'), '');
    const small = `https://github.com/${OWNER}/small/issues/1`;
    await until('the single label\'s run', () => created.has(small), 300_000);
    const startedAt = created.get(small);
    const burstBefore = [...created].filter(([url, at]) => url.includes('/big/') && at > labelledAt && at < startedAt).length;
    await until('every run', () => Array.from({ length: BURST }, (_, i) => status('big', i + 1)?.body ?? '').every((b) => /cldpd: finished/.test(b)), 300_000);
    return { waitMs: startedAt - labelledAt, burstBefore };
  } finally {
    events.destroy?.();
    for (const c of children) c.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)))));
    await github.close();
    for (const c of await docker.listContainers({ all: true, filters: { label: [`dev.cldpd.host=${hostId}`] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
    redis.disconnect();
  }
}

/** `rounds` rounds on this build, and as many on `before` (a CLI path) when given, alternating. */
export async function benchFairShare({ rounds = 3, before } = {}) {
  const builds = { after: undefined, ...(before ? { before } : {}) };
  const results = Object.fromEntries(Object.keys(builds).map((name) => [name, []]));
  for (let i = 0; i < rounds; i++) {
    for (const [name, cli] of Object.entries(builds)) results[name].push(await round(cli));
  }
  return Object.fromEntries(Object.entries(results).map(([name, list]) => [name, { wait: stats(list.map((r) => r.waitMs)), burstBefore: list.map((r) => r.burstBefore), rounds: list.length }]));
}
