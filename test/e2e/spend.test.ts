import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS } from '../../src/core/index.js';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, type CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from './processes.js';

const SECRET = 'e2e-spend-secret';
const OWNER = 'acme';
const REPO = 'spendy';

/** Assistant lines as Claude Code writes them: one per content block, each with the message's usage as at its start. */
const ASSISTANT = [
  { id: 'msg_1', content: { type: 'text', text: 'Looking at the test.' }, usage: { input_tokens: 2000, output_tokens: 100, cache_creation_input_tokens: 10_000, cache_read_input_tokens: 50_000 } },
  { id: 'msg_1', content: { type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'npm test' } }, usage: { input_tokens: 2000, output_tokens: 100, cache_creation_input_tokens: 10_000, cache_read_input_tokens: 50_000 } },
  { id: 'msg_2', content: { type: 'text', text: 'Running it again.' }, usage: { input_tokens: 500, output_tokens: 50, cache_read_input_tokens: 62_000 } },
].map((m) => JSON.stringify({ type: 'assistant', session_id: 'claude-spend', message: { id: m.id, type: 'message', role: 'assistant', model: 'claude-sonnet-4-5-20250929', content: [m.content], usage: m.usage } }));
/**
 * At Sonnet 4.5's list prices ($3 input, $15 output, $3.75 cache write, $0.30 cache read a
 * million tokens), in millionths of a dollar: msg_1 once (2000 × 3 + 100 × 15 + 10,000 × 3.75
 * + 50,000 × 0.3 = 60,000), msg_2 (500 × 3 + 50 × 15 + 62,000 × 0.3 = 20,850).
 */
const ESTIMATE_MICRO_USD = 80_850;

/** A fake agent: says the assistant lines, then `then` (a shell command). */
const agent = (then: string): string[] => ['sh', '-c', `${ASSISTANT.map((l) => `printf '%s\\n' '${l}'`).join('; ')}; ${then}`];

describeWithDocker('spending counted as a run goes, end to end', () => {
  describeWithRedis('server and worker processes, fake GitHub API, real Docker and Redis', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis | undefined;
    let port: number;
    let processes: { server: CldpdProcess; worker: CldpdProcess } | undefined;
    let issueNumber = 1;

    const statusOf = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).find((c) => c.body.startsWith('<!-- cldpd:status'))?.body ?? '';
    const spent = async (scope: string): Promise<number> => Number(await redis?.hget(`cldpd:usage:${new Date().toISOString().slice(0, 10)}:${scope}`, 'spend') ?? 0);
    const label = (n: number, pod: string) => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 4242, issue: n, body: 'Fix it.', label: `cldpd:${pod}` }), { id: randomUUID(), secret: SECRET });
    const comment = (n: number, text: string) => deliver(port, 'issue_comment', webhookPayload('issue_comment', 'created', { owner: OWNER, repo: REPO, installation: 4242, issue: n, body: 'Fix it.', comment: text }), { id: randomUUID(), secret: SECRET });

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      await world.pod('spend-stop', { command: agent('echo waiting; sleep 120'), stopGraceSeconds: 1 });
      await world.pod('spend-result', { command: agent(`i=0; while [ ! -e /go ] && [ $i -lt 600 ]; do sleep 0.2; i=$((i+1)); done; printf '%s\\n' '${JSON.stringify({ type: 'result', subtype: 'success', is_error: false, result: 'Done.', total_cost_usd: 0.05, num_turns: 2, session_id: 'claude-spend' })}'`) });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(16);
      redis = db.redis;
      port = await freePort();
      processes = await startServerAndWorker(processEnv({ world, github, port, redisUrl: db.url, secret: SECRET }), { logDir: world.home, port });
    });

    afterAll(async () => {
      await stopSuite({ worker: processes?.worker, server: processes?.server, github, redis, world });
    });

    it('stopped spend: a run stopped by /cldpd stop counts what its assistant messages used, counted while it ran, once', async () => {
      const n = issueNumber++;
      await label(n, 'spend-stop');
      // Counted while the run goes: before any end, from the usage its lines report.
      await until('the run\'s spending counted while it runs', async () => (await spent(`r:${OWNER}/${REPO}`)) >= ESTIMATE_MICRO_USD, 60_000);
      expect(statusOf(n)).not.toMatch(/cldpd: (finished|failed|stopped)/);
      await comment(n, '/cldpd stop');
      await until('the final comment', () => /stopped on request/.test(statusOf(n)), 60_000);
      expect(await spent(`r:${OWNER}/${REPO}`)).toBe(ESTIMATE_MICRO_USD);
      expect(await spent(`u:${OWNER}/${REPO}:alice`)).toBe(ESTIMATE_MICRO_USD);
    });

    it('stopped spend: the result\'s cost replaces the estimate when it comes, never added to it', async () => {
      await redis?.del(`cldpd:usage:${new Date().toISOString().slice(0, 10)}:r:${OWNER}/${REPO}`);
      const n = issueNumber++;
      await label(n, 'spend-result');
      await until('the estimate counted', async () => (await spent(`r:${OWNER}/${REPO}`)) === ESTIMATE_MICRO_USD, 60_000);
      const [container] = await world.docker.listContainers({ filters: { label: [`${LABELS.host}=${world.hostId}`, `${LABELS.pod}=spend-result`] } });
      const exec = await world.docker.getContainer(container?.Id as string).exec({ Cmd: ['touch', '/go'] });
      await exec.start({});
      await until('the final comment', () => /cldpd: finished/.test(statusOf(n)), 60_000);
      await until('the result\'s cost counted', async () => (await spent(`r:${OWNER}/${REPO}`)) === 50_000, 10_000);
    });
  });
});
