import { parseArgs } from 'node:util';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { loadConfig, requireGitHubApp, type Config } from '../config.js';
import { appAuth } from '../github/app-auth.js';
import { octokitComments } from '../github/comments-api.js';
import { StatusReporter } from '../github/status-reporter.js';
import type { RetireJob } from '../queue/contract.js';
import type { HostRecord } from '../queue/host-registry.js';
import { issueStores, type IssueStores } from '../queue/issue-stores.js';
import { controlQueue, hostQueue } from '../queue/names.js';
import { Producer } from '../queue/producer.js';
import { loadDotEnv } from './dot-env.js';
import { operatorRedis } from './operator-redis.js';
import { sharedWriteBudget } from './shared-write-budget.js';

const HELP = `Usage: cldpd hosts [--json]
       cldpd hosts forget <host>

hosts          the worker hosts Redis knows: when each was last seen, its issues and runs;
               a host whose worker runs but whose Docker engine does not answer is not
               seen, and said so
forget <host>  release a decommissioned host's issues: their queued runs are cancelled (and
               said so on their status comments), and the next label of each starts afresh
               on a live host. Refused while the host's worker still says it runs.

Reads .env like the other processes. Needs REDIS_URL or REDIS_SENTINELS (or a "cldpd up" of this machine, whose
own Redis it finds); forget also needs the GitHub App's APP_ID and PRIVATE_KEY, to write on
the issues. A forget that could not write on every issue says so; run it again to finish.`;

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** The `cldpd hosts` table: one line per host, then a line for each host not seen because its engine does not answer. */
export function hostRows(hosts: readonly HostRecord[], now: number): string[] {
  const rows = [['HOST', 'STATE', 'LAST SEEN', 'RUNNING', 'ISSUES'], ...hosts.map((h) => [
    h.hostId, h.alive ? 'alive' : 'not seen', h.lastSeen ? age(now - h.lastSeen) : 'never recorded', String(h.running),
    h.issues.length === 0 ? '-' : h.issues.length <= 3 ? h.issues.join(', ') : `${h.issues.slice(0, 3).join(', ')} and ${h.issues.length - 3} more`,
  ])];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  // Why a host whose worker still runs is not seen: its engine does not answer.
  const silent = hosts.filter((h) => h.engineSilentSince !== undefined).map((h) => `${h.hostId}: its worker runs, but its Docker engine does not answer: it stopped answering ${age(now - (h.engineSilentSince ?? now))}.`);
  return [...rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')), ...(silent.length > 0 ? ['', ...silent] : [])];
}

/**
 * `cldpd hosts` and `cldpd hosts forget <host>`: the operator's view of the worker hosts,
 * and the release of one that is gone for good. Resolves with the exit code.
 */
export async function runHosts(argv: readonly string[], env: NodeJS.ProcessEnv, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: { json: { type: 'boolean' }; help: { type: 'boolean'; short: 'h' } }; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: { json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
  } catch (err) {
    stderr.write(`cldpd hosts: ${(err as Error).message}\n${HELP}\n`);
    return 2;
  }
  const [action, hostId, ...extra] = parsed.positionals;
  if (parsed.values.help) {
    stdout.write(`${HELP}\n`);
    return 0;
  }
  if ((action !== undefined && action !== 'forget') || (action === 'forget' && (!hostId || extra.length > 0 || parsed.values.json))) {
    const problem = action !== 'forget' ? `unknown action "${action}"` : parsed.values.json ? 'forget takes no --json' : 'forget takes one host id';
    stderr.write(`cldpd hosts: ${problem}.\n${HELP}\n`);
    return 2;
  }
  loadDotEnv();
  let config: Config;
  let redis: Redis;
  try {
    config = loadConfig(env);
    ({ redis } = await operatorRedis(config));
  } catch (err) {
    stderr.write(`cldpd hosts: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const state = issueStores(redis);
    if (action === undefined) {
      const hosts = await state.hosts();
      if (parsed.values.json) {
        for (const h of hosts) {
          stdout.write(`${JSON.stringify({ ...h, lastSeen: h.lastSeen ? new Date(h.lastSeen).toISOString() : null, ...(h.engineSilentSince !== undefined ? { engineSilentSince: new Date(h.engineSilentSince).toISOString() } : {}) })}\n`);
        }
      }
      else stdout.write(hosts.length === 0 ? 'No worker host is known yet.\n' : `${hostRows(hosts, Date.now()).join('\n')}\n`);
      return 0;
    }
    return await forget(config, state, redis, hostId as string, stdout, stderr);
  } catch (err) {
    stderr.write(`cldpd hosts: ${(err as Error).message}\n`);
    return 1;
  } finally {
    redis.disconnect();
  }
}

async function forget(config: Config, state: IssueStores, redis: Redis, hostId: string, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  const host = (await state.hosts()).find((h) => h.hostId === hostId);
  const unreported = await state.releasedRuns(hostId);
  if (!host && unreported.length === 0) {
    stderr.write(`cldpd hosts: no host "${hostId}" is known. "cldpd hosts" lists them.\n`);
    return 1;
  }
  if (host?.alive) {
    stderr.write(`cldpd hosts: host "${hostId}" was seen ${host.lastSeen ? age(Date.now() - host.lastSeen) : 'recently'}: its worker still runs. Stop it first; a host is forgotten only once it is gone (not seen for ${Math.round(config.hostGoneMs / 1000)} s).\n`);
    return 1;
  }
  // Before anything changes: the app must be able to write on the issues.
  const { appId, privateKey } = requireGitHubApp(config, { webhookSecret: false });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const auth = appAuth({ appId, privateKey, baseUrl: config.github.baseUrl, logger });
  try {
    await (await auth.appOctokit()).request('GET /app');
  } catch (err) {
    stderr.write(`cldpd hosts: GitHub does not accept the app's credentials (${(err as Error).message}): nothing was changed. Check APP_ID and PRIVATE_KEY (.env).\n`);
    return 1;
  }
  if (host) {
    const released = await state.forgetHost(hostId, host.issues);
    const producer = new Producer(redis, state);
    try {
      // The host's slot order goes with it (its turns are never taken again).
      await state.dropPool(hostId);
      for (const issue of released) {
        // A start queued behind the host's runs is a new session: any live host takes it now.
        if (issue.kept > 0) await producer.drain(issue.issueKey, undefined, `forget-${hostId}`);
        stdout.write(`released ${issue.issueKey}${issue.sessionId ? ` (session ${issue.sessionId})` : ''}: ${issue.released === 0 ? 'nothing ran or waited there' : `${issue.released} run${issue.released === 1 ? '' : 's'} cancelled`}${issue.kept > 0 ? `, ${issue.kept} new session${issue.kept === 1 ? '' : 's'} left queued for a live host` : ''}\n`);
      }
      // The removals of closed issues scheduled on the host still have keys and feeds to remove: any worker takes them.
      const control = new Queue(controlQueue(hostId), { connection: redis });
      try {
        // An active one too: its worker is gone with the host.
        for (const job of await control.getJobs(['delayed', 'waiting', 'prioritized', 'active', 'failed'])) {
          if (job?.name === 'retire') await producer.retire(job.data as RetireJob, undefined, job.timestamp + (job.opts.delay ?? 0));
        }
      } finally {
        await control.close();
      }
    } finally {
      await producer.close();
    }
    // What was queued for the host itself is of no use any more, and would run should the id come back.
    for (const name of [hostQueue(hostId), controlQueue(hostId)]) {
      const queue = new Queue(name, { connection: redis });
      await queue.obliterate({ force: true }).catch((err: unknown) => stderr.write(`cldpd hosts: could not empty ${name} (${(err as Error).message})\n`));
      await queue.close();
    }
    stdout.write(`forgot host ${hostId}: ${released.length} issue${released.length === 1 ? '' : 's'} released; their next label or resume starts afresh on a live host.\n`);
  }
  // Each run it held is said cancelled on its issue, then dropped from the host's released list.
  const reporter = new StatusReporter({
    comments: octokitComments(auth.octokitFor),
    budget: sharedWriteBudget(redis, config, logger),
    intervalMs: config.statusIntervalMs,
    redactorFor: async () => (text) => text,
    logger,
    finalDeadlineMs: 60_000,
  });
  let failed = 0;
  for (const { command, reported } of await state.releasedRuns(hostId)) {
    try {
      await reporter.forRun(command).finish({
        kind: 'cancelled',
        sessionId: command.sessionId,
        message: `Cancelled: host \`${hostId}\`, where this issue's session was, is gone, and an operator released its issues (\`cldpd hosts forget\`); should it come back, its container is stopped. A label or \`/cldpd resume\` starts afresh on a live host.`,
      });
      await reported();
    } catch (err) {
      failed += 1;
      stderr.write(`cldpd hosts: could not write on ${command.issue.url} (${(err as Error).message})\n`);
    }
  }
  if (failed > 0) stderr.write(`cldpd hosts: ${failed} status comment${failed === 1 ? '' : 's'} not written; run "cldpd hosts forget ${hostId}" again to finish.\n`);
  return failed > 0 ? 1 : 0;
}
