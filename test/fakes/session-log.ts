import { isLogNote, parseLogRecord, type SessionEvent } from '../../src/core/index.js';

/** Parses one log line as an event; undefined for a torn or foreign line, or a note of the log's own. */
export function parseLogLine(line: string): SessionEvent | undefined {
  const record = parseLogRecord(line);
  return record && !isLogNote(record) ? record : undefined;
}
