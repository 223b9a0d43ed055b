import type { Logger } from 'pino';
import { AgentInput, type InputReservation } from './agent-input.js';
import { AgentSummaryAccumulator, type AgentSummary, type SpentBefore } from './agent-summary.js';
import { Channel } from './channel.js';
import { CldpdError, isCldpdError, messageOf, type ErrorCode } from './errors.js';
import { isConversationId, type AgentEvent, type ExitReason, type SessionEvent } from './events.js';
import type { AgentStreamReader } from './agents/agent.js';
import { LineSplitter, type SplitLine } from './line-splitter.js';
import { OutputEvents } from './output-events.js';
import type { PromptChannel } from './prompt.js';
import type { GitHubAccess } from './github-access.js';
import type { BuildRequest, ProcessHandle, Runner } from './runner.js';
import type { RunLogState } from './log-scan.js';
import { SessionLog, type SessionLogOptions } from './session-log.js';
import { RELEASE_FILE, type SetupStep } from './setup-steps.js';
import { within } from './within.js';
import { parseNotice } from '../gateway/config.js';

/** A gateway notice is a short JSON line; longer lines are not notices. */
const MAX_NOTICE_CHARS = 4096;
/** Distinct hosts a run's refusals are reported for; the rest are counted as "other hosts". */
const MAX_BLOCKED_HOSTS = 100;
const MORE_HOSTS = 'other hosts:0';

/**
 * Whether a running count of refusals of one host is logged as it happens: each of the first
 * ten, then every tenth, hundredth, thousandth…; the total is logged at the run's end. A
 * container that hammers one name leaves a few lines, not one per attempt.
 */
function countWorthTelling(count: number): boolean {
  if (count <= 10) return true;
  const step = 10 ** Math.floor(Math.log10(count));
  return count % step === 0;
}

/** How often a run follows its gateway's log again after the gateway restarted (Docker restarts it 5 times at most). */
const MAX_GATEWAY_PASSES = 6;
/** How long after its log ended a gateway is looked for again, restarted. */
const GATEWAY_RESTART_WAIT_MS = 2_000;

/** How long the end of a run waits for the last of its gateway's log. */
const GATEWAY_LOG_MS = 10_000;

export type { AgentSummary } from './agent-summary.js';

/** What a session run launches once its image is ready. */
export interface Launched {
  readonly handle: ProcessHandle;
  readonly containerName: string;
  /** True for an exec inside an already running container. */
  readonly exec: boolean;
  /** The run's repository token: kept fresh while the run lasts, hidden from its output. */
  readonly access?: GitHubAccess;
  /** Steps to run in the container (held by holdCommand) before its agent is released. */
  readonly setup?: readonly SetupStep[];
  /** More values to hide from the run's output (the tokens a container re-attached to was given before). */
  readonly secrets?: readonly string[];
  /**
   * The run's egress gateway (see Runner.openGateway), when its pod is gated: the session
   * reports what it refuses as `egress.blocked` events and closes it after the container is
   * gone. `name` is the agent container's name it was opened for.
   */
  readonly gateway?: { readonly name: string; readonly containerId: string };
}

