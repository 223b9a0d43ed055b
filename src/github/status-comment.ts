import { keepEnd, keepStart, shorten, stripEscapes, toWellFormed, type ExitReason } from '../core/index.js';
import { keepMarkdownEnd, safeInline, safeMarkdown } from './markdown-safe.js';
import { utcMinute } from '../queue/run-view.js';
import type { BlockedView } from '../queue/blocked-tally.js';

/** GitHub refuses comment bodies over 65,536 characters; stay well inside. */
export const MAX_COMMENT_CHARS = 60_000;

/** Where a run stands, as the status comment shows it. */
export type StatusPhase = 'queued' | 'waiting' | 'building' | 'setting up' | 'running' | 'finished' | 'failed' | 'cancelled' | 'delivered';

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
  /**
   * The tokens the agent reported, for an agent that reports tokens rather than a cost:
   * `input` counts `cachedInput` too; `conversation` when they are the whole conversation's
   * so far (Codex CLI counts so), not this run's.
   */
  readonly tokens?: { readonly input: number; readonly output: number; readonly cachedInput: number; readonly conversation?: boolean };
  /** Instructions sent into the running agent (a `/cldpd resume` while it ran) that it took. */
  readonly messagesTaken?: number;
  /** The agent's final answer (Claude Code's result text). */
  readonly finalAnswer?: string;
  readonly agentError?: boolean;
  readonly error?: string;
  /** A plain note from cldpd (not an error), such as where a delivered instruction went. */
  readonly note?: string;
  /** Who asked for this run (a GitHub login). */
  readonly requestedBy?: string;
  /** The worker host that runs it. */
  readonly host?: string;
  /** What `lastLines` are: the container's output (default) or the image build's. */
  readonly linesFrom?: 'output' | 'build';
  /** While `waiting`: when the run continues by itself, why, and which wait this is (of how many); `because: 'shared'` when another run of the same credential hit the limit. */
  readonly waitingFor?: { readonly resumeAt: number; readonly kind: 'usage' | 'rate'; readonly wait?: number; readonly of?: number; readonly because?: 'shared' };
  /** The pod's limit the agent stopped at (Claude Code's error_max_turns / error_max_budget_usd result). */
  readonly limit?: 'turns' | 'budget';
  /** The hosts the run's egress gateway refused so far (see BlockedTally): names as the container asked, untrusted. */
  readonly blocked?: BlockedView;
  /** The session's live page (a signed link), once the run has begun. */
  readonly liveUrl?: string;
  /** What the run pushed, found through the API; absent when it had no token to push with. */
  readonly work?: {
    readonly watched?: string;
    readonly branches: ReadonlyArray<{ readonly name: string; readonly url: string }>;
    readonly pulls: ReadonlyArray<{ readonly number: number; readonly title: string; readonly url: string; readonly state: string; readonly branch: string; readonly draft?: boolean; readonly openedByCldpd?: boolean }>;
    /** Branches whose pull request cldpd could not open, and why. */
    readonly notOpened?: ReadonlyArray<{ readonly branch: string; readonly reason: string }>;
  };
}

/** A link in cldpd's words: the text defused (a branch or title is anyone's text), the URL cldpd's. */
function link(text: string, url: string): string {
  return `[${safeInline(oneLine(text, 200)).replace(/[[\]]/g, '\\$&')}](${url.replace(/[()\s]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)})`;
}

