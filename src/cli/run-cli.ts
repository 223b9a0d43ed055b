import { StringDecoder } from 'node:string_decoder';
import { open, readFile } from 'node:fs/promises';
import type { Readable, Writable } from 'node:stream';
import {
  agentNamed,
  CldpdError, imageWarnings, isCldpdError, isLogNote, messageOf, isTerminal, listPods, parseLogRecord, type LogNote, type PodConfig, type EngineInfo,
  type Dispatcher, type HostInventory, type SessionTakeover, type PodListing, type RemovedSession, type PodSource, type Runner, type Session, type SessionEvent, type SessionStore,
} from '../core/index.js';
import { parseCommand, USAGE, usageHint, UsageError, type Command } from './args.js';
import { attachCommand, type TerminalIO } from './attach-command.js';
import { exportCommand, type ExportPlaces } from './export-command.js';
import { TranscriptPrinter, type Printed } from './render.js';
import { createStyle, type Style } from './style.js';
import { formatAge, formatBytes, volumeRows } from './volumes-view.js';
import { writeTo as write } from './stream-write.js';
import { formatRule } from '../gateway/rules.js';

/** What the CLI works with; built by the composition root once the pods directory is known. */
export interface CliContext {
  readonly dispatcher: Dispatcher;
  /** This host's containers and volumes: `ps`, `volumes` and `gc`. */
  readonly inventory: HostInventory;
  readonly runner: Runner;
  readonly store: SessionStore;
  readonly pods: PodSource;
  /** A person taking sessions over (`attach`, `export`), and where this user's Claude Code keeps its state. */
  readonly takeover?: { readonly sessions: SessionTakeover } & Omit<ExportPlaces, 'cwd'>;
  /** Connects what `cldpd gc` needs to remove an issue's sessions (the deployment's Redis); rejects saying why it cannot. */
  readonly retirer?: () => Promise<IssueRetirer>;
}

/** What removing an issue's sessions did: kept them (why), or removed this host's (and, when it owns the issue, its keys and feeds). */
export type IssueRetirement =
  | { readonly kind: 'kept'; readonly reason: string }
  | { readonly kind: 'elsewhere'; readonly removed: readonly RemovedSession[] }
  | { readonly kind: 'removed'; readonly removed: readonly RemovedSession[]; readonly feeds: readonly string[]; readonly keys: number };

/** Removes a closed issue's sessions on this host, as retention does (the services' retireIssue, which needs Redis). */
export interface IssueRetirer {
  /** Only when the issue has been closed since before `closedBefore`; `dryRun` only says. */
  retire(issueUrl: string, closedBefore: number, dryRun: boolean): Promise<IssueRetirement>;
  close(): Promise<void>;
}

/** The CLI's outside world, injectable for tests. */
export interface CliIO {
  readonly stdout: Writable;
  readonly stderr: Writable;
  /** Where `--prompt-file -` reads from. */
  readonly stdin?: Readable;
  /** Registers `handler` for SIGINT, SIGTERM and a reader that went away (EPIPE); returns a function that unregisters it. */
  readonly onInterrupt: (handler: () => void) => () => void;
  readonly version: string;
  /** Milliseconds between polls of `logs -f`. */
  readonly followIntervalMs?: number;
  /** Whether each stream gets colour (see colorEnabled); none when omitted. */
  readonly color?: { readonly stdout: boolean; readonly stderr: boolean };
  /** The clock, for ages in `ps`. */
  readonly now?: () => number;
  /** The person's terminal, when standard input and output are one (`attach`). */
  readonly terminal?: TerminalIO;
  /** The working directory (`export --out` is relative to it); the process's by default. */
  readonly cwd?: string;
}

