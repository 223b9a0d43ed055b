import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentSummary } from './agent-summary.js';
import { buildContainerSpec, containerEnv, imageHome, persistedVolumes, volumeLabels } from './container-spec.js';
import { CldpdError, messageOf } from './errors.js';
import { LABELS } from './labels.js';
import { scanRun } from './log-scan.js';
import { SessionLog } from './session-log.js';
import { loadPod, type Pod, type PodSource } from './pod.js';
import { buildStartPrompt, checkPromptSize, issueVolumeKey, parseIssueUrl, promptChannel, renderCommand, type IssueRef, type PromptChannel } from './prompt.js';
import { RELEASE_FILE, holdCommand, setupSteps, type SetupStep } from './setup-steps.js';
import { claudeEnv, rootProblem, runsAsRoot } from './claude-pod.js';
import type { SessionEvent } from './events.js';
import { GitHubAccess, type RepoTokenSource } from './github-access.js';
import type { ContainerInfo, ContainerSpec, ImageInfo, ProcessHandle, Runner, VolumeInfo } from './runner.js';
import { Session, type Launched, type SessionOptions } from './session.js';
import { SESSION_SUFFIX_HEX, isSessionId, type PersistedVolume, type SessionRecord, type SessionStore } from './session-store.js';

/** What the Dispatcher needs; the composition root builds the real ones. */
export interface DispatcherOptions {
  readonly runner: Runner;
  readonly pods: PodSource;
  readonly store: SessionStore;
  /** Names this Docker host in labels, so sessions can be found again after a restart. */
  readonly hostId: string;
  /** The host environment, read only for the pods' inheritEnv names. */
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** Eight hex characters; random by default. */
  readonly newSuffix?: () => string;
  /** Bytes each run may write to its session's log (past it, output is counted, not kept); unbounded when absent. */
  readonly maxLogBytesPerRun?: number;
}

/** What to start a session on: an issue URL, a prompt, or both. */
export interface StartInput {
  readonly issueUrl?: string | undefined;
  readonly prompt?: string | undefined;
}

/** Options of {@link Dispatcher.start}. */
export interface StartOptions {
  /**
   * Use this id (`<pod>-<16 hex>`) instead of a random one: lets a retried job find its session
   * again, so a record of that id is taken over. Whoever chooses it keeps it unique (the queue
   * claims it in Redis for its issue).
   */
  readonly sessionId?: string;
  /**
   * Mints tokens for the issue's repository, for a pod whose pod.json asks for `github`
   * permissions. Without it such a pod runs with no token (a warning says so).
   */
  readonly github?: RepoTokenSource;
}

/** Options of {@link Dispatcher.resume}. */
export interface ResumeOptions {
  /** As {@link StartOptions.github}: each run gets a fresh token. */
  readonly github?: RepoTokenSource;
}

/** What {@link Dispatcher.recover} found of a session's current run. */
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

/** A session container as found on the Docker host. */
export interface SessionContainer {
  readonly sessionId: string;
  readonly pod: string;
  readonly issueUrl: string | undefined;
  readonly container: ContainerInfo;
}

/** A persisted volume of this host, as `cldpd volumes` lists it. */
export interface VolumeRow {
  readonly name: string;
  readonly pod: string;
  /** The issue whose sessions share it; undefined for a volume of one session alone (see `sessionId`). */
  readonly issueUrl: string | undefined;
  /** The session that created it (its label): the volume's owner when it belongs to no issue. */
  readonly sessionId: string;
  /** Sessions of this host whose records say they used it, newest first. */
  readonly sessions: readonly string[];
  /** Where the session's container mounts it. */
  readonly path: string;
  /** Bytes it holds; undefined when the engine does not report it. */
  readonly sizeBytes: number | undefined;
  /** Epoch ms; undefined when the engine does not say. */
  readonly createdAt: number | undefined;
  /** Whether a running container of this host mounts it. */
  readonly inUse: boolean;
}

/** A volume {@link Dispatcher.removeVolumes} removed, or found already gone. */
export interface RemovedVolume {
  readonly name: string;
  /** Where sessions mounted it; undefined when that is not known (a volume already gone). */
  readonly path: string | undefined;
  /** False when there was no such volume: removed before, which is as good. */
  readonly existed: boolean;
  /**
   * The other sessions that used it (all finished, or it would have been refused): what
   * they persisted there went with it. For a volume named directly, every session that used it.
   */
  readonly sharedWith: readonly string[];
}

/** A volume {@link Dispatcher.removeVolumes} kept: why, and what to do about it. */
export interface RefusedVolume {
  readonly name: string;
  readonly path: string | undefined;
  readonly reason: string;
}

/** What {@link Dispatcher.removeVolumes} did, volume by volume. */
/** One session removeSessions removed (or, in a dry run, would remove). */
export interface RemovedSession {
  readonly sessionId: string;
  readonly issueUrl: string | undefined;
  readonly containers: number;
  readonly volumes: readonly string[];
  /** What it freed: its record and log, and its volumes' sizes as the engine reports them. */
  readonly bytes: number;
  /** When it last changed (its record), if it has one. */
  readonly lastActive: number | undefined;
}

/** What removeSessions did: the sessions removed, and those kept with why. */
export interface SessionRemoval {
  readonly removed: readonly RemovedSession[];
  readonly kept: ReadonlyArray<{ readonly sessionId: string; readonly reason: string }>;
}

