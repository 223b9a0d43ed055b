import type { AgentEvent } from '../events.js';
import type { TokenUsage } from '../model-prices.js';

/** The agents a pod may name in pod.json `agent`. */
export const AGENT_NAMES = Object.freeze(['claude', 'codex', 'gemini'] as const);

/** A pod's agent, by its pod.json name. */
export type AgentName = (typeof AGENT_NAMES)[number];

/**
 * What one token costs, in US dollars per million (pod.json `prices`): how a run of an agent
 * whose CLI reports tokens but no cost is priced. Cached input falls back to `input`.
 */
export interface TokenPrices {
  readonly input: number;
  readonly output: number;
  readonly cachedInput?: number;
}

/** What a stream reader is made with: the pod's prices, when it gives them. */
export interface AgentReaderOptions {
  readonly prices?: TokenPrices | undefined;
  /** The clock limits' reset times are read against; `Date.now` by default. */
  readonly now?: () => number;
}

/**
 * Reads one run's standard output, line by line in order, as the agent's events. One reader
 * per run: it may keep what spans lines (a message streamed in pieces, the last answer given,
 * the model named at the start) and tell it on a later line. Lines that are not the agent's
 * JSON yield no events (they are plain output); every line that is yields at least one, so
 * none is ever shown as raw JSON. Never throws.
 */
export interface AgentStreamReader {
  line(text: string): AgentEvent[];
}

/**
 * How the agent's CLI reaches its model provider: what a gated run's gateway takes out of the
 * container and carries itself (see core/egress.ts).
 */
export interface ModelProvider {
  /** The variable naming the provider's endpoint: in a gated container, the gateway plus the run's secret. */
  readonly urlVar: string;
  /** Where the CLI's requests go when the pod names no endpoint. */
  readonly defaultUrl: string;
  /**
   * The variables that carry the provider's key, first preferred, each with the header the
   * gateway puts on every request in its place. A gated container keeps the variable (set to
   * a placeholder) so the CLI signs the way it would, and never sees the value.
   */
  readonly keys: ReadonlyArray<{ readonly name: string; readonly header: string; readonly scheme?: 'Bearer' }>;
}

/** How a pod.json limit reaches an agent (see Agent.limits). */
export type AgentLimit =
  | { readonly via: 'option'; readonly name: string }
  /** `env`: the variable that points the CLI at what cldpd writes; a pod that sets it itself would take the limit away. */
  | { readonly via: 'setting'; readonly name: string; readonly env: string };

/** The pod's limits, as pod.json gives them. */
export interface PodLimits {
  readonly maxTurns?: number | undefined;
  readonly maxBudgetUsd?: number | undefined;
}

/**
 * One coding agent's CLI, everything cldpd needs to know of it: its default commands, how it
 * takes a prompt, how its JSON stream maps onto cldpd's events, how it says its provider
 * refused for quota or rate, what it keeps between runs, what its limits are called, and
 * where its key goes. A new agent is one module of this shape, listed in agents.ts.
 */
export interface Agent {
  readonly name: AgentName;
  /** Its name for people: "Claude Code", "Codex CLI", "Gemini CLI". */
  readonly title: string;
  /** The program its commands run (argv[0], by name or path). */
  readonly program: string;
  /**
   * The default start and resume commands, with the pod's limits as the CLI's options. The
   * resume command continues the agent's conversation: `{agentSessionId}` is the id its
   * stream reported. The prompt travels as the command says (see promptChannel): a
   * `{prompt}` argument, or Claude Code's stream-json input.
   */
  commands(limits: PodLimits): { readonly command: readonly string[]; readonly resumeCommand: readonly string[] };
  /**
   * How each pod.json limit reaches this agent, or undefined when the CLI has no such limit:
   * pod.json then refuses the field rather than ignore it, and `cldpd pods` says so. An
   * `option` of its command (a pod's own command must take it as `{maxTurns}`, say), or a
   * `setting` cldpd writes for it (see files), whatever the command.
   */
  readonly limits: { readonly maxTurns: AgentLimit | undefined; readonly maxBudgetUsd: AgentLimit | undefined };
  /** Whether a message can reach the agent while it runs (on its input); otherwise a resume waits for the run to end. */
  readonly takesLiveInput: boolean;
  /** Paths persisted per issue by default (`~` is the container user's home): the CLI's config and conversations. */
  readonly persist: readonly string[];
  /** A reader for one run's output (see AgentStreamReader). */
  reader(options?: AgentReaderOptions): AgentStreamReader;
  /** How it reaches its model provider (see ModelProvider). */
  readonly provider: ModelProvider;
  /**
   * Variables the agent needs beyond the pod's own, given the container's configured
   * environment (`podEnv`: the pod's env and inherited variables), the paths persisted for the
   * run and the container user's home (Claude Code's CLAUDE_CONFIG_DIR, say); the pod's env wins.
   */
  env(input: { readonly podEnv: Readonly<Record<string, string>>; readonly persisted: readonly string[]; readonly home: string }): Record<string, string>;
  /**
   * Files cldpd writes into each new container of the pod before it starts (the CLI's
   * settings, say), given the pod's own environment and limits; none when absent.
   */
  files?(input: { readonly podEnv: Readonly<Record<string, string>>; readonly limits: PodLimits }): ReadonlyArray<{ readonly path: string; readonly content: string }>;
  /** Variables a gated container gets unless the pod sets them: the CLI's calls home turned off, which the gateway would refuse anyway. */
  readonly quietEnv: Readonly<Record<string, string>>;
}

/** The tokens of a run as a CLI that reports no cost gives them: priced by the pod's prices, when it has any. */
export function priceTokens(tokens: Pick<TokenUsage, 'input' | 'output' | 'cacheRead'>, prices: TokenPrices | undefined): number | undefined {
  if (!prices) return undefined;
  const fresh = Math.max(0, tokens.input - tokens.cacheRead);
  return (fresh * prices.input + tokens.cacheRead * (prices.cachedInput ?? prices.input) + tokens.output * prices.output) / 1_000_000;
}
