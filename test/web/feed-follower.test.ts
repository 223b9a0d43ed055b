import { describe, expect, it } from 'vitest';
import type { StoredEntry } from '../../src/queue/session-feed.js';
import { FeedFollower, compareIds } from '../../src/web/feed-follower.js';

const entry = (n: number): StoredEntry => ({ id: `${n}-0`, n, entry: { k: 'line', at: 0, stream: 'stdout', text: `l${n}` } });

describe('FeedFollower', () => {
  it('orders stream ids by time, then sequence', () => {
    expect(compareIds('2-0', '10-0')).toBeLessThan(0);
    expect(compareIds('5-3', '5-12')).toBeLessThan(0);
    expect(compareIds('7-1', '7-1')).toBe(0);
  });

  it('a page that joins while a read is under way gets what it lacks from its own cursor, not the others\'', async () => {
    const all = Array.from({ length: 7 }, (_, i) => entry(i + 1));
    let hold: (() => void) | undefined;
    const reads: string[] = [];
    const store = {
      async poll(cursors: ReadonlyMap<string, string>) {
        const from = cursors.get('s') as string;
        reads.push(from);
        if (reads.length === 1) await new Promise<void>((r) => (hold = r));
        return new Map([['s', all.filter((e) => compareIds(e.id, from) > 0)]]);
      },
      async head() {
        return undefined;
      },
    };
    const follower = new FeedFollower(store, 5);
    const a: number[] = [];
    const b: number[] = [];
    follower.follow('s', { cursor: '5-0', deliver: (entries) => a.push(...entries.map((e) => e.n)) });
    while (!hold) await new Promise((r) => setTimeout(r, 2));
    follower.follow('s', { cursor: '2-0', deliver: (entries) => b.push(...entries.map((e) => e.n)) });
    hold();
    const deadline = Date.now() + 5000;
    while (b.length < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    follower.close();
    expect(a).toEqual([6, 7]);
    expect(b).toEqual([3, 4, 5, 6, 7]);
  });
});
