import { open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { SessionEvent } from './events.js';
import { PRIVATE_FILE_MODE, privateDir } from './session-store.js';

/** Characters a JSON string must escape; lines without them are written as they are. */
const NEEDS_ESCAPE = /["\\\u0000-\u001f\ud800-\udfff]/;

/**
 * Appends session events to a JSON-lines file, one event per line. `append` resolves once
 * the bytes are written to the file, so a caller that emits after it never emits what the
 * log does not have.
 */
export class SessionLog {
  private constructor(private readonly handle: FileHandle, readonly path: string) {}

  /**
   * Opens (creating) the log for appending: the file 0600 in a 0700 directory, both
   * tightened when an older cldpd left them readable by all.
   */
  static async open(path: string): Promise<SessionLog> {
    await privateDir(dirname(path));
    const handle = await open(path, 'a', PRIVATE_FILE_MODE);
    try {
      await handle.chmod(PRIVATE_FILE_MODE);
    } catch (err) {
      await handle.close();
      throw err;
    }
    return new SessionLog(handle, path);
  }

  /** Writes `events` in one write. */
  async append(events: readonly SessionEvent[]): Promise<void> {
    if (events.length === 0) return;
    let text = '';
    for (const event of events) {
      // Plain output lines are most of any log: written without walking the object.
      text += event.type === 'output' && !event.agent
        ? `{"type":"output","at":${event.at},"stream":"${event.stream}","line":${NEEDS_ESCAPE.test(event.line) ? JSON.stringify(event.line) : `"${event.line}"`}${event.partial ? ',"partial":true' : ''}}\n`
        : `${JSON.stringify(event)}\n`;
    }
    await this.handle.write(text);
  }

  async close(): Promise<void> {
    await this.handle.close();
  }
}

/** Parses one log line; undefined for a torn or foreign line. */
export function parseLogLine(line: string): SessionEvent | undefined {
  if (!line) return undefined;
  try {
    const value = JSON.parse(line) as SessionEvent;
    return typeof value === 'object' && value !== null && typeof value.type === 'string' ? value : undefined;
  } catch {
    return undefined;
  }
}
