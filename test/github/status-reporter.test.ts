import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import type { CommentsApi } from '../../src/github/comments-api.js';
import { createRedactor } from '../../src/core/redact.js';
import { StatusReporter } from '../../src/github/status-reporter.js';
import { bucketCapacity, budgetedComments, localWriteBudget } from '../../src/github/write-budget-policy.js';
import { spend } from '../fakes/budget.js';
import type { RunCommand } from '../../src/queue/contract.js';

const command: RunCommand = {
  seq: 4, kind: 'start', issueKey: 'acme-web-1', pod: 'web', sessionId: 'web-00aa00aa', prompt: 'p', statusCommentId: 77, requestedBy: 'alice', enqueuedAt: 0,
  issue: { installationId: 1, owner: 'acme', repo: 'web', number: 1, url: 'https://github.com/acme/web/issues/1' },
};

class FakeComments implements CommentsApi {
  updates: Array<{ id: number; body: string }> = [];
  created: Array<{ id: number; body: string }> = [];
  failures: Array<{ status?: number; message: string }> = [];
  gone = new Set<number>();
  async create(_issue: unknown, body: string) {
    const id = 900 + this.created.length;
    this.created.push({ id, body });
    return { id, url: `u/${id}` };
  }
  async update(_issue: unknown, id: number, body: string) {
    const failure = this.failures.shift();
    if (failure) throw Object.assign(new Error(failure.message), { status: failure.status });
    if (this.gone.has(id)) throw Object.assign(new Error('Not Found'), { status: 404 });
    this.updates.push({ id, body });
  }
  async list() {
    return [];
  }
}

function reporter(comments: FakeComments, intervalMs = 40, budget = localWriteBudget(600_000)) {
  return new StatusReporter({ comments, budget, intervalMs, redactorFor: async () => (t: string) => t.replaceAll('s3cret', '[redacted]'), logger: pino({ level: 'silent' }) });
}

const at = 1;
const output = (line: string): SessionEvent => ({ type: 'output', at, stream: 'stdout', line });

