import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { FeedWriter as FeedReporter, feedEntries, redactEntry } from '../../src/web/feed-writer.js';
import type { RunCommand } from '../../src/queue/contract.js';
import type { FeedEntry, FeedHead } from '../../src/queue/session-feed.js';

const command: RunCommand = {
  seq: 4, kind: 'start', issueKey: 'acme-web-1', pod: 'web', sessionId: 'web-00aa00aa', prompt: 'p', statusCommentId: 77, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 5, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
};
const SECRET = 'hunter2-very-secret-value';
const redact = (t: string) => t.replaceAll(SECRET, '[redacted]');

/** A feed store in memory that can be told to refuse for a while. */
class MemoryFeed {
  entries: FeedEntry[] = [];
  head: Record<string, unknown> = {};
  publishes = 0;
  refuse = 0;
  async publish(_session: string, entries: readonly FeedEntry[], head: Record<string, unknown>) {
    this.publishes++;
    if (this.refuse > 0) {
      this.refuse--;
      throw new Error('Connection is closed.');
    }
    this.entries.push(...entries);
    for (const [k, v] of Object.entries(head)) {
      if (v === null) delete this.head[k];
      else this.head[k] = v;
    }
    return this.entries.length;
  }
}

function reporter(feed: MemoryFeed, extra: { maxPending?: number } = {}) {
  return new FeedReporter({ store: feed, redactorFor: async () => redact, hostId: 'h1', logger: pino({ level: 'silent' }), flushMs: 5, ...extra });
}

const at = 1;
const line = (text: string): SessionEvent => ({ type: 'output', at, stream: 'stdout', line: text });

describe('the live feed of a run', () => {
  it.each<[string, SessionEvent, FeedEntry[]]>([
    ['a build line', { type: 'build.output', at, line: 'Step 1/2' }, [{ k: 'build', at, text: 'Step 1/2' }]],
    ['a run start', { type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 2 }, [{ k: 'run', at, run: 2, command: 'start', by: 'alice' }]],
    ['a setup step', { type: 'setup.step', at, step: 1, of: 3, name: 'cloning acme/web' }, [{ k: 'step', at, step: 1, of: 3, name: 'cloning acme/web' }]],
    ['a plain line', line('hello'), [{ k: 'line', at, stream: 'stdout', text: 'hello' }]],
    ['agent text, tool, result and message', { type: 'output', at, stream: 'stdout', line: '{}', agent: [
      { kind: 'text', text: 'Let me look' }, { kind: 'tool', name: 'Bash', summary: 'ls' }, { kind: 'thinking', chars: 4 },
      { kind: 'tool_result', isError: false, chars: 10, lines: 2, firstLine: 'a' }, { kind: 'message', text: 'go on', replay: true },
    ] }, [{ k: 'text', at, text: 'Let me look' }, { k: 'tool', at, name: 'Bash', summary: 'ls' }, { k: 'result', at, isError: false, lines: 2, chars: 10, firstLine: 'a' }, { k: 'message', at, text: 'go on' }]],
    ['the terminal event (the finish reports it)', { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 }, []],
  ])('%s', (_name, event, expected) => {
    expect(feedEntries(event, command)).toEqual(expected);
  });

  it('redacts before it cuts: no part of a secret at the end of a long line survives', () => {
    for (let pad = 1990; pad < 2010; pad++) {
      const entry = redactEntry({ k: 'line', at, stream: 'stdout', text: `${'x'.repeat(pad)}${SECRET}` }, redact) as Extract<FeedEntry, { k: 'line' }>;
      for (let i = 0; i + 8 <= SECRET.length; i++) expect(entry.text).not.toContain(SECRET.slice(i, i + 8));
    }
  });

  it('strips terminal escapes and lone surrogates from what the page shows', () => {
    const entry = redactEntry({ k: 'line', at, stream: 'stdout', text: '\u001b[31mred\u001b[0m \ud800' }, redact) as Extract<FeedEntry, { k: 'line' }>;
    expect(entry.text).toBe('red \ufffd');
  });

  it('publishes every entry in order, redacted, with the header, and the outcome at the end', async () => {
    const feed = new MemoryFeed();
    const run = reporter(feed).forRun(command);
    run.event({ type: 'container.started', at: 10, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    for (let i = 0; i < 1200; i++) run.event(line(`line ${i} ${SECRET}`), { sessionCostUsd: 0.25, sessionTurns: 3 });
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at: 99, exitCode: 0, reason: 'exited', durationMs: 89 }, agent: { runCostUsd: 0.25, runTurns: 3 } });
    const lines = feed.entries.filter((e): e is Extract<FeedEntry, { k: 'line' }> => e.k === 'line');
    expect(lines.map((l) => l.text)).toEqual(Array.from({ length: 1200 }, (_, i) => `line ${i} [redacted]`));
    expect(feed.entries[0]).toMatchObject({ k: 'run', run: 1 });
    expect(feed.entries.at(-1)).toEqual({ k: 'end', at: 99, outcome: 'finished', exitCode: 0, reason: 'exited', durationMs: 89, costUsd: 0.25, turns: 3 });
    expect(feed.head).toMatchObject({ sessionId: command.sessionId, pod: 'web', owner: 'acme', repo: 'web', number: 1, installationId: 5, host: 'h1', phase: 'finished', run: 1, startedAt: 10, endedAt: 99, costUsd: 0.25, turns: 3 });
    expect(JSON.stringify(feed)).not.toContain(SECRET);
  });

  it('keeps entries while Redis refuses and publishes them once it answers, in order', async () => {
    const feed = new MemoryFeed();
    feed.refuse = 2;
    const run = reporter(feed).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    for (let i = 0; i < 10; i++) run.event(line(`l${i}`), {});
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 } });
    expect(feed.publishes).toBeGreaterThanOrEqual(3);
    expect(feed.entries.filter((e) => e.k === 'line').map((e) => (e as { text: string }).text)).toEqual(Array.from({ length: 10 }, (_, i) => `l${i}`));
    expect((feed.head as Partial<FeedHead>).phase).toBe('finished');
  });

  it('holds a bounded number of entries while Redis refuses, and says how many it let go', async () => {
    const feed = new MemoryFeed();
    feed.refuse = 1;
    const run = reporter(feed, { maxPending: 100 }).forRun(command);
    for (let i = 0; i < 1000; i++) run.event(line(`l${i}`), {});
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 } });
    const texts = feed.entries.filter((e) => e.k === 'line').map((e) => (e as { text: string }).text);
    expect(texts.length).toBeLessThanOrEqual(102);
    expect(texts.some((t) => /^\[\d+ entries could not be published while Redis did not answer\]$/.test(t))).toBe(true);
    expect(texts.at(-1)).toBe('l999');
  });

  it('a resume sent into the running agent adds a note, and leaves the header to the run that took it', async () => {
    const feed = new MemoryFeed();
    const running = reporter(feed).forRun(command);
    running.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    await reporter(feed).forRun({ ...command, seq: 5, kind: 'resume' }).finish({ kind: 'delivered', sessionId: command.sessionId, message: 'Sent to the agent.' });
    await new Promise((r) => setTimeout(r, 30));
    expect(feed.head.phase).toBe('running');
    expect(feed.entries).toContainEqual({ k: 'message', at: expect.any(Number), text: 'Sent to the agent.' });
  });

  it.each<[string, string | undefined, boolean, Partial<Extract<FeedEntry, { k: 'end' }>>]>([
    ['an answer only in the result is on the end entry, redacted', 'I did it.', false, { answer: `All done with [redacted].` }],
    ['an error result is the agent\'s error', 'I did it.', true, { answer: `All done with [redacted].`, answerIsError: true }],
    ['an answer that is the agent\'s last words is not shown twice', `All done with ${SECRET}.`, false, {}],
  ])('page answer: %s', async (_name, lastWords, isError, expected) => {
    const feed = new MemoryFeed();
    const run = reporter(feed).forRun(command);
    run.event({ type: 'container.started', at: 10, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    if (lastWords) run.event({ type: 'output', at, stream: 'stdout', line: '{}', agent: [{ kind: 'text', text: lastWords }] }, {});
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at: 99, exitCode: 0, reason: 'exited', durationMs: 89 }, agent: { result: { kind: 'result', isError, text: `\nAll done with ${SECRET}.\n` } } });
    const end = feed.entries.at(-1) as Extract<FeedEntry, { k: 'end' }>;
    expect(end.k).toBe('end');
    expect({ answer: end.answer, answerIsError: end.answerIsError }).toEqual({ answer: undefined, answerIsError: undefined, ...expected });
  });

  it('page answer: a long answer is cut, after redaction', () => {
    const entry = redactEntry({ k: 'end', at, outcome: 'finished', answer: `${'y'.repeat(19_990)}${SECRET}${'z'.repeat(30_000)}` }, redact) as Extract<FeedEntry, { k: 'end' }>;
    expect(entry.answer?.length).toBeLessThan(20_100);
    expect(entry.answer).not.toContain(SECRET.slice(0, 10));
  });
});

