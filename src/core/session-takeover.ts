import type { Logger } from 'pino';
import { buildContainerSpec, imageHome } from './container-spec.js';
import { openGate } from './egress.js';
import { claudeEnv, claudeResumeCommand } from './claude-pod.js';
import { agentNamed } from './agents/agents.js';
import { CldpdError } from './errors.js';
import { LABELS } from './labels.js';
import { loadPod, type Pod, type PodSource } from './pod.js';
import { promptChannel, renderCommand } from './prompt.js';
import type { ContainerInfo, ImageInfo, Runner, TerminalProcess, TerminalSize } from './runner.js';
import type { SessionRecord, SessionStore } from './session-store.js';

/** How long Claude Code's project keys may be before it shortens them with a hash (its own bound). */
const PROJECT_KEY_MAX = 200;

/** The largest transcript an export reads, and the largest settings file attach edits (Claude Code's own bound on it). */
export const MAX_TRANSCRIPT_BYTES = 512 * 1024 * 1024;
const MAX_SETTINGS_BYTES = 8 * 1024 * 1024;

/**
 * Pure: the directory name under `<config dir>/projects/` where Claude Code keeps the
 * transcripts of conversations held in `cwd`, as Claude Code 2.1 makes it: every character
 * but ASCII letters and digits becomes `-`; a key longer than 200 characters is cut there
 * and ends with `-` and a 32-bit hash of the path in base 36.
 */
export function claudeProjectKey(cwd: string): string {
  const key = cwd.replace(/[^a-zA-Z0-9]/g, '-');
  if (key.length <= PROJECT_KEY_MAX) return key;
  let hash = 0;
  for (let i = 0; i < cwd.length; i++) hash = ((hash << 5) - hash + cwd.charCodeAt(i)) | 0;
  return `${key.slice(0, PROJECT_KEY_MAX)}-${Math.abs(hash).toString(36)}`;
}

/** Options of Claude Code that make it a print-mode, unattended agent: what a person's terminal leaves out. */
const UNATTENDED_FLAGS = new Set(['-p', '--print', '--verbose', '--replay-user-messages', '--include-partial-messages', '--dangerously-skip-permissions', '--continue', '-c']);
/** The same, for options that take a value. */
const UNATTENDED_OPTIONS = new Set(['--input-format', '--output-format', '--max-turns', '--max-budget-usd', '--resume', '-r']);

/**
 * Pure: Claude Code's interactive terminal UI on the conversation `claudeSessionId`, from the
 * pod's resume command: its program and its options, less those of an unattended run (print
 * mode, stream-json, limits, skipped permissions: the person approves what the agent does)
 * and the prompt, then `--resume <id>`.
 */
export function interactiveCommand(resumeCommand: readonly string[], values: { readonly sessionId: string; readonly claudeSessionId: string; readonly issueUrl?: string | undefined }): string[] {
  const [program, ...args] = resumeCommand;
  const kept: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const name = arg.split('=')[0] as string;
    if (UNATTENDED_FLAGS.has(arg) || (arg.includes('=') && UNATTENDED_OPTIONS.has(name))) continue;
    if (UNATTENDED_OPTIONS.has(arg)) {
      i++;
      continue;
    }
    if (arg.includes('{prompt}')) continue;
    kept.push(arg);
  }
  return [...renderCommand([program ?? 'claude', ...kept], { ...values, prompt: '' }), '--resume', values.claudeSessionId];
}

/** True for a container a person took its session over in (see LABELS.attach). */
export function isTakeover(container: Pick<ContainerInfo, 'labels'>): boolean {
  return Boolean(container.labels[LABELS.attach]);
}

/**
 * How long a person's container may stay created and not started: past it, the process that
 * made it went away before starting it, and it holds the session no more.
 */
const TERMINAL_START_MS = 120_000;

/** Whether a container still holds (or is about to hold) a process: anything but ended. */
function isLive(container: Pick<ContainerInfo, 'state'>): boolean {
  return container.state !== 'exited' && container.state !== 'dead';
}

/** How long a person's terminal holds its session at most (12 h): a longer takeover is taken for one whose terminal was lost. */
export const TAKEOVER_LIFETIME_MS = 12 * 3600_000;

/**
 * True when a person has the session in this container (see SessionTakeover.attach): a
 * takeover container that runs, or was created less than two minutes ago and is being started,
 * within TAKEOVER_LIFETIME_MS of the attach.
 */
