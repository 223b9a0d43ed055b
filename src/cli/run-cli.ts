import { open } from 'node:fs/promises';
import type { Writable } from 'node:stream';
import {
  CldpdError, isCldpdError, isTerminal, listPods, parseLogLine,
  type Dispatcher, type PodSource, type Runner, type Session, type SessionEvent, type SessionStore,
} from '../core/index.js';
import { parseCommand, USAGE, UsageError, type Command } from './args.js';
import { renderEvent } from './render.js';

/** What the CLI works with; built by the composition root once the pods directory is known. */
export interface CliContext {
  readonly dispatcher: Dispatcher;
  readonly runner: Runner;
  readonly store: SessionStore;
  readonly pods: PodSource;
}

/** The CLI's outside world, injectable for tests. */
export interface CliIO {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Registers `handler` for SIGINT, SIGTERM and a reader that went away (EPIPE); returns a function that unregisters it. */
  readonly onInterrupt: (handler: () => void) => () => void;
  readonly version: string;
  /** Milliseconds between polls of `logs -f`. */
  readonly followIntervalMs?: number;
}

/** Writes, waiting for the stream to drain when its buffer is full; a closed stream takes nothing and never blocks. */
async function write(stream: Writable, text: string): Promise<void> {
  if (stream.destroyed || stream.writableEnded) return;
  if (stream.write(text)) return;
  await new Promise<void>((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      resolve();
    };
    stream.once('drain', done);
    stream.once('close', done);
  });
}

/**
 * Runs one CLI invocation and resolves with the process exit code: the container's for
 * start and resume, 0/1 for the others, 2 for a command line it does not understand.
 */
