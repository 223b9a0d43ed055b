import { TranscriptPrinter, type Printed, type TranscriptOptions } from '../../src/cli/render.js';
import type { SessionEvent } from '../../src/core/index.js';

/** All of `events` as plain text, the way a live run shows them: for tests and tools. */
export function renderTranscript(events: readonly SessionEvent[], options: Omit<TranscriptOptions, 'mode'> & { mode?: TranscriptOptions['mode'] }): Printed[] {
  const printer = new TranscriptPrinter({ mode: 'live', ...options });
  return events.flatMap((e) => printer.event(e));
}