export function holdsSession(container: Pick<ContainerInfo, 'labels' | 'state' | 'createdAt'>, now = Date.now()): boolean {
  if (!isTakeover(container) || !isLive(container)) return false;
  // A terminal whose `cldpd attach` was killed outright never ends by itself: after its
  // lifetime it holds the session no more (the queue's runs go on) and is removed.
  const since = Date.parse(container.labels[LABELS.attach] ?? '');
  if ((Number.isFinite(since) ? since : container.createdAt) < now - TAKEOVER_LIFETIME_MS) return false;
  return container.state !== 'created' || container.createdAt > now - TERMINAL_START_MS;
}

/** What a {@link SessionTakeover} works with: the Dispatcher's runner, store and pods. */
export interface SessionTakeoverOptions {
  readonly runner: Runner;
  readonly store: SessionStore;
  readonly pods: PodSource;
  /** This Docker host, as in the labels of its containers. */
  readonly hostId: string;
  /** The host environment, read only for the pods' inheritEnv names. */
  readonly hostEnv: Readonly<Record<string, string | undefined>>;
  readonly logger?: Logger;
  /** As DispatcherOptions.gateways: a gated pod's terminal goes out through a gateway of its own too. */
  readonly gateways?: { readonly outside?: string; readonly hosts?: Readonly<Record<string, string>> };
}

/** A person's terminal on a session's conversation (see {@link SessionTakeover.attach}). */
export interface AttachedTerminal {
  readonly sessionId: string;
  readonly claudeSessionId: string;
  readonly containerName: string;
  readonly process: TerminalProcess;
  /** Ends the terminal (SIGTERM, then SIGKILL after the pod's grace) and removes its container. Idempotent. */
  leave(): Promise<void>;
}

/** What a person needs to go on with a session's conversation elsewhere (see {@link SessionTakeover.exportConversation}). */
export interface ConversationExport {
  readonly sessionId: string;
  readonly claudeSessionId: string;
  /** Claude Code's transcript of the conversation (JSON lines), up to its last whole line. */
  readonly transcript: Buffer;
  readonly issueUrl: string | undefined;
  /** The directory the agent worked in, in its container. */
  readonly containerCwd: string;
  /** True when a run of the session was going as the transcript was read (it may have grown since). */
  readonly runGoing: boolean;
}

/** The Claude Code pieces of a session: its pod's resume command, its conversation and where Claude Code keeps its state. */
interface ClaudeSession {
  readonly record: SessionRecord & { readonly claudeSessionId: string };
  readonly pod: Pod;
  readonly resumeCommand: readonly string[];
  readonly image: ImageInfo;
  /** CLAUDE_CONFIG_DIR in the container, or undefined when Claude Code uses ~/.claude and ~/.claude.json. */
  readonly configDir: string | undefined;
  readonly home: string;
  readonly cwd: string;
}

/**
 * A person taking a session over: Claude Code's own terminal UI on the session's
 * conversation (`attach`), or what it takes to go on with it elsewhere (`exportConversation`).
 * Stateless, like the Dispatcher: what it needs is in the session store and Docker's labels.
 */
export class SessionTakeover {
  constructor(private readonly options: SessionTakeoverOptions) {}

