// 9. Retention: what a finished issue holds in Redis, before and after its retention period,
// and what 10,000 finished issues would hold. The real `cldpd serve` and `cldpd worker`
// processes against the fake GitHub API (compiled from test/fakes with esbuild), a busybox
// pod that prints a run shaped like Claude Code's stream-json; Redis's own MEMORY USAGE
// and INFO figures.
import { createHmac, randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { benchHome, busyboxPod } from './lib.mjs';
import { fakeGitHub, startServeAndWorker, until } from './processes.mjs';

// The package's entry is JSON, which Node 20's import needs an attribute for: read it with require.
const examples = createRequire(import.meta.url)('@octokit/webhooks-examples');
const REDIS_BASE = (process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '');
const SECRET = 'bench-retention';
const OWNER = 'acme';
const REPO = 'archive';

function issuesEvent(action, number, label) {
  const all = examples.default ?? examples;
  const issues = all.find((e) => e.name === 'issues').examples;
  const example = structuredClone(issues.find((e) => e.action === action) ?? issues.find((e) => e.action === 'labeled'));
  example.action = action;
  example.installation = { id: 4646, node_id: 'x' };
  Object.assign(example.repository, { name: REPO, full_name: `${OWNER}/${REPO}` });
  example.repository.owner.login = OWNER;
  const now = new Date().toISOString();
  Object.assign(example.issue, { number, html_url: `https://github.com/${OWNER}/${REPO}/issues/${number}`, title: `Issue ${number}`, body: 'Work on it.', updated_at: now, closed_at: action === 'closed' ? now : null, state: action === 'closed' ? 'closed' : 'open' });
  delete example.issue.pull_request;
  Object.assign(example.sender, { login: 'alice', type: 'User' });
  if (label) example.label = { ...example.label, name: label };
  return example;
}

async function deliver(port, event, payload) {
  const body = JSON.stringify(payload);
  const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': randomUUID(), 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
  });
  await response.text();
  if (response.status >= 300) throw new Error(`the server answered ${response.status} to ${event}`);
}

/** A run of `turns` tool calls as Claude Code prints it in stream-json: init, then per turn the assistant's words and tool call and the tool's result, then the result. */
function claudeRun(turns) {
  const lines = [JSON.stringify({ type: 'system', subtype: 'init', session_id: 'claude-bench', model: 'claude-sonnet' })];
  for (let i = 0; i < turns; i++) {
    lines.push(JSON.stringify({ type: 'assistant', message: { content: [
      { type: 'text', text: `Looking at src/file-${i}.ts: the function returns early when the list is empty, which is why the test fails. I will change it and run the tests.` },
      { type: 'tool_use', id: `toolu_${i}`, name: 'Bash', input: { command: `npm test -- --grep "case ${i}"` } },
    ] } }));
    lines.push(JSON.stringify({ type: 'user', message: { content: [{ type: 'tool_result', tool_use_id: `toolu_${i}`, content: Array.from({ length: 40 }, (_, k) => `  ✓ test/case-${i}-${k}.test.ts > does what it says (${k} ms)`).join('\n') }] } }));
  }
  lines.push(JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'Fixed the early return and added a test.', total_cost_usd: 0.42, num_turns: turns, session_id: 'claude-bench' }));
  return `${lines.join('\n')}\n`;
}

/** Every key with its type and MEMORY USAGE (all samples). */
async function keyMemory(redis) {
  const rows = [];
  for await (const keys of redis.scanStream({ count: 1000 })) {
    for (const key of keys) rows.push({ key, bytes: Number(await redis.call('MEMORY', 'USAGE', key, 'SAMPLES', '0')) || 0 });
  }
  return rows;
}

/** Which part of cldpd a key belongs to. */
function category(key) {
  if (key.startsWith('cldpd:issue:')) return 'issue records';
  if (key.startsWith('cldpd:feed:')) return 'live feeds';
  if (key.startsWith('bull:')) return 'queue jobs';
  if (key.startsWith('cldpd:usage')) return 'usage counters';
  if (/^cldpd:(handled|delivery|replied):/.test(key)) return 'delivery markers';
  if (key.startsWith('cldpd:retired:')) return 'retired markers';
  return 'other';
}

function byCategory(rows) {
  const out = {};
  for (const r of rows) {
    const c = category(r.key);
    out[c] = (out[c] ?? 0) + r.bytes;
  }
  return out;
}

const usedMemory = async (redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);


/**
 * `issues` issues labelled, run and finished; then closed, and their retention period (a few
 * seconds here) let pass. Memory is summed over the keys that appeared, per category.
 */
