import { describe, expect, it } from 'vitest';
import { TranscriptPrinter, type Printed } from '../../src/cli/render.js';
import { renderTranscript } from '../fakes/transcript.js';
import { createStyle } from '../../src/cli/style.js';
import type { AgentEvent, SessionEvent } from '../../src/core/index.js';
import { isWellFormed } from '../../src/core/text.js';

const live = (events: SessionEvent[], verbose = false): Array<[string, string]> => renderTranscript(events, { sessionId: 's-1', verbose }).map((p) => [p.to, p.text]);
const started = (run = 1, exec = false): SessionEvent => ({ type: 'container.started', at: 0, containerId: 'c', containerName: 'cldpd-s', exec, run });

/** The legacy builder's output for a first build of a two-step Dockerfile, with cldpd's labels. */
const FIRST_BUILD = [
  'Step 1/4 : FROM scratch', ' ---> ', 'Step 2/4 : RUN make', ' ---> Running in 1f2e3d', 'compiling \u001b[91mred\u001b[0m', 'done', 'Removing intermediate container 1f2e3d', ' ---> 0a1b2c',
  'Step 3/4 : LABEL dev.cldpd.context=sha256:1a42', ' ---> Running in 9dfa', 'Removing intermediate container 9dfa', ' ---> 1226',
  'Step 4/4 : LABEL dev.cldpd.pod=hello', ' ---> Running in 6cb8', 'Removing intermediate container 6cb8', ' ---> b8de',
  'Successfully built b8de2341e2e7', 'Successfully tagged cldpd-hello:latest',
].map((line): SessionEvent => ({ type: 'build.output', at: 1000, line }));

