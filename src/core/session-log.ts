import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isTerminal, type AgentEvent, type SessionEvent } from './events.js';
import { PRIVATE_FILE_MODE, privateDir } from './session-store.js';
import { keepEnd, keepStart } from './text.js';

/** Characters a JSON string must escape; lines without them are written as they are. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/** Output lines of one run that its log no longer keeps, since it was cut: how many, and their bytes. */
export interface SkippedOutput {
  readonly stdout: number;
  readonly stderr: number;
  readonly bytes: number;
}

/**
 * What a log says about itself rather than about the run: `log.cut`, where a run's log
 * reached its bound (the output after it is not kept), then `log.skipped`, how much was left
 * out so far (counted from the cut, written at most once a second and at the run's end).
 */
export type LogNote =
  | { readonly type: 'log.cut'; readonly at: number; readonly run: number; readonly limitBytes: number }
  | ({ readonly type: 'log.skipped'; readonly at: number; readonly run: number } & SkippedOutput);

/** Options of {@link SessionLog.open}: the bound of one run's log. */
export interface SessionLogOptions {
  /** The run whose events are appended (named in the notes). */
  readonly run: number;
  /** Bytes one run may write; unbounded when absent. */
  readonly maxRunBytes?: number;
  /** What the run already wrote, when a new process continues it (after a worker restart). */
  readonly already?: { readonly bytes: number; readonly cut: boolean; readonly skipped: SkippedOutput };
}

/** How often, at most, the count of what a cut log left out is written (and before every line written after the cut). */
const SKIPPED_NOTE_MS = 5000;

/** Past the bound, an agent's init or result line longer than this is written trimmed (see {@link trimmedAgentLine}). */
const TRIMMED_LINE_BYTES = 64 * 1024;
/** Characters of a result's text a trimmed line keeps: its end, where an answer concludes. */
const TRIMMED_TEXT_CHARS = 32 * 1024;
/** Past the bound, the bytes of init and result lines written as they come; beyond them only the last of each is kept. */
const PAST_BOUND_AGENT_BYTES = 1024 * 1024;

type OutputEvent = Extract<SessionEvent, { type: 'output' }>;

/**
 * Appends session events to a JSON-lines file, one event per line. `append` resolves once
 * the bytes are written to the file, so a caller that emits after it never emits what the
 * log does not have.
 *
 * A run's log is bounded (`maxRunBytes`): past the bound its output lines are counted, not
 * written, after one `log.cut` note. What a later reader needs is still written: every
 * lifecycle event, and the agent's `init` and `result` lines (its session id, cost and
 * answer), trimmed to at most 64 KiB each (a result's text to at most its last 32,768
 * characters) and, beyond 1 MiB of them, only the last of each kind, written before the
 * run's terminal event (or when the log is closed): past the bound a run writes at most
 * about 1.2 MiB more, however many such lines it prints. The count of what was left out
 * (`log.skipped`, at most every 5 s and before each line written after the cut) lets a worker that re-attaches after a restart skip the lines
 * already shown: exactly up to the last line written, to within 5 s of output after it.
 */
export class SessionLog {
  private written: number;
  private cut: boolean;
  private skipped: { stdout: number; stderr: number; bytes: number };
  private skippedNoted: number;
  private notedAt = 0;
  /** Bytes of init and result lines written past the bound. */
  private agentPastBound = 0;
  /** Past that, the last init and the last result line, waiting for the run's end. */
  private readonly held = new Map<'init' | 'result', { line: string; stream: 'stdout' | 'stderr' }>();

  private constructor(private readonly handle: FileHandle, readonly path: string, private readonly options: SessionLogOptions | undefined) {
    this.written = options?.already?.bytes ?? 0;
    this.cut = options?.already?.cut ?? false;
    this.skipped = { ...(options?.already?.skipped ?? { stdout: 0, stderr: 0, bytes: 0 }) };
    this.skippedNoted = this.skipped.bytes;
  }

