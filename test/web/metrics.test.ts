import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../src/web/metrics.js';
import { parseSamples, sampleValue } from './scrape.js';

describe('createMetrics', () => {
  it('counts webhook deliveries by event and outcome, every event GitHub does not send cldpd as "other"', async () => {
    const metrics = createMetrics();
    metrics.webhookDelivery('issues', 'accepted');
    metrics.webhookDelivery('issues', 'accepted');
    metrics.webhookDelivery('issue_comment', 'ignored');
    metrics.webhookDelivery('issues', 'bad_signature');
    metrics.webhookDelivery('made-up-by-a-stranger-1', 'bad_signature');
    metrics.webhookDelivery('made-up-by-a-stranger-2', 'bad_signature');
    metrics.webhookDelivery('', 'refused');
    const text = await metrics.registry.metrics();
    expect(sampleValue(text, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'accepted' })).toBe(2);
    expect(sampleValue(text, 'cldpd_webhook_deliveries_total', { event: 'issue_comment', outcome: 'ignored' })).toBe(1);
    expect(sampleValue(text, 'cldpd_webhook_deliveries_total', { event: 'issues', outcome: 'bad_signature' })).toBe(1);
    expect(sampleValue(text, 'cldpd_webhook_deliveries_total', { event: 'other', outcome: 'bad_signature' })).toBe(2);
    expect(sampleValue(text, 'cldpd_webhook_deliveries_total', { event: 'none', outcome: 'refused' })).toBe(1);
    expect(parseSamples(text).filter((s) => s.name === 'cldpd_webhook_deliveries_total')).toHaveLength(5);
  });

  it('fills the queue gauge at each scrape from the queue counts', async () => {
    let waiting = 3;
    const metrics = createMetrics({ queueDepths: async () => [{ queue: 'cldpd-run', waiting, active: 1, delayed: 2 }, { queue: 'cldpd-host-a', waiting: 0, active: 2, delayed: 0 }] });
    let text = await metrics.registry.metrics();
    expect(sampleValue(text, 'cldpd_queue_jobs', { queue: 'cldpd-run', state: 'waiting' })).toBe(3);
    expect(sampleValue(text, 'cldpd_queue_jobs', { queue: 'cldpd-run', state: 'active' })).toBe(1);
    expect(sampleValue(text, 'cldpd_queue_jobs', { queue: 'cldpd-run', state: 'delayed' })).toBe(2);
    expect(sampleValue(text, 'cldpd_queue_jobs', { queue: 'cldpd-host-a', state: 'active' })).toBe(2);
    waiting = 7;
    text = await metrics.registry.metrics();
    expect(sampleValue(text, 'cldpd_queue_jobs', { queue: 'cldpd-run', state: 'waiting' })).toBe(7);
  });

  it('leaves the queues out, and still answers, when counting them fails or does not answer in time', async () => {
    const failing = createMetrics({ queueDepths: async () => { throw new Error('Redis is not connected (reconnecting)'); } });
    expect(parseSamples(await failing.registry.metrics()).filter((s) => s.name === 'cldpd_queue_jobs')).toEqual([]);
    const hanging = createMetrics({ queueDepths: () => new Promise(() => undefined), queueTimeoutMs: 50 });
    const text = await hanging.registry.metrics();
    expect(parseSamples(text).filter((s) => s.name === 'cldpd_queue_jobs')).toEqual([]);
    expect(sampleValue(text, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
  });

  it('reads the sessions of each host at scrape time', async () => {
    const metrics = createMetrics();
    let live = 2;
    metrics.countSessions('host-a', () => live);
    expect(sampleValue(await metrics.registry.metrics(), 'cldpd_sessions_active', { host: 'host-a' })).toBe(2);
    live = 0;
    expect(sampleValue(await metrics.registry.metrics(), 'cldpd_sessions_active', { host: 'host-a' })).toBe(0);
  });

  it('counts GitHub writes and the writes the budget held back, by kind', async () => {
    const metrics = createMetrics();
    metrics.github.write('post');
    metrics.github.write('edit');
    metrics.github.write('edit');
    metrics.github.budget('skipped');
    const text = await metrics.registry.metrics();
    expect(sampleValue(text, 'cldpd_github_writes_total', { kind: 'post' })).toBe(1);
    expect(sampleValue(text, 'cldpd_github_writes_total', { kind: 'edit' })).toBe(2);
    expect(sampleValue(text, 'cldpd_github_budget_waits_total', { kind: 'skipped' })).toBe(1);
    expect(sampleValue(text, 'cldpd_github_budget_waits_total', { kind: 'waited' })).toBeUndefined();
  });

  it('keeps each set of metrics apart: two in one process count on their own', async () => {
    const a = createMetrics();
    const b = createMetrics();
    a.runStarted('web', 1);
    expect(sampleValue(await a.registry.metrics(), 'cldpd_runs_started_total', { pod: 'web' })).toBe(1);
    expect(sampleValue(await b.registry.metrics(), 'cldpd_runs_started_total', { pod: 'web' })).toBeUndefined();
  });
});
