import type { Logger } from 'pino';
import type { AgentSummary } from './agent-summary.js';
import { messageOf } from './errors.js';
import type { SessionEvent } from './events.js';
import type { GitHubAccess, RepoTokenSource } from './github-access.js';
import { gatewaySecretOf } from './egress.js';
import { LABELS } from './labels.js';
import { scanRun } from './log-scan.js';
import { loadPod, type Pod, type PodSource } from './pod.js';
import type { Runner } from './runner.js';
import type { Session, SessionOptions } from './session.js';
import { SessionLog } from './session-log.js';
import { isTakeover } from './session-takeover.js';
import type { SessionRecord, SessionStore } from './session-store.js';
import { RELEASE_FILE } from './setup-steps.js';

/** What {@link recoverRun} found of a session's current run. */
export type Recovery =
  /** The run never reached its container: start it (again). */
  | { readonly kind: 'none' }
  /**
   * The run is over; its terminal event is in the log. `agent` is what the agent said in the
   * run, from the log; `lastLines` its last plain output lines, oldest first.
   */
  | {
      readonly kind: 'finished';
      readonly terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }>;
      readonly agent: AgentSummary;
      readonly lastLines: readonly string[];
    }
  /** The run's container is there: this session continues it; `lastLines` is what was logged of it before. */
  | { readonly kind: 'attached'; readonly session: Session; readonly lastLines: readonly string[] };

/** How a run of a session goes, as the Dispatcher plans it: a start's, a resume's, or a re-attach. */
export type RunPlan = Pick<SessionOptions, 'build' | 'launch' | 'removeOnExit' | 'reattach' | 'prompt'>;

/** What recovering a run needs: the Dispatcher's runner, store and pods, and its way of running a session. */
export interface RecoveryContext {
  readonly runner: Runner;
  readonly store: SessionStore;
  readonly pods: PodSource;
  readonly logger?: Logger;
  /** Runs the session's run `run` by `plan`, as a start or resume does (its end recorded with {@link recordEnd}). */
  startRun(pod: Pod, record: SessionRecord, run: number, plan: RunPlan): Promise<Session>;
  /** The run's repository token when the pod asks for one; undefined when it does not or nobody can mint it. */
  githubAccess(pod: Pod, source: RepoTokenSource | undefined): Promise<GitHubAccess | undefined>;
}

/**
 * Finds where the session's latest run got to after the process that ran it went away,
 * and continues it when its container is still there: the output Docker kept is replayed,
 * minus the lines already in the log, and followed to the end. Never starts a container.
 * Throws `SessionNotFound` when this host has no such session.
 */