  /**
   * Opens (creating) the log for appending: the file 0600 in a 0700 directory, both
   * tightened when an older cldpd left them readable by all.
   */
  static async open(path: string, options?: SessionLogOptions): Promise<SessionLog> {
    await privateDir(dirname(path));
    const handle = await open(path, 'a', PRIVATE_FILE_MODE);
    try {
      await handle.chmod(PRIVATE_FILE_MODE);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new SessionLog(handle, path, options);
  }

  /** Writes `events` in one write (those the bound lets through, and the notes about the rest). */
  async append(events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    const max = this.options?.maxRunBytes;
    let text = '';
    for (const event of events) {
      // Plain output lines are most of any log: written without walking the object (a setup
      // step's keep their step: a re-attach counts only the container's own lines).
      const line = event.type === 'output' && !event.agent && event.step === undefined
        ? `{"type":"output","at":${event.at},"stream":"${event.stream}","line":${NEEDS_ESCAPE.test(event.line) ? JSON.stringify(event.line) : `"${event.line}"`}${event.partial ? ',"partial":true' : ''}}\n`
        : `${JSON.stringify(event)}\n`;
      if (max === undefined) {
        text += line;
        continue;
      }
      const bytes = Buffer.byteLength(line);
      // Output past the bound: plain lines counted, the agent's init and result trimmed and bounded.
      // The gateway's refusals too (counted by their bytes): a container that knocks without end must not grow the log.
      if (event.type === 'output' || event.type === 'build.output' || event.type === 'egress.blocked') {
        if (this.cut || this.written + bytes > max) {
          if (!this.cut) {
            this.cut = true;
            text += this.note({ type: 'log.cut', at: event.at, run: this.options?.run ?? 0, limitBytes: max });
          }
          if (event.type === 'output' && !isCuttable(event)) text += this.agentLinePastBound(event, line);
          else this.skip(event, bytes);
          continue;
        }
      }
      if (isTerminal(event)) text += this.releaseHeld(event.at);
      // A line written after the cut comes after an exact count: a re-attach skips it, not what precedes it.
      if (this.cut) text += this.skippedNote(event.at, true);
      this.written += bytes;
      text += line;
    }
    if (max !== undefined) text += this.skippedNote(Date.now(), false);
    if (text) await this.handle.write(text);
  }

  /** Counts an event the bound leaves out. */
  private skip(event: SessionEvent, bytes: number): void {
    if (event.type === 'output' && event.step === undefined) this.skipped[event.stream] += 1;
    this.skipped.bytes += bytes;
  }

  /**
   * Past the bound, an init or result line: written trimmed while the allowance for them
   * lasts, then held (the one it replaces counted as left out) until the run's end.
   */
  private agentLinePastBound(event: OutputEvent, line: string): string {
    let kept = line;
    // Escaped text may take six bytes a character: fewer characters until it fits.
    for (let chars = TRIMMED_TEXT_CHARS; Buffer.byteLength(kept) > TRIMMED_LINE_BYTES && chars > 0; chars = Math.floor(chars / 2)) {
      kept = `${JSON.stringify(trimmedAgentLine(event, chars))}\n`;
    }
    const keptBytes = Buffer.byteLength(kept);
    if (this.held.size === 0 && this.agentPastBound + keptBytes <= PAST_BOUND_AGENT_BYTES) {
      this.agentPastBound += keptBytes;
      this.written += keptBytes;
      return this.skippedNote(event.at, true) + kept;
    }
    const kind = event.agent?.some((a) => a.kind === 'result') ? 'result' : 'init';
    const replaced = this.held.get(kind);
    if (replaced) this.skip({ ...event, stream: replaced.stream }, Buffer.byteLength(replaced.line));
    this.held.set(kind, { line: kept, stream: event.stream });
    return '';
  }

  /** The held init and result lines, after an exact count of what was left out. */
  private releaseHeld(at: number): string {
    if (this.held.size === 0) return '';
    let text = this.skippedNote(at, true);
    for (const kind of ['init', 'result'] as const) {
      const held = this.held.get(kind);
      if (!held) continue;
      this.written += Buffer.byteLength(held.line);
      text += held.line;
    }
    this.held.clear();
    return text;
  }

  /** The count of what was left out since the last one, when it is due. */
  private skippedNote(at: number, final: boolean): string {
    if (this.skipped.bytes === this.skippedNoted || (!final && at - this.notedAt < SKIPPED_NOTE_MS)) return '';
    this.skippedNoted = this.skipped.bytes;
    this.notedAt = at;
    return this.note({ type: 'log.skipped', at, run: this.options?.run ?? 0, ...this.skipped });
  }

  private note(note: LogNote): string {
    const line = `${JSON.stringify(note)}\n`;
    this.written += Buffer.byteLength(line);
    return line;
  }

  /** Writes the init and result lines still held, the count of what was left out if it changed since it was last written, and closes the file. */
  async close(): Promise<void> {
    try {
      const note = this.releaseHeld(Date.now()) + this.skippedNote(Date.now(), true);
      if (note) await this.handle.write(note);
    } finally {
      await this.handle.close();
    }
  }
}

/** Whether a bounded log may leave the event out: output and build lines, but never the agent's init or result. */
function isCuttable(event: SessionEvent): boolean {
  if (event.type === 'build.output') return true;
  if (event.type !== 'output') return false;
  return !event.agent?.some((a) => a.kind === 'init' || a.kind === 'result');
}

/**
 * An init or result line as a log past its bound keeps it: the raw line left out, only the
 * init and result events, each text cut: a result's to its last `textChars` characters
 * (where the answer concludes), its errors to ten of at most a tenth of that, ids to 200.
 */
function trimmedAgentLine(event: OutputEvent, textChars: number): OutputEvent {
  const agent = (event.agent ?? []).flatMap((a): AgentEvent[] => {
    if (a.kind === 'init') return [{ ...a, claudeSessionId: keepStart(a.claudeSessionId, 200), ...(a.model !== undefined ? { model: keepStart(a.model, 200) } : {}) }];
    if (a.kind !== 'result') return [];
    return [{
      ...a,
      ...(a.subtype !== undefined ? { subtype: keepStart(a.subtype, 200) } : {}),
      ...(a.text !== undefined ? { text: keepEnd(a.text, textChars) } : {}),
      ...(a.claudeSessionId !== undefined ? { claudeSessionId: keepStart(a.claudeSessionId, 200) } : {}),
      ...(a.errors !== undefined ? { errors: a.errors.slice(0, 10).map((e) => keepStart(e, Math.min(1000, Math.floor(textChars / 10)))) } : {}),
    }];
  });
  return { type: 'output', at: event.at, stream: event.stream, line: '', agent, ...(event.step !== undefined ? { step: event.step } : {}) };
}

/** Parses one log line, its notes included; undefined for a torn or foreign line. */
export function parseLogRecord(line: string): SessionEvent | LogNote | undefined {
  if (!line) return undefined;
  try {
    const value = JSON.parse(line) as SessionEvent | LogNote;
    return typeof value === 'object' && value !== null && typeof value.type === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a parsed log line is a note of the log's own rather than an event of the run. */
export function isLogNote(record: SessionEvent | LogNote): record is LogNote {
  return record.type === 'log.cut' || record.type === 'log.skipped';
}
