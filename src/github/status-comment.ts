import { keepEnd, keepStart, shorten, toWellFormed, type ExitReason } from '../core/index.js';

/** GitHub refuses comment bodies over 65,536 characters; stay well inside. */
export const MAX_COMMENT_CHARS = 60_000;

/** Where a run stands, as the status comment shows it. */
export type StatusPhase = 'queued' | 'building' | 'running' | 'finished' | 'failed' | 'cancelled' | 'delivered';

/** Everything the status comment of one run shows. Pure data; built by the reporter. */
export interface StatusView {
  readonly pod: string;
  readonly sessionId?: string;
  /** Which run of the session: 1 for the start, then one per resume. */
  readonly run: number;
  readonly command: 'start' | 'resume';
  readonly phase: StatusPhase;
  /** Jobs ahead of this one when it was queued. */
  readonly queuePosition?: number;
  readonly startedAt?: number;
  readonly now: number;
  /** The latest thing the agent did (text, tool call) or printed. */
  readonly activity?: string;
  /** The last lines of output, oldest first. */
  readonly lastLines?: readonly string[];
  readonly exitCode?: number;
  readonly reason?: ExitReason;
  readonly durationMs?: number;
  /** What this run cost; with `sessionCostUsd`, what the whole session has cost. */
  readonly costUsd?: number;
  readonly sessionCostUsd?: number;
  readonly turns?: number;
  /** Instructions sent into the running agent (a `/cldpd resume` while it ran) that it took. */
  readonly messagesTaken?: number;
  /** The agent's final answer (Claude Code's result text). */
  readonly finalAnswer?: string;
  readonly agentError?: boolean;
  readonly error?: string;
  /** A plain note from cldpd (not an error), such as where a delivered instruction went. */
  readonly note?: string;
}

/** The hidden first line that lets cldpd find its own status comment again. */
export function statusMarker(key: { issueKey: string; seq: number }): string {
  return `<!-- cldpd:status ${key.issueKey}#${key.seq} -->`;
}

/** Reads the marker back; undefined when the body is not a cldpd status comment. */
export function parseStatusMarker(body: string | undefined): { issueKey: string; seq: number } | undefined {
  const match = /^<!-- cldpd:status (\S+)#(\d+) -->/.exec(body ?? '');
  return match ? { issueKey: match[1] as string, seq: Number(match[2]) } : undefined;
}

function duration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

/** A code fence longer than any backtick run in `text`, so the text cannot close it. */
function fenceFor(text: string): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  return '`'.repeat(longest + 1);
}

/** `text` folded onto one line and shortened; give it redacted text, so no secret is cut in part. */
function oneLine(text: string, max = 300): string {
  return shorten(text.replace(/\s+/g, ' ').trim(), max);
}

/** Keeps the end of `text` within `max` characters, saying how much was cut. */
function keepTail(text: string, max: number): string {
  const kept = keepEnd(text, max);
  return kept === text ? text : `…(${text.length - kept.length} earlier characters cut)\n${kept}`;
}

const TITLES: Record<StatusPhase, string> = {
  queued: 'queued',
  building: 'building the image',
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
  delivered: 'sent to the running agent',
};

const ICONS: Record<StatusPhase, string> = {
  queued: '\u23F3',
  building: '\u{1F528}',
  running: '\u{1F3C3}',
  finished: '\u2705',
  failed: '\u274C',
  cancelled: '\u26D4',
  delivered: '\u{1F4E8}',
};

/**
 * Pure: the Markdown of a status comment. `redact` is applied to everything that came from
 * the container or the agent, before anything is folded or shortened. The result is always
 * under {@link MAX_COMMENT_CHARS}: the collapsed output block is shortened (keeping its end)
 * to fit. It is always well-formed Unicode, as GitHub requires: cuts fall between
 * characters, and a lone surrogate the agent sent becomes U+FFFD.
 */
export function renderStatusComment(view: StatusView, marker: string, redact: (text: string) => string): string {
  const phase = view.phase === 'finished' && (view.exitCode ?? 0) !== 0 ? 'failed' : view.phase;
  const what = view.command === 'start' ? `pod \`${view.pod}\`` : view.run > 1 ? `pod \`${view.pod}\`, resume #${view.run - 1}` : `pod \`${view.pod}\`, resume`;
  const head: string[] = [marker, `### ${ICONS[phase]} cldpd: ${TITLES[phase]} (${what})`];
  const facts: string[] = [];
  if (view.sessionId) facts.push(`session \`${view.sessionId}\``);
  if (view.phase === 'queued' && view.queuePosition !== undefined) {
    facts.push(view.queuePosition > 0 ? `${view.queuePosition} ahead in the queue` : 'next in the queue');
  }
  if ((view.phase === 'running' || view.phase === 'building') && view.startedAt !== undefined) facts.push(`${duration(view.now - view.startedAt)} so far`);
  if (view.exitCode !== undefined) facts.push(`exit code ${view.exitCode}`);
  if (view.reason === 'timeout') facts.push('stopped by the timeout');
  if (view.reason === 'stopped') facts.push('stopped on request');
  if (view.durationMs !== undefined) facts.push(`took ${duration(view.durationMs)}`);
  if (view.turns !== undefined) facts.push(`${view.turns} turns`);
  if (view.costUsd !== undefined) facts.push(view.sessionCostUsd !== undefined ? `$${view.costUsd.toFixed(2)} this run ($${view.sessionCostUsd.toFixed(2)} in all)` : `$${view.costUsd.toFixed(2)}`);
  if (view.messagesTaken) facts.push(`${view.messagesTaken} more instruction${view.messagesTaken === 1 ? '' : 's'} taken while running`);
  if (view.agentError) facts.push('the agent reported an error');
  if (facts.length > 0) head.push(facts.join(' · '));
  if (view.error) head.push(`**Error:** ${oneLine(redact(view.error), 1000)}`);
  if (view.note) head.push(oneLine(view.note, 1000));
  if (view.activity && (view.phase === 'running' || view.phase === 'building')) head.push(`Latest: ${oneLine(redact(view.activity))}`);

  const done = view.phase === 'finished' || view.phase === 'failed' || view.phase === 'cancelled';
  const tail: string[] = [];
  if (done && view.sessionId) {
    tail.push(`To continue, comment \`/cldpd resume <what to do next>\`.`);
  }

  let block = '';
  let summary = '';
  if (done && view.finalAnswer?.trim()) {
    block = redact(view.finalAnswer.trim());
    summary = 'Final answer';
  } else if (view.lastLines && view.lastLines.length > 0) {
    block = redact(view.lastLines.join('\n'));
    summary = `Last ${view.lastLines.length} lines of output`;
  }
  const assemble = (content: string): string => {
    const parts = [...head];
    if (content) {
      const fence = fenceFor(content);
      parts.push(`<details${done ? ' open' : ''}><summary>${summary}</summary>\n\n${fence}\n${content}\n${fence}\n\n</details>`);
    }
    parts.push(...tail);
    return parts.join('\n\n');
  };
  const frame = assemble('x').length - 1 + 16; // room for a longer fence
  const body = assemble(keepTail(block, Math.max(0, MAX_COMMENT_CHARS - frame - 64)));
  // The head itself is bounded (one-line fields), but never trust that blindly.
  return toWellFormed(body.length <= MAX_COMMENT_CHARS ? body : `${keepStart(body, MAX_COMMENT_CHARS - 20)}\n\n…(cut)`);
}
