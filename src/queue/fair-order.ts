/**
 * Fair share of a host's run slots: when more issues wait than there are slots, the next
 * slot goes to the repository served least recently, then within it to the person served
 * least recently, then to that person's oldest waiting issue. So repositories take turns
 * (one that labels fifty issues at once delays another's single label by at most one run
 * per slot), and so do the people of one repository.
 *
 * This file is the rule, pure; FairPool applies the same rule inside Redis, atomically, and
 * uses this one to show each waiting run its place.
 */

/** An issue waiting for a slot in a pool. */
export interface FairEntry {
  readonly issueKey: string;
  /** `owner/repo`, lowercase. */
  readonly repo: string;
  /** The GitHub login whose command waits first. */
  readonly person: string;
  /** Order of arrival in the pool (a counter: smaller came first). */
  readonly arrival: number;
  /** Not taken before this time (ms): a run waiting for a model provider's reset. */
  readonly due: number;
  /** Its issue is being drained now (by a slot that takes this run too): no slot goes to it. */
  readonly busy?: boolean;
}

/**
 * When each repository and each person of a repository was last given a slot, on the pool's
 * own clock (a counter of slots given); absent means not within the recent past.
 */
export interface FairServed {
  readonly repos: ReadonlyMap<string, number>;
  /** Keyed by `personKey(repo, person)`. */
  readonly people: ReadonlyMap<string, number>;
}

/** The key of a person of a repository in FairServed.people. */
export function personKey(repo: string, person: string): string {
  return `${repo}\n${person}`;
}

/**
 * The repository of an issue key (`owner.repo-number`, see the core's issueKey): `owner/repo`.
 * Owners have no dots, and the number is after the last dash.
 */
export function repoOfIssueKey(issueKey: string): string {
  const dot = issueKey.indexOf('.');
  const dash = issueKey.lastIndexOf('-');
  if (dot <= 0 || dash <= dot) return issueKey;
  return `${issueKey.slice(0, dot)}/${issueKey.slice(dot + 1, dash)}`;
}

/**
 * Pure: which of `entries` the next slot goes to at `now`, or undefined when none is due.
 * The repository with the smallest served time (never served first; ties: the one whose
 * oldest due entry came first), then its person likewise, then that person's oldest entry.
 */
export function pickNext(entries: readonly FairEntry[], served: FairServed, now: number): FairEntry | undefined {
  const due = entries.filter((e) => e.due <= now && !e.busy);
  if (due.length === 0) return undefined;
  const repo = leastServed(due, (e) => e.repo, (key) => served.repos.get(key) ?? 0);
  const ofRepo = due.filter((e) => e.repo === repo);
  const person = leastServed(ofRepo, (e) => e.person, (key) => served.people.get(personKey(repo, key)) ?? 0);
  return ofRepo.filter((e) => e.person === person).reduce((a, b) => (b.arrival < a.arrival ? b : a));
}

/** The group (by `groupOf`) with the smallest served time, ties going to the one whose oldest entry came first. */
function leastServed(entries: readonly FairEntry[], groupOf: (e: FairEntry) => string, servedAt: (group: string) => number): string {
  const oldest = new Map<string, number>();
  for (const e of entries) oldest.set(groupOf(e), Math.min(oldest.get(groupOf(e)) ?? Infinity, e.arrival));
  let best: string | undefined;
  for (const [group, arrival] of oldest) {
    if (best === undefined) {
      best = group;
      continue;
    }
    const [a, b] = [servedAt(group), servedAt(best)];
    if (a < b || (a === b && arrival < (oldest.get(best) as number))) best = group;
  }
  return best as string;
}

/**
 * Pure: the order in which the due entries will be given slots from now on, if nothing else
 * arrives (at most `limit` of them: a place further back is shown as "at least").
 */
export function fairOrder(entries: readonly FairEntry[], served: FairServed, now: number, limit = 500): FairEntry[] {
  const left = [...entries];
  const repos = new Map(served.repos);
  const people = new Map(served.people);
  let clock = 0;
  for (const at of [...repos.values(), ...people.values()]) clock = Math.max(clock, at);
  const order: FairEntry[] = [];
  while (order.length < limit) {
    const next = pickNext(left, { repos, people }, now);
    if (!next) break;
    clock += 1;
    repos.set(next.repo, clock);
    people.set(personKey(next.repo, next.person), clock);
    order.push(next);
    left.splice(left.indexOf(next), 1);
  }
  return order;
}

/**
 * Pure: how many waiting issues get a slot before `issueKey` (0: it is next), computed as if
 * it waited now, from `who` when it is not among the entries yet; undefined when it is not
 * due (it waits for a provider) or further back than `limit`.
 */
export function placeOf(issueKey: string, entries: readonly FairEntry[], served: FairServed, now: number, who?: { readonly person: string }, limit = 500): number | undefined {
  const all = entries.some((e) => e.issueKey === issueKey) || !who
    ? entries
    : [...entries, { issueKey, repo: repoOfIssueKey(issueKey), person: who.person, arrival: entries.reduce((max, e) => Math.max(max, e.arrival), 0) + 1, due: 0 }];
  const index = fairOrder(all, served, now, limit).findIndex((e) => e.issueKey === issueKey);
  return index < 0 ? undefined : index;
}
