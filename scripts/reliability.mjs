#!/usr/bin/env node
// Runs the fault, abuse, security and property tests against the real Docker engine and
// Redis, and writes RELIABILITY.md: one row per scenario, what was checked, the result and
// the figures of this run. Usage: npm run reliability (needs dockerd and redis-server, as
// bash .ci/run or scripts/setup.sh start them).
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';

const FILES = [
  'test/faults', 'test/abuse', 'test/property', 'test/e2e/abuse.test.ts', 'test/e2e/app.test.ts',
  'test/integration/docker-session.test.ts', 'test/integration/queue.test.ts',
];

/** [scenario, what was checked, file part, test title pattern] */
const ROWS = [
  ['1. Worker SIGKILLed mid-run, restarted', 'the job is taken up again and re-attaches; log = what the container printed (each line once, in order); one container; none left; one final comment', 'faults.test', /^1\./],
  ['1. (end to end, separate server and worker)', 'same invariants through serve + worker processes', 'app.test', /a worker killed mid-run/],
  ['2. Worker killed while building', 'the build starts over; one container; one final comment; lines complete', 'faults.test', /^2a\./],
  ['2. Worker killed while stopping (container ignores SIGTERM)', 'the stop still ends in SIGKILL; reported once; container removed; lines complete', 'faults.test', /^2b\./],
  ['2. Worker killed between two runs of one issue', 'the second run runs once, the first is not repeated; two final comments', 'faults.test', /^2c\./],
  ['7. Container exits while no worker is attached', 'the restarted worker reads the end from Docker\'s log; lines complete; one final comment', 'faults.test', /^2d\./],
  ['3. Redis restarted mid-run (AOF on)', 'no job lost; server and worker reconnect by themselves; both issues finish intact', 'faults.test', /^3\./],
  ['4. Docker engine unavailable at job time', 'a clear error in the status comment; the job does not hang', 'faults.test', /^4a\./],
  ['4. Docker engine stops answering mid-run', 'a clear error at once; when it answers again the leftover container is removed; logged lines whole and in order', 'faults.test', /^4b\./],
  ['5. GitHub API answering 403 and 429 (retry-after) and 500s', 'the final comment still arrives, once', 'app.test', /403 and 429 secondary limits/],
  ['6. Same webhook redelivered 10 times', 'one intake job; one run; one status comment', 'app.test', /a delivery sent 10 times/],
  ['6. Same webhook redelivered 10 times (queue level)', 'one intake job in Redis', 'queue.test', /delivered 10 times/],
  ['6. Same delivery to two server processes at once', 'one run; one status comment', 'faults.test', /^6\./],
  ['7. Container that ignores SIGTERM', 'stop is idempotent; SIGKILL after the grace period (exit 137)', 'docker-session.test', /ignores SIGTERM/],
  ['7. Container printing 1 GB', 'every line arrives in order and is in the log file', 'output.test', /^7b\./],
  ['7. A 10 MB line with no newline; a line that never ends', 'kept whole in 1 MiB pieces, all but the last marked partial', 'output.test', /^7c\./],
  ['8. Bad pod names, pods and pod.json at the terminal', 'exit code and a message naming the problem; nothing reaches Docker', 'cli-bad-input.test', /./],
  ['9. Bad webhooks and commands (signatures, missing fields, PRs, non-collaborators, bots, the app, 1 MB comments, code blocks, quotes, hidden carriers)', 'rejected, ignored quietly, or one clear reply, as each deserves; the server keeps serving', 'e2e/abuse.test', /^(?!hidden|resume after)/],
  ['9. Prompt-injection carriers in the issue', 'hidden HTML, bidi, zero-width characters and image alt text never reach the agent', 'e2e/abuse.test', /^hidden HTML/],
  ['10. /cldpd resume after /cldpd stop, twice at once', 'the session continues; the two resumes run one after the other, each reported once', 'e2e/abuse.test', /^resume after stop/],
  ['11. Secrets injected through env / inheritEnv', 'absent from every request to GitHub and from the server and worker logs, even when the container prints them', 'app.test', /never shows the values of env/],
  ['12. Container limits and no-new-privileges', 'Init, memory, CPU, pids limits and no-new-privileges on the container', 'docker-session.test', /limits, an init and no-new-privileges/],
  ['12. The server never opens the Docker socket', 'the server\'s DOCKER_HOST is a canary socket that saw no connection during the end-to-end run', 'app.test', /never opens the Docker socket/],
  ['Property tests', 'thousands of generated inputs per property: no throw; invariants (no hidden carrier survives sanitising, commands never fire from code or quotes, pieces independent of chunking, comment < 65,536 chars with no injected secret)', 'property', /./],
];

