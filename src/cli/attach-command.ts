import type { Writable } from 'node:stream';
import { CldpdError, type SessionTakeover } from '../core/index.js';
import { writeTo } from './stream-write.js';

/** The person's terminal, as `cldpd attach` needs it: present only when standard input and output are one. */
export interface TerminalIO {
  readonly input: NodeJS.ReadableStream & { setRawMode(raw: boolean): unknown; isRaw?: boolean };
  readonly output: Writable & { readonly columns?: number; readonly rows?: number; on(event: 'resize', listener: () => void): unknown; off(event: 'resize', listener: () => void): unknown };
  /** Registers `handler` for the terminal going away (SIGHUP) and for SIGTERM and SIGINT sent from elsewhere; returns a function that unregisters it. */
  readonly onHangup: (handler: () => void) => () => void;
}

/** How long the terminal's last output may take to arrive once its process has ended. */
const DRAIN_MS = 2000;

/**
 * `cldpd attach <session>`: Claude Code's own terminal UI on the session's conversation (see
 * SessionTakeover.attach), this terminal joined to it raw (every key, Ctrl+C included, goes to
 * Claude Code; the window's size follows). Resolves with Claude Code's exit code once the
 * person leaves it (or the terminal goes away), its container removed. Throws `InvalidInput`
 * without a terminal.
 */
export async function attachCommand(sessionId: string, takeover: SessionTakeover, terminal: TerminalIO | undefined, stderr: Writable): Promise<number> {
  if (!terminal) {
    throw new CldpdError('InvalidInput', '"cldpd attach" opens Claude Code\'s interactive UI, which needs a terminal: run it in one (standard input and output a TTY), not from a pipe or a script. "cldpd export" gives the conversation to take elsewhere.');
  }
  const size = (): { columns: number; rows: number } => ({ columns: terminal.output.columns || 80, rows: terminal.output.rows || 24 });
  const attached = await takeover.attach(sessionId, size());
  const agent = attached.process;
  await writeTo(stderr, `cldpd: attached to session ${sessionId} (Claude Code conversation ${attached.claudeSessionId}) in container ${attached.containerName}. Every key goes to Claude Code, Ctrl+C too; leave with /exit. The container is removed when you leave.\r\n`);
  const toProcess = (data: Buffer | string): void => {
    agent.stream.write(data);
  };
  const onResize = (): void => {
    void agent.resize(size()).catch(() => undefined);
  };
  const shown = new Promise<void>((resolve) => {
    agent.stream.on('end', resolve);
    agent.stream.on('close', resolve);
    agent.stream.on('error', () => resolve());
  });
  // A terminal that went away (EIO) takes nothing more; the hangup handler ends the container.
  const ignore = (): void => undefined;
  terminal.output.on('error', ignore);
  agent.stream.pipe(terminal.output, { end: false });
  const wasRaw = terminal.input.isRaw === true;
  terminal.input.setRawMode(true);
  terminal.input.on('data', toProcess);
  terminal.input.resume();
  terminal.output.on('resize', onResize);
  const release = terminal.onHangup(() => void attached.leave());
  let code: number;
  try {
    code = await agent.wait();
    await Promise.race([shown, new Promise((resolve) => setTimeout(resolve, DRAIN_MS).unref())]);
  } finally {
    release();
    terminal.output.off('resize', onResize);
    terminal.input.off('data', toProcess);
    terminal.input.setRawMode(wasRaw);
    terminal.input.pause();
    agent.stream.unpipe(terminal.output);
    await attached.leave();
    terminal.output.off('error', ignore);
  }
  await writeTo(stderr, `\ncldpd: left session ${sessionId}; its container is removed. Continue it: cldpd resume ${sessionId} --prompt '<what next>', or /cldpd resume on its issue.\n`);
  return code;
}