export async function runCli(argv: readonly string[], makeContext: (podsDir: string | undefined) => CliContext, io: CliIO): Promise<number> {
  let command: Command;
  try {
    command = parseCommand(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      await write(io.stderr, `cldpd: ${err.message}\n\n${USAGE}\n`);
      return 2;
    }
    throw err;
  }
  if (command.name === 'help') {
    await write(io.stdout, `${USAGE}\n`);
    return 0;
  }
  if (command.name === 'version') {
    await write(io.stdout, `${io.version}\n`);
    return 0;
  }
  const context = makeContext('podsDir' in command ? command.podsDir : undefined);
  try {
    return await execute(command, context, io);
  } catch (err) {
    if (isCldpdError(err)) {
      await write(io.stderr, `cldpd: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}

async function execute(command: Exclude<Command, { name: 'help' | 'version' }>, ctx: CliContext, io: CliIO): Promise<number> {
  switch (command.name) {
    case 'start':
    case 'resume': {
      // Ctrl+C from here on stops the session; a signal before the session exists cancels the start.
      let interrupted = false;
      let session: Session | undefined;
      const release = io.onInterrupt(() => {
        interrupted = true;
        if (session) {
          void write(io.stderr, `cldpd: stopping session ${session.id}…\n`);
          void session.stop().catch(() => undefined);
        }
      });
      try {
        session = command.name === 'start'
          ? await ctx.dispatcher.start(command.pod, { issueUrl: command.issueUrl, prompt: command.prompt })
          : await ctx.dispatcher.resume(command.session, command.prompt);
        if (interrupted) void session.stop().catch(() => undefined);
        if (!command.json) await write(io.stderr, `cldpd: session ${session.id}\n`);
        return await follow(session, command.json, io);
      } finally {
        release();
      }
    }
    case 'stop':
      await ctx.dispatcher.stop(command.session);
      await write(io.stderr, `cldpd: session ${command.session} stopped\n`);
      return 0;
    case 'ps':
      return ps(ctx, command.all, command.json, io);
    case 'logs':
      return logs(ctx, command.session, command.follow, command.json, io);
    case 'pods':
      return pods(ctx, command.json, io);
    case 'doctor':
      return doctor(ctx, command.json, io);
  }
}

async function follow(session: Session, json: boolean, io: CliIO): Promise<number> {
  for await (const event of session.events()) await show(event, session.id, json, io);
  const { runCostUsd, sessionCostUsd } = session.agent;
  if (!json && runCostUsd !== undefined) {
    const total = sessionCostUsd !== undefined && session.run > 1 ? `, $${sessionCostUsd.toFixed(4)} for the session` : '';
    await write(io.stderr, `cldpd: cost $${runCostUsd.toFixed(4)} this run${total}\n`);
  }
  try {
    return await session.wait();
  } catch {
    return 1; // the error event was shown already
  }
}

async function show(event: SessionEvent, sessionId: string, json: boolean, io: CliIO): Promise<void> {
  if (json) {
    await write(io.stdout, `${JSON.stringify({ session: sessionId, ...event })}\n`);
    return;
  }
  for (const printed of renderEvent(event, sessionId)) await write(printed.to === 'stdout' ? io.stdout : io.stderr, printed.text);
}

async function ps(ctx: CliContext, all: boolean, json: boolean, io: CliIO): Promise<number> {
  const containers = await ctx.dispatcher.containers(all);
  const rows = containers.map((c) => ({ session: c.sessionId, pod: c.pod, state: c.container.state, container: c.container.name, issue: c.issueUrl ?? '', created: new Date(c.container.createdAt).toISOString() }));
  if (all) {
    const seen = new Set(rows.map((r) => r.session));
    for (const record of await ctx.store.list()) {
      if (seen.has(record.id)) continue;
      const state = record.last?.error ? 'failed' : record.last ? `exited (${record.last.exitCode})` : 'unknown';
      rows.push({ session: record.id, pod: record.pod, state, container: '', issue: record.issueUrl ?? '', created: new Date(record.createdAt).toISOString() });
    }
  }
  if (json) {
    for (const row of rows) await write(io.stdout, `${JSON.stringify(row)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    await write(io.stderr, all ? 'cldpd: no sessions on this host\n' : 'cldpd: no running sessions (cldpd ps --all shows finished ones)\n');
    return 0;
  }
  await write(io.stdout, table(['SESSION', 'POD', 'STATE', 'CREATED', 'ISSUE'], rows.map((r) => [r.session, r.pod, r.state, r.created, r.issue])));
  return 0;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

async function logs(ctx: CliContext, sessionId: string, followLog: boolean, json: boolean, io: CliIO): Promise<number> {
  await ctx.store.load(sessionId); // SessionNotFound with a helpful message
  const file = await open(ctx.store.logPath(sessionId), 'r').catch(() => undefined);
  if (!file) throw new CldpdError('SessionNotFound', `Session ${sessionId} has no log yet.`);
  try {
    let position = 0;
    let rest = '';
    let lastTerminal = false;
    const buffer = Buffer.alloc(256 * 1024);
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const text = rest + buffer.toString('utf8', 0, bytesRead);
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          const event = parseLogLine(line);
          if (!event) continue;
          lastTerminal = isTerminal(event);
          await show(event, sessionId, json, io);
        }
        continue;
      }
      if (!followLog) return 0;
      if (lastTerminal) {
        const running = (await ctx.dispatcher.containers(false)).some((c) => c.sessionId === sessionId);
        if (!running) return 0;
      }
      await new Promise((resolve) => setTimeout(resolve, io.followIntervalMs ?? 250));
    }
  } finally {
    await file.close();
  }
}

async function pods(ctx: CliContext, json: boolean, io: CliIO): Promise<number> {
  const listing = await listPods(ctx.pods);
  if (json) {
    for (const p of listing) await write(io.stdout, `${JSON.stringify(p.pod ? { name: p.name, valid: true, image: p.pod.config.image, dir: p.pod.dir } : { name: p.name, valid: false, error: p.error.message })}\n`);
  } else if (listing.length === 0) {
    await write(io.stderr, `cldpd: no pods in ${ctx.pods.podsDir}: create ${ctx.pods.podsDir}/<name>/Dockerfile\n`);
  } else {
    await write(io.stdout, table(['POD', 'STATUS', 'IMAGE / PROBLEM'], listing.map((p) => [p.name, p.pod ? 'ok' : 'invalid', p.pod ? p.pod.config.image : p.error.message])));
  }
  return listing.every((p) => p.pod) ? 0 : 1;
}

async function doctor(ctx: CliContext, json: boolean, io: CliIO): Promise<number> {
  const checks: Array<{ check: string; ok: boolean; detail: string }> = [];
  try {
    const v = await ctx.runner.preflight();
    checks.push({ check: 'docker', ok: true, detail: `engine ${v.version} (API ${v.apiVersion})` });
  } catch (err) {
    checks.push({ check: 'docker', ok: false, detail: (err as Error).message });
  }
  try {
    const listing = await listPods(ctx.pods);
    checks.push({ check: 'pods directory', ok: true, detail: `${ctx.pods.podsDir} (${listing.length} pods)` });
    for (const p of listing) checks.push({ check: `pod ${p.name}`, ok: !!p.pod, detail: p.pod ? p.pod.config.image : p.error.message });
  } catch (err) {
    checks.push({ check: 'pods directory', ok: false, detail: (err as Error).message });
  }
  for (const c of checks) {
    await write(io.stdout, json ? `${JSON.stringify(c)}\n` : `${c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}\n`);
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}
