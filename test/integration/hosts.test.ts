import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { RunCommand } from '../../src/queue/contract.js';
import { issueStores, type IssueStores } from '../../src/queue/issue-stores.js';
import { hostRows } from '../../src/main/hosts-command.js';
import { describeWithRedis, testRedis } from './redis-harness.js';

const command = (issueKey: string, seq: number, kind: 'start' | 'resume' = 'start'): RunCommand => ({
  seq, kind, issueKey, pod: 'web', sessionId: 'web-00aa00aa', prompt: 'p', statusCommentId: 10 + seq, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
});

describeWithRedis('worker hosts in Redis', () => {
  let redis: Redis;
  let state: IssueStores;
  beforeAll(async () => {
    ({ redis } = await testRedis(5));
    state = issueStores(redis);
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

  it('forgetting a host releases its issues: its runs wait to be reported once each, a new session queued behind them stays queued, its session is remembered as forgotten', async () => {
    await state.append(command('acme.web-1', 1));
    await state.append(command('acme.web-1', 2, 'resume'));
    await state.append({ ...command('acme.web-1', 3), sessionId: 'web-00dd00dd' }); // a new label, waiting behind them
    const released = await state.forgetHost('h1');
    expect(released).toEqual([
      { issueKey: 'acme.web-1', sessionId: 'web-00aa00aa', released: 2, kept: 1 },
      { issueKey: 'acme.web-2', sessionId: 'web-00bb00bb', released: 0, kept: 0 },
    ]);
    const issue = await state.get('acme.web-1');
    expect(issue).toMatchObject({ hostId: undefined, running: 0, pod: 'web', forgotten: { hostId: 'h1', sessionId: 'web-00aa00aa' } });
    expect((await state.commands('acme.web-1')).map((c) => c.seq)).toEqual([3]);
    expect((await state.get('acme.web-2')).sessionId).toBeUndefined();
    expect(await state.sessionForgotten('web-00aa00aa')).toBe(true);
    expect(await state.sessionForgotten('web-00dd00dd')).toBe(false);
    const runs = await state.releasedRuns('h1');
    expect(runs.map((r) => r.command.seq)).toEqual([1, 2]);
    await runs[0]?.reported();
    expect((await state.releasedRuns('h1')).map((r) => r.command.seq)).toEqual([2]); // a forget run again reports only what is left
    expect((await state.hosts()).map((h) => h.hostId)).toEqual(['h2']);
    expect((await state.get('acme.web-3')).hostId).toBe('h2'); // another host's issue is untouched
    expect(await state.forgetHost('h1')).toEqual([]); // once
  });

  it('a host that says it runs again is not released', async () => {
    await state.set('acme.web-4', { hostId: 'h2', sessionId: 'web-00ee00ee', pod: 'web' });
    await expect(state.forgetHost('h2', ['acme.web-4'])).rejects.toThrow('host "h2" says it runs again');
    expect((await state.get('acme.web-4')).hostId).toBe('h2');
  });

  it('a run of a released issue that ends late on its old host does not clear the record of the run that replaced it', async () => {
    await state.set('acme.web-5', { hostId: 'h3', running: '7', runningCommand: JSON.stringify(command('acme.web-5', 7)) });
    await state.done(command('acme.web-5', 6)); // the old host's run, seq 6, finishing after the release
    expect((await state.get('acme.web-5')).running).toBe(7);
    await state.done(command('acme.web-5', 7));
    expect((await state.get('acme.web-5')).running).toBe(0);
  });
});