export interface VolumeRemoval {
  readonly removed: readonly RemovedVolume[];
  readonly refused: readonly RefusedVolume[];
}

/** Labels every persisted volume cldpd creates carries (see volumeLabels): what tells it from a foreign one. */
const PERSISTED_VOLUME = Object.freeze({ [LABELS.path]: undefined, [LABELS.pod]: undefined, [LABELS.session]: undefined });

function isCldpdVolume(volume: VolumeInfo): boolean {
  return Object.keys(PERSISTED_VOLUME).every((label) => Boolean(volume.labels[label]));
}

/** What removing volumes needs to know once: who used each volume, and what runs now. */
interface RemovalContext {
  readonly sessions: ReadonlyMap<string, readonly string[]>;
  readonly running: readonly ContainerInfo[];
}

/** What happened to one volume. */
type VolumeOutcome = { readonly removed: RemovedVolume } | { readonly refused: RefusedVolume };

function removal(outcomes: readonly VolumeOutcome[]): VolumeRemoval {
  return {
    removed: outcomes.flatMap((o) => ('removed' in o ? [o.removed] : [])),
    refused: outcomes.flatMap((o) => ('refused' in o ? [o.refused] : [])),
  };
}

/** Volume name → the sessions whose records list it, in the records' order (newest first). */
function sessionsByVolume(records: readonly SessionRecord[]): Map<string, string[]> {
  const sessions = new Map<string, string[]>();
  for (const r of records) {
    for (const v of r.volumes) {
      const ids = sessions.get(v.volume) ?? [];
      if (!ids.includes(r.id)) ids.push(r.id);
      sessions.set(v.volume, ids);
    }
  }
  return sessions;
}

/**
 * How long a run may take from its image being ready to its container being created
 * (volumes made and given to the image's user, a GitHub token minted): past it, a start
 * marked in a record (see SessionRecord `startingUntil`) is taken for one whose process died.
 */
const LAUNCH_SECONDS = 600;

/** True when the record says its session is being started (see SessionRecord `startingUntil`). */
function isStarting(record: SessionRecord | undefined): boolean {
  return (record?.startingUntil ?? 0) > Date.now();
}

/** The Session option that carries a prompt on standard input; none for a prompt in argv. */
function promptOption(channel: PromptChannel, prompt: string): Pick<SessionOptions, 'prompt'> {
  return channel.kind === 'stream-json' ? { prompt: { text: prompt, channel } } : {};
}

/**
 * Starts, resumes and stops sessions. Stateless between calls: containers are found by their
 * `dev.cldpd.*` labels and what a session needs across runs is in the session store, so
 * any Dispatcher on the same host can pick a session up.
 */
export class Dispatcher {
  constructor(private readonly options: DispatcherOptions) {}

  /**
   * Starts a new session of `podName`: builds the pod's image, then runs its start command
   * with the template + issue + prompt. Resolves once the run has begun (the build is part of
   * the session's events). Throws `InvalidPodName`, `PodNotFound`, `InvalidPod` or
   * `InvalidInput` before anything is created.
   */
  async start(podName: string, input: StartInput, options: StartOptions = {}): Promise<Session> {
    const pod = await loadPod(this.options.pods, podName);
    const issue = input.issueUrl ? parseIssueUrl(input.issueUrl) : undefined;
    const channel = promptChannel(pod.config.command);
    const github = options.github && Object.keys(pod.config.github).length > 0 ? pod.config.github : undefined;
    const prompt = buildStartPrompt(pod.template, { issueUrl: issue?.url, prompt: input.prompt, github }, channel);
    const newSuffix = this.options.newSuffix ?? (() => randomBytes(SESSION_SUFFIX_HEX / 2).toString('hex'));
    const now = Date.now();
    const recordOf = (sessionId: string): SessionRecord => {
      if (!isSessionId(sessionId) || !sessionId.startsWith(`${pod.name}-`)) {
        throw new CldpdError('InvalidInput', `"${sessionId}" is not a session id for pod "${pod.name}" (${pod.name}-<${SESSION_SUFFIX_HEX} hex>).`);
      }
      return {
        id: sessionId, pod: pod.name, image: pod.config.image, imageId: '', hostId: this.options.hostId,
        containerName: `cldpd-${sessionId}`, createdAt: now, updatedAt: now, runs: 1, volumes: [],
        startingUntil: now + (pod.config.buildTimeoutSeconds + LAUNCH_SECONDS) * 1000,
        ...(issue ? { issueUrl: issue.url } : {}),
      };
    };
    let record: SessionRecord;
    if (options.sessionId !== undefined) {
      record = recordOf(options.sessionId);
      await this.options.store.save(record);
    } else {
      // A random id another session of this host holds already is never reused: a fresh one instead.
      for (let attempt = 1; ; attempt++) {
        record = recordOf(`${pod.name}-${newSuffix()}`);
        if (await this.options.store.create(record)) break;
        this.options.logger?.warn({ session: record.id }, 'a new session id was taken already; choosing another');
        if (attempt >= 5) throw new CldpdError('InvalidInput', `Five new session ids for pod "${pod.name}" were all taken on this host (${record.id} last); check ${this.options.store.dir} for leftover sessions.`);
      }
    }
    const sessionId = record.id;
    const { containerName } = record;
    const cmd = renderCommand(pod.config.command, { prompt, sessionId, issueUrl: issue?.url, ...limitValues(pod.config) });
    const labels = { sessionId, pod: pod.name, hostId: this.options.hostId, issueUrl: issue?.url };

    return this.startRun(pod, record, 1, {
      ...promptOption(channel, prompt),
      build: {
        tag: pod.config.image,
        contextDir: pod.dir,
        buildArgs: pod.config.buildArgs,
        labels: { [LABELS.pod]: pod.name },
        timeoutSeconds: pod.config.buildTimeoutSeconds,
      },
      removeOnExit: true,
      launch: (imageId) => this.launching(sessionId, now, false, async () => {
        const image = imageId ?? pod.config.image;
        const info = await this.options.runner.inspectImage(image);
        if (!info) throw new CldpdError('BuildFailed', `The image ${image} of pod "${pod.name}" is missing after its build.`);
        const problem = rootProblem(pod, info, [pod.config.command]);
        if (problem) throw new CldpdError('InvalidPod', problem);
        const volumes = persistedVolumes(pod.config.persist, info, issue ? issueVolumeKey(pod.name, issue) : sessionId);
        await this.prepareVolumes(pod, info, volumes, labels);
        await this.options.store.update(sessionId, { imageId: info.id, volumes });
        const access = await this.githubAccess(pod, options.github);
        return this.runWith(access, async () => {
          const setup = this.setupFor(pod, info, issue, access, false);
          const spec = buildContainerSpec({
            pod, sessionId, containerName, image: info.id, cmd: setup.length > 0 ? holdCommand(cmd) : cmd, hostId: this.options.hostId,
            issueUrl: issue?.url, run: 1, volumes, hostEnv: this.options.hostEnv, stdin: channel.kind === 'stream-json',
            agentEnv: claudeEnv(pod, volumes.map((v) => v.path), imageHome(info)), ...(access ? { access } : {}),
          });
          await this.unlessStopped(sessionId, now);
          return { handle: await this.options.runner.run(spec), containerName, exec: false, ...(access ? { access } : {}), setup };
        });
      }),
    });
  }

