// 11. The conversation on a cached pod: time from a delivery to the agent's first event, for
// a label on a new issue (a session started) and for a review that carries `/cldpd resume`
// on the pull request of a finished session (the session resumed). The real `cldpd serve`
// and `cldpd worker` processes against the fake GitHub API (compiled from test/fakes with
// esbuild), real Docker and Redis; a busybox pod whose `claude` prints Claude Code's
// stream-json init line and an assistant line at once.
//
// "First agent event" is read from outside, the same way for both: the session's log file
// (<CLDPD_HOME>/sessions/<session>/log.jsonl), polled every 5 ms for the first new `output`
// event that carries agent text. The worker appends each event there before it passes it on;
// the live feed in Redis is written from the same events in 50 ms batches, so the log is the
// earliest place outside the worker that shows the event, and it carries the worker's own
// time of each event (`at`) besides, which splits the wait into its steps.
//
// Alone: `node bench/conversation.mjs [rounds]`; BENCH_LOG_LEVEL=debug logs the processes'
// GitHub requests, BENCH_KEEP=1 keeps their logs (serve.log, worker.log) in the temporary home.
import { execFileSync } from 'node:child_process';
import { createHmac, randomBytes, randomUUID } from 'node:crypto';
import { chmodSync, closeSync, existsSync, openSync, readSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Redis } from 'ioredis';
import { benchHome, busyboxPod, removeBenchHomes, stats } from './lib.mjs';
import { fakeGitHub, startServeAndWorker, until } from './processes.mjs';