function stylesOf(io: CliIO): { stdout: Style; stderr: Style } {
  return { stdout: createStyle(io.color?.stdout ?? false), stderr: createStyle(io.color?.stderr ?? false) };
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
      await write(io.stderr, `${stylesOf(io).stderr.red(`cldpd: ${err.message}`)}\n${usageHint(err.command)}\n`);
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
      await write(io.stderr, `${stylesOf(io).stderr.red(`cldpd: ${err.message}`)}\n`);
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
        const prompt = command.promptFile !== undefined ? await readPrompt(command.promptFile, io) : command.prompt;
        session = command.name === 'start'
          ? await ctx.dispatcher.start(command.pod, { issueUrl: command.issueUrl, prompt })
          : await ctx.dispatcher.resume(command.session, prompt ?? '');
        if (interrupted) void session.stop().catch(() => undefined);
        if (!command.json) await write(io.stderr, `${stylesOf(io).stderr.dim(`cldpd: session ${session.id} · pod ${session.podName}`)}\n`);
        return await follow(session, command, io);
      } finally {
        release();
      }
    }
    case 'stop':
      await ctx.dispatcher.stop(command.session);
      await write(io.stderr, `cldpd: session ${command.session} stopped\n`);
      return 0;
    case 'attach':
      return attachCommand(command.session, takeoverOf(ctx).sessions, io.terminal, io.stderr);
    case 'export': {
      const { sessions, ...places } = takeoverOf(ctx);
      return exportCommand(command, sessions, { ...places, cwd: io.cwd ?? process.cwd() }, io);
    }
    case 'ps':
      return ps(ctx, command.all, command.json, io);
    case 'logs':
      return logs(ctx, command, io);
    case 'volumes':
      return volumes(ctx, command.json, io);
    case 'volumes rm':
      return removeVolumes(ctx, command.targets, io);
    case 'pods':
      return pods(ctx, command.json, io);
    case 'gc':
      return gc(ctx, command, io);
    case 'doctor':
      return doctor(ctx, command.json, io);
  }
}

function takeoverOf(ctx: CliContext): NonNullable<CliContext['takeover']> {
  if (!ctx.takeover) throw new CldpdError('InvalidInput', 'This cldpd cannot take sessions over (no takeover in its context).');
  return ctx.takeover;
}