/** How one run of a session goes; built by the Dispatcher. */
export interface SessionOptions {
  readonly id: string;
  readonly podName: string;
  /** 1 for the start, 2, 3, … for resumes. */
  readonly run: number;
  readonly runner: Runner;
  readonly logPath: string;
  /** Build this image first; absent for resumes, which reuse the session's image. */
  readonly build?: Omit<BuildRequest, 'signal'> & { readonly timeoutSeconds: number };
  /** Creates and starts the process (container or exec); receives the built image id. */
  readonly launch: (imageId: string | undefined) => Promise<Launched>;
  readonly timeoutSeconds: number;
  readonly stopGraceSeconds: number;
  /**
   * Set when this run continues one a previous process began (after a worker restart): the
   * container's output is replayed from its start, the first lines of each stream are
   * already in the log and are skipped, and no second `container.started` is emitted.
   * `agent` is the summary of what the agent said in the lines already logged: the run's
   * summary continues from it; `openLine`, the long line the logged lines stopped inside,
   * which the first piece read continues.
   */
  readonly reattach?: {
    readonly stdout: number;
    readonly stderr: number;
    readonly agent?: AgentSummary;
    readonly log?: SessionLogOptions['already'];
    readonly openLine?: RunLogState['openLine'];
    /** The refusals of the run's gateway already logged, by `host:port`: the gateway's own log, read again from its start, skips them. */
    readonly blocked?: RunLogState['blocked'];
  };
  /** Bytes the run may write to the session's log; past it, output is counted rather than kept (see SessionLog). Unbounded when absent. */
  readonly maxLogBytes?: number;
  /** Remove the container once it has exited and its output is read (not for an exec). */
  readonly removeOnExit: boolean;
  /** Called once with the terminal event, after it is logged and before it is emitted. */
  readonly onFinish?: (terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }>, session: Session) => Promise<void>;
  /**
   * The prompt, when the command takes it on standard input (see `promptChannel`): written
   * once the process starts. Input is closed after it, except on a live stream-json channel,
   * where it stays open until every message sent has been answered (see {@link Session.send}).
   */
  readonly prompt?: { readonly text: string; readonly channel: Extract<PromptChannel, { kind: 'stream-json' }> };
  /** What the Claude session had cost and how many turns it had taken before this run. */
  readonly before?: SpentBefore;
  /** Called when the agent reports its conversation id (see AgentEvent `init`). */
  readonly onClaudeSession?: (claudeSessionId: string) => Promise<void>;
  /** Reads the agent's output (see Agent.reader); Claude Code's stream-json when absent. */
  readonly reader?: AgentStreamReader;
  /**
   * Values the container was given (its environment) that whoever shows its output redacts:
   * not hidden here, but never cut in two between the pieces of an over-long line, so each
   * reaches a redactor whole (see OutputEvents).
   */
  readonly injected?: readonly string[];
  readonly logger?: Logger;
  /** Events buffered ahead of the consumer before the container is slowed down; default 1024. */
  readonly capacity?: number;
}

type Terminal = Extract<SessionEvent, { type: 'container.exited' | 'error' }>;

/**
 * One run of a session: an optional build, then a container (or an exec) whose output is
 * logged and streamed. It starts on creation and always ends with exactly one terminal
 * event, whatever fails. Every event is appended to the log file before it is emitted.
 *
 * The event stream is bounded: if nobody reads `events()` the container is slowed down
 * rather than any output dropped, so a caller either iterates `events()` or calls `wait()`
 * (which drains the events itself when nobody iterates them).
 */
export class Session {
  readonly id: string;
  readonly podName: string;
  readonly run: number;
  /** What the agent said so far (in a re-attached run, from the run's beginning). */
  readonly agent: AgentSummary;

  private readonly options: SessionOptions;
  private readonly channel: Channel<SessionEvent>;
  private readonly abort = new AbortController();
  private readonly log: SessionLog;
  private readonly finished: Promise<Terminal>;
  private readonly summary: AgentSummaryAccumulator;
  private consumed = false;
  /** Why the run was stopped: the first stop's reason. */
  private stopReason: ExitReason | undefined;
  /** The stop under way or done; cleared when it fails, so the next stop tries again. */
  private stopping: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private launchedId: string | undefined;
  /** Resolves with the container's id once launched, or undefined once the run ended without one. */
  private readonly launched: Promise<string | undefined>;
  private resolveLaunched: (containerId: string | undefined) => void = () => undefined;
  /** The agent's live input (a live stream-json channel only; closed from the start otherwise). */
  private readonly input: AgentInput;
  /** The output's lines as events. */
  private readonly output: OutputEvents;
  /** Set once the run has ended: nothing more can be written. */
  private ended = false;
  /** The run's repository token, once launched with one. */
  private access: GitHubAccess | undefined;
  /** The run's egress gateway, once launched with one, and the reading of its refusals. */
  private gateway: Launched['gateway'];
  private watching: Promise<void> | undefined;
  /** Ends the gateway watcher's wait for a restarted gateway (the run is over). */
  private wakeWatcher: (() => void) | undefined;
  /** Whether the run is an exec into a container that another run started (and whose token file it shares). */
  private execRun = false;