describe('StatusReporter', () => {
  it('coalesces a burst of events into few edits, then writes the final state once', async () => {
    const comments = new FakeComments();
    const run = reporter(comments, 50).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    for (let i = 0; i < 500; i++) run.event(output(`line ${i}`), {});
    await new Promise((r) => setTimeout(r, 120));
    const progress = comments.updates.length;
    expect(progress).toBeGreaterThanOrEqual(1);
    expect(progress).toBeLessThanOrEqual(3);
    expect(comments.updates.at(-1)?.body).toContain('line 499');
    await run.finish({ kind: 'exited', sessionId: 'web-00aa00aa', terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 5000 }, lastLines: ['done'] });
    expect(comments.updates).toHaveLength(progress + 1);
    expect(comments.updates.at(-1)?.body).toContain('cldpd: finished');
    expect(comments.updates.every((u) => u.id === 77)).toBe(true);
    run.event(output('late'), {}); // after finish: ignored
    await new Promise((r) => setTimeout(r, 80));
    expect(comments.updates).toHaveLength(progress + 1);
  });

  it('setting up: the comment names the step under way; a failing step\'s output and error are in the final one', async () => {
    const comments = new FakeComments();
    const run = reporter(comments, 10).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    run.event({ type: 'setup.step', at, step: 1, of: 2, name: 'cloning acme/web' }, {});
    run.event({ ...output("Cloning into '/workspace'..."), step: 1 } as SessionEvent, {});
    await new Promise((r) => setTimeout(r, 60));
    expect(comments.updates.at(-1)?.body).toMatch(/cldpd: setting up \(pod `web`\)[\s\S]*Latest: cloning acme\/web \(1\/2\)/);
    run.event({ type: 'setup.step', at, step: 2, of: 2, name: 'npm ci' }, {});
    run.event({ ...output('npm ERR! missing lockfile'), step: 2 } as SessionEvent, {});
    await run.finish({ kind: 'error', sessionId: 'web-00aa00aa', terminal: { type: 'error', at, code: 'SetupFailed', message: 'Setup step 2 of 2 (npm ci) exited with code 1, so the agent did not run.' }, lastLines: ['npm ERR! missing lockfile'] });
    const final = comments.updates.at(-1)?.body ?? '';
    expect(final).toContain('cldpd: failed');
    expect(final).toContain('**Error:** Setup step 2 of 2 (npm ci) exited with code 1, so the agent did not run.');
    expect(final).toContain('npm ERR! missing lockfile');
  });

  it('setting up: once the steps are done and the agent prints, the comment says running again', async () => {
    const comments = new FakeComments();
    const run = reporter(comments, 10).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    run.event({ type: 'setup.step', at, step: 1, of: 1, name: 'npm ci' }, {});
    run.event({ ...output('added 3 packages'), step: 1 } as SessionEvent, {});
    run.event(output('agent: looking at the tests'), {});
    await new Promise((r) => setTimeout(r, 60));
    const body = comments.updates.at(-1)?.body ?? '';
    expect(body).toContain('cldpd: running');
    expect(body).toContain('Latest: agent: looking at the tests');
    expect(body).not.toContain('setting up');
    await run.finish({ kind: 'exited', sessionId: 'web-00aa00aa', terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 5 } });
  });

  it('split secret: an injected value the agent\'s text breaks with a line break never reaches "Latest:", nor the final answer', async () => {
    const key = 'Zq8vL2mN4pR7tX1yB6cD9fG3hJ5kW0sE';
    const comments = new FakeComments();
    const run = new StatusReporter({ comments, budget: localWriteBudget(600_000), intervalMs: 10, redactorFor: async () => createRedactor([key]), logger: pino({ level: 'silent' }) }).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    const said = `The key is ${key.slice(0, 24)}\n${key.slice(24)}, as asked.`;
    run.event({ type: 'output', at, stream: 'stdout', line: '{}', agent: [{ kind: 'text', text: said }] }, {});
    const deadline = Date.now() + 5000;
    while (!comments.updates.some((u) => u.body.includes('Latest:')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    const progress = comments.updates.find((u) => u.body.includes('Latest:'))?.body ?? '';
    expect(progress).toContain('Latest: The key is [redacted], as asked.');
    await run.finish({ kind: 'exited', sessionId: 'web-00aa00aa', terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 5 }, agent: { result: { kind: 'result', isError: false, text: said } } });
    const everything = comments.updates.map((u) => u.body).join('\n').replace(/\s+/g, '');
    for (let i = 0; i + 8 <= key.length; i++) expect(everything).not.toContain(key.slice(i, i + 8));
  });

  it('skips progress edits when the write budget is spent, but the final edit waits for it', async () => {
    const comments = new FakeComments();
    let now = 0;
    const budget = localWriteBudget(60, () => now); // one write a second
    await spend(budget, 1);
    const run = reporter(comments, 10, budget).forRun(command);
    run.event(output('a'), {});
    await new Promise((r) => setTimeout(r, 60));
    expect(comments.updates).toHaveLength(0);
    const finishing = run.finish({ kind: 'exited', sessionId: 's', terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 } });
    await new Promise((r) => setTimeout(r, 30));
    expect(comments.updates).toHaveLength(0);
    now += 1000;
    await finishing;
    expect(comments.updates).toHaveLength(1);
  });

  it('retries the final edit through failures', async () => {
    const comments = new FakeComments();
    comments.failures.push({ status: 500, message: 'Server Error' }, { status: 502, message: 'Bad Gateway' });
    const run = reporter(comments).forRun(command);
    await run.finish({ kind: 'error', sessionId: 's', message: 'The build failed: s3cret in the log' });
    expect(comments.updates).toHaveLength(1);
    expect(comments.updates[0]?.body).toContain('**Error:** The build failed: [redacted] in the log');
  }, 20_000);

  it.each([
    [403, 'Repository was archived so is read-only.'],
    [410, 'Issue was deleted'],
    [422, 'Validation Failed'],
  ])('permanent failure: gives up the final edit at once on a %i (%s), holding nothing for 15 minutes', async (status, message) => {
    const comments = new FakeComments();
    for (let i = 0; i < 5; i++) comments.failures.push({ status, message });
    const run = reporter(comments).forRun(command);
    await expect(run.finish({ kind: 'error', sessionId: 's', message: 'x' })).rejects.toThrow(message);
    expect(comments.failures).toHaveLength(4); // asked once
    expect(comments.updates).toHaveLength(0);
  });

  it('permanent failure: a 403 of a rate limit is retried', async () => {
    const comments = new FakeComments();
    comments.failures.push({ status: 403, message: 'You have exceeded a secondary rate limit' });
    const run = reporter(comments).forRun(command);
    await run.finish({ kind: 'error', sessionId: 's', message: 'x' });
    expect(comments.updates).toHaveLength(1);
  }, 20_000);

  it('posts the final state again when the status comment was deleted', async () => {
    const comments = new FakeComments();
    comments.gone.add(77);
    const run = reporter(comments).forRun(command);
    await run.finish({ kind: 'cancelled', sessionId: 's', message: 'Cancelled by `/cldpd stop` before it started.' });
    expect(comments.created).toHaveLength(1);
    expect(comments.created[0]?.body).toContain('cldpd: cancelled');
  });

  it('shows the agent\'s latest activity and final answer', async () => {
    const comments = new FakeComments();
    const run = reporter(comments, 10).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    run.event({ type: 'output', at, stream: 'stdout', line: '{}', agent: [{ kind: 'tool', name: 'Bash', summary: 'npm test' }] }, {});
    await new Promise((r) => setTimeout(r, 50));
    expect(comments.updates.at(-1)?.body).toContain('Latest: Bash: npm test');
    await run.finish({
      kind: 'exited', sessionId: 's', terminal: { type: 'container.exited', at, exitCode: 0, reason: 'exited', durationMs: 1 },
      agent: { result: { kind: 'result', isError: false, text: 'Fixed the parser.', costUsd: 0.42, turns: 9 } },
    });
    const body = comments.updates.at(-1)?.body ?? '';
    expect(body).toContain('Fixed the parser.');
    expect(body).toContain('9 turns');
    expect(body).toContain('$0.42');
  });
});

