import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunCommand } from '../../src/queue/contract.js';
import { IssueState } from '../../src/queue/issue-state.js';
import { hostRows } from '../../src/main/hosts-command.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const command = (issueKey: string, seq: number, kind: 'start' | 'resume' = 'start'): RunCommand => ({
  seq, kind, issueKey, pod: 'web', sessionId: 'web-00aa00aa', prompt: 'p', statusCommentId: 10 + seq, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
});

describeWithRedis('worker hosts in Redis', () => {
  let redis: Redis;
  let state: IssueState;
  beforeAll(async () => {
    ({ redis } = await testRedis(5));
    state = new IssueState(redis);
  });
  afterAll(() => redis?.disconnect());

  it('a host whose heartbeat stops is listed as not seen, since its last beat, with its issues and runs', async () => {
    await state.heartbeat('h1', 100);
    await state.heartbeat('h2', 60_000);
    await state.set('acme.web-1', { hostId: 'h1', sessionId: 'web-00aa00aa', pod: 'web', running: '1', runningCommand: JSON.stringify(command('acme.web-1', 1)) });
    await state.set('acme.web-2', { hostId: 'h1', sessionId: 'web-00bb00bb', pod: 'web' });
    await state.set('acme.web-3', { hostId: 'h2', sessionId: 'web-00cc00cc', pod: 'web' });
    const beat = Date.now();
    await new Promise((r) => setTimeout(r, 250));
    const hosts = await state.hosts();
    expect(hosts.map((h) => [h.hostId, h.alive, h.issues, h.running])).toEqual([['h1', false, ['acme.web-1', 'acme.web-2'], 1], ['h2', true, ['acme.web-3'], 0]]);
    expect(Math.abs((hosts[0]?.lastSeen ?? 0) - beat)).toBeLessThan(1000);
    const rows = hostRows(hosts, Date.now());
    expect(rows[0]).toMatch(/^HOST\s+STATE\s+LAST SEEN\s+RUNNING\s+ISSUES$/);
    expect(rows[1]).toMatch(/^h1\s+not seen\s+0s ago\s+1\s+acme\.web-1, acme\.web-2$/);
    expect(rows[2]).toMatch(/^h2\s+alive/);
  });

  it('forgetting a host releases its issues: their commands are handed back once each, and nothing of the session stays bound', async () => {
    await state.append(command('acme.web-1', 1));
    await state.append(command('acme.web-1', 2, 'resume'));
    const released = await state.forgetHost('h1');
    expect(released.map((r) => [r.issueKey, r.sessionId, r.commands.map((c) => c.seq)])).toEqual([['acme.web-1', 'web-00aa00aa', [1, 2]], ['acme.web-2', 'web-00bb00bb', []]]);
    const issue = await state.get('acme.web-1');
    expect(issue).toMatchObject({ hostId: undefined, sessionId: undefined, running: 0, pod: 'web', forgotten: { hostId: 'h1', sessionId: 'web-00aa00aa' } });
    expect(await state.pending('acme.web-1')).toBe(0);
    expect((await state.hosts()).map((h) => h.hostId)).toEqual(['h2']);
    expect((await state.get('acme.web-3')).hostId).toBe('h2'); // another host's issue is untouched
    expect(await state.forgetHost('h1')).toEqual([]); // once
  });
});
