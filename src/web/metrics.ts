import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CommentWriteObserver } from '../github/comments-api.js';
import type { DeliveryOutcome } from '../github/webhook-receiver.js';
import type { BudgetObserver } from '../github/write-budget-policy.js';
import { within } from '../core/within.js';

/** How a run ended, as the metrics count it (see run-metrics.ts for how it is derived). */
export type RunEnd = 'finished' | 'failed' | 'cancelled' | 'delivered' | 'waiting' | 'stopped' | 'timeout';

/** What a finished run adds to the metrics. */
export interface FinishedRun {
  readonly pod: string;
  readonly end: RunEnd;
  /** From its container's start to its end; undefined when it never had a container. */
  readonly durationSeconds?: number;
  /** What the agent's run cost, in US dollars, as it reported it. */
  readonly costUsd?: number;
  /** Agent turns the run took. */
  readonly turns?: number;
}

/** The jobs of the queues a process watches, counted when the metrics are scraped. */
export type QueueDepthSource = () => Promise<ReadonlyArray<{ readonly queue: string; readonly waiting: number; readonly active: number; readonly delayed: number }>>;

/** What {@link createMetrics} needs. */
export interface MetricsOptions {
  /** Counts the queues for `cldpd_queue_jobs`; without it that gauge stays empty. */
  readonly queueDepths?: QueueDepthSource;
  /** How long a scrape waits for the queue counts before it leaves them out; default 2 s. */
  readonly queueTimeoutMs?: number;
}

/**
 * The Prometheus metrics of one cldpd process (`serve`, `worker`, or both in `up`), in a
 * registry of their own (never prom-client's global one, so any number can live side by
 * side). Recording never throws; label values are bounded (events outside the few GitHub
 * sends cldpd count as `other`).
 */
export interface CldpdMetrics {
  /** Everything below plus Node's process metrics: `registry.metrics()` is the /metrics body. */
  readonly registry: Registry;
  /** Counts comment writes sent to GitHub and writes the budget held back (pass to octokitComments and the write budget). */
  readonly github: CommentWriteObserver & BudgetObserver;
  /** Counts a request to the webhook path by its `X-GitHub-Event` and what became of it. */
  webhookDelivery(event: string, outcome: DeliveryOutcome): void;
  /** Counts a run whose container started, `timeToStartSeconds` after its command was queued. */
  runStarted(pod: string, timeToStartSeconds?: number): void;
  /** Counts a run's end, with its duration, cost and turns when known. */
  runFinished(run: FinishedRun): void;
  /** Counts `refusals` (default 1) of a run of `pod` by its egress gateway: connections to hosts its egress list does not allow. */
  egressBlocked(pod: string, refusals?: number): void;
  /** Reads the sessions `host` follows from `count` at each scrape; a second call for a host replaces the first. */
  countSessions(host: string, count: () => number): void;
}

/** The events cldpd is sent (app.yml) or may be: anything else is counted as `other`, so no sender can grow the label set. */
const KNOWN_EVENTS = new Set(['issues', 'issue_comment', 'pull_request_review', 'pull_request_review_comment', 'check_suite', 'ping', 'installation', 'installation_repositories']);

/** From a second to eight hours: agent runs last minutes to hours. */
const RUN_SECONDS = [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800];

/** From half a second (a free worker, a cached image) to two hours (a long queue). */
const START_SECONDS = [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800, 3600, 7200];

const QUEUE_STATES = ['waiting', 'active', 'delayed'] as const;

function quietly(record: () => void): void {
  try {
    record();
  } catch {
    // A metric that cannot be recorded never breaks what it measures.
  }
}

