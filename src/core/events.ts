import type { ErrorCode } from './errors.js';
import type { TokenUsage } from './model-prices.js';

/**
 * What the agent said, understood from a line of its CLI's JSON stream by the pod's agent
 * (see core/agents). For Claude Code's stream-json every message type maps to one of these,
 * so no stream-json line is ever shown as raw JSON: `system` init → `init`, other `system` →
 * `system`; `assistant` content → `text`, `thinking`, `tool`, and its `usage` → `usage`;
 * `user` content → `tool_result` (what a tool returned) or `message` (a typed user message
 * the CLI replays); `result` → `result`; anything else the CLI prints as stream-json →
 * `other`. Other agents map their own streams onto the same kinds.
 *
 * `claudeSessionId` is the agent's own conversation id, whichever the agent (Claude Code's
 * session, Codex's thread, Gemini's session): what its resume command continues.
 */
export type AgentEvent =
  | { readonly kind: 'init'; readonly claudeSessionId: string; readonly model?: string }
  | { readonly kind: 'text'; readonly text: string }
  | { readonly kind: 'thinking'; readonly chars: number }
  | { readonly kind: 'tool'; readonly name: string; readonly summary: string; readonly id?: string }
  | {
      readonly kind: 'tool_result';
      readonly toolUseId?: string;
      readonly isError: boolean;
      /** Characters of the result's text. */
      readonly chars: number;
      readonly lines: number;
      /** The first non-blank line, at most 120 characters: for a person's terminal, never for a comment. */
      readonly firstLine: string;
    }
  | { readonly kind: 'message'; readonly text: string; readonly replay: boolean }
  | { readonly kind: 'system'; readonly subtype: string }
  | { readonly kind: 'other'; readonly type: string }
  | {
      /**
       * The tokens an assistant message used. Claude Code writes a message as one line per
       * content block, each with the message's `usage` as known when it was written (its
       * output tokens as at the message's start): `messageId` tells the lines of one message
       * apart, and `contentChars` is what this line's content holds (text, thinking, tool input).
       */
      readonly kind: 'usage';
      readonly messageId?: string;
      readonly model?: string;
      readonly tokens: TokenUsage;
      readonly contentChars: number;
    }
  | {
      readonly kind: 'result';
      readonly isError: boolean;
      /** Claude Code's subtype: success, error_max_turns, error_during_execution, … */
      readonly subtype?: string;
      readonly text?: string;
      /** What the Claude session has cost so far, as the CLI reports it (total_cost_usd). */
      readonly costUsd?: number;
      readonly turns?: number;
      readonly durationMs?: number;
      readonly claudeSessionId?: string;
      /** Error texts the CLI gave with an error result. */
      readonly errors?: readonly string[];
      /**
       * True when `costUsd` and `turns` are this run's alone (a CLI that counts per process
       * and reports no total of the conversation); else `costUsd` is the conversation's total.
       */
      readonly runOnly?: true;
      /** The run's tokens as the CLI reports them, for a CLI that reports no cost: `input` counts `cachedInput` too. */
      readonly tokens?: { readonly input: number; readonly output: number; readonly cachedInput: number };
      /**
       * The model provider refused for quota or rate and the CLI gave up (see providerLimit):
       * when it resets, when the CLI said; `repeat` when the CLI dropped this run's prompt from
       * its conversation (refused before any answer), so the run is repeated as it was rather
       * than continued.
       */
      readonly limit?: { readonly kind: 'usage' | 'rate'; readonly resetAt?: number; readonly repeat?: true };
    };

/**
 * Whether `id` may be taken for an agent's conversation id: it goes into the resume
 * command's argv and into file names, so it is a short token that never begins with `-`
 * (a UUID, as every agent gives). The stream is the container's output: anything else is ignored.
 */
export function isConversationId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(id);
}

/** Why a container's process ended. */
export type ExitReason = 'exited' | 'stopped' | 'timeout';

/**
 * One thing that happened in a session run. `at` is milliseconds since the epoch.
 *
 * Ordering contract, per run:
 *
 *     build.started → build.output* → build.completed → container.started → (setup.step → output*)* → output* → terminal
 *
 * with `egress.blocked` anywhere between `container.started` and the terminal event.
 * where terminal is exactly one of `container.exited` or `error`, and nothing follows it.
 * A failed build is `build.started → build.output* → error`; a failed setup step ends the run
 * with `error` (code `SetupFailed`) after its output. A resume has no build phase:
 * `container.started → output* → terminal` (`exec: true` when it ran inside the live container).
 * No event is ever dropped; `output` events of one stream keep the container's order.
 */
export type SessionEvent =
  | { readonly type: 'build.started'; readonly at: number; readonly image: string }
  | { readonly type: 'build.output'; readonly at: number; readonly line: string }
  | { readonly type: 'build.completed'; readonly at: number; readonly image: string; readonly imageId: string }
  | {
      readonly type: 'container.started';
      readonly at: number;
      readonly containerId: string;
      readonly containerName: string;
      /** True when the command runs as an exec inside an already running container. */
      readonly exec: boolean;
      /** 1 for the start, then 2, 3, … for each resume. */
      readonly run: number;
    }
  | {
      /** A setup step of the pod (its checkout, then pod.json `setup`) begins; its output follows as `output` events. */
      readonly type: 'setup.step';
      readonly at: number;
      /** 1-based. */
      readonly step: number;
      readonly of: number;
      /** What it does, in words: "cloning acme/web", "npm ci". */
      readonly name: string;
    }
  | {
      readonly type: 'output';
      readonly at: number;
      readonly stream: 'stdout' | 'stderr';
      readonly line: string;
      /** True when the line was longer than the line limit: it continues in the next output event of this stream. */
      readonly partial?: true;
      /** What the agent said on this line, when it is Claude Code stream-json. */
      readonly agent?: readonly AgentEvent[];
      /** The setup step that printed it (see `setup.step`); absent for the container's own process. */
      readonly step?: number;
    }
  | {
      /**
       * The run's egress gateway refused a connection (see core/egress.ts): a host the pod's
       * `egress` does not list. `count` is how many times this run has been refused that
       * host:port so far (1, 2, …), so the last one carries the total.
       */
      readonly type: 'egress.blocked';
      readonly at: number;
      readonly host: string;
      readonly port: number;
      /** How the container asked: a CONNECT tunnel, a plain HTTP request through the proxy, or a TLS name that did not match. */
      readonly via: 'connect' | 'http' | 'tls';
      readonly count: number;
      /**
       * Re-told when a run is picked up after its worker went away: the count the run's log
       * already held, for whoever keeps the run's totals (its status comment). Neither logged
       * nor published again, nor counted again where it was counted as it came (metrics).
       */
      readonly replay?: true;
    }
  | { readonly type: 'container.exited'; readonly at: number; readonly exitCode: number; readonly reason: ExitReason; readonly durationMs: number }
  | { readonly type: 'error'; readonly at: number; readonly code: ErrorCode; readonly message: string };

/** The event types after which a run has ended. */
export function isTerminal(event: SessionEvent): event is Extract<SessionEvent, { type: 'container.exited' | 'error' }> {
  return event.type === 'container.exited' || event.type === 'error';
}
