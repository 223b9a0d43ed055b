import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { isTerminal, type SessionEvent } from './events.js';
import { PRIVATE_FILE_MODE, privateDir } from './session-store.js';

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

/**
 * Appends session events to a JSON-lines file, one event per line. `append` resolves once
 * the bytes are written to the file, so a caller that emits after it never emits what the
 * log does not have.
 *
 * A run's log is bounded (`maxRunBytes`): past the bound its output lines are counted, not
 * written, after one `log.cut` note. What a later reader needs is still written: every
 * lifecycle event, and the agent's `init` and `result` lines (its session id, cost and
 * answer). The count of what was left out (`log.skipped`, at most every 5 s and before each
 * line written after the cut) lets a worker that re-attaches after a restart skip the lines
 * already shown: exactly up to the last line written, to within 5 s of output after it.
 */
export class SessionLog {
  private written: number;
  private cut: boolean;
  private skipped: { stdout: number; stderr: number; bytes: number };
  private skippedNoted: number;
  private notedAt = 0;

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
      // Plain output lines are most of any log: written without walking the object.
      const line = event.type === 'output' && !event.agent
        ? `{"type":"output","at":${event.at},"stream":"${event.stream}","line":${NEEDS_ESCAPE.test(event.line) ? JSON.stringify(event.line) : `"${event.line}"`}${event.partial ? ',"partial":true' : ''}}\n`
        : `${JSON.stringify(event)}\n`;
      if (max === undefined) {
        text += line;
        continue;
      }
      const bytes = Buffer.byteLength(line);
      if (isCuttable(event) && (this.cut || this.written + bytes > max)) {
        if (!this.cut) {
          this.cut = true;
          text += this.note({ type: 'log.cut', at: event.at, run: this.options?.run ?? 0, limitBytes: max });
        }
        if (event.type === 'output' && event.step === undefined) this.skipped[event.stream] += 1;
        this.skipped.bytes += bytes;
        continue;
      }
      // A line written after the cut comes after an exact count: a re-attach skips it, not what precedes it.
      if (this.cut) text += this.skippedNote(event.at, true);
      this.written += bytes;
      text += line;
    }
    if (max !== undefined) text += this.skippedNote(Date.now(), false);
    if (text) await this.handle.write(text);
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

  /** Writes the count of what was left out, if it changed since it was last written, and closes the file. */
  async close(): Promise<void> {
    try {
      const note = this.skippedNote(Date.now(), true);
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

/** Parses one log line as an event; undefined for a torn or foreign line, or a note of the log's own. */
export function parseLogLine(line: string): SessionEvent | undefined {
  const record = parseLogRecord(line);
  return record && !isLogNote(record) ? record : undefined;
}
