import { spawn, type ChildProcess } from 'node:child_process';

/**
 * A relay between a pseudo-terminal and pipes, in python3's pty module (on every machine the
 * suite runs on; node-pty would need a native build): the command runs on the terminal's
 * side, what it shows comes out on stdout, what is written to stdin is typed into it. It
 * exits with the command's exit code.
 */
const RELAY = String.raw`
import fcntl, os, pty, select, struct, sys, termios
rows, cols = int(sys.argv[1]), int(sys.argv[2])
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[3], sys.argv[3:])
fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
inputs = [fd, 0]
while True:
    ready, _, _ = select.select(inputs, [], [], 0.5)
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b''
        if not data:
            break
        os.write(1, data)
    if 0 in ready:
        data = os.read(0, 65536)
        if not data:
            inputs = [fd]
        else:
            os.write(fd, data)
_, status = os.waitpid(pid, 0)
sys.exit(os.waitstatus_to_exitcode(status) if hasattr(os, 'waitstatus_to_exitcode') else status >> 8)
`;

/** Pure: terminal output as plain text: escape sequences out, so a test can look for words on the screen. */
export function screenText(raw: string): string {
  return raw
    .replace(/\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)/g, '')
    .replace(/\x1b\[[0-9;?<>=]*[ -/]*[@-~]/g, ' ')
    .replace(/\x1b[()][A-Za-z0-9]/g, '')
    .replace(/\x1b[=>78]/g, '')
    .replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
}

/** A command on a pseudo-terminal of `rows` × `columns`, driven from a test. */
export class PseudoTerminal {
  private readonly child: ChildProcess;
  private raw = '';
  readonly exited: Promise<number | null>;

  constructor(argv: readonly string[], env: NodeJS.ProcessEnv, size = { rows: 40, columns: 120 }) {
    this.child = spawn('python3', ['-c', RELAY, String(size.rows), String(size.columns), ...argv], { env, stdio: ['pipe', 'pipe', 'inherit'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      this.raw += d.toString('utf8');
    });
    this.exited = new Promise((resolve) => this.child.on('close', (code) => resolve(code)));
  }

  /** Everything the terminal has shown so far, as plain text. */
  get screen(): string {
    return screenText(this.raw);
  }

  /** Types `text` (control characters as they are: "\r" is Enter). */
  type(text: string): void {
    this.child.stdin?.write(text);
  }

  /** Waits until the terminal has shown `pattern` (in plain text, spaces ignored) after `from` characters of it, failing after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 60_000, from = 0): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pattern.test(this.screen.slice(from).replace(/\s+/g, ''))) {
      if (Date.now() > deadline) throw new Error(`the terminal did not show ${pattern} within ${timeoutMs} ms; it shows:\n${this.screen.slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /**
   * Waits until the terminal has shown nothing new for `quietMs` (a screen drawn and waiting
   * for a key: a key pressed while it is still being set up may go to a screen about to be
   * drawn afresh), failing after `timeoutMs`.
   */
  async settle(quietMs = 1500, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let seen = this.raw.length;
    let since = Date.now();
    while (Date.now() - since < quietMs) {
      if (Date.now() > deadline) throw new Error(`the terminal did not settle within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
      if (this.raw.length !== seen) {
        seen = this.raw.length;
        since = Date.now();
      }
    }
  }

  /** Waits for the command's exit code, failing after `timeoutMs` (the command is killed then). */
  async exit(timeoutMs = 60_000): Promise<number | null> {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([this.exited, new Promise<never>((_, reject) => (timer = setTimeout(() => {
        this.child.kill('SIGKILL');
        reject(new Error(`the terminal's command did not exit within ${timeoutMs} ms; it shows:\n${this.screen.slice(-3000)}`));
      }, timeoutMs)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}
