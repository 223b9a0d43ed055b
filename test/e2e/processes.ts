import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, generateKeyPairSync } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

export const CLI = fileURLToPath(new URL('../../dist/main/cldpd.js', import.meta.url));

/** A throwaway RSA key for the fake GitHub App. */
export function appPrivateKey(): string {
  return generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
}

/** A TCP port nobody listens on right now. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

/** A cldpd process (serve, worker or up) with its output in a log file. */
export class CldpdProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;

  constructor(readonly mode: string, env: NodeJS.ProcessEnv, readonly logFile: string, cwd?: string) {
    const log = createWriteStream(logFile, { flags: 'a' });
    this.child = spawn(process.execPath, [CLI, mode], { env, stdio: ['ignore', 'pipe', 'pipe'], ...(cwd ? { cwd } : {}) });
    this.child.stdout?.pipe(log);
    this.child.stderr?.pipe(log);
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  /** Stops the process: SIGTERM (a clean shutdown) or SIGKILL (a crash). */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    return this.exited;
  }
}

/** Sends a webhook delivery the way GitHub does, signed with `secret` unless it is undefined. */
export async function deliver(port: number, event: string, payload: unknown, options: { id: string; secret: string | undefined; path?: string }): Promise<number> {
  const body = JSON.stringify(payload);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'x-github-event': event, 'x-github-delivery': options.id, 'user-agent': 'GitHub-Hookshot/e2e' };
  if (options.secret !== undefined) headers['x-hub-signature-256'] = `sha256=${createHmac('sha256', options.secret).update(body).digest('hex')}`;
  const response = await fetch(`http://127.0.0.1:${port}${options.path ?? '/api/github/webhooks'}`, { method: 'POST', headers, body });
  await response.text();
  return response.status;
}