/** The run's branches and pull requests, one line each; "No changes pushed." when there are none. */
function workLines(work: NonNullable<StatusView['work']>): string[] {
  if (work.branches.length === 0) return [work.watched ? `No changes pushed to \`${work.watched}\`.` : 'No changes pushed.'];
  return work.branches.map((b) => {
    const pulls = work.pulls.filter((p) => p.branch === b.name).map((p) => {
      const kind = p.draft && p.state === 'open' ? 'draft pull request' : 'pull request';
      return `${kind} ${link(`${p.title} (#${p.number})`, p.url)}${p.state === 'open' ? '' : ` (${p.state})`}${p.openedByCldpd ? ', opened by cldpd' : ''}`;
    });
    const failed = work.notOpened?.find((n) => n.branch === b.name);
    const none = failed ? ` (no pull request: cldpd could not open one, ${safeInline(oneLine(failed.reason, 500))})` : ' (no pull request)';
    return `Pushed ${link(b.name, b.url)}${pulls.length > 0 ? ` → ${pulls.join(', ')}` : none}`;
  });
}

/** Hosts the blocked line names at most; the rest are counted. */
export const BLOCKED_SHOWN = 10;

/** Characters of one blocked host's name shown (after redaction); a longer one is cut with an ellipsis. */
const BLOCKED_NAME_CHARS = 100;

/**
 * A host name from the container as inline code: whatever it holds, it links, mentions and
 * formats nothing. Anything but visible ASCII (a backtick, a space, a line break, a control or
 * non-ASCII character) becomes `?`, so no character can end the span or hide in it.
 */
function hostCode(name: string): string {
  const shown = shorten(name, BLOCKED_NAME_CHARS).replace(/…$/, '...').replace(/[^\x21-\x5f\x61-\x7e]/g, '?');
  return `\`${shown || '?'}\``;
}

/** The line of hosts the run was refused: the most refused first, at most {@link BLOCKED_SHOWN}, and how to allow one. */
function blockedLine(blocked: BlockedView, redact: (text: string) => string): string {
  const shown = blocked.hosts.slice(0, BLOCKED_SHOWN).map((h) => `${hostCode(redact(h.name))} ×${h.count}`);
  const more = blocked.more + Math.max(0, blocked.hosts.length - BLOCKED_SHOWN);
  const list = more > 0 ? `${shown.join(', ')} and ${more} more` : shown.join(', ');
  return `**Blocked:** ${list} — to allow one, add it to the pod's pod.json \`"egress"\` (and to \`.github/cldpd.yml\` \`egress\` if that narrows this pod).`;
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

/** How a run stands in words a person expects: a stop or a timeout is not a failure. */
type Shown = StatusPhase | 'stopped' | 'timed out' | 'at its limit';

const TITLES: Record<Shown, string> = {
  queued: 'queued',
  waiting: 'waiting for the model provider\'s limit',
  building: 'building the image',
  'setting up': 'setting up',
  running: 'running',
  finished: 'finished',
  failed: 'failed',
  cancelled: 'cancelled',
  delivered: 'sent to the running agent',
  stopped: 'stopped',
  'timed out': 'timed out',
  'at its limit': 'stopped at its limit',
};

const ICONS: Record<Shown, string> = {
  queued: '\u23F3',
  waiting: '\u{1F4A4}',
  building: '\u{1F528}',
  'setting up': '\u{1F527}',
  running: '\u{1F3C3}',
  finished: '\u2705',
  failed: '\u274C',
  cancelled: '\u26D4',
  delivered: '\u{1F4E8}',
  stopped: '\u23F9\uFE0F',
  'timed out': '\u23F1\uFE0F',
  'at its limit': '\u{1F6D1}',
};

function shownOf(view: StatusView): Shown {
  if (view.phase !== 'finished') return view.phase;
  if (view.reason === 'stopped') return 'stopped';
  if (view.reason === 'timeout') return 'timed out';
  if (view.limit) return 'at its limit';
  return (view.exitCode ?? 0) !== 0 ? 'failed' : 'finished';
}

/** What the reader can do next, for this state: only what will work. */
function nextStep(view: StatusView, shown: Shown): string | undefined {
  const relabel = `remove the label \`cldpd:${view.pod}\` and add it again`;
  switch (shown) {
    case 'queued':
    case 'waiting':
    case 'building':
    case 'setting up':
    case 'running':
      return 'To stop it, comment `/cldpd stop`.';
    case 'delivered':
      return undefined;
    default: {
      // A start that never reached its container has no session to continue.
      const ran = view.command === 'resume' || view.exitCode !== undefined || view.finalAnswer !== undefined;
      if (ran && view.sessionId) return 'To continue, comment `/cldpd resume <what to do next>`.';
      return shown === 'cancelled' ? `To start again, ${relabel}.` : `Nothing ran. To try again, fix what the error says, then ${relabel}.`;
    }
  }
}

/**
 * Pure: the Markdown of a status comment, as a person expects it rendered on GitHub. `redact`
 * is applied to everything that came from the container or the agent, before anything is
 * folded or shortened; that text is then made safe to render (no mention notifies, no
 * reference links, no image loads, no raw HTML, no escape codes; see safeMarkdown). The
 * agent's answer is rendered as Markdown, output stays in a code block. The result is always
 * under {@link MAX_COMMENT_CHARS} (the answer or output is shortened, keeping its end) and
 * well-formed Unicode: cuts fall between characters, and a lone surrogate becomes U+FFFD.
 */
export function renderStatusComment(view: StatusView, marker: string, redact: (text: string) => string): string {
  const shown = shownOf(view);
  const what = view.command === 'start' ? `pod \`${view.pod}\`` : view.run > 1 ? `pod \`${view.pod}\`, resume ${view.run - 1}` : `pod \`${view.pod}\`, resume`;
  const head: string[] = [marker, `### ${ICONS[shown]} cldpd: ${TITLES[shown]} (${what})`];
  const facts: string[] = [];
  if (view.sessionId) facts.push(`session \`${view.sessionId}\``);
  if (view.requestedBy) facts.push(`requested by ${safeInline(`@${view.requestedBy}`)}`);
  if (view.host) facts.push(`host \`${view.host}\``);
  if (view.phase === 'queued' && view.queuePosition !== undefined) {
    facts.push(view.queuePosition > 0 ? `${view.queuePosition} ahead in the queue` : 'next in the queue');
  }
  const active = view.phase === 'running' || view.phase === 'building' || view.phase === 'setting up';
  if (active && view.startedAt !== undefined) facts.push(`${duration(view.now - view.startedAt)} so far`);
  if (view.exitCode !== undefined && shown !== 'stopped' && shown !== 'timed out') facts.push(`exit code ${view.exitCode}`);
  if (view.durationMs !== undefined) facts.push(`took ${duration(view.durationMs)}`);
  if (view.turns !== undefined) facts.push(`${view.turns} turn${view.turns === 1 ? '' : 's'}`);
  if (view.costUsd !== undefined) facts.push(view.sessionCostUsd !== undefined ? `$${view.costUsd.toFixed(2)} this run ($${view.sessionCostUsd.toFixed(2)} in all)` : `$${view.costUsd.toFixed(2)}`);
  if (view.tokens) facts.push(`${tokenFact(view.tokens)}${view.tokens.conversation && view.run > 1 ? ' in the whole conversation' : ''}`);
  if (view.messagesTaken) facts.push(`${view.messagesTaken} more instruction${view.messagesTaken === 1 ? '' : 's'} taken while running`);
  if (view.agentError && !view.limit) facts.push('the agent reported an error');
  if (facts.length > 0) head.push(facts.join(' · '));
  if (shown === 'stopped') head.push('It was stopped on request (`/cldpd stop`).');
  if (shown === 'timed out') head.push('It was stopped by the timeout (`timeoutSeconds` in the pod\'s pod.json).');
  if (view.phase === 'waiting' && view.waitingFor) {
    const w = view.waitingFor;
    const at = `${utcMinute(w.resumeAt)} UTC`;
    const why = w.because === 'shared' ? 'Another run using the same model credential hit the provider\'s limit' : `The model provider refused for its ${w.kind === 'usage' ? 'usage limit' : 'rate limit'}`;
    head.push(`${why}; this run continues by itself at ${at}${w.wait !== undefined ? ` (wait ${w.wait}${w.of !== undefined ? ` of ${w.of}` : ''})` : ''}, not counted as a failure.`);
  }
  if (view.limit === 'turns' && shown === 'at its limit') head.push(`The agent stopped at the pod's turn limit (\`maxTurns\` in its pod.json)${view.turns !== undefined ? ` after ${view.turns} turn${view.turns === 1 ? '' : 's'}` : ''}.`);
  if (view.limit === 'budget' && shown === 'at its limit') head.push(`The agent stopped at the pod's spending limit for a run (\`maxBudgetUsd\` in its pod.json)${view.costUsd !== undefined ? `, having spent $${view.costUsd.toFixed(2)}` : ''}.`);
  if (view.error) head.push(`**Error:** ${safeInline(oneLine(redact(view.error), 1000))}`);
  if (view.note) head.push(safeInline(oneLine(view.note, 1000)));
  if (view.blocked && view.blocked.hosts.length + view.blocked.more > 0) head.push(blockedLine(view.blocked, redact));
  if (view.activity && active) head.push(`Latest: ${safeInline(oneLine(stripEscapes(redact(view.activity))))}`);
  if (view.liveUrl && active) head.push(`**${link('Follow it live', view.liveUrl)}**: every line, as the container prints it.`);
  if (view.work && (view.phase === 'finished' || view.phase === 'failed')) head.push(workLines(view.work).join('  \n'));

  const done = view.phase === 'finished' || view.phase === 'failed' || view.phase === 'cancelled';
  const tail: string[] = [];
  const step = nextStep(view, shown);
  if (step) tail.push(step);
  if (view.liveUrl && !active && view.phase !== 'queued') tail.push(`The session's transcript: ${link('session page', view.liveUrl)}.`);
  if (view.sessionId && view.host && view.phase !== 'queued' && view.phase !== 'delivered') tail.push(`The whole log: \`cldpd logs ${view.sessionId}\` on host \`${view.host}\`.`);

  // The answer is Markdown, rendered; output is shown as it was printed, in a code block.
  let block = '';
  let summary = '';
  let rendered = false;
  if (done && view.finalAnswer?.trim()) {
    block = safeMarkdown(redact(view.finalAnswer.trim()));
    summary = view.agentError ? 'The agent\'s error' : 'Final answer';
    rendered = true;
  } else if (view.lastLines && view.lastLines.length > 0) {
    block = stripEscapes(redact(view.lastLines.join('\n')));
    const n = view.lastLines.length;
    const of = view.linesFrom === 'build' ? 'the build' : 'output';
    summary = n === 1 ? `Last line of ${of}` : `Last ${n} lines of ${of}`;
  }
  const assemble = (content: string, cut: number): string => {
    const parts = [...head];
    if (content) {
      const note = cut > 0 ? `_…${cut} earlier characters cut._\n\n` : '';
      const body = rendered ? `${note}${content}` : `${note}${fenceFor(content)}\n${content}\n${fenceFor(content)}`;
      parts.push(`<details${done ? ' open' : ''}><summary>${summary}</summary>\n\n${body}\n\n</details>`);
    }
    parts.push(...tail);
    return parts.join('\n\n');
  };
  // What is kept is cut at a line (the answer, so it still renders) or between characters (output).
  const room = Math.max(0, MAX_COMMENT_CHARS - assemble('x', 1).length - 64);
  let body: string;
  if (rendered) {
    const kept = keepMarkdownEnd(block, room);
    body = assemble(kept.text, kept.cut);
  } else {
    const kept = keepEnd(block, room);
    body = assemble(kept, block.length - kept.length);
  }
  // The head itself is bounded (one-line fields), but never trust that blindly.
  return toWellFormed(body.length <= MAX_COMMENT_CHARS ? body : `${keepStart(body, MAX_COMMENT_CHARS - 20)}\n\n…(cut)`);
}

/** A run's tokens in words: "12,345 tokens in (3,000 cached), 456 out". */
function tokenFact(tokens: NonNullable<StatusView['tokens']>): string {
  const n = (v: number): string => Math.max(0, Math.floor(v)).toLocaleString('en-US');
  return `${n(tokens.input)} tokens in${tokens.cachedInput > 0 ? ` (${n(tokens.cachedInput)} cached)` : ''}, ${n(tokens.output)} out`;
}

/**
 * What a queued resume behind a run says: an agent that takes instructions while it runs
 * (Claude Code) gets it sooner, and this comment then says where it went; any other waits.
 */
export const RESUME_WAITS = 'It runs once the run ahead of it has finished: an agent that takes no instructions while it runs (Codex CLI, Gemini CLI) gets it then, in the same conversation.';
