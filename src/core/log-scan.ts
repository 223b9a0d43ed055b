import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { AgentSummaryAccumulator, type AgentSummary, type SpentBefore } from './agent-summary.js';
import { isTerminal, type SessionEvent } from './events.js';
import { isLogNote, parseLogRecord, type SkippedOutput } from './session-log.js';

type Terminal = Extract<SessionEvent, { type: 'container.exited' | 'error' }>;

/** What a session's log says about one run. */
export interface RunLogState {
  /** Whether `container.started` of the run is in the log. */
  readonly started: boolean;
  /** The run's terminal event, when it was logged. */
  readonly terminal: Terminal | undefined;
  /** Output events of the run per stream: those logged, and those its cut log counted. */
  readonly lines: { readonly stdout: number; readonly stderr: number };
  /** The run's part of the log: its bytes from `container.started` on, whether it was cut at its bound, and what was left out. */
  readonly log: { readonly bytes: number; readonly cut: boolean; readonly skipped: SkippedOutput };
  /** The last plain output lines of the run (at most `keep`; stream-json lines are not), for summaries. */
  readonly tail: readonly string[];
  /** What the agent said in the run's logged output, as a live run would have summed it up. */
  readonly agent: AgentSummary;
  /**
   * When the run's stdout, as far as the log kept it, stopped inside a line longer than a
   * piece: whether that line was being read as stream-json or as plain output (absent for a
   * cut log, which cannot tell).
   */
  readonly openLine?: 'stream-json' | 'plain';
  /** The refusals of the run's egress gateway that were logged, by `host:port`: the last count of each. */
  readonly blocked: Readonly<Record<string, number>>;
}

/** Options of {@link scanRun}. */
export interface ScanRunOptions {
  /** How many output lines `tail` keeps; 20 by default. */
  readonly keep?: number;
  /**
   * What the Claude session had spent before the run, given the run's logged terminal
   * event (the session's record may already include the run once it has ended); nothing
   * by default.
   */
  readonly before?: (terminal: Terminal | undefined) => SpentBefore;
}

/**
 * Reads a session log and tells where run `run` got to: whether it started, how many output
 * lines of each stream were logged, what the agent said in them, and its terminal event if
 * any. A missing log is an empty one. Streams the file, so a large log costs time, not memory.
 */
export async function scanRun(logPath: string, run: number, options: ScanRunOptions = {}): Promise<RunLogState> {
  const keep = options.keep ?? 20;
  let started = false;
  let terminal: RunLogState['terminal'];
  const lines = { stdout: 0, stderr: 0 };
  const tail: string[] = [];
  let agent = new AgentSummaryAccumulator();
  let current = 0;
  let bytes = 0;
  let cut = false;
  let skipped: SkippedOutput = { stdout: 0, stderr: 0, bytes: 0 };
  let open: RunLogState['openLine'];
  let blocked: Record<string, number> = {};
  const input = createReadStream(logPath, { encoding: 'utf8' });
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      const event = parseLogRecord(text);
      if (!event) continue;
      if (event.type === 'container.started') {
        current = event.run;
        if (current === run) {
          started = true;
          terminal = undefined;
          lines.stdout = 0;
          lines.stderr = 0;
          tail.length = 0;
          agent = new AgentSummaryAccumulator();
          bytes = 0;
          cut = false;
          skipped = { stdout: 0, stderr: 0, bytes: 0 };
          open = undefined;
          blocked = {};
        }
      }
      if (current !== run) continue;
      bytes += Buffer.byteLength(text) + 1;
      if (isLogNote(event)) {
        if (event.type === 'log.cut') cut = true;
        else skipped = { stdout: event.stdout, stderr: event.stderr, bytes: event.bytes };
      } else if (event.type === 'output') {
        // A setup step's output is not in the container's own log, which a re-attach replays.
        if (event.step === undefined) lines[event.stream] += 1;
        if (event.step === undefined && event.stream === 'stdout') open = !event.partial ? undefined : event.agent ? 'stream-json' : 'plain';
        if (event.agent) {
          agent.add(event.agent);
        } else {
          tail.push(event.line);
          if (tail.length > keep) tail.shift();
        }
      } else if (event.type === 'egress.blocked') {
        const key = `${event.host}:${event.port}`;
        blocked[key] = Math.max(blocked[key] ?? 0, event.count);
      } else if (isTerminal(event)) {
        terminal = event;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (options.before) agent.rebase(options.before(terminal));
  return { started, terminal, lines: { stdout: lines.stdout + skipped.stdout, stderr: lines.stderr + skipped.stderr }, tail, agent: agent.summary, log: { bytes, cut, skipped }, blocked, ...(open && !cut ? { openLine: open } : {}) };
}
