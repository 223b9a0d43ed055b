import type { Redis } from 'ioredis';
import { afterAll, beforeAll, beforeEach, expect, it } from 'vitest';
import { IntakeLedger } from '../../src/queue/intake-ledger.js';
import { IssueRecords } from '../../src/queue/issue-record.js';
import { PullRequestLinks } from '../../src/queue/pull-request-links.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const pull = { owner: 'acme', repo: 'web', number: 7 };
const link = { ...pull, url: 'https://github.com/acme/web/pull/7', head: 'cldpd/issue-3', base: 'main', at: 1 };

describeWithRedis('the pull requests of sessions, in Redis', () => {
  let redis: Redis;
  let links: PullRequestLinks;

  beforeAll(async () => {
    ({ redis } = await testRedis(22));
  });
  beforeEach(async () => {
    await redis.flushdb();
    links = new PullRequestLinks(redis);
  });
  afterAll(() => redis?.disconnect());

  it('pull request: a recorded pull request leads to its issue, keeps the agent\'s commit across updates, and goes with the issue\'s retirement', async () => {
    await links.linkPull('acme.web-3', { ...link, agentSha: 'a1', opened: true });
    await links.linkPull('acme.web-3', { ...link, at: 2 });
    expect(await links.issueOfPull({ owner: 'ACME', repo: 'Web', number: 7 })).toBe('acme.web-3');
    expect(await links.pullOf('acme.web-3', pull)).toMatchObject({ agentSha: 'a1', opened: true, at: 2 });
    expect(await links.issueOfPull({ ...pull, number: 8 })).toBeUndefined();
    const records = new IssueRecords(redis);
    await records.set('acme.web-3', { sessionId: 'web-1' });
    await records.closed('acme.web-3', 5);
    expect(await records.retire('acme.web-3', { closedAt: 5, seq: 0, sessionId: 'web-1' })).toBeGreaterThan(0);
    expect(await links.issueOfPull(pull)).toBeUndefined();
    expect(await redis.hlen('cldpd:pull-issues')).toBe(0);
  });

  it('race: twenty deliveries of failing checks on one commit make one fix; the fixes allowed are counted per pull request', async () => {
    const other = new PullRequestLinks(redis.duplicate());
    const claims = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? links : other).claimCheckFix('acme.web-3', pull, 'sha1', 2, `d${i}`)));
    expect(claims.filter((c) => 'fix' in c)).toEqual([{ fix: 1 }]);
    expect(claims.filter((c) => 'refused' in c).every((c) => 'refused' in c && c.refused === 'taken')).toBe(true);
    // The delivery that won, retried, gets its fix back.
    const winner = claims.findIndex((c) => 'fix' in c);
    expect(await links.claimCheckFix('acme.web-3', pull, 'sha1', 2, `d${winner}`)).toEqual({ fix: 1 });
    expect(await links.claimCheckFix('acme.web-3', pull, 'sha2', 2, 'e')).toEqual({ fix: 2 });
    expect(await links.claimCheckFix('acme.web-3', pull, 'sha3', 2, 'f')).toEqual({ refused: 'spent' });
    expect(await links.claimCheckFix('acme.web-3', { ...pull, number: 8 }, 'sha3', 2, 'f')).toEqual({ fix: 1 });
    await (other as unknown as { redis: Redis }).redis.quit();
  });

  it('pull request: a person\'s push stops the fixes until the agent pushes again', async () => {
    await links.stopCheckFixes('acme.web-3', pull, 'sha1');
    expect(await links.checkFixesStopped('acme.web-3', pull, 'sha1')).toBe(true);
    expect(await links.claimCheckFix('acme.web-3', pull, 'sha1', 5, 'd')).toEqual({ refused: 'stopped' });
    // A run of the session pushed sha2 (a person asked for it): its failing checks are fixed again.
    expect(await links.claimCheckFix('acme.web-3', pull, 'sha2', 5, 'e')).toEqual({ fix: 1 });
  });

  it('review: two deliveries of one review claim it once; the winner again keeps it', async () => {
    const ledger = new IntakeLedger(redis);
    const [a, b] = await Promise.all([ledger.claimFor('review:acme/web#9', 'd1'), ledger.claimFor('review:acme/web#9', 'd2')]);
    expect([a, b].filter(Boolean)).toHaveLength(1);
    expect(await ledger.claimFor('review:acme/web#9', a ? 'd1' : 'd2')).toBe(true);
  });
});
