import { shorten, stripEscapes, type AgentEvent, type ErrorCode, type ExitReason, type LogNote, type SessionEvent } from '../core/index.js';
import { formatBytes } from './volumes-view.js';
import { createStyle, type Style } from './style.js';

/** How much of a tool call's argument a transcript line shows. */
const MAX_TOOL_SUMMARY = 200;

/** How many lines of build output a compact build view keeps, to show when the build fails. */
const BUILD_TAIL_LINES = 20;

/** A piece of terminal output: which stream, and the text including its newline. */
export interface Printed {
  readonly to: 'stdout' | 'stderr';
  readonly text: string;
}

/** How a run ended, for the closing line of `cldpd start` and `resume`. */
export interface RunEnd {
  readonly terminal?: Extract<SessionEvent, { type: 'container.exited' | 'error' }>;
  /** What this run cost, and the whole session when it is not the first run. */
  readonly runCostUsd?: number;
  readonly sessionCostUsd?: number;
  readonly run: number;
}

/** What a {@link TranscriptPrinter} prints and how. */
export interface TranscriptOptions {
  readonly sessionId: string;
  /**
   * `live` (start, resume): what the container printed on stdout, cldpd's notes on stderr, so
   * a pipe receives only the agent's output. `log` (`cldpd logs`): everything on stdout.
   */
  readonly mode: 'live' | 'log';
  /** The whole build output rather than one line per step. */
  readonly verbose: boolean;
  /** Styles per stream; plain text when omitted. */
  readonly style?: { readonly stdout: Style; readonly stderr: Style };
}