  /**
   * Continues session `sessionId` with `prompt`, using the pod's resume command:
   * in the running container (an exec) when it is still up, otherwise in a new container
   * from the session's image with its persisted volumes and the captured Claude session id.
   * Throws `SessionNotFound` when this host has no such session.
   */
  async resume(sessionId: string, prompt: string, options: ResumeOptions = {}): Promise<Session> {
    const record = await this.options.store.load(sessionId);
    const pod = await loadPod(this.options.pods, record.pod);
    const channel = promptChannel(pod.config.resumeCommand);
    const cmd = renderCommand(pod.config.resumeCommand, {
      prompt: checkPromptSize(prompt, channel), sessionId, claudeSessionId: record.claudeSessionId, issueUrl: record.issueUrl, ...limitValues(pod.config),
    });
    const containers = await this.containersOf(sessionId);
    const running = containers.find((c) => c.state === 'running');
    if (running && channel.kind === 'stream-json') {
      // A second agent process on one conversation would write one transcript twice over.
      throw new CldpdError('SessionBusy', `Session ${sessionId} is still running (container ${running.name}). Its agent takes new instructions only through the process that started it; once it has finished, resume it again (or stop it with "cldpd stop ${sessionId}").`);
    }
    const run = record.runs + 1;
    await this.options.store.update(sessionId, { runs: run });

    if (running) {
      // Only for commands that take the prompt in argv (the stream-json case refused above).
      return this.startRun(pod, record, run, {
        removeOnExit: false,
        launch: async () => {
          const access = await this.githubAccess(pod, options.github);
          try {
            if (access) await this.options.runner.writeFiles(running.id, access.files());
            const env = { ...containerEnv(pod, this.options.hostEnv, sessionId), ...access?.env() };
            const handle = await this.options.runner.exec(running.id, cmd, { env, ...(pod.config.workdir ? { workdir: pod.config.workdir } : {}) });
            return { handle, containerName: running.name, exec: true, ...(access ? { access } : {}) };
          } catch (err) {
            await access?.close();
            throw err;
          }
        },
      });
    }
    // The name is the session's: an exited leftover must go before a new container can take it.
    for (const c of containers) await this.options.runner.remove(c.id);
    const asked = Date.now();
    return this.startRun(pod, record, run, {
      ...promptOption(channel, prompt),
      removeOnExit: true,
      launch: () => this.launching(sessionId, asked, true, async () => {
        const info = record.imageId ? await this.options.runner.inspectImage(record.imageId) : undefined;
        if (!info) {
          throw new CldpdError('SessionNotFound', `The image of session ${sessionId} (${record.image}) is gone from this Docker host, so it cannot be resumed. Start a new session.`);
        }
        const problem = rootProblem(pod, info, [pod.config.resumeCommand]);
        if (problem) throw new CldpdError('InvalidPod', problem);
        // A volume removed since (cldpd volumes rm) comes back empty, labelled and the user's,
        // not as Docker would make it on its own: unlabelled, root-owned, unknown to cldpd.
        await this.prepareVolumes(pod, info, record.volumes, { sessionId, pod: pod.name, hostId: this.options.hostId, issueUrl: record.issueUrl });
        const access = await this.githubAccess(pod, options.github);
        return this.runWith(access, async () => {
          const setup = this.setupFor(pod, info, record.issueUrl ? parseIssueUrl(record.issueUrl) : undefined, access, true);
          const spec = buildContainerSpec({
            pod, sessionId, containerName: record.containerName, image: record.imageId, cmd: setup.length > 0 ? holdCommand(cmd) : cmd, hostId: this.options.hostId,
            issueUrl: record.issueUrl, run, volumes: record.volumes, hostEnv: this.options.hostEnv, stdin: channel.kind === 'stream-json',
            agentEnv: claudeEnv(pod, record.volumes.map((v) => v.path), imageHome(info)), ...(access ? { access } : {}),
          });
          await this.unlessStopped(sessionId, asked);
          return { handle: await this.options.runner.run(spec), containerName: record.containerName, exec: false, ...(access ? { access } : {}), setup };
        });
      }),
    });
  }

