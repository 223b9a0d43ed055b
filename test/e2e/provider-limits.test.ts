import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { TestWorld, describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis, testRedis } from '../integration/redis-harness.js';
import { CLI, type CldpdProcess, deliver, freePort, processEnv, startServerAndWorker, stopSuite, webhookPayload } from './processes.js';

const SECRET = 'e2e-provider-secret';
const OWNER = 'acme';
const REPO = 'quota';

/** GitHub's example payload for `event.action`, pointed at our issue. */
function payload(event: 'issues' | 'issue_comment', action: string, issue: number, patch: { label?: string; comment?: string }): Record<string, unknown> {
  return webhookPayload(event, action, { owner: OWNER, repo: REPO, installation: 4545, issue, body: 'Work.', ...patch });
}

/**
 * An agent that speaks Claude Code's stream-json: the first run of an issue ends on the
 * provider's usage limit (resetting `seconds` later), the next one (the same session, its
 * workspace kept) finishes, answering with the prompt it was given.
 */
const limitedAgent = (seconds: number) => [
  'echo \'{"type":"system","subtype":"init","session_id":"c0ffee00-0000-4000-8000-00000000000a","model":"fake"}\'',
  'case "$1" in *"go on, please"*) how="with the configured prompt" ;; *) how="with another prompt" ;; esac',
  'if [ -e /work/limited ]; then',
  '  echo "{\\"type\\":\\"result\\",\\"subtype\\":\\"success\\",\\"is_error\\":false,\\"result\\":\\"done after the wait, $how\\",\\"num_turns\\":1,\\"total_cost_usd\\":0.01}"; exit 0',
  'fi',
  'touch /work/limited',
  `echo "{\\"type\\":\\"result\\",\\"subtype\\":\\"success\\",\\"is_error\\":true,\\"result\\":\\"Claude AI usage limit reached|$(( $(date +%s) + ${seconds} ))\\",\\"num_turns\\":1,\\"total_cost_usd\\":0}"`,
  'exit 1',
].join('\n');

describeWithDocker('the model provider\'s limits', () => {
  describeWithRedis('a run that hits a usage limit waits for its reset and continues by itself', () => {
    const world = new TestWorld();
    const github = new FakeGitHub();
    let redis: Redis;
    let port: number;
    let server: CldpdProcess;
    let worker: CldpdProcess;
    const statuses = (n: number) => github.commentsOn(`${OWNER}/${REPO}#${n}`).filter((c) => c.body.startsWith('<!-- cldpd:status'));
    const label = (n: number, pod: string) => deliver(port, 'issues', payload('issues', 'labeled', n, { label: `cldpd:${pod}` }), { id: randomUUID(), secret: SECRET });

    beforeAll(async () => {
      if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
      await world.init();
      const shared = { env: { ANTHROPIC_API_KEY: 'sk-ant-shared-credential-0123456789' } };
      await world.pod('limited', { ...shared, command: ['sh', '-c', limitedAgent(4), 'agent', '{prompt}'], resumeCommand: ['sh', '-c', limitedAgent(4), 'agent', '{prompt}'] });
      await world.pod('neighbour', { ...shared, command: ['sh', '-c', 'read -r line || true; echo "{\\"type\\":\\"result\\",\\"subtype\\":\\"success\\",\\"is_error\\":false,\\"result\\":\\"neighbour ran\\",\\"num_turns\\":1,\\"total_cost_usd\\":0.01}"'] });
      await world.pod('patient', { env: { ANTHROPIC_API_KEY: 'sk-ant-another-credential-9876543210' }, command: ['sh', '-c', limitedAgent(600)], resumeCommand: ['sh', '-c', limitedAgent(600)] });
      await github.start();
      github.roles.set('alice', 'write');
      const db = await testRedis(3);
      redis = db.redis;
      port = await freePort();
      const env = processEnv({ world, github, port, redisUrl: db.url, secret: SECRET, extra: { CLDPD_METRICS_PORT: '0', CLDPD_CONTINUE_PROMPT: 'go on, please' } });
      ({ server, worker } = await startServerAndWorker(env, { logDir: world.home, port }));
    });

    afterAll(async () => {
      await stopSuite({ worker, server, github, redis, world });
    });

    it('usage limit → "waiting" comment → resumes by itself after the reset → final comment; a run of another pod with the same credential waits too', async () => {
      await label(1, 'limited');
      await until('the waiting comment', () => /cldpd: waiting for the model provider's limit/.test(statuses(1)[0]?.body ?? ''), 60_000);
      const waiting = statuses(1)[0]?.body ?? '';
      expect(waiting).toMatch(/The model provider refused for its usage limit; this run continues by itself at \d{4}-\d\d-\d\d \d\d:\d\d UTC \(wait 1 of 5\), not counted as a failure\./);
      expect(waiting).not.toContain('cldpd: failed');

      // Meanwhile another issue's run of a pod with the same credential waits rather than burning an attempt.
      await label(2, 'neighbour');
      await until('the neighbour waiting', () => /cldpd: waiting for the model provider's limit/.test(statuses(2)[0]?.body ?? ''), 30_000);
      expect(statuses(2)[0]?.body).toContain('Another run using the same model credential hit the provider\'s limit');

      await until('the session continued after the reset', () => /cldpd: finished/.test(statuses(1)[0]?.body ?? ''), 60_000);
      const final = statuses(1)[0]?.body ?? '';
      expect(final).toContain('done after the wait, with the configured prompt');
      expect(statuses(1)).toHaveLength(1); // one comment followed it through: waiting, then the run that continued
      await until('the neighbour ran after the reset', () => /cldpd: finished/.test(statuses(2)[0]?.body ?? ''), 60_000);
      expect(statuses(2)[0]?.body).toContain('neighbour ran');
      const history = statuses(1)[0]?.history ?? [];
      expect(history.some((b) => b.includes('waiting for the model provider'))).toBe(true);
    });

    it('/cldpd stop cancels a run waiting for the provider at once, not at its reset', async () => {
      await label(3, 'patient');
      await until('the waiting comment', () => /cldpd: waiting for the model provider's limit/.test(statuses(3)[0]?.body ?? ''), 60_000);
      await deliver(port, 'issue_comment', payload('issue_comment', 'created', 3, { comment: '/cldpd stop' }), { id: randomUUID(), secret: SECRET });
      await until('the cancellation', () => /cldpd: cancelled/.test(statuses(3)[0]?.body ?? ''), 30_000);
    });
  });
});
