import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { BlockedTally, MAX_BLOCKED_NAME, MAX_BLOCKED_TRACKED } from '../../src/queue/blocked-tally.js';

const blocked = (host: string, port: number, count: number): Extract<SessionEvent, { type: 'egress.blocked' }> => ({ type: 'egress.blocked', at: 1, host, port, via: 'connect', count });

describe('BlockedTally', () => {
  it('takes each host:port\'s highest count as its total, whatever order or repeats the events come in', () => {
    const tally = new BlockedTally();
    expect([3, 1, 3, 2, 5].map((n) => tally.add(blocked('a.example', 443, n)))).toEqual([3, 0, 0, 0, 2]);
    expect(tally.total).toBe(5);
  });

  it('shows a host\'s ports 80 and 443 as one, other ports apart, most refused first, then by name', () => {
    const tally = new BlockedTally();
    tally.add(blocked('b.example', 80, 2));
    tally.add(blocked('b.example', 443, 2));
    tally.add(blocked('b.example', 8443, 4));
    tally.add(blocked('a.example', 443, 4));
    expect(tally.view(10)).toEqual({ hosts: [{ name: 'a.example', count: 4 }, { name: 'b.example', count: 4 }, { name: 'b.example:8443', count: 4 }], more: 0, total: 12 });
    expect(tally.view(1)).toMatchObject({ hosts: [{ name: 'a.example', count: 4 }], more: 2 });
  });

  it(`remembers ${MAX_BLOCKED_TRACKED} pairs: beyond them each new host is counted as one more and each refusal as one`, () => {
    const tally = new BlockedTally();
    for (let i = 0; i < MAX_BLOCKED_TRACKED + 500; i++) {
      tally.add(blocked(`h${i}.example`, 443, 1));
      tally.add(blocked(`h${i}.example`, 443, 2));
    }
    const view = tally.view(10);
    expect(view.hosts).toHaveLength(10);
    expect(view.more).toBe(MAX_BLOCKED_TRACKED + 500 - 10);
    expect(view.total).toBe(2 * (MAX_BLOCKED_TRACKED + 500));
  });

  it('keeps a name of any length to its first characters, and takes an event of odd numbers for one refusal', () => {
    const tally = new BlockedTally();
    tally.add(blocked('x'.repeat(100_000), 443, 1));
    expect(tally.add({ ...blocked('y.example', Number.NaN, Number.NaN) })).toBe(1);
    const names = tally.view(10).hosts.map((h) => h.name);
    expect(names.find((n) => n.startsWith('x'))?.length).toBe(MAX_BLOCKED_NAME);
    expect(names).toContain('y.example:0');
  });
});
