import { describe, expect, it } from 'vitest';
import { positionUpdates, runsAhead, type QueueSnapshot } from '../../src/queue/queue-position.js';

/** A snapshot of an issue queue holding `seqs`, oldest first. */
function snapshot(seqs: number[], rest: Partial<Omit<QueueSnapshot, 'commands'>> = {}): QueueSnapshot {
  return { commands: seqs.map((seq) => ({ seq })), running: 0, stoppedSeq: 0, deliveries: new Map(), shown: new Map(), ...rest };
}

const shown = (entries: Array<[number, number]>) => new Map(entries);

describe('positionUpdates', () => {
  const cases: Array<[string, QueueSnapshot, Array<[seq: number, position: number]>]> = [
    ['an empty queue: nothing', snapshot([]), []],
    ['only the running command: nothing', snapshot([1], { running: 1 }), []],
    ['positions not known yet: every waiting command, the running one counted', snapshot([1, 2, 3], { running: 1 }), [[2, 1], [3, 2]]],
    ['the first command about to start (not running yet) still counts and is never rendered', snapshot([1, 2, 3]), [[2, 1], [3, 2]]],
    ['positions unchanged: nothing to edit', snapshot([1, 2, 3], { running: 1, shown: shown([[2, 1], [3, 2]]) }), []],
    ['the run ahead ended: the third moves up to one ahead', snapshot([2, 3], { shown: shown([[2, 1], [3, 2]]) }), [[3, 1]]],
    ['only the changed comment is edited', snapshot([2, 3, 4], { running: 2, shown: shown([[3, 1], [4, 3]]) }), [[4, 2]]],
    ['a comment showing too few ahead is corrected too', snapshot([1, 2, 3], { running: 1, shown: shown([[2, 1], [3, 0]]) }), [[3, 2]]],
    ['commands a stop cancelled are neither rendered nor counted', snapshot([1, 2, 3, 4], { running: 1, stoppedSeq: 3, shown: shown([[2, 1], [3, 2], [4, 3]]) }), [[4, 1]]],
    ['the running command counts even when the stop covers it', snapshot([3, 4], { running: 3, stoppedSeq: 3, shown: shown([[4, 2]]) }), [[4, 1]]],
    ['a cancelled command first: not counted, the next is next in the queue', snapshot([2, 3, 4], { stoppedSeq: 3, shown: shown([[4, 1]]) }), [[4, 0]]],
    ['a resume taken by the running agent: not counted, not rendered', snapshot([1, 2, 3], { running: 1, deliveries: new Map([[2, 'delivered']]), shown: shown([[2, 1], [3, 2]]) }), [[3, 1]]],
    ['a resume being delivered: counted (it may still run), not rendered', snapshot([1, 2, 3], { running: 1, deliveries: new Map([[2, 'pending']]) }), [[3, 2]]],
    ['the order of the list, not of the seqs, is the queue order', snapshot([1, 3, 2], { running: 1 }), [[3, 1], [2, 2]]],
  ];

  it.each(cases)('%s', (_name, input, expected) => {
    expect(positionUpdates(input).map((u) => [u.command.seq, u.position])).toEqual(expected);
  });

  it('hands back the commands it was given', () => {
    const third = { seq: 3, issueKey: 'acme.web-1' };
    const [update] = positionUpdates({ ...snapshot([]), commands: [{ seq: 1, issueKey: 'acme.web-1' }, third], running: 1 });
    expect(update?.command).toBe(third);
  });
});

describe('runsAhead', () => {
  const cases: Array<[string, QueueSnapshot, number]> = [
    ['an empty queue', snapshot([]), 0],
    ['a running command and two waiting', snapshot([1, 2, 3], { running: 1 }), 3],
    ['commands a stop cancelled do not count; the running one does', snapshot([1, 2, 3], { running: 1, stoppedSeq: 3 }), 1],
    ['a resume the running agent took does not count', snapshot([1, 2], { running: 1, deliveries: new Map([[2, 'delivered']]) }), 1],
    ['a resume being delivered counts', snapshot([1, 2], { running: 1, deliveries: new Map([[2, 'pending']]) }), 2],
  ];

  it.each(cases)('%s', (_name, input, expected) => {
    expect(runsAhead(input)).toBe(expected);
  });
});

describe('positionUpdates of an issue waiting for a run slot', () => {
  it('its first command shows the issues its pool serves first, and those behind it count from there', () => {
    expect(positionUpdates(snapshot([1, 2]), 3).map((u) => [u.command.seq, u.position])).toEqual([[1, 3], [2, 4]]);
  });

  it('an issue whose run goes shows nothing for the pool: its slot is taken', () => {
    expect(positionUpdates(snapshot([1, 2], { running: 1 }), 3).map((u) => [u.command.seq, u.position])).toEqual([[2, 1]]);
  });
});
