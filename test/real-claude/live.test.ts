import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { userTexts } from '../fakes/fake-anthropic.js';
import { collect } from '../integration/harness.js';
import { RealClaudeWorld, agentEvents, askingScript, describeWithRealClaude } from './harness.js';

const slowToolScript = askingScript((typed) => (typed.includes('long') ? 120 : 3));

const world = new RealClaudeWorld(slowToolScript);

const isTool = (e: SessionEvent): boolean => e.type === 'output' && (e.agent ?? []).some((a) => a.kind === 'tool');

describeWithRealClaude('the real Claude Code CLI, live', () => {
  beforeAll(async () => {
    await world.init();
    await world.claudePod('live');
  });
  afterAll(async () => {
    await world.close();
  });

  it('takes a second instruction while it runs, in the same conversation and process, then ends once it has answered', async () => {
    world.api.setScript(slowToolScript);
    const before = world.api.conversation.length;
    const session = await world.dispatcher.start('live', { prompt: 'ask: first' });
    let sent: Promise<boolean> | undefined;
    const events = await collect(session, (e) => {
      if (isTool(e) && !sent) sent = session.send('ask: second');
    });
    expect(await sent).toBe(true);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0, reason: 'exited' });
    expect(events.filter((e) => e.type === 'container.started')).toHaveLength(1); // one container, one run

    // The agent echoed both messages, and its answer covers both: one conversation.
    const agent = agentEvents(events);
    expect(agent.filter((a) => a.kind === 'message' && a.replay).map((a) => (a.kind === 'message' ? a.text : ''))).toEqual(['ask: first', 'ask: second']);
    expect(session.agent.result?.text).toBe('Answered: ask: first | ask: second');
    const requests = world.api.conversation.slice(before);
    expect(requests.length).toBeGreaterThanOrEqual(2);
    const last = requests.at(-1)?.body;
    const texts = userTexts(last ?? { model: '', messages: [] }).join('\n');
    expect(texts).toContain('ask: first');
    expect(texts).toContain('ask: second');
    // Only one Claude session: the same id throughout.
    const ids = new Set(agent.flatMap((a) => (a.kind === 'init' ? [a.claudeSessionId] : [])));
    expect(ids.size).toBe(1);
    expect(session.agent.messagesSent).toBe(1);
    // Its input is closed now: a later message is refused, so the caller resumes instead.
    expect(await session.send('ask: too late')).toBe(false);
  });

  it('stops during a tool call: the container ends on the stop and is removed', async () => {
    world.api.setScript(slowToolScript);
    const session = await world.dispatcher.start('live', { prompt: 'ask: something long' });
    let stopping: Promise<void> | undefined;
    const events = await collect(session, (e) => {
      if (isTool(e) && !stopping) stopping = session.stop();
    });
    await stopping;
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', reason: 'stopped' });
    expect(await world.containersOf(session.id)).toEqual([]);
    expect(session.acceptsInput).toBe(false);
  });
});