const examples = createRequire(import.meta.url)('@octokit/webhooks-examples');
const EXAMPLES = examples.default ?? examples;
const REDIS_BASE = (process.env.CLDPD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379').replace(/\/\d*$/, '');
/** A database of this benchmark's own (emptied before and after). */
const REDIS_DB = 23;
const SECRET = 'bench-conversation';
const OWNER = 'acme';
const REPO = 'talks';
const INSTALLATION = 4747;
const POD = 'bench';
const POLL_MS = 5;

/**
 * Claude Code as far as cldpd sees it: `-p … --input-format stream-json` with the prompt on
 * standard input, `--resume <id>` to go on. It prints its init line and an assistant line at
 * once, then takes the prompt (replayed, as --replay-user-messages does) and ends with a result.
 */
const CLAUDE = `#!/bin/sh
resume=""
while [ $# -gt 0 ]; do
  case "$1" in
    --resume) resume="$2"; shift 2 ;;
    *) shift ;;
  esac
done
sid=\${resume:-bench-$CLDPD_SESSION_ID}
echo "{\\"type\\":\\"system\\",\\"subtype\\":\\"init\\",\\"session_id\\":\\"$sid\\",\\"model\\":\\"claude-bench\\"}"
echo '{"type":"assistant","message":{"id":"msg_bench","role":"assistant","model":"claude-bench","content":[{"type":"text","text":"Reading what was asked."}],"usage":{"input_tokens":10,"output_tokens":4}}}'
IFS= read -r line
printf '%s\\n' "$line" | sed 's/^{/{"isReplay":true,/'
echo '{"type":"result","subtype":"success","is_error":false,"result":"done","num_turns":1,"total_cost_usd":0.001,"duration_ms":5}'
`;

const on = (n) => `${OWNER}/${REPO}#${n}`;

function example(event, action) {
  const found = EXAMPLES.find((e) => e.name === event)?.examples.find((e) => e.action === action);
  if (!found) throw new Error(`@octokit/webhooks-examples has no ${event}.${action} payload`);
  const copy = structuredClone(found);
  copy.installation = { id: INSTALLATION, node_id: 'x' };
  Object.assign(copy.repository, { name: REPO, full_name: `${OWNER}/${REPO}`, html_url: `https://github.com/${OWNER}/${REPO}` });
  copy.repository.owner.login = OWNER;
  Object.assign(copy.sender, { login: 'alice', type: 'User' });
  return copy;
}

/** GitHub's `issues.labeled` example on issue `number`, labelled now. */
function labeledPayload(number, label) {
  const payload = example('issues', 'labeled');
  Object.assign(payload.issue, { number, html_url: `https://github.com/${OWNER}/${REPO}/issues/${number}`, title: `Issue ${number}`, body: 'Rename the widget.', updated_at: new Date().toISOString(), closed_at: null, state: 'open' });
  delete payload.issue.pull_request;
  payload.label = { ...payload.label, name: label };
  return payload;
}

/** GitHub's `pull_request_review.submitted` example: review `review` of same-repository pull request `pull` (head `head`), submitted now by alice. */
function reviewPayload(pull, head, review) {
  const payload = example('pull_request_review', 'submitted');
  const repoId = payload.repository.id;
  Object.assign(payload.pull_request, { number: pull, html_url: `https://github.com/${OWNER}/${REPO}/pull/${pull}`, title: `Pull ${pull}`, body: 'Closes an issue' });
  payload.pull_request.head = { ...payload.pull_request.head, ref: head, sha: 'f'.repeat(40), repo: { ...payload.repository, id: repoId } };
  payload.pull_request.base = { ...payload.pull_request.base, repo: { ...payload.repository, id: repoId } };
  Object.assign(payload.review, { id: review.id, body: review.body, state: review.state, submitted_at: new Date().toISOString(), user: { ...payload.review.user, login: 'alice', type: 'User' } });
  return payload;
}

/** Posts a signed delivery; resolves with the ms until the answer (which must be 2xx). */
async function deliver(port, event, payload, started) {
  const body = JSON.stringify(payload);
  const response = await fetch(`http://127.0.0.1:${port}/api/github/webhooks`, {
    method: 'POST', body,
    headers: { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': randomUUID(), 'user-agent': 'GitHub-Hookshot/bench', 'x-hub-signature-256': `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}` },
  });
  await response.text();
  const ms = performance.now() - started;
  if (response.status >= 300) throw new Error(`the server answered ${response.status} to ${event}`);
  return ms;
}


/**
 * Polls a session log from byte `from` until an `output` event carrying agent text appears.
 * `file()` names the log (undefined while it is not known yet). Resolves with the time it was
 * seen (performance.now()) and the events read up to it.
 */
function firstAgentText(file, from, timeoutMs = 60_000) {
  return new Promise((resolve, reject) => {
    const deadline = Date.now() + timeoutMs;
    let offset = from;
    let rest = '';
    const events = [];
    const tick = () => {
      try {
        const path = file();
        const size = path && existsSync(path) ? statSync(path).size : 0;
        if (size > offset) {
          const buffer = Buffer.alloc(size - offset);
          const fd = openSync(path, 'r');
          readSync(fd, buffer, 0, buffer.length, offset);
          closeSync(fd);
          offset = size;
          const lines = (rest + buffer.toString('utf8')).split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) {
            const event = JSON.parse(line);
            events.push(event);
            if (event.type === 'output' && event.agent?.some((a) => a.kind === 'text')) return resolve({ seen: performance.now(), events });
          }
        }
      } catch (err) {
        return reject(err);
      }
      if (Date.now() > deadline) return reject(new Error(`no agent text in ${file() ?? 'a new session log'} within ${timeoutMs} ms`));
      setTimeout(tick, POLL_MS);
    };
    tick();
  });
}

/** Jobs of BullMQ queue `queue` created at or after `since` (epoch ms): their times, earliest first. */
async function jobsSince(redis, queue, since) {
  const jobs = [];
  for await (const keys of redis.scanStream({ match: `bull:${queue}:*`, count: 1000 })) {
    for (const key of keys) {
      if ((await redis.type(key)) !== 'hash') continue;
      const [timestamp, processedOn, finishedOn] = (await redis.hmget(key, 'timestamp', 'processedOn', 'finishedOn')).map(Number);
      if (Number.isFinite(timestamp) && timestamp >= since) jobs.push({ key, timestamp, processedOn, finishedOn });
    }
  }
  return jobs.sort((a, b) => a.timestamp - b.timestamp);
}

/** Where the time from a delivery (sent at epoch ms `sent`) to the first agent text went, from the queues' job times and the log's own event times. */
async function steps(redis, hostId, sent, events) {
  const intake = (await jobsSince(redis, 'cldpd-intake', sent))[0];
  const runs = [...(await jobsSince(redis, 'cldpd-run', sent)), ...(await jobsSince(redis, `cldpd-host-${hostId}`, sent))].sort((a, b) => a.timestamp - b.timestamp);
  const run = runs[0];
  const at = (type) => events.find((e) => e.type === type)?.at;
  const text = events.find((e) => e.type === 'output' && e.agent?.some((a) => a.kind === 'text'))?.at;
  return {
    intakeTaken: intake?.processedOn ? intake.processedOn - sent : undefined,
    intakeDone: intake?.finishedOn ? intake.finishedOn - sent : undefined,
    runTaken: run?.processedOn ? run.processedOn - sent : undefined,
    containerStarted: at('container.started') !== undefined ? at('container.started') - sent : undefined,
    textAt: text !== undefined ? text - sent : undefined,
  };
}

/** The GitHub API requests made from `since` (an index into github.requests) until epoch ms `until`, as `METHOD route`. */
function apiCalls(github, since, sent, until) {
  return github.requests.slice(since).filter((r) => r.at <= until).map((r) => ({ at: r.at - sent, call: `${r.method} ${r.path.replace(/\/repos\/[^/]+\/[^/]+/, '/repos/:repo').replace(/\/\d+/g, '/:n')}` }));
}

/**
 * `runs` rounds, each a label on a new issue and a review resuming an issue whose session
 * finished, in alternating order, after one warm-up label that builds and caches the image.
 */
export async function benchConversation({ runs = 9 } = {}) {
  const redisUrl = `${REDIS_BASE}/${REDIS_DB}`;
  const redis = new Redis(redisUrl);
  const home = benchHome('cldpd-bench-conversation-');
  const hostId = `bench-conv-${randomBytes(4).toString('hex')}`;
  const sessionsDir = join(home, 'sessions');
  const github = await fakeGitHub();
  const children = [];
  try {
    await redis.flushdb();
    const podDir = busyboxPod(home, POD, { env: { IS_SANDBOX: '1' }, persist: ['~/.claude'], stopGraceSeconds: 2 }, 'COPY claude /bin/claude');
    writeFileSync(join(podDir, 'claude'), CLAUDE);
    chmodSync(join(podDir, 'claude'), 0o755);
    await github.start();
    github.roles.set('alice', 'write');
    const port = await startServeAndWorker({ home, github, redis, redisUrl, secret: SECRET, hostId, children, extra: { LOG_LEVEL: process.env.BENCH_LOG_LEVEL ?? 'warn' } });

    const statuses = (n) => github.commentsOn(on(n)).filter((c) => c.body.startsWith('<!-- cldpd:status'));
    const finished = (n) => statuses(n).filter((c) => /cldpd: (finished|failed|cancelled|stopped|timed out)/.test(c.body));
    const sessionOf = (n) => /session `([a-z0-9-]+)`/.exec(statuses(n)[0]?.body ?? '')?.[1];
    /** Waits for issue (or pull request) `n`'s run to end and its last status edit to land. */
    const settle = async (n) => {
      await until(`#${n} finished`, () => finished(n).length >= 1, 120_000);
      if (!/cldpd: finished/.test(finished(n).at(-1).body)) throw new Error(`#${n} did not finish: ${finished(n).at(-1).body.slice(0, 400)}`);
      await new Promise((r) => setTimeout(r, 1500));
    };

    /**
     * Waits until nothing but the delivery itself holds a measured run back: the
     * installation's write budget (40 a minute, a bucket of 20, shared in Redis) holds
     * `writes` again (a round writes faster than it refills), and 3 s have passed since the
     * last comment was created (the app's Octokit spaces writes that notify, such as a new
     * comment, 3 s apart in each process, and the intake posts its "queued" comment before it
     * queues the run). Resolves with the writes free.
     */
    const quiet = async (writes = 5) => {
      const tokens = async () => {
        const [held, last] = (await redis.hmget(`cldpd:github-writes:${INSTALLATION}`, 'tokens', 'last')).map(Number);
        return Number.isFinite(held) ? held + (Date.now() - last) * (40 / 60_000) : Infinity;
      };
      const lastPost = () => github.requests.findLast((r) => r.method === 'POST' && /\/comments$/.test(r.path))?.at ?? 0;
      await until('the write budget and the comment spacing', async () => (await tokens()) >= writes && Date.now() - lastPost() >= 3100, 60_000);
      return tokens();
    };

    let issue = 0;
    let nextId = 9000;
    /** A label on a new issue, measured; with `leadMs`, another issue is labelled that long before it (not measured). */
    const label = async (leadMs) => {
      const budget = await quiet();
      let lead;
      if (leadMs !== undefined) {
        lead = ++issue;
        const before = new Set(existsSync(sessionsDir) ? readdirSync(sessionsDir) : []);
        const sentLead = performance.now();
        await deliver(port, 'issues', labeledPayload(lead, `cldpd:${POD}`), sentLead);
        // Its session's directory first, so that the measured label's is told apart.
        await until('the leading session', () => existsSync(sessionsDir) && readdirSync(sessionsDir).some((d) => !d.startsWith('.') && !before.has(d)), 30_000);
        const left = leadMs - (performance.now() - sentLead);
        if (left < 0) throw new Error(`the leading session took ${leadMs - left} ms to appear, more than ${leadMs} ms`);
        await new Promise((r) => setTimeout(r, left));
      }
      const n = ++issue;
      const known = new Set(existsSync(sessionsDir) ? readdirSync(sessionsDir) : []);
      let found;
      const file = () => {
        if (!found && existsSync(sessionsDir)) found = readdirSync(sessionsDir).find((d) => !d.startsWith('.') && !known.has(d));
        return found ? join(sessionsDir, found, 'log.jsonl') : undefined;
      };
      const calls = github.requests.length;
      const sent = Date.now();
      const started = performance.now();
      const watching = firstAgentText(file, 0);
      const ack = await deliver(port, 'issues', labeledPayload(n, `cldpd:${POD}`), started);
      const { seen, events } = await watching;
      const first = seen - started;
      if (lead !== undefined) await settle(lead);
      await settle(n);
      if (sessionOf(n) !== found) throw new Error(`issue #${n}'s session is ${sessionOf(n)}, the log watched was ${found}`);
      return { n, budget, ack, first, steps: await steps(redis, hostId, sent, events), api: apiCalls(github, calls, sent, sent + first) };
    };
    const review = async (n) => {
      const session = sessionOf(n);
      const pull = 500 + n;
      const head = `cldpd/issue-${n}`;
      github.pullHeads.set(on(pull), { ref: head, sha: 'a'.repeat(40) });
      const id = nextId++;
      const body = 'Two things, then go on.\n\n/cldpd resume and fix both';
      github.reviews.set(`${on(pull)}/${id}`, { body, state: 'CHANGES_REQUESTED', user: 'alice' });
      github.reviewComments.push(
        { pull: on(pull), id: nextId++, reviewId: id, path: 'src/widget.ts', line: 12, startLine: 10, diffHunk: '@@ -8,5 +8,5 @@\n const a = 1;\n-const widgetName = w;\n+const widgetName = x;', body: 'Call it gizmo here.', user: 'alice' },
        { pull: on(pull), id: nextId++, reviewId: id, path: 'README.md', line: 4, diffHunk: '@@ -2,3 +2,3 @@\n # Widgets\n-old words\n+new words', body: 'And say so in the README.', user: 'alice' },
      );
      const log = join(sessionsDir, session, 'log.jsonl');
      const budget = await quiet();
      const calls = github.requests.length;
      const sent = Date.now();
      const started = performance.now();
      const watching = firstAgentText(() => log, statSync(log).size);
      const ack = await deliver(port, 'pull_request_review', reviewPayload(pull, head, { id, body, state: 'changes_requested' }), started);
      const { seen, events } = await watching;
      const first = seen - started;
      await settle(pull);
      if (!/resume 1/.test(finished(pull)[0].body) || !finished(pull)[0].body.includes(`session \`${session}\``)) throw new Error(`pull request #${pull} did not resume session ${session}: ${finished(pull)[0].body.slice(0, 400)}`);
      return { n, pull, budget, ack, first, steps: await steps(redis, hostId, sent, events), api: apiCalls(github, calls, sent, sent + first) };
    };

    // Warm-up: builds and caches the image, and leaves a finished session to resume.
    const warm = await label();
    let resumable = warm.n;
    const labels = [];
    const reviews = [];
    for (let r = 0; r < runs; r++) {
      const target = resumable;
      if (r % 2 === 0) {
        const a = await label();
        labels.push(a);
        reviews.push(await review(target));
        resumable = a.n;
      } else {
        reviews.push(await review(target));
        const a = await label();
        labels.push(a);
        resumable = a.n;
      }
      console.log(`  round ${r + 1}: label ${labels.at(-1).first.toFixed(0)} ms, review ${reviews.at(-1).first.toFixed(0)} ms`);
    }
    // Two issues labelled a second apart, as a busy repository sends them: the second's
    // "queued" comment waits for the first's (3 s apart in one process), and its run with it.
    const close = [];
    for (let r = 0; r < Math.max(3, Math.ceil(runs / 3)); r++) close.push(await label(1000));
    console.log(`  a second after another label: ${close.map((x) => x.first.toFixed(0)).join(', ')} ms`);
    const summary = (rows) => ({
      first: stats(rows.map((x) => x.first)),
      ack: stats(rows.map((x) => x.ack)),
      intakeTaken: stats(rows.map((x) => x.steps.intakeTaken).filter((x) => x !== undefined)),
      intakeDone: stats(rows.map((x) => x.steps.intakeDone).filter((x) => x !== undefined)),
      runTaken: stats(rows.map((x) => x.steps.runTaken).filter((x) => x !== undefined)),
      containerStarted: stats(rows.map((x) => x.steps.containerStarted).filter((x) => x !== undefined)),
      textAt: stats(rows.map((x) => x.steps.textAt).filter((x) => x !== undefined)),
      api: rows[0].api.filter((c) => !c.call.startsWith('PATCH')).map((c) => c.call),
      // When the permission check reached GitHub: after the review's reads on a review.
      permissionAt: stats(rows.map((x) => x.api.find((c) => c.call.includes('/collaborators/'))?.at).filter((x) => x !== undefined)),
      queuedCommentAt: stats(rows.map((x) => x.api.find((c) => c.call.startsWith('POST') && c.call.endsWith('/comments'))?.at).filter((x) => x !== undefined)),
      // The intake's own calls: the worker's status edits (PATCH) are coalesced and never hold a run.
      apiCounts: stats(rows.map((x) => x.api.filter((c) => !c.call.startsWith('PATCH')).length)),
    });
    return { runs, label: summary(labels), review: summary(reviews), close: summary(close), paired: stats(labels.map((x, i) => reviews[i].first - x.first)), rounds: { labels, reviews, close } };
  } finally {
    for (const child of children) child.kill('SIGTERM');
    await Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', r)))));
    await github.close();
    await redis.flushdb().catch(() => undefined);
    redis.disconnect();
    // The sessions' containers are gone with their runs; their persisted volumes stay: remove them.
    try {
      const volumes = execFileSync('docker', ['volume', 'ls', '-q', '--filter', `label=dev.cldpd.host=${hostId}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
      const containers = execFileSync('docker', ['ps', '-aq', '--filter', `label=dev.cldpd.host=${hostId}`], { encoding: 'utf8' }).split('\n').filter(Boolean);
      if (containers.length) execFileSync('docker', ['rm', '-f', ...containers], { stdio: 'ignore' });
      if (volumes.length) execFileSync('docker', ['volume', 'rm', ...volumes], { stdio: 'ignore' });
    } catch {
      // Left for `docker volume prune`.
    }
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  if (!process.env.BENCH_KEEP) process.on('exit', removeBenchHomes);
  console.log(JSON.stringify(await benchConversation({ runs: Number(process.argv[2] ?? 3) }), null, 2));
}
