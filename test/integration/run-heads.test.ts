import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { issueKeyName } from '../../src/queue/issue-keys.js';
import { RunHeads } from '../../src/queue/run-heads.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

describeWithRedis('RunHeads: a run\'s branch heads from before it, kept for its retried job', () => {
  let redis: Redis;
  let heads: RunHeads;

  beforeAll(async () => {
    redis = (await testRedis(20)).redis;
    heads = new RunHeads(redis);
  });
  afterAll(() => redis.disconnect());

  it('the first heads kept win: a retried job that lists them again (after the run pushed) gets the first', async () => {
    const first = new Map([['cldpd/issue-1', 'a'.repeat(40)]]);
    expect(await heads.keepHeadsBefore('acme.web-1', 3, first)).toEqual(first);
    const after = new Map([['cldpd/issue-1', 'b'.repeat(40)], ['cldpd/issue-1-docs', 'c'.repeat(40)]]);
    expect(await heads.keepHeadsBefore('acme.web-1', 3, after)).toEqual(first);
    expect(await heads.headsBefore('acme.web-1', 3)).toEqual(first);
  });

  it('each run of the issue has its own; none kept reads as none; an empty listing is kept as empty', async () => {
    expect(await heads.headsBefore('acme.web-1', 4)).toBeUndefined();
    expect(await heads.keepHeadsBefore('acme.web-1', 4, new Map())).toEqual(new Map());
    expect(await heads.headsBefore('acme.web-1', 4)).toEqual(new Map());
  });

  it('lives among the issue\'s keys (removed when it is retired), and not for ever', async () => {
    await heads.keepHeadsBefore('acme.web-2', 1, new Map([['cldpd/issue-2', 'd'.repeat(40)]]));
    const key = issueKeyName('acme.web-2', 'heads:1');
    expect(key.startsWith(`${issueKeyName('acme.web-2')}:`)).toBe(true);
    const ttl = await redis.ttl(key);
    expect(ttl).toBeGreaterThan(7 * 86_400);
    expect(ttl).toBeLessThanOrEqual(8 * 86_400);
  });

  it('a value that is not its JSON reads as none', async () => {
    await redis.set(issueKeyName('acme.web-3', 'heads:1'), '{not json');
    expect(await heads.headsBefore('acme.web-3', 1)).toBeUndefined();
    await redis.set(issueKeyName('acme.web-3', 'heads:2'), JSON.stringify({ 'cldpd/issue-3': 5, main: 'e'.repeat(40) }));
    expect(await heads.headsBefore('acme.web-3', 2)).toEqual(new Map([['main', 'e'.repeat(40)]]));
  });
});
