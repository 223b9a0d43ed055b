import { createReadStream } from 'node:fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { TestWorld, collect, describeWithDocker } from '../integration/harness.js';

const GB = 1024 ** 3;
const LINE = 'x'.repeat(79); // 80 bytes with its newline

/** Counts lines of a file by scanning bytes, without holding it. */
async function countLines(path: string): Promise<number> {
  let lines = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    let at = chunk.indexOf(10);
    while (at !== -1) {
      lines += 1;
      at = chunk.indexOf(10, at + 1);
    }
  }
  return lines;
}

describeWithDocker('faults: containers with hostile output', () => {
  const world = new TestWorld();

  beforeAll(async () => {
    await world.init();
    await world.pod('gigabyte', { command: ['sh', '-c', `yes ${LINE} | head -c ${GB}`], timeoutSeconds: 1200 });
    await world.pod('longline', { command: ['sh', '-c', 'head -c 10485760 /dev/zero | tr "\\0" y; echo; echo after'] });
    await world.pod('noline', { command: ['sh', '-c', 'head -c 3145728 /dev/zero | tr "\\0" z'] });
  });

  afterAll(async () => {
    await world.close();
  });

  it('7b. 1 GB of output: every line arrives and is logged, none dropped', async () => {
    const session = await world.dispatcher.start('gigabyte', { prompt: 'x' });
    let lines = 0;
    let wrong = 0;
    let last = '';
    const events = await collect(session, (e) => {
      if (e.type !== 'output') return;
      if (lines > 0 && last !== LINE) wrong += 1; // only the very last line may differ
      lines += 1;
      last = e.line;
    }, 1_200_000);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(wrong).toBe(0);
    expect(lines).toBe(Math.ceil(GB / 80));
    expect(last).toBe('x'.repeat(GB % 80)); // head -c cut the last line short
    // Every event was logged: the output lines plus the build and lifecycle events.
    const nonOutput = events.filter((e) => e.type !== 'output').length;
    expect(await countLines(world.store.logPath(session.id))).toBe(lines + nonOutput);
    expect(await world.containersOf(session.id)).toEqual([]);
  }, 1_300_000);

  it('7c. a 10 MB line is kept whole, in ten 1 MiB pieces, all but the last marked partial', async () => {
    const session = await world.dispatcher.start('longline', { prompt: 'x' });
    const events = (await collect(session)).filter((e) => e.type === 'output');
    const pieces = events.map((e) => (e.type === 'output' ? e : undefined)).filter((e) => e !== undefined);
    expect(pieces.map((p) => [p.line.length, p.partial ?? false])).toEqual([
      ...Array.from({ length: 9 }, () => [1024 * 1024, true]),
      [1024 * 1024, false],
      [5, false],
    ]);
    expect(pieces[10]?.line).toBe('after');
    expect(pieces.slice(0, 10).map((p) => p.line).join('')).toBe('y'.repeat(10 * 1024 * 1024));
  });

  it('7c. output that never ends its line is delivered when the container exits', async () => {
    const session = await world.dispatcher.start('noline', { prompt: 'x' });
    const events = (await collect(session)).flatMap((e) => (e.type === 'output' ? [e] : []));
    expect(events.map((e) => e.line).join('')).toBe('z'.repeat(3 * 1024 * 1024));
    expect(events.at(-1)?.partial).toBeUndefined();
  });
});
