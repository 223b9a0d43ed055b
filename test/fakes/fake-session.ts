import type { AgentSummary, Session, SessionEvent } from '../../src/core/index.js';

/** What a FakeSession does, for the queue's unit tests. */
export interface FakeSessionScript {
  readonly id?: string;
  readonly exitCode?: number;
  readonly agent?: AgentSummary;
  /** Lines of output before the end. */
  readonly lines?: readonly string[];
  /** Whether the agent takes input (reserve() answers); default true. */
  readonly acceptsInput?: boolean;
  /** What whenTaken resolves with; default true. */
  readonly taken?: boolean;
  /** Whether send() fails (the run ended first). */
  readonly sendFails?: boolean;
}

/** A Session stand-in that emits its lines and ends at once; it records what was asked of it. */
export function fakeSession(script: FakeSessionScript = {}): Session & { readonly prompts: string[]; stops: number } {
  const id = script.id ?? 'web-00aa00aa';
  const at = Date.now();
  const terminal = { type: 'container.exited' as const, at, exitCode: script.exitCode ?? 0, reason: 'exited' as const, durationMs: 1000 };
  const events: SessionEvent[] = [
    { type: 'container.started', at } as SessionEvent,
    ...(script.lines ?? []).map((line) => ({ type: 'output', at, stream: 'stdout', line }) as unknown as SessionEvent),
    terminal as SessionEvent,
  ];
  const session = {
    id,
    run: 1,
    podName: 'web',
    agent: script.agent ?? {},
    prompts: [] as string[],
    stops: 0,
    events: () => (async function* () {
      yield* events;
    })(),
    outcome: async () => terminal,
    wait: async () => terminal.exitCode,
    stop: async () => {
      session.stops += 1;
    },
    reserve: () => script.acceptsInput === false ? undefined : {
      send: async (prompt: string) => {
        if (script.sendFails) throw new Error('the run ended');
        session.prompts.push(prompt);
      },
      cancel: () => undefined,
    },
    whenTaken: async () => script.taken ?? true,
  };
  return session as unknown as Session & { readonly prompts: string[]; stops: number };
}
