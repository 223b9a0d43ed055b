import { describe, expect, it } from 'vitest';
import type { AgentSummary, SessionEvent } from '../../src/core/index.js';
import type { RunCommand } from '../../src/queue/contract.js';
import { UsageReporter } from '../../src/queue/usage-reporter.js';

const command: RunCommand = {
  seq: 3, kind: 'start', issueKey: 'acme-web-1', pod: 'claude', sessionId: 'claude-1', prompt: 'p', statusCommentId: 1, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
};
const output: SessionEvent = { type: 'output', at: 1, stream: 'stdout', line: '{}' };
const spend = (usd: number, estimatedUsd: number): AgentSummary => ({ spend: { usd, estimatedUsd, settledUsd: 0, recent: [] } });

/** UsageLimits.spend recorded; each call resolves when `release` is called, to see writes pile up. */
function recorder(auto = false) {
  const calls: Array<{ runId: string; repo: string; login: string; usd: number; estimate: boolean }> = [];
  const waiting: Array<() => void> = [];
  return {
    calls,
    release: () => waiting.splice(0).forEach((r) => r()),
    usage: {
      spend: (runId: string, repo: string, login: string, usd: number, options: { estimate?: boolean } = {}) => {
        calls.push({ runId, repo, login, usd, estimate: options.estimate === true });
        return auto ? Promise.resolve() : new Promise<void>((resolve) => waiting.push(resolve));
      },
    },
  };
}

describe('UsageReporter', () => {
  it('stopped spend: records the run\'s spending as it changes, one write at a time, the latest figure next; its end\'s figure last', async () => {
    const r = recorder();
    const report = new UsageReporter(r.usage, { warn: () => undefined }).forRun(command);
    report.event(output, {}); // nothing spent yet: nothing written
    report.event(output, spend(0.1, 0.1));
    report.event(output, spend(0.1, 0.1)); // the same figure: not written again
    report.event(output, spend(0.2, 0.2));
    report.event(output, spend(0.3, 0.3));
    expect(r.calls.map((c) => c.usd)).toEqual([0.1]);
    r.release();
    await new Promise((resolve) => setImmediate(resolve));
    expect(r.calls.map((c) => c.usd)).toEqual([0.1, 0.3]); // 0.2 was overtaken while 0.1 was written
    const finishing = report.finish({ kind: 'exited', sessionId: 'claude-1', agent: spend(0.25, 0) });
    r.release();
    await new Promise((resolve) => setImmediate(resolve));
    r.release();
    await finishing;
    expect(r.calls).toEqual([
      { runId: 'acme-web-1#3', repo: 'acme/web', login: 'alice', usd: 0.1, estimate: true },
      { runId: 'acme-web-1#3', repo: 'acme/web', login: 'alice', usd: 0.3, estimate: true },
      { runId: 'acme-web-1#3', repo: 'acme/web', login: 'alice', usd: 0.25, estimate: false },
    ]);
  });

  it('stopped spend: a stopped run with no result records its estimate; a resume that went into the running agent records nothing', async () => {
    const r = recorder(true);
    const reporter = new UsageReporter(r.usage, { warn: () => undefined });
    await reporter.forRun(command).finish({ kind: 'exited', sessionId: 'claude-1', agent: spend(0.08, 0.08), terminal: { type: 'container.exited', at: 2, exitCode: 143, reason: 'stopped', durationMs: 1 } });
    await reporter.forRun({ ...command, seq: 4 }).finish({ kind: 'delivered', sessionId: 'claude-1', agent: spend(1, 0) });
    expect(r.calls).toEqual([{ runId: 'acme-web-1#3', repo: 'acme/web', login: 'alice', usd: 0.08, estimate: true }]);
  });

  it('stopped spend: a figure Redis refuses is logged, never fails the run', async () => {
    const warned: unknown[] = [];
    const report = new UsageReporter({ spend: () => Promise.reject(new Error('READONLY')) }, { warn: (o: unknown) => void warned.push(o) }).forRun(command);
    await expect(report.finish({ kind: 'exited', sessionId: 'claude-1', agent: { runCostUsd: 0.5 } })).resolves.toBeUndefined();
    expect(warned).toHaveLength(1);
  });
});
