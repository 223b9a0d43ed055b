import type { AgentEvent, SessionEvent } from './events.js';
import type { SplitLine } from './line-splitter.js';
import type { RunLogState } from './log-scan.js';
import { hideSecrets } from './redact.js';
import type { AgentStreamReader } from './agents/agent.js';
import { parseStreamJsonLine } from './stream-json.js';

/** What {@link OutputEvents} reads a run's output with. */
export interface OutputEventsOptions {
  /**
   * Values the container was given that whoever shows its output redacts: not hidden here,
   * but never cut in two between the pieces of an over-long line, so each reaches a
   * redactor whole.
   */
  readonly injected?: readonly string[] | undefined;
  /** The long line a re-attached run's logged lines stopped inside: the first piece read continues it. */
  readonly openLine?: RunLogState['openLine'] | undefined;
  /** The run's own tokens as they are now (they change while it runs): hidden from every line. */
  readonly tokens: () => readonly string[];
  /** Told what the agent said, line by line, in order. */
  readonly observe: (said: readonly AgentEvent[]) => void;
  /** Reads the agent's lines (see Agent.reader); Claude Code's stream-json when absent. */
  readonly reader?: AgentStreamReader | undefined;
}

/**
 * Turns one run's output lines into its output events, keeping what spans lines: a secret
 * (a token of the run, or a value it was given) cut in two by the line limit is found whole,
 * as a piece's last characters wait for the next; tokens are hidden before anything is
 * logged; and a long stream-json line of the agent's is read whole across its pieces
 * (within MAX_PARSED_LINE_BYTES). Lines must come in the order they were written, per stream.
 */
export class OutputEvents {
  /** Values hidden beside the run's own tokens. */
  private readonly hidden: string[] = [];
  /** Per stream, the end of a partial piece held back until the next (see toEvents). */
  private readonly carry = { stdout: '', stderr: '' };
  /** Per stream, whether the last piece read was partial: the next one continues its line. */
  private readonly open = { stdout: false, stderr: false };
  /** The stream-json line being read in pieces: its text while within MAX_PARSED_LINE_BYTES, and its size. */
  private long: LongLine | undefined;
  /** The injected values as a piece's end may begin them: as they are and JSON-escaped (see toEvents). */
  private readonly injectedForms: readonly string[];

  /** What the agent's lines say. */
  private readonly read: (line: string) => AgentEvent[];

  constructor(private readonly options: OutputEventsOptions) {
    const reader = options.reader;
    this.read = reader ? (line) => reader.line(line) : parseStreamJsonLine;
    this.injectedForms = (options.injected ?? []).flatMap((v) => [v, JSON.stringify(v).slice(1, -1)]);
    if (options.openLine) {
      this.open.stdout = true;
      if (options.openLine === 'stream-json') this.long = { parts: undefined, bytes: 0, chars: 0 };
    }
  }

  /** Hides these values too, from the next line on (the tokens a container re-attached to was given before). */
  hide(values: readonly string[]): void {
    this.hidden.push(...values);
  }

  /**
   * Lines a previous process of this run already logged, replayed by the engine after a
   * re-attach: not emitted again, but read by the agent's reader so what it keeps across lines
   * (a conversation's turns so far, tool calls told) is as it was. Whole stdout lines only.
   */
  replayed(stream: 'stdout' | 'stderr', lines: readonly SplitLine[]): void {
    if (stream !== 'stdout') return;
    for (const { line, partial } of lines) if (!partial) this.read(line);
  }

  /** A setup step's output: marked with its step, never read as the agent's words. */
  stepEvents(step: number, stream: 'stdout' | 'stderr', lines: SplitLine[]): SessionEvent[] {
    return this.toEvents(stream, lines, false).map((e) => ({ ...e, step }) as SessionEvent);
  }

