import { describe, expect, it } from 'vitest';
import { estimateUsd, type TokenUsage } from '../../src/core/model-prices.js';

const usage = (u: Partial<TokenUsage>): TokenUsage => ({ input: 0, output: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, webSearches: 0, usOnly: false, ...u });

describe('estimateUsd', () => {
  it.each([
    // Claude Code 2.1.330 reported total_cost_usd 0.0148 for these tokens of claude-opus-5-5 (against the fake API).
    ['claude-opus-5-5, as Claude Code priced it', 'claude-opus-5-5', usage({ input: 2200, output: 300 }), 0.0148],
    ['a dated first-party id', 'claude-sonnet-4-5-20250929', usage({ input: 2000, output: 100, cacheWrite5m: 10_000, cacheRead: 50_000 }), 0.06],
    ['Claude 4 by its dated id', 'claude-opus-4-20250514', usage({ input: 1000 }), 0.015],
    ['Bedrock\'s form', 'us.anthropic.claude-haiku-4-5-20251001-v1:0', usage({ input: 1_000_000 }), 1],
    ['Vertex\'s form', 'claude-3-5-haiku@20241022', usage({ output: 1_000_000 }), 4],
    ['an hour\'s cache write costs twice the input', 'claude-sonnet-4-5', usage({ cacheWrite1h: 1_000_000 }), 6],
    ['a long prompt of Haiku 5.5 at its long price', 'claude-haiku-5-5', usage({ input: 100_001 }), 0.0500005],
    ['served in the US only: 10 % more', 'claude-opus-4-5', usage({ input: 1_000_000, usOnly: true }), 5.5],
    ['web searches, a cent each', 'claude-sonnet-5', usage({ webSearches: 3 }), 0.03],
    ['an unknown model, at the dearest price', 'gateway-model', usage({ input: 1_000_000, output: 1_000_000 }), 90],
    ['no model, likewise', undefined, usage({ cacheRead: 1_000_000 }), 1.5],
  ])('stopped spend: %s', (_, model, tokens, usd) => {
    expect(estimateUsd(tokens, model)).toBeCloseTo(usd, 9);
  });
});