  /**
   * Opens Claude Code's interactive UI on the session's conversation, with a terminal of
   * `size`: in a new container from the session's image with its persisted volumes (its
   * Claude state and workspace), labelled as the session's (so the session is busy while it
   * exists: a queued resume waits, `cldpd resume` refuses) and as a takeover (so recovery
   * never takes it for a run). Claude Code's first-run onboarding is marked done in the
   * session's Claude state (the pod's configuration, not a login, gives it its key).
   *
   * Throws `SessionNotFound` (no such session, its image or Claude state gone), `InvalidInput`
   * (its agent is not Claude Code, or never reported a conversation), `SessionBusy` (a run of
   * it goes or starts, or a person is attached already).
   */
  async attach(sessionId: string, size: TerminalSize): Promise<AttachedTerminal> {
    const { runner, store, hostId, hostEnv, logger } = this.options;
    const session = await this.claudeSession(sessionId, 'attach to', (record, pod) => this.refuseBusy(record, pod));
    const { record, pod, image } = session;
    for (const v of record.volumes) {
      if (!(await runner.inspectVolume(v.volume))) {
        throw new CldpdError('SessionNotFound', `The volume ${v.volume} that kept ${v.path} of session ${sessionId} is gone (removed with "cldpd volumes rm" or gc?), so its conversation cannot be taken over.`);
      }
    }
    const containerName = `cldpd-${sessionId}-attach`;
    // A terminal that ended without its container being removed (its process was killed) leaves it behind.
    for (const c of await runner.list({ [LABELS.session]: sessionId })) if (isTakeover(c) && !holdsSession(c)) await runner.remove(c.id);
    // The conversation read strangers' text: the person's terminal reaches no more than the runs did.
    const gate = await openGate(runner, {
      pod, name: containerName, sessionId, run: record.runs, hostId, hostEnv, gateways: this.options.gateways, githubUrls: [record.issueUrl],
      narrower: record.egressNarrowed,
    });
    const closeGate = async (): Promise<void> => {
      if (gate) await runner.closeGateway(containerName);
    };
    let containerId: string;
    try {
      const base = buildContainerSpec({
        pod, sessionId, containerName, image: image.id, hostId, issueUrl: record.issueUrl, run: record.runs, volumes: record.volumes, hostEnv,
        cmd: interactiveCommand(session.resumeCommand, { sessionId, claudeSessionId: record.claudeSessionId, issueUrl: record.issueUrl }),
        stdin: true, agentEnv: claudeEnv(pod, record.volumes.map((v) => v.path), session.home), ...(gate ? { egress: gate.egress } : {}),
      });
      const { [LABELS.run]: _, ...labels } = base.labels;
      containerId = await runner.createTerminal({
        ...base, tty: true,
        labels: { ...labels, [LABELS.attach]: new Date().toISOString() },
        env: { ...base.env, TERM: hostEnv.TERM && /^[\w.+-]{1,64}$/.test(hostEnv.TERM) ? hostEnv.TERM : 'xterm-256color' },
      });
    } catch (err) {
      await closeGate().catch(() => undefined);
      throw err;
    }
    const remove = async (): Promise<void> => {
      await runner.stop(containerId, pod.config.stopGraceSeconds).catch(() => undefined);
      await runner.remove(containerId);
      await closeGate();
    };
    try {
      // Made before this looked: a run that started meanwhile (its launch looks for this
      // container before it creates its own) is seen here, and this one gives way.
      await this.refuseBusy(await store.load(sessionId), pod, containerId);
      await this.markOnboarded(containerId, session);
      const process = await runner.startTerminal(containerId, size);
      logger?.debug({ session: sessionId, container: containerName }, 'a person attached to the session');
      let left: Promise<void> | undefined;
      return { sessionId, claudeSessionId: record.claudeSessionId, containerName, process, leave: () => (left ??= remove()) };
    } catch (err) {
      await remove().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Reads the session's conversation as Claude Code keeps it (its transcript in the
   * session's Claude state volume), through a helper container of the session's image that
   * is never started. A run that goes meanwhile is no obstacle: the transcript is read up to
   * its last whole line, and `runGoing` says so.
   *
   * Throws as {@link attach} does for a session that is not Claude Code's, and
   * `SessionNotFound` when the transcript is not where Claude Code keeps it.
   */
  async exportConversation(sessionId: string): Promise<ConversationExport> {
    const { runner } = this.options;
    const session = await this.claudeSession(sessionId, 'export');
    const { record } = session;
    const configDir = session.configDir ?? `${session.home.replace(/\/$/, '')}/.claude`;
    if (!record.volumes.some((v) => configDir === v.path || configDir.startsWith(`${v.path}/`))) {
      throw new CldpdError('SessionNotFound', `Pod "${record.pod}" does not persist Claude Code's state (${configDir}), so the conversation of session ${sessionId} went with its container. Add "~/.claude" to "persist" in its pod.json for later sessions.`);
    }
    const path = `${configDir}/projects/${claudeProjectKey(session.cwd)}/${record.claudeSessionId}.jsonl`;
    const file = await runner.readVolumeFile(session.image.id, record.volumes, path, MAX_TRANSCRIPT_BYTES);
    if (!file) {
      throw new CldpdError('SessionNotFound', `Session ${sessionId} has no transcript at ${path} in its Claude state volume: its agent never wrote one there (it ran in another directory, or its state was removed).`);
    }
    const end = file.content.lastIndexOf(0x0a);
    const containers = await runner.list({ [LABELS.session]: sessionId });
    const runGoing = containers.some((c) => !isTakeover(c) && c.state === 'running') || (record.startingUntil ?? 0) > Date.now();
    return {
      sessionId, claudeSessionId: record.claudeSessionId, transcript: file.content.subarray(0, end + 1),
      issueUrl: record.issueUrl, containerCwd: session.cwd, runGoing,
    };
  }

  /**
   * The session, checked to be a Claude Code conversation (then by `check`, when given) that
   * this host can open; `doing` names what is refused.
   */
  private async claudeSession(sessionId: string, doing: string, check?: (record: SessionRecord, pod: Pod) => Promise<void>): Promise<ClaudeSession> {
    const { runner, store, pods } = this.options;
    const record = await store.load(sessionId);
    const pod = await loadPod(pods, record.pod);
    const resumeCommand = claudeResumeCommand(pod);
    if (pod.config.agent !== 'claude') {
      const agent = agentNamed(pod.config.agent);
      throw new CldpdError('InvalidInput', `Session ${sessionId} runs pod "${pod.name}", whose agent is ${agent.title}: cldpd can ${doing} Claude Code's conversations only. Continue it with "cldpd resume ${sessionId} <prompt>"; its workspace and ${agent.title}'s state are in its volumes ("cldpd volumes").`);
    }
    if (!resumeCommand) {
      throw new CldpdError('InvalidInput', `Session ${sessionId} runs pod "${pod.name}", whose agent is a command of its own (${pod.config.resumeCommand.join(' ').slice(0, 80)}), not Claude Code: cldpd can ${doing} Claude Code's conversations only. Its workspace is in its volumes ("cldpd volumes").`);
    }
    if (!record.claudeSessionId) {
      throw new CldpdError('InvalidInput', `Session ${sessionId} has no Claude Code conversation on record (its agent never reported a session id), so there is nothing to ${doing}.`);
    }
    await check?.(record, pod);
    const image = record.imageId ? await runner.inspectImage(record.imageId) : undefined;
    if (!image) {
      throw new CldpdError('SessionNotFound', `The image of session ${sessionId} (${record.image}) is gone from this Docker host, so its conversation cannot be opened here.`);
    }
    const home = imageHome(image);
    const env = { ...claudeEnv(pod, record.volumes.map((v) => v.path), home), ...pod.config.env };
    return { record: { ...record, claudeSessionId: record.claudeSessionId }, pod, resumeCommand, image, configDir: env.CLAUDE_CONFIG_DIR, home, cwd: pod.config.workdir ?? (image.workingDir || '/') };
  }

  /** Throws `SessionBusy` when a run of the session goes or starts, or a person has it (other than container `own`). */
  private async refuseBusy(record: SessionRecord, pod: Pod, own?: string): Promise<void> {
    const containers = (await this.options.runner.list({ [LABELS.session]: record.id })).filter((c) => c.id !== own && isLive(c) && (!isTakeover(c) || holdsSession(c)));
    const attached = containers.find(isTakeover);
    if (attached) {
      throw new CldpdError('SessionBusy', `A person is attached to session ${record.id} already (container ${attached.name}, since ${attached.labels[LABELS.attach]}). One terminal at a time: wait for them to leave, or end it with "cldpd stop ${record.id}".`);
    }
    const running = containers[0];
    if (running && promptChannel(pod.config.resumeCommand).kind !== 'stream-json') {
      // Such a pod's container stays up between runs, and its resumes are execs in it.
      throw new CldpdError('SessionBusy', `The container ${running.name} of session ${record.id} is ${running.state}: its pod resumes by exec, so it stays up between runs, and a terminal in it could meet a run the queue starts there. Stop it with "cldpd stop ${record.id}" (its volumes stay), then attach again: a new container with its volumes takes the terminal.`);
    }
    if (running || (record.startingUntil ?? 0) > Date.now()) {
      const what = running ? `its container ${running.name} is ${running.state}` : 'it is starting';
      throw new CldpdError('SessionBusy', `A run of session ${record.id} is going (${what}): its agent is at work on the conversation. Wait for the run to end ("cldpd logs -f ${record.id}" follows it), or stop it with "cldpd stop ${record.id}", then attach again.`);
    }
  }

  /**
   * Marks Claude Code's onboarding done in the session's settings file, when there is one
   * and it is not: the first-run screens (theme, a login, a connectivity check against
   * Anthropic's own host) would stand between the person and the conversation. Written with
   * the file's own owner and mode.
   */
  private async markOnboarded(containerId: string, session: ClaudeSession): Promise<void> {
    const { runner, logger } = this.options;
    const path = session.configDir ? `${session.configDir.replace(/\/$/, '')}/.claude.json` : `${session.home.replace(/\/$/, '')}/.claude.json`;
    const file = await runner.readFile(containerId, path, MAX_SETTINGS_BYTES).catch(() => undefined);
    if (!file) return;
    let settings: unknown;
    try {
      settings = JSON.parse(file.content.toString('utf8'));
    } catch {
      logger?.warn({ session: session.record.id, path }, 'Claude Code\'s settings file is not JSON: left as it is');
      return;
    }
    if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) return;
    if ((settings as Record<string, unknown>).hasCompletedOnboarding === true) return;
    const content = `${JSON.stringify({ ...settings, hasCompletedOnboarding: true }, null, 2)}\n`;
    await runner.writeFiles(containerId, [{ path, content, mode: file.mode || 0o600, owner: { uid: file.uid, gid: file.gid } }]);
  }
}