function seconds(ms: number): string {
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  return s < 3600 ? `${Math.floor(s / 60)}m ${s % 60}s` : `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

function usd(amount: number): string {
  return `$${amount.toFixed(4)}`;
}

/**
 * The agent's text with terminal control characters made visible: what a tool printed or an
 * issue said must not move the cursor, recolour or write the clipboard (OSC 52) of the
 * person's terminal once decoded from stream-json. Newlines and tabs stay.
 */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function firstLine(text: string, max = 160): string {
  const line = text.split('\n').find((l) => l.trim()) ?? '';
  const more = text.trim().split('\n').length - 1;
  const clipped = shorten(line, max);
  return more > 0 ? `${clipped} (+${more} line${more > 1 ? 's' : ''})` : clipped;
}

/** `text` folded onto one line and shortened, cut between characters. */
function oneLine(text: string, max: number): string {
  return shorten(text.replace(/\s+/g, ' ').trim(), max);
}

/** The shell word `text` as the person can paste it back: single-quoted where needed. */
function shellWord(text: string): string {
  return /^[\w@%+=:,./-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** A line the legacy builder prints between steps, which says nothing to a person. */
const BUILDER_NOISE = /^(?: ---> |Removing intermediate container |Successfully built |Successfully tagged |Sending build context )/;
/** The line cldpd's runner gives when nothing changed and the image is reused. */
const IMAGE_REUSED = /^Nothing in the context, build args or base images changed since /;
/** A step of the legacy builder: `Step 2/6 : COPY busybox /bin/busybox`. */
const STEP = /^Step \d+\/\d+ : (.*)$/;
/** cldpd's own labels, which it adds to every image: never shown. */
const CLDPD_LABEL = /^LABEL dev\.cldpd\./;

type Kind = 'note' | 'dim' | 'error' | 'tool' | 'text' | 'quote' | 'good' | 'warn';

/**
 * How `cldpd start`/`resume`/`logs` show a session's events to a person: the agent's words,
 * tool calls and their results the way Claude Code's own terminal shows them (never the raw
 * stream-json), a compact build (one line per step; the tail of its output when it fails;
 * all of it with `verbose`), cldpd's notes dim, errors red, and a closing line with the
 * outcome, duration, cost and the command that continues the session. One printer per run
 * being shown: it keeps the build's state.
 */
export class TranscriptPrinter {
  private readonly style: { readonly stdout: Style; readonly stderr: Style };
  private image: string | undefined;
  private buildStartedAt = 0;
  private reused = false;
  private announced = false;
  private inCldpdStep = false;
  private tail: string[] = [];
  private containerStarted = false;

  constructor(private readonly options: TranscriptOptions) {
    const plain = createStyle(false);
    this.style = options.style ?? { stdout: plain, stderr: plain };
  }

  private print(to: 'stdout' | 'stderr', kind: Kind, text: string): Printed {
    const stream = this.options.mode === 'log' ? 'stdout' : to;
    const s = this.style[stream];
    const styled = { note: s.dim, dim: s.dim, error: s.red, tool: s.cyan, text: (t: string) => t, quote: s.bold, good: s.green, warn: s.yellow }[kind](text);
    return { to: stream, text: `${styled}\n` };
  }

  private note(text: string, kind: Kind = 'note'): Printed {
    return this.print('stderr', kind, `cldpd: ${text}`);
  }

  /** The lines to print for a note of the log's own: where a run's log was cut, and what it left out. */
  logNote(note: LogNote): Printed[] {
    if (note.type === 'log.cut') {
      return [this.note(`the log of run ${note.run} was cut here, at its bound of ${formatBytes(note.limitBytes)} (CLDPD_RUN_LOG_MAX_MB): the run's output after this is not kept, only the agent's result`, 'warn')];
    }
    return [];
  }

  /** The count of what a cut log left out, once the log has been read to its end or to the run's end. */
  logSkipped(note: Extract<LogNote, { type: 'log.skipped' }>): Printed[] {
    const lines = note.stdout + note.stderr;
    return [this.note(`run ${note.run}: ${lines} output line${lines === 1 ? '' : 's'} (${formatBytes(note.bytes)}) after the cut were not kept`, 'warn')];
  }

  /** The lines to print for `event`. */
  event(event: SessionEvent): Printed[] {
    switch (event.type) {
      case 'build.started':
        // A log holds every run: each build starts afresh.
        Object.assign(this, { image: event.image, buildStartedAt: event.at, reused: false, announced: false, inCldpdStep: false, tail: [], containerStarted: false });
        return [];
      case 'build.output':
        return this.buildLine(stripEscapes(event.line));
      case 'build.completed': {
        const id = event.imageId.replace(/^sha256:/, '').slice(0, 12);
        if (this.reused) return [this.note(`image ${event.image} is up to date (${id})`)];
        return [...this.announce(), this.note(`image ${event.image} built (${id}) in ${seconds(event.at - this.buildStartedAt)}`)];
      }
      case 'container.started':
        this.containerStarted = true;
        return [this.note(event.exec ? `resumed inside the running container ${event.containerName} (run ${event.run})` : `running in ${event.containerName} (run ${event.run})`)];
      case 'setup.step':
        return [this.note(`setting up (${event.step}/${event.of}): ${event.name}`)];
      case 'output': {
        const end = event.partial ? '' : '\n';
        // A setup step's output is cldpd's business, not the agent's: never on the pipe.
        if (event.step !== undefined) return [{ to: this.options.mode === 'log' ? 'stdout' : 'stderr', text: `${this.style[this.options.mode === 'log' ? 'stdout' : 'stderr'].dim(`  | ${stripEscapes(event.line)}`)}${end}` }];
        if (event.stream === 'stderr' || !event.agent) {
          const to = event.stream === 'stderr' ? 'stderr' : 'stdout';
          return [{ to: this.options.mode === 'log' ? 'stdout' : to, text: event.line + end }];
        }
        return event.agent.flatMap((a) => this.agent(a));
      }
      case 'egress.blocked': {
        // The first refusal of a host says how to allow it; later ones are counted, shown at every tenth.
        if ((event.count !== 1 && event.count % 10 !== 0) || event.replay) return [];
        // The name is the container's: no escape of it reaches the terminal, and no name floods it.
        const host = shorten(stripEscapes(String(event.host)).replace(/[\x00-\x1f\x7f-\x9f]/g, '?'), 200);
        return [this.note(`blocked: ${host}:${event.port}${event.count > 1 ? ` ×${event.count}` : ''} is not in the pod's egress list (add "${host}" to pod.json "egress" to allow it)`, 'warn')];
      }
      case 'container.exited':
        // A live run ends with its closing line; a log shows where each run ended.
        return this.options.mode === 'log' ? [this.note(`run ended: ${exitWords(event.exitCode, event.reason)} after ${seconds(event.durationMs)}`, event.exitCode === 0 ? 'note' : 'warn')] : [];
      case 'error':
        return [...this.failedBuildTail(), this.note(`error (${event.code}): ${event.message}`, 'error')];
      default:
        // A log written by a newer cldpd may hold events this one does not know: passed over, not a crash.
        return [];
    }
  }

  /** The closing line of a live run: outcome, duration, cost, and what to do next. */
  end(end: RunEnd): Printed[] {
    const { terminal } = end;
    const id = this.options.sessionId;
    const facts: string[] = [];
    let head: string;
    let kind: Kind;
    if (!terminal) {
      [head, kind] = ['✗ ended without an outcome', 'error'];
    } else if (terminal.type === 'error') {
      [head, kind] = [terminal.code === 'SetupFailed' ? '✗ a setup step failed: the agent did not run' : this.containerStarted ? `✗ failed (${terminal.code})` : `✗ ${failedBefore(terminal.code)}`, 'error'];
    } else {
      const { exitCode, reason } = terminal;
      [head, kind] = reason === 'stopped' ? ['⏹ stopped', 'warn'] : reason === 'timeout' ? ['⏱ timed out (timeoutSeconds in pod.json)', 'warn'] : exitCode === 0 ? ['✓ done', 'good'] : [`✗ exited with code ${exitCode}`, 'error'];
      facts.push(seconds(terminal.durationMs));
    }
    if (end.runCostUsd !== undefined) facts.push(end.sessionCostUsd !== undefined && end.run > 1 ? `${usd(end.runCostUsd)} (${usd(end.sessionCostUsd)} for the session)` : usd(end.runCostUsd));
    const lines = [this.print('stderr', kind, [head, ...facts].join(' · '))];
    if (this.containerStarted) lines.push(this.print('stderr', 'note', `  continue: cldpd resume ${shellWord(id)} --prompt '<what next>'`));
    else if (terminal?.type === 'error' && terminal.code === 'BuildFailed' && !this.options.verbose) lines.push(this.print('stderr', 'note', `  the whole build: cldpd logs ${shellWord(id)} --verbose`));
    return lines;
  }

  /** Prints "building image" once, before the first step that really builds. */
  private announce(): Printed[] {
    if (this.announced || this.image === undefined) return [];
    this.announced = true;
    return [this.note(`building image ${this.image}`)];
  }

  private buildLine(line: string): Printed[] {
    if (!this.announced && IMAGE_REUSED.test(line)) {
      this.reused = true;
      return [];
    }
    const step = STEP.exec(line);
    if (step) {
      this.inCldpdStep = CLDPD_LABEL.test(step[1] as string);
      if (this.inCldpdStep) return [];
      const shown = this.options.verbose ? line : `  ‣ ${oneLine(step[1] as string, 120)}`;
      return [...this.announce(), this.print('stderr', 'dim', shown)];
    }
    if (/^Successfully /.test(line)) this.inCldpdStep = false; // the builder's summary follows the last step
    if (this.inCldpdStep) return [];
    if (this.options.verbose) return [...this.announce(), this.print('stderr', 'dim', `  | ${line}`)];
    if (BUILDER_NOISE.test(line)) return this.announce();
    this.tail.push(line);
    if (this.tail.length > BUILD_TAIL_LINES) this.tail.shift();
    return this.announce();
  }

  /** The build output a compact view held back, shown when the build fails. */
  private failedBuildTail(): Printed[] {
    if (this.containerStarted || this.tail.length === 0) return [];
    const lines = this.tail.map((l) => this.print('stderr', 'dim', `  | ${l}`));
    this.tail = [];
    return [this.note(`the build's last ${lines.length === 1 ? 'line' : `${lines.length} lines`}:`), ...lines];
  }

  private agent(a: AgentEvent): Printed[] {
    return this.agentRaw(a).map(([to, kind, text]) => this.print(to, kind, printable(text)));
  }

  private agentRaw(a: AgentEvent): Array<['stdout' | 'stderr', Kind, string]> {
    switch (a.kind) {
      case 'init':
        return [['stderr', 'note', `cldpd: agent's conversation ${a.claudeSessionId}${a.model ? ` (${a.model})` : ''}`]];
      case 'text':
        return [['stdout', 'text', a.text]];
      case 'thinking':
        return [['stdout', 'dim', '✻ thinking…']];
      case 'tool': {
        // The core keeps the argument whole (for redaction); a transcript shows one short line of it.
        const summary = oneLine(a.summary, MAX_TOOL_SUMMARY);
        return [['stdout', 'tool', `→ ${a.name}${summary ? `: ${summary}` : ''}`]];
      }
      case 'tool_result': {
        const size = a.chars === 0 ? '(no output)' : a.lines > 1 ? `${a.firstLine} (+${a.lines - 1} line${a.lines > 2 ? 's' : ''})` : a.firstLine;
        return [['stdout', a.isError ? 'error' : 'dim', `  ⎿ ${a.isError ? 'error: ' : ''}${size}`]];
      }
      case 'message':
        return [['stdout', 'quote', `> ${firstLine(a.text)}`]];
      case 'system':
      case 'other':
      case 'usage':
        return [];
      case 'result': {
        // No duration here: the closing line gives the run's, which is the one that counts.
        const facts = [
          a.isError ? `error${a.subtype && a.subtype !== 'success' ? ` (${a.subtype})` : ''}` : 'done',
          a.turns !== undefined ? `${a.turns} turn${a.turns === 1 ? '' : 's'}` : undefined,
          a.tokens ? `${a.tokens.input} tokens in, ${a.tokens.output} out` : undefined,
        ].filter(Boolean);
        const errors = (a.errors ?? []).map((e): ['stderr', Kind, string] => ['stderr', 'error', `cldpd: agent error: ${firstLine(e, 300)}`]);
        return [['stderr', a.isError ? 'error' : 'note', `cldpd: agent ${facts.join(', ')}`], ...errors];
      }
    }
  }
}

/** "exited with code 2", "stopped", "timed out": how a container's end reads. */
function exitWords(exitCode: number, reason: ExitReason): string {
  if (reason === 'stopped') return `stopped (exit ${exitCode})`;
  if (reason === 'timeout') return `timed out (exit ${exitCode})`;
  return `exited with code ${exitCode}`;
}

/** The closing words of a run that failed before its container ran. */
function failedBefore(code: ErrorCode): string {
  if (code === 'BuildFailed') return 'the image did not build';
  if (code === 'Stopped') return 'stopped before the container started';
  return `failed before the container started (${code})`;
}
