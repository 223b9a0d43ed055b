/**
 * What Claude's tokens cost, to estimate what a run spent when Claude Code has not said it
 * yet (its `result` carries the exact `total_cost_usd`, and replaces any estimate).
 */

/** The tokens one assistant message used, as the Messages API reports them in `usage`. */
export interface TokenUsage {
  readonly input: number;
  readonly output: number;
  /** Prompt written to the cache for 5 minutes (`cache_creation_input_tokens` less the hour's). */
  readonly cacheWrite5m: number;
  /** Prompt written to the cache for an hour (`cache_creation.ephemeral_1h_input_tokens`). */
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
  /** Web searches the server ran (`server_tool_use.web_search_requests`). */
  readonly webSearches: number;
  /** Served in the US only (`inference_geo: "us"`), which costs 10 % more. */
  readonly usOnly: boolean;
}

/** US dollars per million tokens, and per web search. */
interface Prices {
  readonly input: number;
  readonly output: number;
  readonly cacheWrite5m: number;
  readonly cacheWrite1h: number;
  readonly cacheRead: number;
  readonly webSearch: number;
  /** Other prices for a prompt (input, cache writes and reads together) of more tokens than `above`. */
  readonly longPrompt?: { readonly above: number; readonly prices: Omit<Prices, 'longPrompt' | 'webSearch'> };
}

const tier = (input: number, output: number, cacheRead = input / 10): Prices =>
  Object.freeze({ input, output, cacheWrite5m: input * 1.25, cacheWrite1h: input * 2, cacheRead, webSearch: 0.01 });

const TIER_15_75 = tier(15, 75);

/**
 * The list prices of Claude's models by id, as Claude Code 2.1's model catalog has them
 * (first-party ids without their date; Bedrock's and Vertex's forms are brought to them).
 */
const PRICES: Readonly<Record<string, Prices>> = Object.freeze({
  'claude-3-5-haiku': tier(0.8, 4),
  'claude-haiku-4-5': tier(1, 5),
  'claude-haiku-5-5': { ...tier(0.1, 0.5), longPrompt: { above: 100_000, prices: tier(0.5, 2.5) } },
  'claude-3-5-sonnet': tier(3, 15),
  'claude-3-7-sonnet': tier(3, 15),
  'claude-sonnet-4': tier(3, 15),
  'claude-sonnet-4-0': tier(3, 15),
  'claude-sonnet-4-5': tier(3, 15),
  'claude-sonnet-4-6': tier(3, 15),
  'claude-sonnet-5': tier(2, 10),
  'claude-sonnet-5-5': tier(2, 10, 0.1),
  'claude-opus-4': TIER_15_75,
  'claude-opus-4-0': TIER_15_75,
  'claude-opus-4-1': TIER_15_75,
  'claude-opus-4-5': tier(5, 25),
  'claude-opus-4-6': tier(5, 25),
  'claude-opus-4-7': tier(5, 25),
  'claude-opus-4-8': tier(5, 25),
  'claude-opus-5': tier(5, 25),
  'claude-opus-5-5': tier(4, 20, 0.2),
  'claude-fable-5': tier(10, 50),
  'claude-fable-5-1': tier(10, 50, 0.25),
  'claude-fable-5-2': tier(8, 40, 0.2),
  'claude-mythos-5': tier(10, 50),
  'claude-mythos-5-1': tier(10, 50, 0.25),
  'claude-mythos-5-2': tier(8, 40, 0.2),
});

/** The catalog id a model name reported by the API (or a provider's form of it) stands for. */
function catalogId(model: string): string {
  let m = model.trim().toLowerCase().replace(/\[\d+m\]$/, '');
  m = m.slice(m.lastIndexOf('/') + 1);
  m = m.replace(/^(?:[a-z]+\.)?anthropic\./, '').replace(/-v\d+(?::\d+)?$/, '').replace(/[-@]\d{8}$/, '');
  return m;
}

/**
 * What `usage` cost at the list price of `model`. A model this table does not know (a newer
 * one, a gateway's own name, none reported) is priced as the dearest one it knows: an
 * estimate stands in for what a limit counts until the exact figure comes, and it must not
 * let a run spend past a limit for want of a price.
 */
export function estimateUsd(usage: TokenUsage, model: string | undefined): number {
  const prices = (model !== undefined ? PRICES[catalogId(model)] : undefined) ?? TIER_15_75;
  const prompt = usage.input + usage.cacheWrite5m + usage.cacheWrite1h + usage.cacheRead;
  const p = prices.longPrompt && prompt > prices.longPrompt.above ? prices.longPrompt.prices : prices;
  const tokens = usage.input * p.input + usage.output * p.output + usage.cacheWrite5m * p.cacheWrite5m + usage.cacheWrite1h * p.cacheWrite1h + usage.cacheRead * p.cacheRead;
  return (tokens / 1_000_000) * (usage.usOnly ? 1.1 : 1) + usage.webSearches * prices.webSearch;
}