/** Creates the metrics of one process: see {@link CldpdMetrics}; `cldpd_*` names, no prefix. */
export function createMetrics(options: MetricsOptions = {}): CldpdMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const deliveries = new Counter({ name: 'cldpd_webhook_deliveries_total', help: 'Requests to the webhook path, by X-GitHub-Event and what became of them.', labelNames: ['event', 'outcome'] as const, registers });
  const { queueDepths, queueTimeoutMs = 2_000 } = options;
  new Gauge({
    name: 'cldpd_queue_jobs', help: 'Jobs of the queues this process watches, by state (counted when scraped; left out when Redis does not answer).', labelNames: ['queue', 'state'] as const, registers,
    async collect() {
      this.reset();
      if (!queueDepths) return;
      const depths = await within(queueTimeoutMs, queueDepths()).catch(() => []);
      for (const depth of depths) {
        for (const state of QUEUE_STATES) this.set({ queue: depth.queue, state }, depth[state]);
      }
    },
  });
  const started = new Counter({ name: 'cldpd_runs_started_total', help: 'Runs whose container started.', labelNames: ['pod'] as const, registers });
  const finished = new Counter({ name: 'cldpd_runs_finished_total', help: 'Runs that ended, by how: finished (exit code 0), failed, cancelled, delivered (went into the running agent), stopped, timeout.', labelNames: ['pod', 'outcome'] as const, registers });
  const duration = new Histogram({ name: 'cldpd_run_duration_seconds', help: 'From a run\'s container start to its end.', labelNames: ['pod', 'outcome'] as const, buckets: RUN_SECONDS, registers });
  const timeToStart = new Histogram({ name: 'cldpd_run_time_to_start_seconds', help: 'From a run\'s command being queued to its container start.', labelNames: ['pod'] as const, buckets: START_SECONDS, registers });
  const sessionSources = new Map<string, () => number>();
  new Gauge({
    name: 'cldpd_sessions_active', help: 'Runs this process\'s worker follows now, by host.', labelNames: ['host'] as const, registers,
    collect() {
      this.reset();
      for (const [host, count] of sessionSources) quietly(() => this.set({ host }, count()));
    },
  });
  const writes = new Counter({ name: 'cldpd_github_writes_total', help: 'Comment writes sent to GitHub: post or edit.', labelNames: ['kind'] as const, registers });
  const budgetWaits = new Counter({ name: 'cldpd_github_budget_waits_total', help: 'Writes the GitHub write budget held back: waited (a write that must land waited), skipped (a progress edit left out).', labelNames: ['kind'] as const, registers });
  const cost = new Counter({ name: 'cldpd_agent_cost_usd_total', help: 'What the agents\' runs cost, in US dollars, as they reported it.', labelNames: ['pod'] as const, registers });
  const turns = new Counter({ name: 'cldpd_agent_turns_total', help: 'Agent turns the runs took.', labelNames: ['pod'] as const, registers });
  // By pod only: the hosts are the container's to choose, so a label of them would grow without bound.
  const blocked = new Counter({ name: 'cldpd_egress_blocked_total', help: 'Connections the runs\' egress gateways refused: hosts the pod\'s egress list does not allow (which hosts: the run\'s status comment).', labelNames: ['pod'] as const, registers });

  return {
    registry,
    github: {
      write: (kind) => quietly(() => writes.inc({ kind })),
      budget: (kind) => quietly(() => budgetWaits.inc({ kind })),
    },
    webhookDelivery(event, outcome) {
      const known = event === '' ? 'none' : KNOWN_EVENTS.has(event) ? event : 'other';
      quietly(() => deliveries.inc({ event: known, outcome }));
    },
    runStarted(pod, timeToStartSeconds) {
      quietly(() => {
        started.inc({ pod });
        if (timeToStartSeconds !== undefined && Number.isFinite(timeToStartSeconds)) timeToStart.observe({ pod }, Math.max(0, timeToStartSeconds));
      });
    },
    runFinished(run) {
      quietly(() => {
        finished.inc({ pod: run.pod, outcome: run.end });
        if (run.durationSeconds !== undefined && Number.isFinite(run.durationSeconds)) duration.observe({ pod: run.pod, outcome: run.end }, Math.max(0, run.durationSeconds));
        if (run.costUsd !== undefined && Number.isFinite(run.costUsd) && run.costUsd > 0) cost.inc({ pod: run.pod }, run.costUsd);
        if (run.turns !== undefined && Number.isFinite(run.turns) && run.turns > 0) turns.inc({ pod: run.pod }, run.turns);
      });
    },
    egressBlocked(pod, refusals = 1) {
      if (Number.isFinite(refusals) && refusals > 0) quietly(() => blocked.inc({ pod }, refusals));
    },
    countSessions(host, count) {
      sessionSources.set(host, count);
    },
  };
}