describe('TranscriptPrinter', () => {
  it.each<[SessionEvent[], Array<[string, string]>]>([
    [[started()], [['stderr', 'cldpd: running in cldpd-s (run 1)\n']]],
    [[started(2, true)], [['stderr', 'cldpd: resumed inside the running container cldpd-s (run 2)\n']]],
    [[{ type: 'output', at: 0, stream: 'stdout', line: 'hello' }], [['stdout', 'hello\n']]],
    [[{ type: 'output', at: 0, stream: 'stdout', line: 'par', partial: true }], [['stdout', 'par']]],
    [[{ type: 'output', at: 0, stream: 'stderr', line: 'oops' }], [['stderr', 'oops\n']]],
    [
      [{ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'text', text: 'Done.' }, { kind: 'tool', name: 'Bash', summary: 'ls' }] }],
      [['stdout', 'Done.\n'], ['stdout', '→ Bash: ls\n']],
    ],
    [
      [{
        type: 'output', at: 0, stream: 'stdout', line: '{…}',
        agent: [
          { kind: 'thinking', chars: 10 },
          { kind: 'tool_result', isError: false, chars: 40, lines: 3, firstLine: 'total 8' },
          { kind: 'tool_result', isError: false, chars: 40, lines: 2, firstLine: 'one' },
          { kind: 'tool_result', isError: true, chars: 4, lines: 1, firstLine: 'boom' },
          { kind: 'tool_result', isError: false, chars: 0, lines: 0, firstLine: '' },
          { kind: 'message', text: '- first\n- second', replay: true },
          { kind: 'system', subtype: 'thinking_tokens' },
          { kind: 'other', type: 'rate_limit_event' },
        ],
      }],
      [['stdout', '✻ thinking…\n'], ['stdout', '  ⎿ total 8 (+2 lines)\n'], ['stdout', '  ⎿ one (+1 line)\n'], ['stdout', '  ⎿ error: boom\n'], ['stdout', '  ⎿ (no output)\n'], ['stdout', '> - first (+1 line)\n']],
    ],
    [
      [{ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'result', isError: true, subtype: 'error_max_turns', turns: 3, errors: ['Reached maximum number of turns (3)'] }] }],
      [['stderr', 'cldpd: agent error (error_max_turns), 3 turns\n'], ['stderr', 'cldpd: agent error: Reached maximum number of turns (3)\n']],
    ],
    // The run's duration is said once, in the closing line; the agent's own is not repeated.
    [[{ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'result', isError: false, turns: 1, costUsd: 0.5, durationMs: 1500 }] }], [['stderr', 'cldpd: agent done, 1 turn\n']]],
    [[{ type: 'container.exited', at: 0, exitCode: 2, reason: 'exited', durationMs: 2000 }], []],
    [[{ type: 'error', at: 0, code: 'ContainerFailed', message: 'bad' }], [['stderr', 'cldpd: error (ContainerFailed): bad\n']]],
    [
      [{ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'text', text: 'look \u001b]52;c;aGk=\u0007 here\tok' }, { kind: 'tool_result', isError: false, chars: 9, lines: 1, firstLine: '\u001b[2Jboom' }] }],
      [['stdout', 'look \\x1b]52;c;aGk=\\x07 here\tok\n'], ['stdout', '  ⎿ \\x1b[2Jboom\n']],
    ],
  ])('%j', (events, expected) => {
    expect(live(events)).toEqual(expected);
  });

  it('build: a first build shows one line per step, never cldpd\'s own labels or the builder\'s bookkeeping', () => {
    const shown = live([{ type: 'build.started', at: 0, image: 'cldpd-hello:latest' }, ...FIRST_BUILD, { type: 'build.completed', at: 2500, image: 'cldpd-hello:latest', imageId: 'sha256:b8de2341e2e7ffff' }]);
    expect(shown).toEqual([
      ['stderr', 'cldpd: building image cldpd-hello:latest\n'],
      ['stderr', '  ‣ FROM scratch\n'],
      ['stderr', '  ‣ RUN make\n'],
      ['stderr', 'cldpd: image cldpd-hello:latest built (b8de2341e2e7) in 2.5 s\n'],
    ]);
  });

  it('build: --verbose shows every line but cldpd\'s label steps, with escape codes removed', () => {
    const text = live([{ type: 'build.started', at: 0, image: 'i' }, ...FIRST_BUILD], true).map(([, t]) => t).join('');
    expect(text).toContain('  | compiling red\n');
    expect(text).toContain('  | Removing intermediate container 1f2e3d\n');
    expect(text).toContain('  | Successfully tagged cldpd-hello:latest\n');
    expect(text).not.toMatch(/dev\.cldpd|9dfa|6cb8|\u001b/);
  });

  it('build: an image reused as it is says so, not "building"', () => {
    const shown = live([
      { type: 'build.started', at: 0, image: 'cldpd-hello:latest' },
      { type: 'build.output', at: 0, line: 'Nothing in the context, build args or base images changed since cldpd-hello:latest (b8de2341e2e7) was built: using it.' },
      { type: 'build.completed', at: 10, image: 'cldpd-hello:latest', imageId: 'sha256:b8de2341e2e7' },
    ]);
    expect(shown).toEqual([['stderr', 'cldpd: image cldpd-hello:latest is up to date (b8de2341e2e7)\n']]);
  });

  it('build: a failed build shows the tail of what it printed, then the error', () => {
    const shown = live([
      { type: 'build.started', at: 0, image: 'i' },
      { type: 'build.output', at: 0, line: 'Step 1/3 : RUN false' },
      { type: 'build.output', at: 0, line: ' ---> Running in abc' },
      ...Array.from({ length: 30 }, (_, i): SessionEvent => ({ type: 'build.output', at: 0, line: `out ${i}` })),
      { type: 'error', at: 0, code: 'BuildFailed', message: "The command '/bin/sh -c false' returned a non-zero code: 1" },
    ]).map(([, t]) => t);
    expect(shown.slice(0, 3)).toEqual(['cldpd: building image i\n', '  ‣ RUN false\n', "cldpd: the build's last 20 lines:\n"]);
    expect(shown.slice(3, 23)).toEqual(Array.from({ length: 20 }, (_, i) => `  | out ${i + 10}\n`));
    expect(shown.at(-1)).toBe("cldpd: error (BuildFailed): The command '/bin/sh -c false' returned a non-zero code: 1\n");
  });

  it.each<[string, SessionEvent[], { runCostUsd?: number; sessionCostUsd?: number; run: number }, string[]]>([
    ['done', [started(), { type: 'container.exited', at: 0, exitCode: 0, reason: 'exited', durationMs: 12_345 }], { run: 1, runCostUsd: 0.0123 }, ['✓ done · 12.3 s · $0.0123', "  continue: cldpd resume s-1 --prompt '<what next>'"]],
    ['resumed', [started(3), { type: 'container.exited', at: 0, exitCode: 0, reason: 'exited', durationMs: 90_000 }], { run: 3, runCostUsd: 0.01, sessionCostUsd: 0.05 }, ['✓ done · 1m 30s · $0.0100 ($0.0500 for the session)', "  continue: cldpd resume s-1 --prompt '<what next>'"]],
    ['exit code', [started(), { type: 'container.exited', at: 0, exitCode: 2, reason: 'exited', durationMs: 1000 }], { run: 1 }, ['✗ exited with code 2 · 1.0 s', "  continue: cldpd resume s-1 --prompt '<what next>'"]],
    ['stopped', [started(), { type: 'container.exited', at: 0, exitCode: 143, reason: 'stopped', durationMs: 1000 }], { run: 1 }, ['⏹ stopped · 1.0 s', "  continue: cldpd resume s-1 --prompt '<what next>'"]],
    ['timed out', [started(), { type: 'container.exited', at: 0, exitCode: 137, reason: 'timeout', durationMs: 1000 }], { run: 1 }, ['⏱ timed out (timeoutSeconds in pod.json) · 1.0 s', "  continue: cldpd resume s-1 --prompt '<what next>'"]],
    ['build failed', [{ type: 'build.started', at: 0, image: 'i' }, { type: 'error', at: 0, code: 'BuildFailed', message: 'x' }], { run: 1 }, ['✗ the image did not build', '  the whole build: cldpd logs s-1 --verbose']],
    ['stopped while building', [{ type: 'build.started', at: 0, image: 'i' }, { type: 'error', at: 0, code: 'Stopped', message: 'x' }], { run: 1 }, ['✗ stopped before the container started']],
  ])('closing line: %s', (_, events, costs, expected) => {
    const printer = new TranscriptPrinter({ sessionId: 's-1', mode: 'live', verbose: false });
    for (const e of events) printer.event(e);
    const terminal = events.at(-1) as Extract<SessionEvent, { type: 'container.exited' | 'error' }>;
    expect(printer.end({ terminal, ...costs }).map((p) => [p.to, p.text])).toEqual(expected.map((t) => ['stderr', `${t}\n`]));
  });

  it('setup: each step said, its output dim on stderr, never on the agent\'s stdout', () => {
    const shown = live([started(), { type: 'setup.step', at: 0, step: 1, of: 2, name: 'cloning acme/web' }, { type: 'output', at: 0, stream: 'stdout', line: "Cloning into '/w'...", step: 1 }, { type: 'output', at: 0, stream: 'stdout', line: 'agent output' }]);
    expect(shown).toEqual([['stderr', 'cldpd: running in cldpd-s (run 1)\n'], ['stderr', 'cldpd: setting up (1/2): cloning acme/web\n'], ['stderr', "  | Cloning into '/w'...\n"], ['stdout', 'agent output\n']]);
  });

  it('log mode: everything on stdout, and where each run ended', () => {
    const printer = new TranscriptPrinter({ sessionId: 's-1', mode: 'log', verbose: false });
    const printed: Printed[] = [started(), { type: 'output', at: 0, stream: 'stderr', line: 'warn' } as SessionEvent, { type: 'container.exited', at: 0, exitCode: 143, reason: 'stopped', durationMs: 3000 } as SessionEvent].flatMap((e) => printer.event(e));
    expect(printed.map((p) => [p.to, p.text])).toEqual([['stdout', 'cldpd: running in cldpd-s (run 1)\n'], ['stdout', 'warn\n'], ['stdout', 'cldpd: run ended: stopped (exit 143) after 3.0 s\n']]);
  });

  it('colour: notes dim, tool calls cyan, errors red, the outcome green; none without a style', () => {
    const on = createStyle(true);
    const printer = new TranscriptPrinter({ sessionId: 's-1', mode: 'live', verbose: false, style: { stdout: on, stderr: on } });
    const text = [started(), { type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'tool', name: 'Bash', summary: 'ls' }, { kind: 'text', text: 'plain' }] } as SessionEvent, { type: 'container.exited', at: 0, exitCode: 0, reason: 'exited', durationMs: 1 } as SessionEvent]
      .flatMap((e) => printer.event(e)).map((p) => p.text);
    expect(text).toEqual(['\u001b[2mcldpd: running in cldpd-s (run 1)\u001b[22m\n', '\u001b[36m→ Bash: ls\u001b[39m\n', 'plain\n']);
    expect(printer.end({ run: 1, terminal: { type: 'container.exited', at: 0, exitCode: 0, reason: 'exited', durationMs: 1 } })[0]?.text).toBe('\u001b[32m✓ done · 0.0 s\u001b[39m\n');
    expect(live([{ type: 'error', at: 0, code: 'ContainerFailed', message: 'x' }]).join('')).not.toContain('\u001b');
  });

  const agentSaid = (...agent: AgentEvent[]): string[] => live([{ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent }]).map(([, t]) => t);

  it('secrets in part: the transcript folds a tool call\'s whole argument onto one short line itself', () => {
    const [line] = agentSaid({ kind: 'tool', name: 'Bash', summary: `cd /repo &&\n\techo ${'x'.repeat(500)}` });
    expect(line).toMatch(/^→ Bash: cd \/repo && echo x+…\n$/);
    expect(line?.length).toBeLessThanOrEqual('→ Bash: \n'.length + 200);
  });

  it('unicode: long tool arguments, messages and errors full of emoji are cut between characters', () => {
    for (let lead = 0; lead < 4; lead++) {
      const text = `${'x'.repeat(lead)}${'\u{1F600}'.repeat(400)}`;
      const lines = agentSaid(
        { kind: 'tool', name: 'Bash', summary: text },
        { kind: 'message', text, replay: true },
        { kind: 'result', isError: true, errors: [text] },
      );
      expect(lines).toHaveLength(4);
      for (const line of lines) expect(isWellFormed(line), `lead ${lead}: ${line}`).toBe(true);
    }
  });
});