describe('localWriteBudget', () => {
  it('starts with half a minute\'s worth, refills at the configured rate and never above that', async () => {
    let now = 0;
    const budget = localWriteBudget(60, () => now);
    expect(await spend(budget, 1)).toBe(30);
    now += 10_000;
    expect(await spend(budget, 1)).toBe(10);
    now += 3_600_000;
    expect(await spend(budget, 1)).toBe(bucketCapacity(60));
  });

  it('keeps one bucket per installation', async () => {
    const budget = localWriteBudget(60, () => 0);
    expect(await spend(budget, 1)).toBe(30);
    expect(await spend(budget, 2)).toBe(30);
  });

  it('makes the writes of a budgeted comments API wait for it; reads do not', async () => {
    let now = 0;
    const budget = localWriteBudget(60, () => now);
    await spend(budget, 1);
    const comments = new FakeComments();
    const api = budgetedComments(comments, budget);
    await api.list(command.issue, { since: new Date(0) });
    let posted = false;
    const posting = api.create(command.issue, 'hello').then(() => (posted = true));
    await new Promise((r) => setTimeout(r, 30));
    expect(posted).toBe(false);
    now += 1000;
    await posting;
    expect(comments.created.map((c) => c.body)).toEqual(['hello']);
  });

  it('a run that ended on the pod\'s spending limit says so in its final edit, not "failed"', async () => {
    const comments = new FakeComments();
    const run = reporter(comments).forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    await run.finish({
      kind: 'exited', sessionId: 'web-00aa00aa', terminal: { type: 'container.exited', at, exitCode: 1, reason: 'exited', durationMs: 900 },
      agent: { result: { kind: 'result', isError: true, subtype: 'error_max_budget_usd', costUsd: 0.31, turns: 2 }, runCostUsd: 0.31, runTurns: 2 },
    });
    const final = comments.updates.at(-1)?.body ?? '';
    expect(final).toContain('cldpd: stopped at its limit');
    expect(final).toContain('`maxBudgetUsd` in its pod.json), having spent $0.31');
    expect(final).not.toContain('cldpd: failed');
  });

  it('provider: a run that waits for the provider says so in its final edit; the run queued to continue shows it waits until its time', async () => {
    const comments = new FakeComments();
    const rep = reporter(comments);
    const run = rep.forRun(command);
    run.event({ type: 'container.started', at, containerId: 'c', containerName: 'n', exec: false, run: 1 }, {});
    await run.finish({ kind: 'waiting', sessionId: 'web-00aa00aa', terminal: { type: 'container.exited', at, exitCode: 1, reason: 'exited', durationMs: 5 }, waiting: { resumeAt: Date.UTC(2030, 0, 1, 8), wait: 2, of: 5, kind: 'rate' } });
    expect(comments.updates.at(-1)?.body).toContain("cldpd: waiting for the model provider's limit");
    expect(comments.updates.at(-1)?.body).toContain('refused for its rate limit; this run continues by itself at 2030-01-01 08:00 UTC (wait 2 of 5)');
    const next = { ...command, seq: 5, kind: 'resume' as const, providerWait: { notBefore: Date.UTC(2030, 0, 1, 8), waits: [{ at: 1, resetAt: 2, kind: 'rate' as const }, { at: 3, resetAt: Date.UTC(2030, 0, 1, 8), kind: 'rate' as const }] } };
    expect(await rep.queued(next, 0)).toBe(true);
    expect(comments.updates.at(-1)?.body).toContain('this run continues by itself at 2030-01-01 08:00 UTC (wait 2');
    expect(comments.updates.at(-1)?.body).not.toContain('next in the queue');
  });

  it('a resume queued behind a run says it runs once that run has finished; one that is next says nothing of it', async () => {
    const comments = new FakeComments();
    const rep = reporter(comments);
    const resume = { ...command, seq: 6, kind: 'resume' as const };
    expect(await rep.queued(resume, 1)).toBe(true);
    expect(comments.updates.at(-1)?.body).toContain('1 ahead in the queue');
    expect(comments.updates.at(-1)?.body).toContain('It runs once the run ahead of it has finished');
    expect(await rep.queued(resume, 0)).toBe(true);
    expect(comments.updates.at(-1)?.body).not.toContain('It runs once the run ahead');
    // A start behind another run waits too, but says no more than its place.
    expect(await rep.queued({ ...command, seq: 7 }, 1)).toBe(true);
    expect(comments.updates.at(-1)?.body).not.toContain('It runs once the run ahead');
  });
});