export async function benchRetention({ issues = 20, turns = 60, copies = 10_000 } = {}) {
  const redisUrl = `${REDIS_BASE}/14`;
  const redis = new Redis(redisUrl);
  const home = benchHome();
  const github = await fakeGitHub();
  const children = [];
  try {
    await redis.flushdb();
    const podDir = busyboxPod(home, 'agent', { command: ['cat', '/run.jsonl'] }, 'COPY run.jsonl /run.jsonl');
    writeFileSync(join(podDir, 'run.jsonl'), claudeRun(turns));
    await github.start();
    github.roles.set('alice', 'write');
    // 0.0001 days: 8.6 s, so every issue of the batch is still there when the last one is closed.
    const port = await startServeAndWorker({ home, github, redis, redisUrl, secret: SECRET, hostId: 'bench-host', children, extra: { CLDPD_RETENTION_DAYS: '0.0001' } });
    const baseline = await keyMemory(redis);
    const baselineKeys = new Set(baseline.map((r) => r.key));
    const baselineUsed = await usedMemory(redis);

    const statusOf = (n) => github.commentsOn(`${OWNER}/${REPO}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'))?.body ?? '';
    for (let n = 1; n <= issues; n++) await deliver(port, 'issues', issuesEvent('labeled', n, 'cldpd:agent'));
    for (let n = 1; n <= issues; n++) await until(`issue ${n} finished`, () => /cldpd: finished/.test(statusOf(n)), 300_000, 200);
    // The final edits and the costs are written just after the comment says finished.
    await new Promise((r) => setTimeout(r, 3000));
    const finished = await keyMemory(redis);
    const delta = (rows) => {
      const before = byCategory(baseline);
      const now = byCategory(rows);
      return Object.fromEntries(Object.keys({ ...before, ...now }).map((c) => [c, (now[c] ?? 0) - (before[c] ?? 0)]));
    };
    const beforeRetention = delta(finished);
    const usedFinished = await usedMemory(redis);
    const feedEntries = Number(await redis.xlen(`cldpd:feed:${/session `([a-z0-9-]+)`/.exec(statusOf(1))?.[1]}`));

    // 10,000 finished issues: one issue's own keys (record, queue, markers, live feed), copied
    // with DUMP/RESTORE under new names, measured by Redis's used_memory.
    const session1 = /session `([a-z0-9-]+)`/.exec(statusOf(1))?.[1];
    const ownKeys = finished.filter((r) => r.key.startsWith(`cldpd:issue:{${OWNER}.${REPO}-1}`) || r.key.startsWith(`cldpd:feed:${session1}`)).map((r) => r.key);
    const dumps = await Promise.all(ownKeys.map(async (key) => ({ key, dump: await redis.callBuffer('DUMP', key) })));
    const usedBeforeCopies = await usedMemory(redis);
    for (let i = 0; i < copies; i += 200) {
      const batch = redis.pipeline();
      for (let k = i; k < Math.min(copies, i + 200); k++) {
        for (const { key, dump } of dumps) batch.restore(key.replace(`${OWNER}.${REPO}-1}`, `${OWNER}.copy-${k}}`).replace(session1, `${session1}-copy-${k}`), 0, dump);
      }
      await batch.exec();
    }
    const usedCopies = (await usedMemory(redis)) - usedBeforeCopies;
    for await (const keys of redis.scanStream({ match: '*copy-*', count: 1000 })) if (keys.length > 0) await redis.del(...keys);

    // The worker asks GitHub whether each issue is still closed before it removes anything.
    for (let n = 1; n <= issues; n++) github.issueStates.set(`${OWNER}/${REPO}#${n}`, 'closed');
    for (let n = 1; n <= issues; n++) await deliver(port, 'issues', issuesEvent('closed', n));
    await until('every closed issue retired', async () => (await redis.keys(`cldpd:issue:{${OWNER}.${REPO}-*`)).length === 0, 120_000);
    await until('every live feed removed', async () => (await redis.keys('cldpd:feed:*')).length === 0, 30_000);
    const retired = await keyMemory(redis);
    const afterRetention = delta(retired);
    const jobs = retired.filter((r) => r.key.startsWith('bull:') && !baselineKeys.has(r.key));
    return {
      issues, turns, feedEntries, copies,
      perIssueBefore: Object.fromEntries(Object.entries(beforeRetention).map(([c, b]) => [c, b / issues])),
      perIssueAfter: Object.fromEntries(Object.entries(afterRetention).map(([c, b]) => [c, b / issues])),
      usedPerIssueFinished: (usedFinished - baselineUsed) / issues,
      ownKeysPerIssue: ownKeys.length,
      copiesBytes: usedCopies,
      jobKeysLeft: jobs.length,
    };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r)))));
    await github.close();
    await redis.flushdb().catch(() => undefined);
    redis.disconnect();
  }
}
