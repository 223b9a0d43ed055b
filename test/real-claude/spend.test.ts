import { afterAll, beforeAll, expect, it } from 'vitest';
import type { AgentEvent } from '../../src/core/index.js';
import { collect } from '../integration/harness.js';
import { CLAUDE_BASE_IMAGE, RealClaudeWorld, describeWithRealClaude } from './harness.js';

const TOOL_INPUT = { command: 'sleep 60; echo done', description: 'wait a minute' };

/** The fake model's first answer: a sentence and a Bash call that outlasts the test's patience. */
const world = new RealClaudeWorld(() => ({ blocks: [{ type: 'text', text: 'Waiting for the build.' }, { type: 'tool_use', name: 'Bash', input: TOOL_INPUT }], inputTokens: 1000, outputTokens: 40 }));

describeWithRealClaude(`what the real Claude Code CLI spends, counted as it goes (${CLAUDE_BASE_IMAGE})`, () => {
  beforeAll(async () => {
    await world.init();
    await world.claudePod('agent-spend');
  });
  afterAll(async () => {
    await world.close();
  });

  it('stopped spend: a run stopped in its first tool call, before any result, counts each message it wrote once, from the usage the CLI reports', async () => {
    const session = await world.dispatcher.start('agent-spend', { prompt: 'build it' });
    const usage: Array<Extract<AgentEvent, { kind: 'usage' }>> = [];
    const events = await collect(session, (e) => {
      for (const a of e.type === 'output' ? e.agent ?? [] : []) {
        if (a.kind === 'usage') usage.push(a);
        if (a.kind === 'tool') void session.stop();
      }
    }, 120_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped' });
    expect(session.agent.result).toBeUndefined();
    // One message, written as a line per content block, each with its usage as at its start.
    // Each message is written as a line per content block, each with its usage as at the message's start.
    const messages = new Set(usage.map((u) => u.messageId));
    expect(messages.size).toBeGreaterThanOrEqual(1); // the CLI may answer its tool's refusal before the stop lands
    expect(usage).toHaveLength(2 * messages.size);
    expect(new Set(usage.map((u) => `${u.model} ${u.tokens.input} ${u.tokens.output}`))).toEqual(new Set(['claude-opus-5-5 1000 1']));
    // Each counted once, at the model's list price ($4 input, $20 output a million), a token of output per 4 characters of content.
    const chars = 'Waiting for the build.'.length + 'Bash'.length + JSON.stringify(TOOL_INPUT).length;
    expect(session.agent.spend?.usd).toBeCloseTo(messages.size * (1000 * 4e-6 + Math.ceil(chars / 4) * 20e-6), 9);
    expect(session.agent.spend?.estimatedUsd).toBe(session.agent.spend?.usd);
  }, 180_000);
});
