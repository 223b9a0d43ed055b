import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { Probot } from 'probot';
import { ConfigError, loadConfig, requireGitHubApp, type Config } from '../config.js';
import { octokitComments, type OctokitLike } from '../github/comments-api.js';
import { StatusReporter } from '../github/status-reporter.js';
import { IssueState, type HostRecord } from '../queue/issue-state.js';
import { sharedWriteBudget } from './write-budget.js';

const HELP = `Usage: cldpd hosts [--json]
       cldpd hosts forget <host>

hosts          the worker hosts Redis knows: when each was last seen, its issues and runs
forget <host>  release a decommissioned host's issues: their queued runs are cancelled (and
               said so on their status comments), and the next label of each starts afresh
               on a live host. Refused while the host's worker still says it runs.

Needs REDIS_URL (or a "cldpd up" of this machine, whose own Redis it finds); forget also
needs the GitHub App's APP_ID and PRIVATE_KEY, to write on the issues.`;

/** The Redis the deployment shares: REDIS_URL, or the one `cldpd up` runs for this machine. */
function connect(config: Config): Redis {
  if (config.redisUrl) return new Redis(config.redisUrl, { maxRetriesPerRequest: 1, connectTimeout: 5000, lazyConnect: true });
  const socket = join(config.home, 'redis', 'redis.sock');
  if (existsSync(socket)) return new Redis({ path: socket, maxRetriesPerRequest: 1, lazyConnect: true });
  throw new ConfigError(`REDIS_URL is not set, and no "cldpd up" runs here (no ${socket}). Set REDIS_URL to the Redis the workers share.`);
}

function age(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 120) return `${s}s ago`;
  if (s < 7200) return `${Math.round(s / 60)}m ago`;
  if (s < 172_800) return `${Math.round(s / 3600)}h ago`;
  return `${Math.round(s / 86_400)}d ago`;
}

/** The `cldpd hosts` table: one line per host. */
export function hostRows(hosts: readonly HostRecord[], now: number): string[] {
  const rows = [['HOST', 'STATE', 'LAST SEEN', 'RUNNING', 'ISSUES'], ...hosts.map((h) => [
    h.hostId, h.alive ? 'alive' : 'not seen', h.lastSeen ? age(now - h.lastSeen) : 'never recorded', String(h.running),
    h.issues.length === 0 ? '-' : h.issues.length <= 3 ? h.issues.join(', ') : `${h.issues.slice(0, 3).join(', ')} and ${h.issues.length - 3} more`,
  ])];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length))) ?? [];
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  '));
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
  if ((action !== undefined && action !== 'forget') || (action === 'forget' && (!hostId || extra.length > 0))) {
    stderr.write(`cldpd hosts: ${action === 'forget' ? 'forget takes one host id' : `unknown action "${action}"`}.\n${HELP}\n`);
    return 2;
  }
  let config: Config;
  let redis: Redis;
  try {
    config = loadConfig(env);
    redis = connect(config);
    await redis.connect();
  } catch (err) {
    stderr.write(`cldpd hosts: ${(err as Error).message}\n`);
    return 1;
  }
  try {
    const state = new IssueState(redis);
    if (action === undefined) {
      const hosts = await state.hosts();
      if (parsed.values.json) for (const h of hosts) stdout.write(`${JSON.stringify({ ...h, lastSeen: h.lastSeen ? new Date(h.lastSeen).toISOString() : null })}\n`);
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

async function forget(config: Config, state: IssueState, redis: Redis, hostId: string, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream): Promise<number> {
  const host = (await state.hosts()).find((h) => h.hostId === hostId);
  if (!host) {
    stderr.write(`cldpd hosts: no host "${hostId}" is known. "cldpd hosts" lists them.\n`);
    return 1;
  }
  if (host.alive) {
    stderr.write(`cldpd hosts: host "${hostId}" was seen ${host.lastSeen ? age(Date.now() - host.lastSeen) : 'recently'}: its worker still runs. Stop it first; a host is forgotten only once it is gone (not seen for ${Math.round(config.hostGoneMs / 1000)} s).\n`);
    return 1;
  }
  // Before anything changes: the issues must be told what happened to their runs.
  const { appId, privateKey } = requireGitHubApp(config, { webhookSecret: false });
  const logger = pino({ level: 'warn' }, pino.destination(2));
  const app = new Probot({ appId, privateKey, log: logger, ...(config.github.baseUrl ? { baseUrl: config.github.baseUrl } : {}) });
  const reporter = new StatusReporter({
    comments: octokitComments(async (installationId) => (await app.auth(installationId)) as unknown as OctokitLike),
    budget: sharedWriteBudget(redis, config, logger),
    intervalMs: config.statusIntervalMs,
    redactorFor: async () => (text) => text,
    logger,
    finalDeadlineMs: 60_000,
  });
  const released = await state.forgetHost(hostId);
  let failed = 0;
  for (const issue of released) {
    for (const command of issue.commands) {
      await reporter.forRun(command).finish({
        kind: 'cancelled',
        sessionId: command.sessionId,
        message: `Cancelled: host \`${hostId}\`, where this issue's session was, is gone and an operator released its issues (\`cldpd hosts forget\`). Add the label \`cldpd:${command.pod}\` again to start afresh on a live host.`,
      }).catch((err: unknown) => {
        failed += 1;
        stderr.write(`cldpd hosts: could not write on ${command.issue.url} (${(err as Error).message})\n`);
      });
    }
    stdout.write(`released ${issue.issueKey}${issue.sessionId ? ` (session ${issue.sessionId})` : ''}: ${issue.commands.length === 0 ? 'nothing was queued' : `${issue.commands.length} run${issue.commands.length === 1 ? '' : 's'} cancelled`}\n`);
  }
  stdout.write(`forgot host ${hostId}: ${released.length} issue${released.length === 1 ? '' : 's'} released; their next label starts afresh on a live host.\n`);
  return failed > 0 ? 1 : 0;
}
