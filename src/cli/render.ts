import { shorten, type AgentEvent, type SessionEvent } from '../core/index.js';

/** How much of a tool call's argument a transcript line shows. */
const MAX_TOOL_SUMMARY = 200;

/** A piece of terminal output: which stream, and the text including its newline. */
export interface Printed {
  readonly to: 'stdout' | 'stderr';
  readonly text: string;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The agent's text with terminal control characters made visible: what a tool printed or an
 * issue said must not move the cursor, recolour or write the clipboard (OSC 52) of the
 * person's terminal once decoded from stream-json. Newlines and tabs stay.
 */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function firstLine(text: string, max = 160): string {
  const line = text.split('\n').find((l) => l.trim()) ?? '';
  const more = text.trim().split('\n').length - 1;
  const clipped = shorten(line, max);
  return more > 0 ? `${clipped} (+${more} lines)` : clipped;
}

/** `text` folded onto one line and shortened, cut between characters. */
function oneLine(text: string, max: number): string {
  return shorten(text.replace(/\s+/g, ' ').trim(), max);
}

/**
 * Pure: one understood stream-json item as a transcript line, the way Claude Code's own
 * terminal shows it: the agent's words, each tool call with its telling argument, each tool
 * result as one short line, typed instructions quoted. Never the raw JSON.
 */
export function renderAgent(a: AgentEvent): Printed[] {
  return renderAgentRaw(a).map((p) => ({ to: p.to, text: printable(p.text.slice(0, -1)) + p.text.slice(-1) }));
}

function renderAgentRaw(a: AgentEvent): Printed[] {
  switch (a.kind) {
    case 'init':
      return [{ to: 'stderr', text: `cldpd: Claude session ${a.claudeSessionId}${a.model ? ` (${a.model})` : ''}\n` }];
    case 'text':
      return [{ to: 'stdout', text: `${a.text}\n` }];
    case 'thinking':
      return [{ to: 'stdout', text: '✻ thinking…\n' }];
    case 'tool': {
      // The core keeps the argument whole (for redaction); a transcript shows one short line of it.
      const summary = oneLine(a.summary, MAX_TOOL_SUMMARY);
      return [{ to: 'stdout', text: `→ ${a.name}${summary ? `: ${summary}` : ''}\n` }];
    }
    case 'tool_result': {
      const size = a.chars === 0 ? '(no output)' : a.lines > 1 ? `${a.firstLine} (+${a.lines - 1} lines)` : a.firstLine;
      return [{ to: 'stdout', text: `  ⎿ ${a.isError ? 'error: ' : ''}${size}\n` }];
    }
    case 'message':
      return [{ to: 'stdout', text: `> ${firstLine(a.text)}\n` }];
    case 'system':
    case 'other':
      return [];
    case 'result': {
      const facts = [
        a.isError ? `error${a.subtype && a.subtype !== 'success' ? ` (${a.subtype})` : ''}` : 'done',
        a.turns !== undefined ? `${a.turns} turns` : undefined,
        a.durationMs !== undefined ? seconds(a.durationMs) : undefined,
      ].filter(Boolean);
      const errors = (a.errors ?? []).map((e) => ({ to: 'stderr' as const, text: `cldpd: agent error: ${firstLine(e, 300)}\n` }));
      return [{ to: 'stderr', text: `cldpd: agent ${facts.join(', ')}\n` }, ...errors];
    }
  }
}

/**
 * Pure: how `cldpd start`/`resume`/`logs` show an event to a person. The container's own
 * output goes to stdout (stderr lines to stderr); cldpd's lifecycle notes go to stderr so a
 * pipe receives only what the agent printed. Claude Code stream-json is shown as its text.
 */
export function renderEvent(event: SessionEvent, sessionId: string): Printed[] {
  switch (event.type) {
    case 'build.started':
      return [{ to: 'stderr', text: `cldpd: building image ${event.image}\n` }];
    case 'build.output':
      return [{ to: 'stderr', text: `  | ${event.line}\n` }];
    case 'build.completed':
      return [{ to: 'stderr', text: `cldpd: image ready (${event.imageId.replace(/^sha256:/, '').slice(0, 12)})\n` }];
    case 'container.started':
      return [{ to: 'stderr', text: `cldpd: session ${sessionId} ${event.exec ? 'resumed in' : 'running in'} ${event.containerName} (run ${event.run})\n` }];
    case 'output': {
      const end = event.partial ? '' : '\n';
      if (event.stream === 'stderr') return [{ to: 'stderr', text: event.line + end }];
      if (!event.agent) return [{ to: 'stdout', text: event.line + end }];
      return event.agent.flatMap((a) => renderAgent(a));
    }
    case 'container.exited': {
      const why = event.reason === 'timeout' ? ' (timed out: timeoutSeconds in pod.json)' : event.reason === 'stopped' ? ' (stopped)' : '';
      return [{ to: 'stderr', text: `cldpd: exited with code ${event.exitCode} after ${seconds(event.durationMs)}${why}\n` }];
    }
    case 'error':
      return [{ to: 'stderr', text: `cldpd: error (${event.code}): ${event.message}\n` }];
  }
}
