import { describe, expect, it } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import type { RunOutcome } from '../../src/queue/contract.js';
import { outcomePhase, outcomeWords, phaseAfter, type RunPhase } from '../../src/queue/run-view.js';

const at = 0;
const EXITED = { type: 'container.exited', at, exitCode: 2, reason: 'exited', durationMs: 1 } as const;

describe('run view (pure)', () => {
  it.each<[string, RunPhase, SessionEvent, RunPhase]>([
    ['a build begins', 'queued', { type: 'build.started', at } as SessionEvent, 'building'],
    ['the container starts', 'building', { type: 'container.started', at, run: 1 } as SessionEvent, 'running'],
    ['a setup step', 'running', { type: 'setup.step', at, name: 'npm ci', step: 1, of: 2 } as unknown as SessionEvent, 'setting up'],
    ['a setup step\'s output', 'setting up', { type: 'output', at, line: 'x', step: 1 } as unknown as SessionEvent, 'setting up'],
    ['the container\'s own output after the setup', 'setting up', { type: 'output', at, line: 'x' } as unknown as SessionEvent, 'running'],
    ['output while queued (a re-attached run) leaves the phase', 'queued', { type: 'output', at, line: 'x' } as unknown as SessionEvent, 'queued'],
    ['the terminal event leaves the phase', 'running', EXITED as SessionEvent, 'running'],
  ])('phaseAfter: %s', (_name, before, event, after) => {
    expect(phaseAfter(before, event)).toBe(after);
  });

  it.each<[string, RunOutcome, RunPhase, string]>([
    ['cancelled', { kind: 'cancelled', sessionId: 's' }, 'cancelled', 'cancelled'],
    ['delivered', { kind: 'delivered', sessionId: 's' }, 'delivered', 'went into the running agent'],
    ['waiting', { kind: 'waiting', sessionId: 's', terminal: EXITED, waiting: { resumeAt: Date.UTC(2026, 0, 31, 14, 5), wait: 1, of: 3, kind: 'usage' } }, 'waiting', 'waits for the model provider\'s limit until 2026-01-31 14:05 UTC, then continues by itself'],
    ['exited', { kind: 'exited', sessionId: 's', terminal: EXITED }, 'finished', 'finished with exit code 2'],
    ['an error', { kind: 'error', sessionId: 's', terminal: { type: 'error', at, code: 'BuildFailed', message: 'm' } }, 'failed', 'failed (BuildFailed; the status comment says why)'],
    ['no start', { kind: 'error', sessionId: 's', message: 'm' }, 'failed', 'failed (before it started; the status comment says why)'],
  ])('outcome: %s', (_name, outcome, phase, words) => {
    expect(outcomePhase(outcome)).toBe(phase);
    expect(outcomeWords(outcome)).toBe(words);
  });
});
