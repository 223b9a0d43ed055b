import Docker from 'dockerode';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { Probot } from 'probot';
import { requireGitHubApp, type Config } from '../config.js';
import { containerEnvValues } from './secrets.js';
import { sharedWriteBudget } from './write-budget.js';
import { Dispatcher, DockerRunner, SessionStore, issueBranch } from '../core/index.js';
import { octokitComments, type OctokitLike } from '../github/comments-api.js';
import { createRedactor } from '../github/redact.js';
import { repoTokenSource } from '../github/repo-tokens.js';
import { StatusReporter } from '../github/status-reporter.js';
import type { RunCommand } from '../queue/contract.js';
import { IssueState } from '../queue/issue-state.js';
import { Producer } from '../queue/producer.js';
import { RunWorker } from '../queue/run-worker.js';

/** A running `cldpd worker`. */
export interface RunningWorker {
  close(): Promise<void>;
}

/**
 * `cldpd worker`: the runs of this Docker host. Checks the engine first, then adopts what
 * a previous worker left running and starts taking jobs.
 */
export async function startWorker(config: Config, logger: Logger, redis: Redis, hostEnv: Readonly<Record<string, string | undefined>>): Promise<RunningWorker> {
  const { appId, privateKey } = requireGitHubApp(config, { webhookSecret: false });
  const runner = new DockerRunner(new Docker());
  const engine = await runner.preflight();
  logger.info({ engine: engine.version, host: config.hostId }, 'Docker engine ready');
  const pods = { podsDir: config.podsDir, homeDir: config.userHome };
  const dispatcher = new Dispatcher({ runner, pods, store: new SessionStore(config.sessionsDir), hostId: config.hostId, hostEnv, logger });
  const app = new Probot({ appId, privateKey, log: logger, ...(config.github.baseUrl ? { baseUrl: config.github.baseUrl } : {}) });
  const octokitFor = async (installationId: number) => (await app.auth(installationId)) as unknown as OctokitLike;
  const reporter = new StatusReporter({
    comments: octokitComments(octokitFor),
    budget: sharedWriteBudget(redis, config, logger),
    intervalMs: config.statusIntervalMs,
    hostId: config.hostId,
    redactorFor: async (pod) => {
      const own = [privateKey, config.github.webhookSecret ?? ''];
      const values = await containerEnvValues(pods, pod, hostEnv).catch((err: unknown) => {
        logger.warn({ err, pod }, 'could not read the values injected into this pod; hiding cldpd\'s own secrets and token shapes only');
        return [];
      });
      const redact = createRedactor([...values, ...own]);
      return (text) => hideHostPaths(redact(text), config);
    },
    logger: logger.child({ name: 'reporter' }),
  });
  const state = new IssueState(redis);
  const producer = new Producer(redis, state);
  const ghHost = config.github.baseUrl ? new URL(config.github.baseUrl).host : undefined;
  const github = (command: RunCommand) => repoTokenSource({
    appOctokit: async () => (await app.auth()) as unknown as OctokitLike,
    installationOctokit: () => octokitFor(command.issue.installationId),
    installationId: command.issue.installationId, owner: command.issue.owner, repo: command.issue.repo,
    branch: issueBranch(command.issue), ...(ghHost ? { ghHost } : {}),
  });
  const worker = new RunWorker({ connection: redis, hostId: config.hostId, concurrency: config.concurrency, lockTtlMs: config.jobLockMs, reconcileMs: config.reconcileMs, dispatcher, state, producer, reporter, positions: reporter, github, logger: logger.child({ name: 'worker' }) });
  await worker.start();
  return {
    close: async () => {
      await worker.close();
      await producer.close();
    },
  };
}

/**
 * Error messages name files of this host (the pods folder, cldpd's home) so the operator
 * at the terminal can act on them; on an issue anyone can read they become placeholders.
 */
export function hideHostPaths(text: string, places: Pick<Config, 'podsDir' | 'home' | 'userHome'>): string {
  let result = text;
  for (const [path, name] of [[places.podsDir, '<pods>'], [places.home, '<cldpd home>'], [places.userHome, '~']] as const) {
    if (path.length > 1) result = result.split(path).join(name);
  }
  return result;
}