  private constructor(options: SessionOptions, log: SessionLog) {
    this.options = options;
    this.id = options.id;
    this.podName = options.podName;
    this.run = options.run;
    this.output = new OutputEvents({
      injected: options.injected,
      openLine: options.reattach?.openLine,
      tokens: () => this.access?.secrets ?? [],
      observe: (said) => this.observe(said),
      reader: options.reader,
    });
    this.log = log;
    this.summary = new AgentSummaryAccumulator(options.before, options.reattach?.agent);
    this.agent = this.summary.summary;
    this.launched = new Promise((resolve) => (this.resolveLaunched = resolve));
    this.channel = new Channel(options.capacity ?? 1024);
    const live = options.prompt?.channel.kind === 'stream-json' && options.prompt.channel.live && !options.reattach;
    this.input = new AgentInput(options.id, live, () => {
      this.agent.messagesSent = (this.agent.messagesSent ?? 0) + 1;
    });
    this.finished = this.drive();
  }

  /** Opens the session's log and starts the run. */
  static async start(options: SessionOptions): Promise<Session> {
    return new Session(options, await SessionLog.open(options.logPath, {
      run: options.run,
      ...(options.maxLogBytes !== undefined ? { maxRunBytes: options.maxLogBytes } : {}),
      ...(options.reattach?.log ? { already: options.reattach.log } : {}),
    }));
  }

  /** The container's id once it is launched. */
  get containerId(): string | undefined {
    return this.launchedId;
  }

  /** The run's events in order, ending with its terminal event. Single use. */
  events(): AsyncIterable<SessionEvent> {
    if (this.consumed) throw new Error(`the events of session ${this.id} are already being read`);
    this.consumed = true;
    return this.channel;
  }

  /**
   * Resolves with the container's exit code once the run has ended (non-zero is data, not an
   * error); rejects with the run's `CldpdError` when it ended in an error event.
   */
  async wait(): Promise<number> {
    if (!this.consumed) {
      this.consumed = true;
      void (async () => {
        for await (const _ of this.channel); // drain: nobody else reads the events
      })();
    }
    const terminal = await this.finished;
    if (terminal.type === 'error') throw new CldpdError(terminal.code, terminal.message);
    return terminal.exitCode;
  }

  /** The terminal event, once the run has ended. */
  async outcome(): Promise<Terminal> {
    return this.finished;
  }

  /**
   * Stops the run: SIGTERM, the pod's grace period, then SIGKILL. During the build it cancels
   * the build and no container is started; while the container is being created it is
   * stopped as soon as it exists. Resolves once the container has stopped, or the run has
   * ended without one. Idempotent: concurrent and later calls share one stop, and the
   * first call's reason is the one reported. A stop that failed is not kept: it rejects,
   * and the next call (or the timeout) tries again. After the run's end it does nothing.
   */
  stop(reason: Exclude<ExitReason, 'exited'> = 'stopped'): Promise<void> {
    if (this.stopping) return this.stopping;
    if (this.ended) return Promise.resolve();
    this.stopReason ??= reason;
    this.abort.abort(new CldpdError('Stopped', `session ${this.id} was ${this.stopReason === 'timeout' ? 'timed out' : 'stopped'}`));
    const attempt = this.stopContainer();
    this.stopping = attempt;
    attempt.catch(() => {
      if (this.stopping === attempt) this.stopping = undefined;
    });
    return attempt;
  }

  private async stopContainer(): Promise<void> {
    const containerId = await this.launched;
    if (containerId) await this.options.runner.stop(containerId, this.options.stopGraceSeconds);
  }

  private timeOut(): void {
    this.stop('timeout').catch((err: unknown) =>
      this.options.logger?.error({ err, session: this.id }, 'could not stop the container at its timeout'));
  }

