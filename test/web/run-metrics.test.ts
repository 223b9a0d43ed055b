import { describe, expect, it } from 'vitest';
import type { AgentSummary, SessionEvent } from '../../src/core/index.js';
import type { RunCommand, RunOutcome } from '../../src/queue/contract.js';
import { allReporters } from '../../src/queue/reporters.js';
import { createMetrics, type CldpdMetrics } from '../../src/web/metrics.js';
import { RunMetrics, runEnd } from '../../src/web/run-metrics.js';
import { RecordingReporter } from '../fakes/recording-reporter.js';
import { sampleValue } from './scrape.js';

const QUEUED_AT = Date.parse('2026-03-01T10:00:00Z');

function command(pod = 'web', patch: Partial<RunCommand> = {}): RunCommand {
  return {
    seq: 1, kind: 'start', issueKey: 'acme.web-7', pod, sessionId: `${pod}-0a1b2c3d`, prompt: 'Fix it.', statusCommentId: 99, requestedBy: 'alice', enqueuedAt: QUEUED_AT,
    issue: { installationId: 1, owner: 'acme', repo: 'web', number: 7, url: 'https://github.com/acme/web/issues/7' },
    ...patch,
  };
}

const started = (at: number): SessionEvent => ({ type: 'container.started', at, containerId: 'c1', containerName: 'cldpd-web', exec: false, run: 1 });
const exited = (at: number, exitCode: number, durationMs: number, reason: 'exited' | 'stopped' | 'timeout' = 'exited') =>
  ({ type: 'container.exited', at, exitCode, reason, durationMs }) as const;
const blocked = (host: string, port: number, count: number): SessionEvent => ({ type: 'egress.blocked', at: QUEUED_AT + 5_000, host, port, via: 'connect', count });
const result = (costUsd: number, turns: number): NonNullable<AgentSummary['result']> => ({ kind: 'result', isError: false, costUsd, turns });

async function scrape(metrics: CldpdMetrics): Promise<string> {
  return metrics.registry.metrics();
}

describe('runEnd', () => {
  it.each<[string, RunOutcome, string]>([
    ['a cancelled run', { kind: 'cancelled', sessionId: 's' }, 'cancelled'],
    ['a resume that went into the running agent', { kind: 'delivered', sessionId: 's' }, 'delivered'],
    ['exit code 0', { kind: 'exited', sessionId: 's', terminal: exited(1, 0, 1) }, 'finished'],
    ['another exit code', { kind: 'exited', sessionId: 's', terminal: exited(1, 3, 1) }, 'failed'],
    ['a stop on request', { kind: 'exited', sessionId: 's', terminal: exited(1, 137, 1, 'stopped') }, 'stopped'],
    ['its time limit', { kind: 'exited', sessionId: 's', terminal: exited(1, 137, 1, 'timeout') }, 'timeout'],
    ['an error event', { kind: 'error', sessionId: 's', terminal: { type: 'error', at: 1, code: 'BuildFailed', message: 'no' } }, 'failed'],
    ['an error before anything ran', { kind: 'error', sessionId: 's', message: 'Docker is down' }, 'failed'],
  ])('%s ends as %s', (_, outcome, end) => {
    expect(runEnd(outcome)).toBe(end);
  });
});