export async function recoverRun(context: RecoveryContext, sessionId: string, options: { readonly github?: RepoTokenSource } = {}): Promise<Recovery> {
  const { runner, store, logger } = context;
  const record = await store.load(sessionId);
  const run = record.runs;
  const logPath = store.logPath(sessionId);
  const state = await scanRun(logPath, run, {
    // The record's totals include the run once its end was recorded (same time as the log's).
    before: (terminal) => {
      const included = terminal !== undefined && record.last?.endedAt === terminal.at;
      return {
        costUsd: (record.costUsd ?? 0) - (included ? record.last?.costUsd ?? 0 : 0),
        turns: (record.turns ?? 0) - (included ? record.last?.turns ?? 0 : 0),
      };
    },
  });
  // A person's terminal (cldpd attach) is the session's, never a run's: not this run's to continue or end.
  let all = (await runner.list({ [LABELS.session]: sessionId })).filter((c) => !isTakeover(c));
  // A container that was created but never started (its process went away in between)
  // holds nothing: remove it and let the run start over.
  for (const c of all.filter((c) => c.state === 'created')) await runner.remove(c.id);
  all = all.filter((c) => c.state !== 'created');
  const containers = all.filter((c) => c.labels[LABELS.run] === String(run));
  const container = containers.sort((a, b) => b.createdAt - a.createdAt)[0];
  // A gateway lives as long as its run's container: one whose run is over goes (see closeGateway).
  const closeGateway = async (): Promise<void> => {
    if (!(await runner.list({ [LABELS.session]: sessionId })).some((c) => c.name === record.containerName)) {
      await runner.closeGateway(record.containerName).catch((err: unknown) => logger?.warn({ err: messageOf(err), session: sessionId }, 'could not remove the egress gateway of an ended run'));
    }
  };
  if (state.terminal) {
    for (const c of containers) if (c.state !== 'running') await runner.remove(c.id);
    await closeGateway();
    // The process went away between logging the end and recording it: record it now.
    if (record.last?.endedAt !== state.terminal.at) await recordEnd(store, sessionId, state.terminal, state.agent);
    return { kind: 'finished', terminal: state.terminal, agent: state.agent, lastLines: state.tail };
  }
  if (!container) {
    await closeGateway();
    if (!state.started) return { kind: 'none' };
    // Started, never finished, and gone: say so in the log rather than leave the run open.
    const execLost = all.some((c) => c.state === 'running');
    const message = execLost
      ? `Run ${run} of session ${sessionId} was executing inside the running container when its worker went away; an exec cannot be re-attached, so its outcome is unknown. The container is still running: "/cldpd resume" continues it, "/cldpd stop" ends it.`
      : `The container of session ${sessionId} (run ${run}) disappeared while nobody was watching it; its exit code is unknown.`;
    return endRun(store, sessionId, { type: 'error', at: Date.now(), code: 'ContainerFailed', message }, state);
  }
  if (container.state === 'running' && container.command?.includes(RELEASE_FILE) && !(await runner.hasFile(container.id, RELEASE_FILE))) {
    // Its setup steps were running here, as execs nobody can re-attach to; its agent waits
    // for a release that would skip what was left. End it; a resume runs the steps again.
    await runner.stop(container.id, 0);
    await runner.remove(container.id);
    await closeGateway();
    const message = `The worker went away while the setup steps of session ${sessionId} (run ${run}) were running, so the container was stopped before its agent started. Run it again to repeat them.`;
    return endRun(store, sessionId, { type: 'error', at: Date.now(), code: 'SetupFailed', message }, state);
  }
  const pod = await loadPod(context.pods, record.pod);
  const session = await context.startRun(pod, record, run, {
    removeOnExit: true,
    ...(state.started ? { reattach: { ...state.lines, agent: state.agent, log: state.log, blocked: state.blocked, ...(state.openLine ? { openLine: state.openLine } : {}) } } : {}),
    launch: async () => {
      const handle = await runner.attach(container.id);
      // Whoever kept its token fresh went away: a new one, where its git reads it, kept
      // fresh and hidden from here on. Without one the run goes on as it can.
      const access = container.state === 'running' ? await context.githubAccess(pod, options.github).catch((err: unknown) => {
        logger?.warn({ err: messageOf(err), session: sessionId }, 'could not give the re-attached run a new GitHub token');
        return undefined;
      }) : undefined;
      if (access) {
        await runner.writeFiles(container.id, access.files()).catch((err: unknown) => {
          logger?.warn({ err: messageOf(err), session: sessionId }, 'could not write the re-attached run\'s new GitHub token');
        });
      }
      // The token it was started with is in its environment (GH_TOKEN): hidden as well.
      const env = await runner.containerEnv(container.id).catch(() => ({} as Record<string, string>));
      const secrets = [env.GH_TOKEN, env.GITHUB_TOKEN, gatewaySecretOf(env)].filter((v): v is string => typeof v === 'string' && v.length >= 8);
      // Its gateway kept running meanwhile: the run goes on through it, and its refusals are read again.
      const gateway = await runner.findGateway(container.name);
      return { handle, containerName: container.name, exec: false, ...(access ? { access } : {}), secrets, ...(gateway ? { gateway: { name: container.name, containerId: gateway.containerId } } : {}) };
    },
  });
  return { kind: 'attached', session, lastLines: state.tail };
}

/** Ends a run nobody can follow any more: its terminal event logged and recorded. */
async function endRun(store: SessionStore, sessionId: string, terminal: Extract<SessionEvent, { type: 'error' }>, state: { agent: AgentSummary; tail: readonly string[] }): Promise<Recovery> {
  const log = await SessionLog.open(store.logPath(sessionId));
  await log.append([terminal]);
  await log.close();
  await recordEnd(store, sessionId, terminal, state.agent);
  return { kind: 'finished', terminal, agent: state.agent, lastLines: [...state.tail] };
}

/** Records a run's end and what it cost in the session's record. */
export async function recordEnd(store: SessionStore, sessionId: string, terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }>, agent: AgentSummary): Promise<void> {
  const { claudeSessionId, sessionCostUsd, sessionTurns, runCostUsd, runTurns } = agent;
  const spent = { ...(runCostUsd !== undefined ? { costUsd: runCostUsd } : {}), ...(runTurns !== undefined ? { turns: runTurns } : {}) };
  await store.update(sessionId, {
    ...(claudeSessionId ? { claudeSessionId } : {}),
    ...(sessionCostUsd !== undefined ? { costUsd: sessionCostUsd } : {}),
    ...(sessionTurns !== undefined ? { turns: sessionTurns } : {}),
    last: terminal.type === 'error'
      ? { error: terminal.message, endedAt: terminal.at, ...spent }
      : { exitCode: terminal.exitCode, reason: terminal.reason, endedAt: terminal.at, ...spent },
  });
}