/** The prompt from a file, or from standard input for "-". */
async function readPrompt(file: string, io: CliIO): Promise<string> {
  try {
    if (file !== '-') return await readFile(file, 'utf8');
    if (!io.stdin) throw new Error('no standard input');
    const chunks: Buffer[] = [];
    for await (const chunk of io.stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  } catch (err) {
    throw new CldpdError('InvalidInput', `Cannot read the prompt from ${file === '-' ? 'standard input' : file} (${(err as Error).message}). Check the path given to --prompt-file.`, { cause: err });
  }
}

async function follow(session: Session, options: { json: boolean; verbose: boolean }, io: CliIO): Promise<number> {
  const printer = new TranscriptPrinter({ sessionId: session.id, mode: 'live', verbose: options.verbose, style: stylesOf(io) });
  let terminal: Extract<SessionEvent, { type: 'container.exited' | 'error' }> | undefined;
  for await (const event of session.events()) {
    if (isTerminal(event)) terminal = event;
    await show(event, session.id, options.json ? undefined : printer, io);
  }
  const { runCostUsd, sessionCostUsd } = session.agent;
  if (!options.json) await print(io, printer.end({ terminal, run: session.run, ...(runCostUsd !== undefined ? { runCostUsd } : {}), ...(sessionCostUsd !== undefined ? { sessionCostUsd } : {}) }));
  try {
    return await session.wait();
  } catch {
    return 1; // the error event was shown already
  }
}

async function print(io: CliIO, lines: readonly Printed[]): Promise<void> {
  for (const printed of lines) await write(printed.to === 'stdout' ? io.stdout : io.stderr, printed.text);
}

/** One event: as a JSON line when there is no printer, else as the printer shows it. */
async function show(event: SessionEvent, sessionId: string, printer: TranscriptPrinter | undefined, io: CliIO): Promise<void> {
  if (!printer) {
    await write(io.stdout, `${JSON.stringify({ session: sessionId, ...event })}\n`);
    return;
  }
  await print(io, printer.event(event));
}

async function ps(ctx: CliContext, all: boolean, json: boolean, io: CliIO): Promise<number> {
  const containers = await ctx.inventory.containers(all);
  const now = (io.now ?? Date.now)();
  type Row = { session: string; pod: string; state: string; container: string; issue: string; created: string; createdAt: number; since?: number; endedAt?: string; runs?: number; costUsd?: number; lastRunCostUsd?: number; turns?: number };
  const rows: Row[] = containers.map((c) => ({ session: c.sessionId, pod: c.pod, state: c.container.state, container: c.container.name, issue: c.issueUrl ?? '', created: new Date(c.container.createdAt).toISOString(), createdAt: c.container.createdAt, since: c.container.createdAt }));
  const records = new Map((await ctx.store.list()).map((r) => [r.id, r]));
  if (all) {
    const seen = new Set(rows.map((r) => r.session));
    for (const record of records.values()) {
      if (seen.has(record.id)) continue;
      const last = record.last;
      const state = !last ? 'unknown' : last.error ? 'failed' : last.reason === 'stopped' ? 'stopped' : last.reason === 'timeout' ? 'timed out' : `exited (${last.exitCode})`;
      rows.push({ session: record.id, pod: record.pod, state, container: '', issue: record.issueUrl ?? '', created: new Date(record.createdAt).toISOString(), createdAt: record.createdAt, ...(last ? { endedAt: new Date(last.endedAt).toISOString(), since: last.endedAt } : {}) });
    }
  }
  for (const row of rows) {
    const record = records.get(row.session);
    if (!record) continue;
    row.runs = record.runs;
    if (record.costUsd !== undefined) row.costUsd = record.costUsd;
    if (record.last?.costUsd !== undefined) row.lastRunCostUsd = record.last.costUsd;
    if (record.turns !== undefined) row.turns = record.turns;
  }
  if (json) {
    for (const { createdAt: _, since: __, ...row } of rows) await write(io.stdout, `${JSON.stringify(row)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    await write(io.stderr, all ? 'cldpd: no sessions on this host\n' : 'cldpd: no running sessions (cldpd ps --all shows finished ones)\n');
    return 0;
  }
  const money = (amount: number | undefined): string => (amount === undefined ? '-' : `$${amount.toFixed(2)}`);
  // Like docker ps: how long a running session has run, how long ago a finished one ended.
  const status = (r: Row): string => {
    if (r.since === undefined) return r.state;
    if (r.state === 'running') return `running for ${formatAge(r.since, now).replace(/ ago$/, '')}`;
    return r.endedAt ? `${r.state} ${formatAge(r.since, now)}` : r.state;
  };
  await write(io.stdout, table(
    ['SESSION', 'POD', 'STATUS', 'RUNS', 'LAST RUN', 'TOTAL', 'CREATED', 'ISSUE'],
    rows.map((r) => [r.session, r.pod, status(r), r.runs === undefined ? '-' : String(r.runs), money(r.lastRunCostUsd), money(r.costUsd), formatAge(r.createdAt, now), r.issue]),
  ));
  return 0;
}

function table(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  return [head, ...rows].map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ').trimEnd()).join('\n') + '\n';
}

/**
 * `cldpd logs`: everything the session's log holds, on stdout (build, notes, output and
 * errors alike), so `cldpd logs X | less` or `| grep` sees all of it; `--json` gives the
 * events as they are stored.
 */
async function logs(ctx: CliContext, command: { session: string; follow: boolean; json: boolean; verbose: boolean }, io: CliIO): Promise<number> {
  const { session: sessionId, follow: followLog } = command;
  await ctx.store.load(sessionId); // SessionNotFound with a helpful message
  const printer = command.json ? undefined : new TranscriptPrinter({ sessionId, mode: 'log', verbose: command.verbose, style: { stdout: stylesOf(io).stdout, stderr: stylesOf(io).stdout } });
  const file = await open(ctx.store.logPath(sessionId), 'r').catch(() => undefined);
  if (!file) throw new CldpdError('SessionNotFound', `Session ${sessionId} has no log yet.`);
  try {
    let position = 0;
    let rest = '';
    let lastTerminal = false;
    let skipped: Extract<LogNote, { type: 'log.skipped' }> | undefined;
    const buffer = Buffer.alloc(256 * 1024);
    // A read may end inside a character: the decoder keeps its first bytes for the next read.
    const decoder = new StringDecoder('utf8');
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, position);
      if (bytesRead > 0) {
        position += bytesRead;
        const text = rest + decoder.write(buffer.subarray(0, bytesRead));
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        for (const line of lines) {
          const record = parseLogRecord(line);
          if (!record) continue;
          if (isLogNote(record)) {
            if (!printer) await write(io.stdout, `${JSON.stringify({ session: sessionId, ...record })}\n`);
            else if (record.type === 'log.cut') await print(io, printer.logNote(record));
            else skipped = record; // the count so far: said once, where the run ends
            continue;
          }
          if (isTerminal(record) && skipped && printer) await print(io, printer.logSkipped(skipped));
          if (isTerminal(record)) skipped = undefined;
          lastTerminal = isTerminal(record);
          await show(record, sessionId, printer, io);
        }
        continue;
      }
      if (skipped && printer && !followLog) await print(io, printer.logSkipped(skipped));
      if (!followLog) return 0;
      if (lastTerminal) {
        const running = (await ctx.inventory.containers(false)).some((c) => c.sessionId === sessionId);
        if (!running) return 0;
      }
      await new Promise((resolve) => setTimeout(resolve, io.followIntervalMs ?? 250));
    }
  } finally {
    await file.close();
  }
}

async function volumes(ctx: CliContext, json: boolean, io: CliIO): Promise<number> {
  const rows = await ctx.inventory.volumes();
  if (json) {
    for (const row of rows) await write(io.stdout, `${JSON.stringify(row)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    await write(io.stderr, 'cldpd: no volumes: sessions of pods that persist a path keep one per path\n');
    return 0;
  }
  const [head, ...cells] = volumeRows(rows, (io.now ?? Date.now)());
  await write(io.stdout, table(head as string[], cells));
  const total = rows.reduce((sum, r) => sum + (r.sizeBytes ?? 0), 0);
  await write(io.stderr, stylesOf(io).stderr.dim(`cldpd: ${rows.length} volume${rows.length === 1 ? '' : 's'}, ${formatBytes(total)}; remove a session's with "cldpd volumes rm <session>"`) + '\n');
  return 0;
}

/** `cldpd volumes rm`: every target in turn; exit 1 when anything was refused. */
async function removeVolumes(ctx: CliContext, targets: readonly string[], io: CliIO): Promise<number> {
  const style = stylesOf(io);
  let refusedAny = false;
  for (const target of targets) {
    const { removed, refused } = await ctx.inventory.removeVolumes(target);
    for (const v of removed) {
      const shared = v.sharedWith.length > 0 ? ` (also used by ${v.sharedWith.join(', ')})` : '';
      await write(io.stdout, `${v.existed ? 'removed' : 'already gone'}  ${v.name}${v.path ? `  ${v.path}` : ''}${shared}\n`);
    }
    for (const v of refused) await write(io.stderr, `${style.stderr.red(`cldpd: kept ${v.name}: ${v.reason}`)}\n`);
    if (removed.length === 0 && refused.length === 0) await write(io.stderr, `cldpd: ${target} has no volumes\n`);
    refusedAny ||= refused.length > 0;
  }
  return refusedAny ? 1 : 0;
}

/**
 * `cldpd gc`: removes this host's finished sessions, saying each and the space freed;
 * `--dry-run` only says. A session started from a terminal goes once it last changed longer
 * ago than `--older-than`. An issue's sessions go only once Redis says the issue has been
 * closed that long (as retention does, with the issue's keys and live feeds); never while
 * it is open, and never when there is no Redis to ask.
 */
async function gc(ctx: CliContext, command: Extract<Command, { name: 'gc' }>, io: CliIO): Promise<number> {
  const now = Date.now();
  const cutoff = now - command.olderThanMs;
  const records = await ctx.store.list();
  const terminal = records.filter((r) => !r.issueUrl && r.updatedAt < cutoff).map((r) => r.id);
  const issueUrls = [...new Set(records.flatMap((r) => (r.issueUrl ? [r.issueUrl] : [])))];
  const { removed, kept } = await ctx.inventory.removeSessions(terminal, { dryRun: command.dryRun });
  const all = [...removed];
  const keptAll: Array<{ sessionId: string; reason: string }> = [...kept];
  const retired: Array<{ issueUrl: string; keys: number; feeds: number }> = [];
  let failed = false;
  if (issueUrls.length > 0) {
    let retirer: IssueRetirer | undefined;
    let unavailable = '';
    try {
      retirer = await ctx.retirer?.();
      if (!retirer) unavailable = 'there is no Redis to say whether its issue is closed';
    } catch (err) {
      unavailable = messageOf(err);
      // A Redis that is configured but does not answer fails the command; none configured is a terminal-only machine.
      failed = !(err instanceof CldpdError) && (err as { name?: string }).name !== 'ConfigError';
    }
    try {
      for (const issueUrl of issueUrls) {
        // Said for the sessions old enough that a reader might expect them gone.
        const ids = records.filter((r) => r.issueUrl === issueUrl && r.updatedAt < cutoff).map((r) => r.id);
        if (!retirer) {
          keptAll.push(...ids.map((sessionId) => ({ sessionId, reason: `an issue's session, and ${unavailable}` })));
          continue;
        }
        const outcome = await retirer.retire(issueUrl, cutoff, command.dryRun).catch((err: unknown): IssueRetirement => {
          failed = true;
          return { kind: 'kept', reason: messageOf(err) };
        });
        if (outcome.kind === 'kept') keptAll.push(...ids.map((sessionId) => ({ sessionId, reason: outcome.reason })));
        else all.push(...outcome.removed);
        if (outcome.kind === 'removed') retired.push({ issueUrl, keys: outcome.keys, feeds: outcome.feeds.length });
      }
    } finally {
      await retirer?.close();
    }
  }
  const action = command.dryRun ? 'would-remove' : 'removed';
  if (command.json) {
    for (const r of all) await write(io.stdout, `${JSON.stringify({ ...r, action, lastActive: r.lastActive ? new Date(r.lastActive).toISOString() : null })}\n`);
    for (const r of retired) await write(io.stdout, `${JSON.stringify({ issueUrl: r.issueUrl, action, redisKeys: r.keys, liveFeeds: r.feeds })}\n`);
    for (const k of keptAll) await write(io.stdout, `${JSON.stringify({ sessionId: k.sessionId, action: 'kept', reason: k.reason })}\n`);
    return failed ? 1 : 0;
  }
  const verb = command.dryRun ? 'would remove' : 'removed';
  for (const r of all) await write(io.stdout, `${verb}  ${r.sessionId}  ${r.issueUrl ?? 'terminal session'}  last active ${formatAge(r.lastActive, now)}  ${r.containers} container${r.containers === 1 ? '' : 's'}, ${r.volumes.length} volume${r.volumes.length === 1 ? '' : 's'}, ${formatBytes(r.bytes)}\n`);
  for (const r of retired) await write(io.stdout, `${verb}  ${r.issueUrl}  its ${r.keys} Redis key${r.keys === 1 ? '' : 's'} and ${r.feeds} live feed${r.feeds === 1 ? '' : 's'}\n`);
  for (const k of keptAll) await write(io.stderr, `cldpd: kept ${k.sessionId}: ${k.reason}\n`);
  const freed = all.reduce((sum, r) => sum + r.bytes, 0);
  await write(io.stdout, `${command.dryRun ? 'would free' : 'freed'} ${formatBytes(freed)} (${all.length} session${all.length === 1 ? '' : 's'})${command.dryRun ? '; nothing was removed (--dry-run)' : ''}\n`);
  return failed ? 1 : 0;
}

/** Warnings about each valid pod's built image; a Docker engine that does not answer gives none. */
async function warningsOf(ctx: CliContext, listing: PodListing[], deep: boolean): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const p of listing) {
    if (!p.pod) continue;
    found.set(p.name, await imageWarnings(p.pod, ctx.runner, deep).catch(() => []));
  }
  return found;
}

async function pods(ctx: CliContext, json: boolean, io: CliIO): Promise<number> {
  const listing = await listPods(ctx.pods);
  const warnings = await warningsOf(ctx, listing, false);
  if (json) {
    for (const p of listing) await write(io.stdout, `${JSON.stringify(p.pod ? { name: p.name, valid: true, agent: p.pod.config.agent, limits: agentLimits(p.pod.config), image: p.pod.config.image, dir: p.pod.dir, egress: p.pod.config.egress.open ? 'open' : p.pod.config.egress.rules.map(formatRule), warnings: warnings.get(p.name) ?? [] } : { name: p.name, valid: false, error: p.error.message })}\n`);
  } else if (listing.length === 0) {
    await write(io.stderr, `cldpd: no pods in ${ctx.pods.podsDir}: create ${ctx.pods.podsDir}/<name>/Dockerfile\n`);
  } else {
    await write(io.stdout, table(['POD', 'STATUS', 'AGENT', 'EGRESS', 'IMAGE / PROBLEM'], listing.map((p) => {
      const warned = warnings.get(p.name) ?? [];
      return [p.name, p.pod ? (warned.length > 0 ? 'warning' : 'ok') : 'invalid', p.pod ? agentOf(p.pod.config) : '', p.pod ? egressOf(p.pod.config.egress, 3) : '', p.pod ? [p.pod.config.image, ...warned].join(' — ') : p.error.message];
    })));
  }
  return listing.every((p) => p.pod) ? 0 : 1;
}

/**
 * The limits a pod's agent can take, for `cldpd pods --json`: each pod.json limit's value, or
 * "unsupported" when the agent's CLI has no such limit (pod.json refuses it then).
 */
function agentLimits(config: PodConfig): Record<'maxTurns' | 'maxBudgetUsd', number | null | 'unsupported'> {
  const agent = agentNamed(config.agent);
  const of = (limit: 'maxTurns' | 'maxBudgetUsd') => (agent.limits[limit] === undefined ? 'unsupported' as const : config[limit] ?? null);
  return { maxTurns: of('maxTurns'), maxBudgetUsd: of('maxBudgetUsd') };
}

/** A pod's agent for `cldpd pods`: its CLI, and the limits that CLI does not have. */
function agentOf(config: PodConfig): string {
  const agent = agentNamed(config.agent);
  const missing = [agent.limits.maxTurns === undefined ? 'turn' : '', agent.limits.maxBudgetUsd === undefined ? 'spending' : ''].filter(Boolean);
  return missing.length > 0 ? `${agent.title} (no ${missing.join(' or ')} limit)` : agent.title;
}

/**
 * What a pod's containers reach, for `cldpd pods`: "open", or the hosts its list adds to the
 * model provider and GitHub (at most `shown` of them, then how many more).
 */
function egressOf(egress: PodConfig['egress'], shown: number): string {
  if (egress.open) return 'open';
  const hosts = egress.rules.map(formatRule);
  return ['model, GitHub', ...hosts.slice(0, shown), ...(hosts.length > shown ? [`+${hosts.length - shown} more`] : [])].join(', ');
}

/** The engine's name for `cldpd doctor`. */
function engineName(kind: EngineInfo['kind'] | undefined): string {
  return kind === 'podman' ? 'Podman' : 'Docker';
}

/** Pure: `cldpd doctor`'s line about the engine: which it is, its version, rootful or rootless, its API version. */
export function engineDetail(v: { version: string; apiVersion: string } & Partial<EngineInfo>): string {
  const mode = v.rootless === undefined ? '' : v.rootless ? ', rootless' : ', rootful';
  const cgroup = v.cgroupVersion ? `, cgroup v${v.cgroupVersion}` : '';
  return `${v.kind ? `${engineName(v.kind)} ` : 'engine '}${v.version}${mode} (API ${v.apiVersion}${cgroup})`;
}

async function doctor(ctx: CliContext, json: boolean, io: CliIO): Promise<number> {
  const checks: Array<{ check: string; ok: boolean; warning?: true; detail: string }> = [];
  try {
    const v = await ctx.runner.preflight();
    checks.push({ check: 'docker', ok: true, detail: engineDetail(v) });
    // What this engine cannot do for cldpd (see EngineInfo lacks): warnings, since runs go on.
    for (const lack of v.lacks ?? []) checks.push({ check: 'docker', ok: true, warning: true, detail: lack });
  } catch (err) {
    checks.push({ check: 'docker', ok: false, detail: (err as Error).message });
  }
  try {
    const listing = await listPods(ctx.pods);
    checks.push({ check: 'pods directory', ok: true, detail: `${ctx.pods.podsDir} (${listing.length} pods)` });
    const warnings = await warningsOf(ctx, listing, true);
    for (const p of listing) {
      checks.push({ check: `pod ${p.name}`, ok: !!p.pod, detail: p.pod ? p.pod.config.image : p.error.message });
      for (const w of warnings.get(p.name) ?? []) checks.push({ check: `pod ${p.name}`, ok: true, warning: true, detail: w });
    }
  } catch (err) {
    checks.push({ check: 'pods directory', ok: false, detail: (err as Error).message });
  }
  for (const c of checks) {
    await write(io.stdout, json ? `${JSON.stringify(c)}\n` : `${c.warning ? 'warn' : c.ok ? 'ok  ' : 'FAIL'}  ${c.check}: ${c.detail}\n`);
  }
  return checks.every((c) => c.ok) ? 0 : 1;
}