describe('RunMetrics', () => {
  it('counts a run\'s start with its time to start, and its end with duration, cost and turns, labelled by pod and outcome', async () => {
    const metrics = createMetrics();
    const report = new RunMetrics(metrics).forRun(command('web'));
    report.event(started(QUEUED_AT + 3_000), {});
    report.event({ type: 'output', at: QUEUED_AT + 4_000, stream: 'stdout', line: 'working' }, {});
    const agent: AgentSummary = { result: result(0.5, 6), runCostUsd: 0.25, runTurns: 4 };
    await report.finish({ kind: 'exited', sessionId: 's', terminal: exited(QUEUED_AT + 93_000, 0, 90_000), agent });

    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'web' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_time_to_start_seconds_count', { pod: 'web' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_time_to_start_seconds_sum', { pod: 'web' })).toBe(3);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'finished' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_duration_seconds_count', { pod: 'web', outcome: 'finished' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_duration_seconds_sum', { pod: 'web', outcome: 'finished' })).toBe(90);
    expect(sampleValue(text, 'cldpd_run_duration_seconds_bucket', { pod: 'web', outcome: 'finished', le: '60' })).toBe(0);
    expect(sampleValue(text, 'cldpd_run_duration_seconds_bucket', { pod: 'web', outcome: 'finished', le: '120' })).toBe(1);
    // This run's own cost and turns, not the session's totals the result carries.
    expect(sampleValue(text, 'cldpd_agent_cost_usd_total', { pod: 'web' })).toBe(0.25);
    expect(sampleValue(text, 'cldpd_agent_turns_total', { pod: 'web' })).toBe(4);
  });

  it('adds up runs per pod and keeps pods and outcomes apart', async () => {
    const metrics = createMetrics();
    const runs = new RunMetrics(metrics);
    for (const [pod, exitCode] of [['web', 0], ['web', 0], ['web', 2], ['api', 0]] as const) {
      const report = runs.forRun(command(pod));
      report.event(started(QUEUED_AT + 1_000), {});
      await report.finish({ kind: 'exited', sessionId: 's', terminal: exited(QUEUED_AT + 2_000, exitCode, 1_000), agent: { result: result(0.1, 2) } });
    }
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'web' })).toBe(3);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'api' })).toBe(1);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'finished' })).toBe(2);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'failed' })).toBe(1);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'api', outcome: 'finished' })).toBe(1);
    // Without a run cost of its own, the result's is taken.
    expect(sampleValue(text, 'cldpd_agent_cost_usd_total', { pod: 'web' })).toBeCloseTo(0.3, 10);
    expect(sampleValue(text, 'cldpd_agent_turns_total', { pod: 'api' })).toBe(2);
  });

  it('times a run that failed after its container started from that start to the error', async () => {
    const metrics = createMetrics();
    const report = new RunMetrics(metrics).forRun(command('web'));
    report.event(started(QUEUED_AT + 1_000), {});
    await report.finish({ kind: 'error', sessionId: 's', terminal: { type: 'error', at: QUEUED_AT + 6_000, code: 'SetupFailed', message: 'npm ci failed' } });
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'failed' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_duration_seconds_sum', { pod: 'web', outcome: 'failed' })).toBe(5);
    expect(sampleValue(text, 'cldpd_agent_cost_usd_total', { pod: 'web' })).toBeUndefined();
  });

  it('counts a run that never had a container as finished only: no start, no duration, no time to start', async () => {
    const metrics = createMetrics();
    await new RunMetrics(metrics).forRun(command('web')).finish({ kind: 'cancelled', sessionId: 's', message: 'Cancelled by `/cldpd stop` before it started.' });
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'cancelled' })).toBe(1);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'web' })).toBeUndefined();
    expect(sampleValue(text, 'cldpd_run_duration_seconds_count', { pod: 'web', outcome: 'cancelled' })).toBeUndefined();
    expect(sampleValue(text, 'cldpd_run_time_to_start_seconds_count', { pod: 'web' })).toBeUndefined();
  });

  it('counts one start and one end per run, however often they are reported', async () => {
    const metrics = createMetrics();
    const report = new RunMetrics(metrics).forRun(command('web'));
    report.event(started(QUEUED_AT + 1_000), {});
    report.event(started(QUEUED_AT + 9_000), {});
    const outcome: RunOutcome = { kind: 'exited', sessionId: 's', terminal: exited(QUEUED_AT + 2_000, 0, 1_000) };
    await report.finish(outcome);
    await report.finish(outcome);
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'web' })).toBe(1);
    expect(sampleValue(text, 'cldpd_run_time_to_start_seconds_sum', { pod: 'web' })).toBe(1);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'finished' })).toBe(1);
  });

  it('never throws, even when the metrics do', async () => {
    const broken = { runStarted: () => { throw new Error('boom'); }, runFinished: () => { throw new Error('boom'); }, egressBlocked: () => { throw new Error('boom'); } };
    const report = new RunMetrics(broken).forRun(command('web'));
    expect(() => report.event(started(QUEUED_AT), {})).not.toThrow();
    expect(() => report.event(blocked('evil.example', 443, 1), {})).not.toThrow();
    await expect(report.finish({ kind: 'exited', sessionId: 's', terminal: exited(QUEUED_AT, 0, 1) })).resolves.toBeUndefined();
  });

  it('beside the status reporter (allReporters), counts the run the status reporter reports', async () => {
    const metrics = createMetrics();
    const status = new RecordingReporter();
    const report = allReporters(status, new RunMetrics(metrics)).forRun(command('web'));
    report.event(started(QUEUED_AT + 2_000), {});
    await report.finish({ kind: 'exited', sessionId: 's', terminal: exited(QUEUED_AT + 3_000, 0, 1_000, 'stopped') });
    expect(status.runs[0]?.outcome?.kind).toBe('exited');
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_runs_started_total', { pod: 'web' })).toBe(1);
    expect(sampleValue(text, 'cldpd_runs_finished_total', { pod: 'web', outcome: 'stopped' })).toBe(1);
  });
});

describe('cldpd_egress_blocked_total', () => {
  it('counts each refusal of a run by its pod, in a real registry, with no label of the host', async () => {
    const metrics = createMetrics();
    const web = new RunMetrics(metrics).forRun(command('web'));
    const api = new RunMetrics(metrics).forRun(command('api'));
    web.event(started(QUEUED_AT + 1_000), {});
    for (let n = 1; n <= 3; n++) web.event(blocked('evil.example', 443, n), {});
    web.event(blocked('pypi.org', 8080, 1), {});
    api.event(blocked('other.example', 80, 1), {});
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_egress_blocked_total', { pod: 'web' })).toBe(4);
    expect(sampleValue(text, 'cldpd_egress_blocked_total', { pod: 'api' })).toBe(1);
    expect(text).toContain('# TYPE cldpd_egress_blocked_total counter');
    expect(text).not.toContain('evil.example');
  });

  it('an event seen again (a re-attached run) counts nothing twice; a count that jumps counts the refusals between', async () => {
    const metrics = createMetrics();
    const report = new RunMetrics(metrics).forRun(command('web'));
    report.event(blocked('evil.example', 443, 1), {});
    report.event(blocked('evil.example', 443, 2), {});
    report.event(blocked('evil.example', 443, 2), {});
    report.event(blocked('evil.example', 443, 1), {});
    report.event(blocked('evil.example', 443, 5), {});
    expect(sampleValue(await scrape(metrics), 'cldpd_egress_blocked_total', { pod: 'web' })).toBe(5);
  });

  it('ten thousand distinct hosts cost one series, and every refusal is counted', async () => {
    const metrics = createMetrics();
    const report = new RunMetrics(metrics).forRun(command('web'));
    for (let i = 0; i < 10_000; i++) report.event(blocked(`h${i}.evil.example`, 443, 1), {});
    const text = await scrape(metrics);
    expect(sampleValue(text, 'cldpd_egress_blocked_total', { pod: 'web' })).toBe(10_000);
    expect(text.split('\n').filter((l) => l.startsWith('cldpd_egress_blocked_total{'))).toHaveLength(1);
  });
});