  /** Events are logged and pushed one batch at a time: the output and the gateway's refusals arrive side by side. */
  private emitting: Promise<void> = Promise.resolve();

  private emit(events: SessionEvent[]): Promise<void> {
    const next = this.emitting.then(async () => {
      await this.log.append(events);
      await this.channel.push(events);
    });
    this.emitting = next.catch(() => undefined);
    return next;
  }

  /**
   * A run picked up after a restart: the refusals its log holds are told again (not logged
   * again), so whoever keeps its totals has those from before the restart too.
   */
  private async retellRefusals(): Promise<void> {
    const blocked = Object.entries(this.options.reattach?.blocked ?? {});
    if (blocked.length === 0) return;
    const at = Date.now();
    const events: SessionEvent[] = blocked.map(([key, count]) => {
      const cut = key.lastIndexOf(':');
      return { type: 'egress.blocked', at, host: key.slice(0, cut), port: Number(key.slice(cut + 1)), via: 'connect', count, replay: true };
    });
    const next = this.emitting.then(() => this.channel.push(events));
    this.emitting = next.catch(() => undefined);
    await next;
  }

  /**
   * Follows the gateway's notices for the run, from the start of its log, and emits each
   * refusal as an `egress.blocked` event (those already logged before a restart skipped).
   * Ends when the gateway's log does: once it is closed after the container.
   */
  private async watchGateway(containerId: string): Promise<void> {
    const logged = new Map<string, number>(Object.entries(this.options.reattach?.blocked ?? {}));
    const counts = new Map<string, { host: string; port: number; via: 'connect' | 'http' | 'tls'; count: number }>();
    const lines = new LineSplitter(MAX_NOTICE_CHARS);
    const report = async (key: string, final: boolean): Promise<void> => {
      const entry = counts.get(key);
      if (!entry || entry.count <= (logged.get(key) ?? 0) || (!final && !countWorthTelling(entry.count))) return;
      logged.set(key, entry.count);
      await this.emit([{ type: 'egress.blocked', at: Date.now(), host: entry.host, port: entry.port, via: entry.via, count: entry.count }]);
    };
    const take = async (line: string): Promise<void> => {
      const notice = parseNotice(line);
      if (notice?.event !== 'blocked') return;
      // The container chooses the names it asks for: past a bound, new ones are counted together.
      let key = `${notice.host}:${notice.port}`;
      if (!counts.has(key) && counts.size >= MAX_BLOCKED_HOSTS) key = MORE_HOSTS;
      const entry = counts.get(key) ?? { host: key === MORE_HOSTS ? 'other hosts' : notice.host, port: key === MORE_HOSTS ? 0 : notice.port, via: notice.via, count: 0 };
      entry.count += 1;
      counts.set(key, entry);
      await report(key, false);
    };
    // A gateway whose process died is started again by Docker (its restart policy), and its log
    // then holds all it wrote before as well: each pass reads it whole and counts afresh.
    for (let pass = 0; ; pass += 1) {
      counts.clear();
      try {
        for await (const chunk of this.options.runner.logs(containerId, 0)) {
          if (chunk.stream !== 'stdout') continue;
          for (const piece of lines.push(chunk.data)) if (!piece.partial) await take(piece.line);
        }
      } catch (err) {
        // The gateway went (closed after the run, or removed): what was read is what there is.
        if (!this.ended) this.options.logger?.warn({ err, session: this.id }, 'the egress gateway\'s log ended early');
      }
      for (const piece of lines.end()) if (!piece.partial) await take(piece.line);
      if (this.ended || pass >= MAX_GATEWAY_PASSES || !this.gateway) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, GATEWAY_RESTART_WAIT_MS);
        this.wakeWatcher = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      if (this.ended) break;
      const again = await this.options.runner.findGateway(this.gateway.name).catch(() => undefined);
      if (this.ended) break;
      if (again?.containerId === containerId) continue;
      this.options.logger?.error({ session: this.id, gateway: this.gateway.name }, 'the run\'s egress gateway stopped and did not come back: its container reaches nothing now; stop the run, or it ends on its own');
      break;
    }
    // The totals, for those whose last count was between the ones worth telling.
    for (const key of counts.keys()) await report(key, true);
  }

  private async drive(): Promise<Terminal> {
    const { runner } = this.options;
    let terminal: Terminal;
    let startedAt = Date.now();
    try {
      let imageId: string | undefined;
      if (this.options.build) imageId = await this.buildImage(this.options.build);
      if (this.stopReason) throw this.stoppedError();
      // The wall clock runs from the launch on, so a slow container creation counts too.
      this.timer = setTimeout(() => this.timeOut(), this.options.timeoutSeconds * 1000);
      this.timer.unref();
      const launched = await this.options.launch(imageId);
      this.launchedId = launched.handle.containerId;
      this.access = launched.access;
      this.execRun = launched.exec;
      this.output.hide(launched.secrets ?? []);
      this.gateway = launched.gateway;
      if (launched.gateway) {
        await this.retellRefusals();
        this.watching = this.watchGateway(launched.gateway.containerId).catch((err: unknown) => {
          this.options.logger?.warn({ err, session: this.id }, 'could not follow what the run\'s egress gateway refused');
        });
      }
      const containerId = launched.handle.containerId;
      this.access?.keepFresh((files) => runner.writeFiles(containerId, files));
      startedAt = Date.now();
      // A stop (or the timeout) that came while the container was being created applies now.
      this.resolveLaunched(this.launchedId);
      if (!this.options.reattach) {
        await this.emit([
          { type: 'container.started', at: startedAt, containerId: launched.handle.containerId, containerName: launched.containerName, exec: launched.exec, run: this.run },
        ]);
      }
      if (launched.setup && launched.setup.length > 0 && !this.options.reattach) await this.runSetup(containerId, launched.setup);
      // Written while the output is read: a long prompt must not wait on output nobody reads.
      const writing = this.writePrompt(launched.handle).catch((err: unknown) => {
        void this.stop().catch(() => undefined);
        throw err;
      });
      writing.catch(() => undefined); // awaited below, after the output

      await this.pump(launched.handle);
      await writing;
      const exitCode = await launched.handle.wait();
      if (this.options.removeOnExit) await this.removeContainer();
      terminal = { type: 'container.exited', at: Date.now(), exitCode, reason: this.stopReason ?? 'exited', durationMs: Date.now() - startedAt };
    } catch (err) {
      const code: ErrorCode = isCldpdError(err) ? err.code : 'ContainerFailed';
      terminal = { type: 'error', at: Date.now(), code, message: messageOf(err) };
      await this.cleanUpAfterError();
    } finally {
      clearTimeout(this.timer);
      this.resolveLaunched(undefined);
      this.ended = true;
      this.input.end();
      // Its tokens end with the run (an exec leaves the live one to the container's own run).
      await this.access?.close({ keepLive: this.execRun });
      await this.closeGateway();
    }
    try {
      await this.log.append([terminal]);
      await this.options.onFinish?.(terminal, this);
    } catch (err) {
      this.options.logger?.error({ err, session: this.id }, 'could not record the end of the session');
    }
    await this.log.close().catch(() => undefined);
    await this.channel.push([terminal]).catch(() => undefined);
    this.channel.close();
    return terminal;
  }

  /**
   * Whether {@link send} would take a message now: the run's agent reads live input, and its
   * input is still open (it closes once every message sent has been answered).
   */
  get acceptsInput(): boolean {
    return this.input.open && this.options.prompt?.channel.kind === 'stream-json' && this.options.prompt.channel.live && !this.stopReason;
  }

  /**
   * Holds the run's input open for one message to come: returns a function that sends it
   * (resolving once the engine has taken it), or undefined when the run no longer takes
   * input. A caller that must first record the message elsewhere reserves, records, then
   * sends, so the input cannot close in between; `cancel()` gives the reservation back.
   */
  reserve(): InputReservation | undefined {
    if (!this.acceptsInput) return undefined;
    return this.input.reserve();
  }

  /**
   * Resolves true once the agent has taken the message sent with `tag` (it echoes each
   * message it takes), false when the run ends without taking it. Ask before sending, or
   * any time after: an echo is never missed.
   */
  whenTaken(tag: string): Promise<boolean> {
    return this.input.whenTaken(tag);
  }

  /**
   * The tags of the messages sent into this run that the agent never took (it echoes each
   * message it takes): once the run has ended, these were not answered and must be
   * delivered another way (a resume after the run). Oldest first.
   */
  untakenMessages(): string[] {
    return this.input.untaken();
  }

  /**
   * Sends `prompt` to the running agent as its next user message, in the same conversation.
   * Resolves false (and sends nothing) when the run no longer takes input: then the caller
   * resumes the session once this run has ended.
   */
  async send(prompt: string): Promise<boolean> {
    const reservation = this.reserve();
    if (!reservation) return false;
    await reservation.send(prompt);
    return true;
  }

  private async writePrompt(handle: ProcessHandle): Promise<void> {
    const prompt = this.options.prompt;
    if (!prompt || this.options.reattach) return;
    if (!handle.input) throw new CldpdError('ContainerFailed', `The command of pod "${this.podName}" takes its prompt on standard input, but the process was started without one.`);
    await this.input.begin(handle.input, prompt.text, prompt.channel.live);
  }

  private stoppedError(): CldpdError {
    return new CldpdError('Stopped', this.stopReason === 'timeout'
      ? `Session ${this.id} timed out before its container started.`
      : `Session ${this.id} was stopped before its container started.`);
  }

  private async buildImage(build: NonNullable<SessionOptions['build']>): Promise<string> {
    await this.emit([{ type: 'build.started', at: Date.now(), image: build.tag }]);
    const timer = setTimeout(() => this.abort.abort(new CldpdError('BuildFailed', `The build of ${build.tag} took longer than ${build.timeoutSeconds} s (buildTimeoutSeconds in pod.json) and was cancelled.`)), build.timeoutSeconds * 1000);
    timer.unref();
    try {
      const { timeoutSeconds: _, ...request } = build;
      const lines = this.options.runner.build({ ...request, signal: this.abort.signal });
      let step = await lines.next();
      while (!step.done) {
        await this.emit([{ type: 'build.output', at: Date.now(), line: step.value }]);
        step = await lines.next();
      }
      await this.emit([{ type: 'build.completed', at: Date.now(), image: build.tag, imageId: step.value }]);
      return step.value;
    } catch (err) {
      if (this.stopReason) throw this.stoppedError();
      const reason: unknown = this.abort.signal.reason;
      if (this.abort.signal.aborted && isCldpdError(reason)) throw reason;
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Runs the setup steps one after the other, each announced and its output logged, then
   * releases the held container's agent. A step that fails ends the run (`SetupFailed`,
   * naming it); a stop or timeout meanwhile leaves the rest undone and the agent held, so
   * the container ends as stopped.
   */
  private async runSetup(containerId: string, steps: readonly SetupStep[]): Promise<void> {
    const { runner } = this.options;
    for (const [index, step] of steps.entries()) {
      if (this.stopReason) return;
      await this.emit([{ type: 'setup.step', at: Date.now(), step: index + 1, of: steps.length, name: step.name }]);
      const handle = await runner.exec(containerId, step.cmd, step.user ? { user: step.user } : {});
      await this.readLines(handle, (stream, lines) => this.output.stepEvents(index + 1, stream, lines));
      const exitCode = await handle.wait();
      if (this.stopReason) return;
      if (exitCode !== 0) {
        throw new CldpdError('SetupFailed', `Setup step ${index + 1} of ${steps.length} (${step.name}) exited with code ${exitCode}, so the agent did not run. Fix the step in the pod's pod.json (or what it works on) and try again.`);
      }
    }
    await runner.writeFiles(containerId, [{ path: RELEASE_FILE, content: '', mode: 0o444 }]);
  }

  private async pump(handle: ProcessHandle): Promise<void> {
    // Lines a previous process of this run already logged: replayed by Docker, not emitted twice.
    const skip = { stdout: this.options.reattach?.stdout ?? 0, stderr: this.options.reattach?.stderr ?? 0 };
    await this.readLines(handle, (stream, lines) => {
      const dropped = Math.min(skip[stream], lines.length);
      skip[stream] -= dropped;
      if (dropped > 0) this.output.replayed(stream, lines.slice(0, dropped));
      return this.output.toEvents(stream, lines.slice(dropped));
    });
  }

  /** Reads a process's output to its end, split into lines per stream; each batch becomes events by `toEvents`, logged and emitted. */
  private async readLines(handle: ProcessHandle, toEvents: (stream: 'stdout' | 'stderr', lines: SplitLine[]) => SessionEvent[]): Promise<void> {
    const splitters = { stdout: new LineSplitter(), stderr: new LineSplitter() };
    const emitLines = async (stream: 'stdout' | 'stderr', lines: SplitLine[]): Promise<void> => {
      if (lines.length === 0) return;
      const events = toEvents(stream, lines);
      if (events.length > 0) await this.emit(events);
    };
    for await (const chunk of handle.output) await emitLines(chunk.stream, splitters[chunk.stream].push(chunk.data));
    for (const stream of ['stdout', 'stderr'] as const) await emitLines(stream, splitters[stream].end());
  }

  /** Keeps the summary, and the live input's bookkeeping, in step with what the agent says. */
  private observe(events: readonly AgentEvent[]): void {
    for (const event of events) {
      const known = this.agent.claudeSessionId;
      this.summary.add([event]);
      switch (event.kind) {
        case 'init':
          if (known !== event.claudeSessionId && isConversationId(event.claudeSessionId)) {
            this.options.onClaudeSession?.(event.claudeSessionId).catch((err: unknown) =>
              this.options.logger?.error({ err, session: this.id }, 'could not record the Claude session id'));
          }
          break;
        case 'message':
          // The first echo is the run's own prompt; each later one, the next message sent.
          if (event.replay) this.input.echoed();
          break;
        case 'result':
          this.input.answered();
          break;
        default:
          break;
      }
    }
  }

  private async removeContainer(): Promise<void> {
    if (!this.launchedId) return;
    try {
      await this.options.runner.remove(this.launchedId);
    } catch (err) {
      this.options.logger?.warn({ err, session: this.id, container: this.launchedId }, 'could not remove the exited container');
    }
  }

  /**
   * Closes the run's gateway once its container is gone (its per-run secret then opens
   * nothing), and reads the last of what it refused, so those come before the terminal event.
   * A container still there (its removal failed) keeps its gateway: the next run, or the
   * worker's sweep, removes both.
   */
  private async closeGateway(): Promise<void> {
    if (!this.gateway) return;
    this.wakeWatcher?.();
    const { runner, logger } = this.options;
    if (this.launchedId && (await runner.isRunning(this.launchedId).catch(() => undefined)) !== undefined) {
      logger?.warn({ session: this.id }, 'the run\'s container is still there, so its egress gateway stays until it is removed');
      return;
    }
    try {
      await runner.closeGateway(this.gateway.name);
    } catch (err) {
      logger?.warn({ err, session: this.id }, 'could not remove the run\'s egress gateway; the worker\'s sweep will');
    }
    await within(GATEWAY_LOG_MS, this.watching ?? Promise.resolve()).catch(() => undefined);
  }

  /** After an error nothing may keep running unseen: stop (and remove) what was launched. */
  private async cleanUpAfterError(): Promise<void> {
    if (!this.launchedId) return;
    try {
      await this.options.runner.stop(this.launchedId, this.options.stopGraceSeconds);
      if (this.options.removeOnExit) await this.options.runner.remove(this.launchedId);
    } catch (err) {
      this.options.logger?.error({ err, session: this.id, container: this.launchedId }, 'could not stop the container after an error');
    }
  }
}