  /**
   * Runs `launch`, which prepares a run's volumes and creates its container, with the session
   * marked as starting in its record (from `since`; `mark`: marked here, else since the
   * record was made) until its container exists: a removal meanwhile (gc, retention,
   * \`cldpd volumes rm\`) finds the session in use and leaves its volumes and record alone,
   * and a stop meanwhile from another process, which finds no container to stop yet, is
   * found by the launch (see unlessStopped) or stops what it just created.
   */
  private async launching(sessionId: string, since: number, mark: boolean, launch: () => Promise<Launched>): Promise<Launched> {
    const { store, runner } = this.options;
    if (mark) await store.update(sessionId, { startingUntil: Date.now() + LAUNCH_SECONDS * 1000 });
    let launched: Launched;
    try {
      launched = await launch();
    } finally {
      await store.update(sessionId, { startingUntil: undefined }).catch(() => undefined);
    }
    // A stop asked for while the container was being created found none to stop.
    const record = await store.load(sessionId).catch(() => undefined);
    if (record && (record.stopAskedAt ?? 0) >= since) {
      const grace = await loadPod(this.options.pods, record.pod).then((p) => p.config.stopGraceSeconds, () => 10);
      await runner.stop(launched.handle.containerId, grace);
    }
    return launched;
  }