const out = '.reliability-results.json';
const started = Date.now();
const run = spawnSync('npx', ['vitest', 'run', ...FILES, '--reporter=default', '--reporter=json', `--outputFile.json=${out}`], {
  stdio: 'inherit', env: { ...process.env, CI: 'true' },
});
const seconds = Math.round((Date.now() - started) / 1000);
const report = JSON.parse(readFileSync(out, 'utf8'));

const tests = report.testResults.flatMap((file) => file.assertionResults.map((a) => ({ file: file.name, title: a.title, status: a.status, ms: a.duration ?? 0 })));
const version = (cmd, args) => {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim().split('\n')[0];
  } catch {
    return 'unknown';
  }
};

const lines = [
  '# Reliability',
  '',
  'What the fault, abuse, security and property suites check, and how the last run went.',
  'Every scenario runs against real processes, a real Redis and a real Docker engine (the',
  'GitHub API is a local fake reached through GHE_HOST). Regenerate with `npm run reliability`.',
  '',
  `Last run: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC · ${os.cpus().length} cores, ${Math.round(os.totalmem() / 2 ** 30)} GiB · Node ${process.version} · ${version('docker', ['version', '--format', 'Docker {{.Server.Version}}'])} · Redis ${/v=(\S+)/.exec(version('redis-server', ['--version']))?.[1] ?? 'unknown'}`,
  `Tests: ${report.numPassedTests} passed, ${report.numFailedTests} failed, ${report.numPendingTests + (report.numTodoTests ?? 0)} skipped, in ${seconds} s.`,
  '',
  '| scenario | what was checked | result | tests | time |',
  '|---|---|---|---|---|',
];
let unmatched = 0;
for (const [scenario, checked, filePart, pattern] of ROWS) {
  const mine = tests.filter((t) => t.file.includes(filePart) && pattern.test(t.title));
  if (mine.length === 0) unmatched += 1;
  const failed = mine.filter((t) => t.status === 'failed').length;
  const passed = mine.filter((t) => t.status === 'passed').length;
  const result = mine.length === 0 ? 'not run' : failed > 0 ? `**FAILED** (${failed})` : passed === mine.length ? 'passed' : `${passed}/${mine.length} passed`;
  const ms = mine.reduce((sum, t) => sum + t.ms, 0);
  lines.push(`| ${scenario} | ${checked} | ${result} | ${mine.length} | ${(ms / 1000).toFixed(1)} s |`);
}
lines.push('', 'Known limits, by design:', '',
  '- A resume that runs as an exec inside a still-running container (pods whose command takes the prompt in argv) cannot be re-attached after its worker dies (Docker keeps no log of an exec): its run ends with an error that says so and how to continue.',
  '- A worker that dies closes the running agent\'s input (the container\'s stdin is attached once): the agent finishes what it was given and its run ends there; resumes sent into it that it had not taken, and later ones, run as resumes of their own in a new container.',
  '- When the Docker engine stops answering mid-run, the run is reported failed at once; lines the container printed after that are not added to the session log (the run\'s end is already on record), and the container is stopped and removed when the engine answers again.',
  '');
writeFileSync('RELIABILITY.md', lines.join('\n'));
console.log(`RELIABILITY.md written: ${report.numPassedTests} passed, ${report.numFailedTests} failed${unmatched ? `, ${unmatched} rows matched no test` : ''}`);
process.exit(run.status === 0 && unmatched === 0 ? 0 : 1);
