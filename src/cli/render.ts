import type { SessionEvent } from '../core/index.js';

/** A piece of terminal output: which stream, and the text including its newline. */
export interface Printed {
  readonly to: 'stdout' | 'stderr';
  readonly text: string;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
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
      return event.agent.map((a): Printed => {
        switch (a.kind) {
          case 'init':
            return { to: 'stderr', text: `cldpd: Claude session ${a.claudeSessionId}${a.model ? ` (${a.model})` : ''}\n` };
          case 'text':
            return { to: 'stdout', text: `${a.text}\n` };
          case 'tool':
            return { to: 'stdout', text: `-> ${a.name}${a.summary ? `: ${a.summary}` : ''}\n` };
          case 'result': {
            const facts = [
              a.isError ? 'error' : 'done',
              a.turns !== undefined ? `${a.turns} turns` : undefined,
              a.costUsd !== undefined ? `$${a.costUsd.toFixed(4)}` : undefined,
              a.durationMs !== undefined ? seconds(a.durationMs) : undefined,
            ].filter(Boolean);
            return { to: 'stderr', text: `cldpd: agent ${facts.join(', ')}\n` };
          }
        }
      });
    }
    case 'container.exited': {
      const why = event.reason === 'timeout' ? ' (timed out: timeoutSeconds in pod.json)' : event.reason === 'stopped' ? ' (stopped)' : '';
      return [{ to: 'stderr', text: `cldpd: exited with code ${event.exitCode} after ${seconds(event.durationMs)}${why}\n` }];
    }
    case 'error':
      return [{ to: 'stderr', text: `cldpd: error (${event.code}): ${event.message}\n` }];
  }
}
