import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { requireGitHubApp, type Config } from '../config.js';
import { feedStore, linkSigner } from './session-pages.js';
import { sharedWriteBudget } from './shared-write-budget.js';
import { Dispatcher, DockerRunner, HostInventory, SessionStore, containerEnvValues, createRedactor, hideHostPaths, issueBranch, loadPod, modelCredential } from '../core/index.js';
import { within } from '../core/within.js';
import { dockerClient } from './docker-engine.js';
import { appAuth } from '../github/app-auth.js';
import { octokitComments } from '../github/comments-api.js';
import { FeedWriter } from '../web/feed-writer.js';
import { issueLookup } from '../github/issue-lookup.js';
import { PullOpener } from '../github/pull-opener.js';
import { repoEgressSource } from '../github/repo-settings.js';
import { repoTokenSource } from '../github/repo-tokens.js';
import { StatusReporter } from '../github/status-reporter.js';
import type { RunCommand } from '../queue/contract.js';
import { issueStores } from '../queue/issue-stores.js';
import { Producer } from '../queue/producer.js';
import { allReporters } from '../queue/reporters.js';
import { RunHeads } from '../queue/run-heads.js';
import { RunWorker } from '../queue/run-worker.js';
import { UsageLimits } from '../queue/usage-counters.js';
import { UsageReporter } from '../queue/usage-reporter.js';
import type { CldpdMetrics } from '../web/metrics.js';
import type { ReadinessCheck } from '../web/operations.js';
import { RunMetrics } from '../web/run-metrics.js';

/** A running `cldpd worker`. */
export interface RunningWorker {
  /** What /readyz asks of this worker besides Redis: that its Docker engine answers. */
  readonly checks: readonly ReadinessCheck[];
  close(): Promise<void>;
}

/** Where the worker counts what it does. */
export interface WorkerExtras {
  /** Counts runs, their agents' cost and turns, this host's sessions and the GitHub writes. */
  readonly metrics?: CldpdMetrics;
}

/**
 * `cldpd worker`: the runs of this Docker host. Checks the engine first, then adopts what
 * a previous worker left running and starts taking jobs.
 */
export async function startWorker(config: Config, logger: Logger, redis: Redis, hostEnv: Readonly<Record<string, string | undefined>>, extras: WorkerExtras = {}): Promise<RunningWorker> {
  const { metrics } = extras;
  const { appId, privateKey } = requireGitHubApp(config, { webhookSecret: false });
  const docker = dockerClient(config.engine, config.userHome);
  const runner = new DockerRunner(docker, { gatewayPool: config.egressSubnets });
  const engine = await runner.preflight();
  logger.info({ engine: engine.version, kind: engine.kind, rootless: engine.rootless, host: config.hostId }, `${engine.kind === 'podman' ? 'Podman' : 'Docker'} engine ready`);
  for (const lack of engine.lacks ?? []) logger.warn({ host: config.hostId }, lack);
  const pods = { podsDir: config.podsDir, homeDir: config.userHome };
  const store = new SessionStore(config.sessionsDir);
  const dispatcher = new Dispatcher({ runner, pods, store, hostId: config.hostId, hostEnv, logger, maxLogBytesPerRun: config.runLogMaxBytes, gateways: config.gateways });
  const inventory = new HostInventory({ runner, store, hostId: config.hostId });
  const auth = appAuth({ appId, privateKey, baseUrl: config.github.baseUrl, logger });
  const { octokitFor } = auth;
  // The same redaction for the status comments and the live page: what leaves the host.
  const redactorFor = async (pod: string): Promise<(text: string) => string> => {
    const own = [privateKey, config.github.webhookSecret ?? ''];
    const values = await containerEnvValues(pods, pod, hostEnv).catch((err: unknown) => {
      logger.warn({ err, pod }, 'could not read the values injected into this pod; hiding cldpd\'s own secrets and token shapes only');
      return [];
    });
    const redact = createRedactor([...values, ...own]);
    return (text) => hideHostPaths(redact(text), config);
  };
  const links = linkSigner(config, privateKey);
  const liveLink = (sessionId: string): string => links.link(sessionId, Date.now() + config.live.keepSeconds * 1000);
  const reporter = new StatusReporter({
    comments: octokitComments(octokitFor, metrics?.github),
    budget: sharedWriteBudget(redis, config, logger, metrics?.github),
    intervalMs: config.statusIntervalMs,
    hostId: config.hostId,
    redactorFor,
    liveLink,
    logger: logger.child({ name: 'reporter' }),
  });
  const state = issueStores(redis);
  const producer = new Producer(redis, state);
  const runHeads = new RunHeads(redis);
  const ghHost = config.github.baseUrl ? new URL(config.github.baseUrl).host : undefined;
  const github = (command: RunCommand) => repoTokenSource({
    appOctokit: auth.appOctokit,
    installationOctokit: () => octokitFor(command.issue.installationId),
    // Authenticated with the run's token alone, which is what revokes it.
    tokenOctokit: auth.tokenOctokit,
    installationId: command.issue.installationId, owner: command.issue.owner, repo: command.issue.repo,
    branch: issueBranch(command.issue), ...(ghHost ? { ghHost } : {}),
    headsBefore: { keep: (heads) => runHeads.keepHeadsBefore(command.issueKey, command.seq, heads), load: () => runHeads.headsBefore(command.issueKey, command.seq) },
  });
  // After a run that pushed: its pull request, opened with the installation's own token.
  const pulls = new PullOpener({
    octokitFor, links: state, redactorFor, liveLink, logger: logger.child({ name: 'pull-opener' }),
    podPermissions: async (pod) => (await loadPod(pods, pod)).config.github,
  });
  // The status comment first: only it may fail a run's finish. Side reports follow it.
  const feed = new FeedWriter({ store: feedStore(redis, config), redactorFor, hostId: config.hostId, logger: logger.child({ name: 'live-feed' }) });
  const usage = new UsageReporter(new UsageLimits(redis), logger.child({ name: 'usage' }));
  const reporters = allReporters(reporter, feed, usage, ...(metrics ? [new RunMetrics(metrics)] : []));
  const worker = new RunWorker({ connection: redis, hostId: config.hostId, concurrency: config.concurrency, lockTtlMs: config.jobLockMs, reconcileMs: config.reconcileMs, hostGoneMs: config.hostGoneMs, dispatcher, inventory,
    feed: feedStore(redis, config),
    issueOnGitHub: issueLookup(octokitFor),
    providerLimits: { ...config.providerWaits, credentialOf: (command) => modelCredential(pods, command.pod, hostEnv) }, state, producer, reporter: reporters, positions: reporter, github, pulls,
    // Read before each run: the repository's .github/cldpd.yml may narrow its pod's egress.
    egress: repoEgressSource(octokitFor),
    // Bounded: an engine that hangs is one that does not answer.
    engineAnswers: () => within(Math.max(1000, Math.min(10_000, Math.floor(config.hostGoneMs / 3))), docker.ping(), () => new Error('the Docker engine did not answer a ping in time')).then(() => undefined),
    logger: logger.child({ name: 'worker' }) });
  metrics?.countSessions(config.hostId, () => worker.activeRuns);
  await worker.start();
  return {
    checks: [{ name: 'docker', check: () => runner.preflight() }],
    close: async () => {
      await worker.close();
      await producer.close();
    },
  };
}