describe('the live feed while a publish hangs', () => {
  it('a burst over the bound while Redis holds a publish: what was let go is counted, nothing else is missing', async () => {
    let release: () => void = () => undefined;
    const seen: FeedEntry[] = [];
    let calls = 0;
    const store = {
      async publish(_s: string, entries: readonly FeedEntry[]) {
        calls++;
        if (calls === 1) await new Promise<void>((r) => (release = r)); // the first publish hangs (ioredis queues while reconnecting)
        seen.push(...entries);
        return seen.length;
      },
    };
    const run = new FeedReporter({ store, redactorFor: async () => (t) => t, hostId: 'h', logger: pino({ level: 'silent' }), flushMs: 1, maxPending: 100 }).forRun(command);
    for (let i = 0; i < 10; i++) run.event(line(`a${i}`), {});
    await new Promise((r) => setTimeout(r, 20)); // the first batch (a0–a9) is being published
    for (let i = 0; i < 250; i++) run.event(line(`b${i}`), {});
    release();
    await run.finish({ kind: 'exited', sessionId: command.sessionId, terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 } });
    const texts = seen.filter((e) => e.k === 'line').map((e) => (e as { text: string }).text);
    const notice = texts.find((t) => t.startsWith('['));
    const lost = Number(/^\[(\d+) entries/.exec(notice ?? '')?.[1] ?? 0);
    const published = texts.filter((t) => !t.startsWith('['));
    // Every entry is either published or counted as let go; the a's all went out in the first batch.
    expect(published.length + lost).toBe(260);
    expect(published.slice(0, 10)).toEqual(Array.from({ length: 10 }, (_, i) => `a${i}`));
    expect(published.at(-1)).toBe('b249');
    expect(new Set(published).size).toBe(published.length);
  });
});