  /**
   * Output events of `lines`; `agent` false for a setup step's output, which is never the
   * agent's words. A line of the agent's stdout that begins with `{` and is longer than a
   * piece is read as stream-json whole (up to MAX_PARSED_LINE_BYTES): its pieces are marked
   * as the agent's (`agent: []`), so no part of it is ever taken for plain output, and its
   * last piece carries what the whole line says; a line too long to parse, or not
   * stream-json, is what a tool returned, by its size only. The log keeps every piece.
   */
  toEvents(stream: 'stdout' | 'stderr', lines: SplitLine[], agent = true): SessionEvent[] {
    const at = Date.now();
    const tokens = this.options.tokens();
    const secrets = this.hidden.length > 0 ? [...this.hidden, ...tokens] : tokens;
    return lines.map(({ line: piece, partial }) => {
      // A token the run was given never reaches the log, whatever the agent printed; one cut
      // in two by the line limit is found whole: a piece's last characters wait for the next.
      // So do an injected value's, for the redactors of what leaves the host.
      let raw = this.carry[stream] + piece;
      this.carry[stream] = '';
      if (partial) {
        const held = Math.max(startOfAny(raw, secrets), startOfAny(raw, this.injectedForms));
        this.carry[stream] = raw.slice(raw.length - held);
        raw = raw.slice(0, raw.length - held);
      }
      const line = secrets.length > 0 ? hideSecrets(raw, secrets) : raw;
      const startsLine = !this.open[stream];
      this.open[stream] = partial;
      if (agent && stream === 'stdout') {
        if (startsLine && partial && line.charCodeAt(0) === 0x7b /* { */) this.long = { parts: [], bytes: 0, chars: 0 };
        const long = startsLine && !partial ? undefined : this.long;
        if (long) return this.longLineEvent(long, { at, stream, line, partial });
      }
      const said = agent && stream === 'stdout' && !partial ? this.read(line) : [];
      if (said.length > 0) {
        this.options.observe(said);
        return partial ? { type: 'output', at, stream, line, partial: true, agent: said } : { type: 'output', at, stream, line, agent: said };
      }
      return partial ? { type: 'output', at, stream, line, partial: true } : { type: 'output', at, stream, line };
    });
  }

  /** A piece of a long stream-json line: kept for parsing while the line is within bound; the last one says what the line said. */
  private longLineEvent(long: LongLine, piece: { at: number; stream: 'stdout'; line: string; partial: boolean }): SessionEvent {
    const { at, stream, line, partial } = piece;
    long.bytes += Buffer.byteLength(line);
    long.chars += line.length;
    if (long.parts && long.bytes <= MAX_PARSED_LINE_BYTES) long.parts.push(line);
    else long.parts = undefined;
    if (partial) return { type: 'output', at, stream, line, partial: true, agent: [] };
    this.long = undefined;
    const parsed = long.parts ? this.read(long.parts.join('')) : [];
    const said: AgentEvent[] = parsed.length > 0 ? parsed : [{ kind: 'tool_result', isError: false, chars: long.chars, lines: 1, firstLine: '' }];
    this.options.observe(said);
    return { type: 'output', at, stream, line, agent: said };
  }
}

/** A long stream-json line being read in pieces. */
interface LongLine {
  parts: string[] | undefined;
  bytes: number;
  chars: number;
}

/**
 * 8 MiB: a stream-json line longer than a piece is read whole up to this size to be
 * understood; a longer one is shown by its size only (its pieces are all in the log).
 */
const MAX_PARSED_LINE_BYTES = 8 * 1024 * 1024;

/**
 * Values longer than this (16 Ki characters: a PEM key is a few) are not held whole across
 * pieces: a piece's end is held back at most this much, and each check stays cheap.
 */
const MAX_HELD_CHARS = 16 * 1024;

/**
 * How many characters at the end of `text` begin one of `values` without finishing it: the
 * longest such end, which the next piece may complete (0 when none). Each value costs a
 * scan of the text's last `value.length - 1` characters.
 */
function startOfAny(text: string, values: readonly string[]): number {
  let held = 0;
  for (const value of values) {
    if (value.length < 2 || value.length > MAX_HELD_CHARS) continue;
    const first = value.charAt(0);
    for (let i = text.indexOf(first, Math.max(0, text.length - value.length + 1)); i !== -1 && text.length - i > held; i = text.indexOf(first, i + 1)) {
      if (value.startsWith(text.slice(i))) {
        held = text.length - i;
        break;
      }
    }
  }
  return held;
}
