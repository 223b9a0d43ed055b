import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fairOrder, personKey, pickNext, placeOf, repoOfIssueKey, type FairEntry, type FairServed } from '../../src/queue/fair-order.js';

const none: FairServed = { repos: new Map(), people: new Map() };

/** Entries of `repo` by `person`, arriving in order from `from`. */
function burst(repo: string, person: string, count: number, from: number): FairEntry[] {
  return Array.from({ length: count }, (_, i) => ({ issueKey: `${repo.replace('/', '.')}-${i + 1}`, repo, person, arrival: from + i, due: 0 }));
}

describe('fair share of run slots', () => {
  it('a repository labelling twenty issues first does not hold back another repository\'s single label: it is next', () => {
    const twenty = burst('acme/big', 'ann', 20, 1);
    const one = burst('acme/small', 'bob', 1, 21);
    // Two slots took the first two of the burst: the big repository was served last.
    const served: FairServed = { repos: new Map([['acme/big', 2]]), people: new Map([[personKey('acme/big', 'ann'), 2]]) };
    const order = fairOrder([...twenty.slice(2), ...one], served, 0);
    expect(order[0]?.repo).toBe('acme/small');
    expect(order.slice(1).map((e) => e.issueKey)).toEqual(twenty.slice(2).map((e) => e.issueKey));
  });

  it('repositories take turns while both have work waiting, whatever order their labels came in', () => {
    const order = fairOrder([...burst('a/x', 'ann', 3, 1), ...burst('b/y', 'bob', 3, 4)], none, 0);
    expect(order.map((e) => e.repo)).toEqual(['a/x', 'b/y', 'a/x', 'b/y', 'a/x', 'b/y']);
  });

  it('within a repository, people take turns; each person\'s own issues go oldest first', () => {
    const entries = [...burst('a/x', 'ann', 3, 1), { issueKey: 'a.x-9', repo: 'a/x', person: 'cat', arrival: 10, due: 0 }];
    expect(fairOrder(entries, none, 0).map((e) => e.issueKey)).toEqual(['a.x-1', 'a.x-9', 'a.x-2', 'a.x-3']);
  });

  it('a run waiting for a provider\'s reset is not given a slot before its time, and then is', () => {
    const waiting: FairEntry = { issueKey: 'a.x-1', repo: 'a/x', person: 'ann', arrival: 1, due: 5_000 };
    expect(pickNext([waiting], none, 4_999)).toBeUndefined();
    expect(pickNext([waiting], none, 5_000)).toBe(waiting);
    expect(placeOf('a.x-1', [waiting], none, 0)).toBeUndefined();
  });

  it('an issue whose drain runs now (its next run goes in the same slot) is given no slot and counts for no place', () => {
    const entries: FairEntry[] = [{ issueKey: 'a.x-1', repo: 'a/x', person: 'ann', arrival: 1, due: 0, busy: true }, ...burst('b/y', 'bob', 1, 2)];
    expect(fairOrder(entries, none, 0).map((e) => e.issueKey)).toEqual(['b.y-1']);
    expect(placeOf('c.z-1', entries, none, 0, { person: 'cat' })).toBe(1);
  });

  it('the place of an issue not waiting yet is computed as if it came now', () => {
    const entries = burst('a/x', 'ann', 5, 1);
    expect(placeOf('b.y-1', entries, { repos: new Map([['a/x', 3]]), people: new Map() }, 0, { person: 'bob' })).toBe(0);
    // Same repository, same person: behind their own five.
    expect(placeOf('a.x-99', entries, none, 0, { person: 'ann' })).toBe(5);
    // Same repository, another person: after the repository's next turn, and the other repository's.
    expect(placeOf('a.x-99', entries, none, 0, { person: 'cat' })).toBe(1);
  });

  it('reads the repository from an issue key, whose repository may hold dots and dashes', () => {
    expect(repoOfIssueKey('acme.my-repo.js-12')).toBe('acme/my-repo.js');
    expect(repoOfIssueKey('nodots')).toBe('nodots');
  });

  it('property: every due entry gets exactly one slot, and a repository never gets two turns in a row while another waits', () => {
    const entry = fc.record({ repo: fc.constantFrom('a/x', 'b/y', 'c/z'), person: fc.constantFrom('ann', 'bob', 'cat') });
    fc.assert(fc.property(fc.array(entry, { maxLength: 40 }), (raw) => {
      const entries = raw.map((e, i) => ({ ...e, issueKey: `${e.repo.replace('/', '.')}-${i}`, arrival: i + 1, due: 0 }));
      const order = fairOrder(entries, none, 0);
      expect(order.map((e) => e.issueKey).sort()).toEqual(entries.map((e) => e.issueKey).sort());
      order.forEach((e, i) => {
        if (i === 0 || order[i - 1]?.repo !== e.repo) return;
        // Two turns in a row for one repository only once no other has anything left.
        expect(order.slice(i).every((later) => later.repo === e.repo)).toBe(true);
      });
    }));
  });
});
