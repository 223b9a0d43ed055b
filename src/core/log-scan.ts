import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { isTerminal, type SessionEvent } from './events.js';
import { parseLogLine } from './session-log.js';

/** What a session's log says about one run. */
export interface RunLogState {
  /** Whether `container.started` of the run is in the log. */
  readonly started: boolean;
  /** The run's terminal event, when it was logged. */
  readonly terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }> | undefined;
  /** Output events of the run logged per stream. */
  readonly lines: { readonly stdout: number; readonly stderr: number };
  /** The last output lines of the run (at most `keep`), for summaries. */
  readonly tail: readonly string[];
}

/**
 * Reads a session log and tells where run `run` got to: whether it started, how many output
 * lines of each stream were logged, and its terminal event if any. A missing log is an
 * empty one. Streams the file, so a large log costs time, not memory.
 */
export async function scanRun(logPath: string, run: number, keep = 20): Promise<RunLogState> {
  let started = false;
  let terminal: RunLogState['terminal'];
  const lines = { stdout: 0, stderr: 0 };
  const tail: string[] = [];
  let current = 0;
  const input = createReadStream(logPath, { encoding: 'utf8' });
  try {
    for await (const text of createInterface({ input, crlfDelay: Infinity })) {
      const event = parseLogLine(text);
      if (!event) continue;
      if (event.type === 'container.started') {
        current = event.run;
        if (current === run) {
          started = true;
          terminal = undefined;
          lines.stdout = 0;
          lines.stderr = 0;
          tail.length = 0;
        }
        continue;
      }
      if (current !== run) continue;
      if (event.type === 'output') {
        lines[event.stream] += 1;
        tail.push(event.line);
        if (tail.length > keep) tail.shift();
      } else if (isTerminal(event)) {
        terminal = event;
      }
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { started, terminal, lines, tail };
}