  /** Throws `Stopped` when a stop of the session was asked for since `since` (see launching); runWith then revokes the run's token. */
  private async unlessStopped(sessionId: string, since: number): Promise<void> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    if ((record?.stopAskedAt ?? 0) < since) return;
    throw new CldpdError('Stopped', `Session ${sessionId} was stopped before its container started.`);
  }

  /**
   * Whether a resume of the session must wait: its container runs an agent that takes
   * live input, which only the process that started it can reach (see resume). False for an
   * unknown session (the resume then says so) or a pod that resumes by exec.
   */
  async isBusy(sessionId: string): Promise<boolean> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    if (!record) return false;
    const pod = await loadPod(this.options.pods, record.pod).catch(() => undefined);
    if (!pod || promptChannel(pod.config.resumeCommand).kind !== 'stream-json') return false;
    return (await this.containersOf(sessionId)).some((c) => c.state === 'running');
  }

  /**
   * Finds where the session's latest run got to after the process that ran it went away,
   * and continues it when its container is still there: the output Docker kept is replayed,
   * minus the lines already in the log, and followed to the end. Never starts a container.
   * Throws `SessionNotFound` when this host has no such session.
   */
  async recover(sessionId: string, options: ResumeOptions = {}): Promise<Recovery> {
    const record = await this.options.store.load(sessionId);
    const run = record.runs;
    const logPath = this.options.store.logPath(sessionId);
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
    let all = await this.containersOf(sessionId);
    // A container that was created but never started (its process went away in between)
    // holds nothing: remove it and let the run start over.
    for (const c of all.filter((c) => c.state === 'created')) await this.options.runner.remove(c.id);
    all = all.filter((c) => c.state !== 'created');
    const containers = all.filter((c) => c.labels[LABELS.run] === String(run));
    const container = containers.sort((a, b) => b.createdAt - a.createdAt)[0];
    if (state.terminal) {
      for (const c of containers) if (c.state !== 'running') await this.options.runner.remove(c.id);
      // The process went away between logging the end and recording it: record it now.
      if (record.last?.endedAt !== state.terminal.at) await this.recordEnd(sessionId, state.terminal, state.agent);
      return { kind: 'finished', terminal: state.terminal, agent: state.agent, lastLines: state.tail };
    }
    if (!container) {
      if (!state.started) return { kind: 'none' };
      // Started, never finished, and gone: say so in the log rather than leave the run open.
      const execLost = all.some((c) => c.state === 'running');
      const message = execLost
        ? `Run ${run} of session ${sessionId} was executing inside the running container when its worker went away; an exec cannot be re-attached, so its outcome is unknown. The container is still running: "/cldpd resume" continues it, "/cldpd stop" ends it.`
        : `The container of session ${sessionId} (run ${run}) disappeared while nobody was watching it; its exit code is unknown.`;
      return this.endRun(sessionId, { type: 'error', at: Date.now(), code: 'ContainerFailed', message }, state);
    }
    if (container.state === 'running' && container.command?.includes(RELEASE_FILE) && !(await this.options.runner.hasFile(container.id, RELEASE_FILE))) {
      // Its setup steps were running here, as execs nobody can re-attach to; its agent waits
      // for a release that would skip what was left. End it; a resume runs the steps again.
      await this.options.runner.stop(container.id, 0);
      await this.options.runner.remove(container.id);
      const message = `The worker went away while the setup steps of session ${sessionId} (run ${run}) were running, so the container was stopped before its agent started. Run it again to repeat them.`;
      return this.endRun(sessionId, { type: 'error', at: Date.now(), code: 'SetupFailed', message }, state);
    }
    const pod = await loadPod(this.options.pods, record.pod);
    const session = await this.startRun(pod, record, run, {
      removeOnExit: true,
      ...(state.started ? { reattach: { ...state.lines, agent: state.agent, log: state.log, ...(state.openLine ? { openLine: state.openLine } : {}) } } : {}),
      launch: async () => {
        const handle = await this.options.runner.attach(container.id);
        // Whoever kept its token fresh went away: a new one, where its git reads it, kept
        // fresh and hidden from here on. Without one the run goes on as it can.
        const access = container.state === 'running' ? await this.githubAccess(pod, options.github).catch((err: unknown) => {
          this.options.logger?.warn({ err: messageOf(err), session: sessionId }, 'could not give the re-attached run a new GitHub token');
          return undefined;
        }) : undefined;
        if (access) {
          await this.options.runner.writeFiles(container.id, access.files()).catch((err: unknown) => {
            this.options.logger?.warn({ err: messageOf(err), session: sessionId }, 'could not write the re-attached run\'s new GitHub token');
          });
        }
        // The token it was started with is in its environment (GH_TOKEN): hidden as well.
        const env = await this.options.runner.containerEnv(container.id).catch(() => ({} as Record<string, string>));
        const secrets = [env.GH_TOKEN, env.GITHUB_TOKEN].filter((v): v is string => typeof v === 'string' && v.length >= 8);
        return { handle, containerName: container.name, exec: false, ...(access ? { access } : {}), secrets };
      },
    });
    return { kind: 'attached', session, lastLines: state.tail };
  }

  /** Ends a run nobody can follow any more: its terminal event logged and recorded. */
  private async endRun(sessionId: string, terminal: Extract<SessionEvent, { type: 'error' }>, state: { agent: AgentSummary; tail: readonly string[] }): Promise<Recovery> {
    const log = await SessionLog.open(this.options.store.logPath(sessionId));
    await log.append([terminal]);
    await log.close();
    await this.recordEnd(sessionId, terminal, state.agent);
    return { kind: 'finished', terminal, agent: state.agent, lastLines: [...state.tail] };
  }

  /**
   * Stops every running container of the session: SIGTERM, the pod's grace period, SIGKILL.
   * Idempotent. Throws `SessionNotFound` when neither the store nor Docker knows the session.
   */
  async stop(sessionId: string): Promise<void> {
    const record = await this.options.store.load(sessionId).catch(() => undefined);
    const containers = await this.containersOf(sessionId);
    if (!record && containers.length === 0) {
      throw new CldpdError('SessionNotFound', `No session "${sessionId}" on this host. List sessions with "cldpd ps --all".`);
    }
    // Starting, with no container to stop yet: its launch finds this and starts nothing (see launching).
    if (record && (record.startingUntil ?? 0) > Date.now()) await this.options.store.update(sessionId, { stopAskedAt: Date.now() });
    const grace = record ? await loadPod(this.options.pods, record.pod).then((p) => p.config.stopGraceSeconds, () => 10) : 10;
    await Promise.all(containers.filter((c) => c.state === 'running').map((c) => this.options.runner.stop(c.id, grace)));
  }

  /** Session containers of this host, newest first; with `all` false only running ones. */
  async containers(all = false): Promise<SessionContainer[]> {
    const found = await this.options.runner.list({ [LABELS.session]: undefined, [LABELS.host]: this.options.hostId });
    return found
      .filter((c) => all || c.state === 'running')
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((c) => ({
        sessionId: c.labels[LABELS.session] ?? '',
        pod: c.labels[LABELS.pod] ?? '',
        issueUrl: c.labels[LABELS.issue] || undefined,
        container: c,
      }));
  }

  /**
   * The persisted volumes of this host (cldpd's labels, this host's id), newest first: whose
   * they are, the sessions whose records list them, their size when the engine reports it,
   * and whether a running container of this host mounts them.
   */
  async volumes(): Promise<VolumeRow[]> {
    const { runner, store, hostId } = this.options;
    const [found, records, containers] = await Promise.all([
      runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.host]: hostId }),
      store.list(),
      runner.list({ [LABELS.session]: undefined, [LABELS.host]: hostId }),
    ]);
    const sessions = sessionsByVolume(records);
    const mounted = new Set(containers.filter((c) => c.state === 'running').flatMap((c) => c.volumes ?? []));
    return found
      .filter(isCldpdVolume)
      .map((v) => ({
        name: v.name,
        pod: v.labels[LABELS.pod] ?? '',
        issueUrl: v.labels[LABELS.issue] || undefined,
        sessionId: v.labels[LABELS.session] ?? '',
        sessions: sessions.get(v.name) ?? [],
        path: v.labels[LABELS.path] ?? '',
        sizeBytes: v.sizeBytes,
        createdAt: v.createdAt,
        inUse: mounted.has(v.name),
      }))
      .sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0) || a.name.localeCompare(b.name));
  }

  /** The sessions of this host that belong to the issue at `issueUrl`: from their records, containers and volumes. */
  async sessionsOfIssue(issueUrl: string): Promise<string[]> {
    const { runner, store, hostId } = this.options;
    const [records, containers, volumes] = await Promise.all([
      store.list(),
      runner.list({ [LABELS.session]: undefined, [LABELS.host]: hostId, [LABELS.issue]: issueUrl }),
      runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.host]: hostId, [LABELS.issue]: issueUrl }, { sizes: false }),
    ]);
    return [...new Set([
      ...records.filter((r) => r.issueUrl === issueUrl).map((r) => r.id),
      ...containers.map((c) => c.labels[LABELS.session] ?? '').filter(isSessionId),
      ...volumes.map((v) => v.labels[LABELS.session] ?? '').filter(isSessionId),
    ])];
  }

  /** When the session was made (its record's), if this host has its record. */
  async createdAt(sessionId: string): Promise<number | undefined> {
    return (await this.options.store.load(sessionId).catch(() => undefined))?.createdAt;
  }

  /** When any of these sessions was last used (its record last changed); undefined when none has a record here. */
  async lastActive(sessionIds: readonly string[]): Promise<number | undefined> {
    let last: number | undefined;
    for (const id of sessionIds) {
      const record = await this.options.store.load(id).catch(() => undefined);
      if (record && (last === undefined || record.updatedAt > last)) last = record.updatedAt;
    }
    return last;
  }

  /**
   * Removes finished sessions of this host for good: their containers, the volumes their
   * records list or that carry their label (a volume an issue's running session still
   * mounts is kept), and their records and logs. A session with a running container is
   * never touched (it is in `kept`). With `dryRun`, only says what it would remove. What it
   * frees is counted from the volumes' sizes as the engine reports them and the files'.
   */
  async removeSessions(sessionIds: readonly string[], options: { dryRun?: boolean } = {}): Promise<SessionRemoval> {
    const { runner, store } = this.options;
    if (sessionIds.length === 0) return { removed: [], kept: [] };
    // The engine's disk-usage call is slow: asked once, and only when there is something to remove.
    const sizes = new Map((await this.volumes()).map((v) => [v.name, v.sizeBytes ?? 0]));
    const removal: { removed: RemovedSession[]; kept: Array<{ sessionId: string; reason: string }> } = { removed: [], kept: [] };
    for (const sessionId of [...new Set(sessionIds)]) {
      const containers = await this.containersOf(sessionId);
      // Only a container that has ended may go, or one created long ago that never started: any
      // other (being created, running, paused, restarting) is in use.
      const busy = containers.find((c) => c.state !== 'exited' && c.state !== 'dead' && !(c.state === 'created' && c.createdAt < Date.now() - 3600_000));
      if (busy) {
        removal.kept.push({ sessionId, reason: busy.state === 'running' ? `it is running (stop it first: cldpd stop ${sessionId})` : `its container is ${busy.state}` });
        continue;
      }
      const record = await store.load(sessionId).catch(() => undefined);
      if (isStarting(record)) {
        removal.kept.push({ sessionId, reason: `it is starting (its container is not created yet; stop it first: cldpd stop ${sessionId})` });
        continue;
      }
      const labelled = (await runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.session]: sessionId }, { sizes: false })).filter(isCldpdVolume).map((v) => v.name);
      const volumes = [...new Set([...(record?.volumes ?? []).map((v) => v.volume), ...labelled])];
      if (!record && containers.length === 0 && volumes.length === 0) continue; // nothing of it on this host
      const recordBytes = await store.size(sessionId);
      let bytes = recordBytes + volumes.reduce((sum, v) => sum + (sizes.get(v) ?? 0), 0);
      let removedVolumes = volumes;
      if (!options.dryRun) {
        for (const c of containers) await runner.remove(c.id).catch(() => undefined);
        const outcome = await this.removeVolumes(sessionId);
        removedVolumes = outcome.removed.filter((v) => v.existed).map((v) => v.name);
        for (const refused of outcome.refused) bytes -= sizes.get(refused.name) ?? 0;
        await store.remove(sessionId);
      }
      removal.removed.push({ sessionId, issueUrl: record?.issueUrl, containers: containers.length, volumes: removedVolumes, bytes, lastActive: record?.updatedAt });
    }
    return removal;
  }

  /**
   * Removes persisted volumes, and forgets who this host gave them to. `target` is a session
   * id (the volumes its record lists, and any labelled with it) or a volume's name.
   *
   * Refused, each volume with its reason, never thrown: every volume of a running session
   * ("Session X is running; stop it first: cldpd stop X"); a volume a running container of
   * another session mounts (the issue's sessions share theirs); one that is not cldpd's (no
   * labels); one Docker will not remove (a stopped container still holds it). A volume
   * shared with finished sessions is removed, and `sharedWith` names them. Idempotent: a
   * volume already gone is in `removed` with `existed` false.
   *
   * Throws `InvalidInput` when `target` names a volume that exists but is not cldpd's: cldpd
   * never removes a foreign volume. Throws `DockerUnavailable` when the engine does not answer.
   */
  async removeVolumes(target: string): Promise<VolumeRemoval> {
    const { runner, store } = this.options;
    const records = await store.list();
    const context: RemovalContext = {
      sessions: sessionsByVolume(records),
      // Any session container of this engine, whichever host started it: Docker would refuse anyway.
      running: (await runner.list({ [LABELS.session]: undefined })).filter((c) => c.state === 'running'),
    };
    if (isSessionId(target)) {
      const record = records.find((r) => r.id === target);
      const labelled = (await runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.session]: target }, { sizes: false })).filter(isCldpdVolume);
      const containers = await this.containersOf(target);
      if (record || labelled.length > 0 || containers.length > 0) {
        const volumes = new Map<string, string | undefined>();
        for (const v of record?.volumes ?? []) volumes.set(v.volume, v.path);
        for (const v of labelled) if (!volumes.has(v.name)) volumes.set(v.name, v.labels[LABELS.path]);
        if (containers.some((c) => c.state === 'running') || isStarting(record)) {
          const reason = `Session ${target} is ${isStarting(record) ? 'starting' : 'running'}; stop it first: cldpd stop ${target}`;
          return { removed: [], refused: [...volumes].map(([name, path]) => ({ name, path, reason })) };
        }
        const outcomes: VolumeOutcome[] = [];
        for (const [name, path] of volumes) {
          outcomes.push(await this.removeVolume(name, path, await runner.inspectVolume(name), target, context));
        }
        return removal(outcomes);
      }
    }
    const info = await runner.inspectVolume(target);
    if (info && !isCldpdVolume(info)) {
      throw new CldpdError('InvalidInput', `The volume "${target}" is not cldpd's (it has none of the dev.cldpd.* labels of a persisted path): cldpd removes only volumes it created. Remove it with "docker volume rm ${target}" if you mean to; "cldpd volumes" lists cldpd's.`);
    }
    return removal([await this.removeVolume(target, info?.labels[LABELS.path], info, undefined, context)]);
  }

  /**
   * Removes one persisted volume (`info` undefined: it is gone already) unless it is not
   * cldpd's, a running session container mounts it, or Docker refuses; `forSession` is the
   * session whose volumes are being removed, if any.
   */
  private async removeVolume(name: string, path: string | undefined, info: VolumeInfo | undefined, forSession: string | undefined, context: RemovalContext): Promise<VolumeOutcome> {
    const refused = (reason: string): VolumeOutcome => ({ refused: { name, path, reason } });
    if (info && !isCldpdVolume(info)) {
      return refused(`A volume named ${name} exists but is not cldpd's (it has no dev.cldpd.* labels), so cldpd keeps it. Remove it with "docker volume rm ${name}" if you mean to.`);
    }
    const users = [...new Set(context.running.filter((c) => (c.volumes ?? []).includes(name)).map((c) => c.labels[LABELS.session] || c.name))];
    if (info && users.length > 0) {
      const many = users.length > 1;
      const stop = `stop ${many ? 'them' : 'it'} first: ${users.map((u) => `cldpd stop ${u}`).join('; ')}`;
      const who = users.map((u) => `session ${u}`).join(', ');
      return refused(forSession ? `Shared with ${who} of the same issue, which ${many ? 'are' : 'is'} running; ${stop}` : `In use by running ${who}; ${stop}`);
    }
    if (info) {
      try {
        await this.options.runner.removeVolume(name);
      } catch (err) {
        // Docker's refusal (a stopped container still holds it) says which container and what to do.
        if (err instanceof CldpdError && err.code === 'ContainerFailed') return refused(err.message);
        throw err;
      }
    }
    await this.options.store.forgetVolumeOwner(name);
    return { removed: { name, path, existed: info !== undefined, sharedWith: (context.sessions.get(name) ?? []).filter((s) => s !== forSession) } };
  }

  /**
   * Creates the persisted volumes that do not exist yet and makes each one the image
   * user's (non-root users only). Docker creates a volume's directory root-owned unless the
   * image already has that path: without this, a non-root agent could not write its state
   * and the next run could not resume it. A volume is given to the user unless this host
   * recorded doing so for that same user, so a volume left root-owned (a start that died
   * half-way, a pod that changed its USER, a volume older than this check) is put right.
   * Throws `InvalidPod` when the owner cannot be set, saying what to change in the pod.
   */
  private async prepareVolumes(pod: Pod, image: ImageInfo, volumes: readonly PersistedVolume[], labels: Omit<Parameters<typeof volumeLabels>[0], 'path'>): Promise<void> {
    const { runner, store } = this.options;
    const unowned: PersistedVolume[] = [];
    for (const v of volumes) {
      const created = await runner.ensureVolume(v.volume, volumeLabels({ ...labels, path: v.path }));
      if (!runsAsRoot(image) && (created || (await store.volumeOwner(v.volume)) !== image.user)) unowned.push(v);
    }
    if (unowned.length === 0) return;
    try {
      await runner.chownVolumes(image.id, image.user, unowned);
    } catch (err) {
      throw new CldpdError('InvalidPod', `Pod "${pod.name}": the persisted paths ${unowned.map((v) => v.path).join(', ')} would belong to root, which the image's user "${image.user}" cannot write, and cldpd could not give them to that user (${messageOf(err)}). Create these paths in the Dockerfile, owned by that user (for example "RUN mkdir -p /home/agent/.claude" before "USER agent"), or change "persist" in pod.json.`, { cause: err });
    }
    for (const v of unowned) await store.setVolumeOwner(v.volume, image.user);
  }

  /** Removes helper containers of this engine that a process which died while they ran left behind. */
  sweepHelpers(): Promise<number> {
    return this.options.runner.removeHelpers(10 * 60_000);
  }

  private containersOf(sessionId: string): Promise<ContainerInfo[]> {
    return this.options.runner.list({ [LABELS.session]: sessionId });
  }

  /**
   * The run's repository token, when the pod asks for `github` permissions: minted now
   * (`GitHubAccess` when GitHub refuses). A pod that asks with no one to mint (a terminal run
   * without the GitHub App) runs without one, and a warning says so.
   */
  private async githubAccess(pod: Pod, source: RepoTokenSource | undefined): Promise<GitHubAccess | undefined> {
    if (Object.keys(pod.config.github).length === 0) return undefined;
    if (!source) {
      this.options.logger?.warn({ pod: pod.name }, `Pod "${pod.name}" asks for a GitHub token (pod.json "github"), which only the GitHub App's worker can mint: this run has none.`);
      return undefined;
    }
    return GitHubAccess.open(source, pod.config.github, this.options.logger?.child({ pod: pod.name }));
  }

  /**
   * The steps before the agent in a new container (see setupSteps). The checkout clones into
   * the pod's workdir (the image's when pod.json names none), from the URL the API gave, or
   * the issue's host without a token (a public repository). Throws `InvalidPod` when a
   * checkout has no workdir to clone into.
   */
  private setupFor(pod: Pod, image: ImageInfo, issue: IssueRef | undefined, access: GitHubAccess | undefined, resume: boolean): SetupStep[] {
    const workdir = pod.config.workdir ?? image.workingDir;
    if (pod.config.checkout && issue && (!workdir || workdir === '/')) {
      throw new CldpdError('InvalidPod', `Pod "${pod.name}" asks for a checkout but has no working directory to clone into: set "workdir" in its pod.json (it is persisted by default).`);
    }
    const cloneUrl = access?.repository.cloneUrl ?? (issue ? `${new URL(issue.url).origin}/${issue.owner}/${issue.repo}.git` : undefined);
    return setupSteps(pod, { issue, cloneUrl, workdir, resume });
  }

  /** Runs `launch` (the container's creation); a token minted for a container that never started is revoked. */
  private async runWith<T>(access: GitHubAccess | undefined, launch: () => Promise<T>): Promise<T> {
    try {
      return await launch();
    } catch (err) {
      await access?.close();
      throw err;
    }
  }

  private startRun(pod: Pod, record: SessionRecord, run: number, plan: Pick<SessionOptions, 'build' | 'launch' | 'removeOnExit' | 'reattach' | 'prompt'>): Promise<Session> {
    const { store, runner, logger } = this.options;
    return Session.start({
      ...plan,
      before: { costUsd: record.costUsd ?? 0, turns: record.turns ?? 0 },
      id: record.id,
      podName: pod.name,
      run,
      runner,
      logPath: store.logPath(record.id),
      ...(this.options.maxLogBytesPerRun !== undefined ? { maxLogBytes: this.options.maxLogBytesPerRun } : {}),
      timeoutSeconds: pod.config.timeoutSeconds,
      stopGraceSeconds: pod.config.stopGraceSeconds,
      // What the pod injects may be printed; the reporters redact it, the pieces keep it whole.
      injected: Object.values(containerEnv(pod, this.options.hostEnv, record.id)),
      ...(logger ? { logger: logger.child({ session: record.id, pod: pod.name }) } : {}),
      onClaudeSession: async (claudeSessionId) => {
        await store.update(record.id, { claudeSessionId });
      },
      onFinish: (terminal, session) => this.recordEnd(record.id, terminal, session.agent),
    });
  }

  /** Records a run's end and what it cost in the session's record. */
  private async recordEnd(sessionId: string, terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }>, agent: AgentSummary): Promise<void> {
    const { claudeSessionId, sessionCostUsd, sessionTurns, runCostUsd, runTurns } = agent;
    const spent = { ...(runCostUsd !== undefined ? { costUsd: runCostUsd } : {}), ...(runTurns !== undefined ? { turns: runTurns } : {}) };
    await this.options.store.update(sessionId, {
      ...(claudeSessionId ? { claudeSessionId } : {}),
      ...(sessionCostUsd !== undefined ? { costUsd: sessionCostUsd } : {}),
      ...(sessionTurns !== undefined ? { turns: sessionTurns } : {}),
      last: terminal.type === 'error'
        ? { error: terminal.message, endedAt: terminal.at, ...spent }
        : { exitCode: terminal.exitCode, reason: terminal.reason, endedAt: terminal.at, ...spent },
    });
  }
}

/** The pod's limits as its command's placeholders take them. */
function limitValues(config: { readonly maxTurns: number | undefined; readonly maxBudgetUsd: number | undefined }): { maxTurns?: string; maxBudgetUsd?: string } {
  return {
    ...(config.maxTurns !== undefined ? { maxTurns: String(config.maxTurns) } : {}),
    ...(config.maxBudgetUsd !== undefined ? { maxBudgetUsd: String(config.maxBudgetUsd) } : {}),
  };
}
