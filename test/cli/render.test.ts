import { describe, expect, it } from 'vitest';
import { renderEvent } from '../../src/cli/render.js';
import type { AgentEvent, SessionEvent } from '../../src/core/index.js';
import { isWellFormed } from '../../src/core/text.js';

describe('renderEvent', () => {
  it.each<[SessionEvent, Array<[string, string]>]>([
    [{ type: 'build.started', at: 0, image: 'cldpd-web:latest' }, [['stderr', 'cldpd: building image cldpd-web:latest\n']]],
    [{ type: 'build.output', at: 0, line: 'Step 1/2' }, [['stderr', '  | Step 1/2\n']]],
    [{ type: 'build.completed', at: 0, image: 'x', imageId: 'sha256:0123456789abcdef' }, [['stderr', 'cldpd: image ready (0123456789ab)\n']]],
    [{ type: 'container.started', at: 0, containerId: 'c', containerName: 'cldpd-s', exec: false, run: 1 }, [['stderr', 'cldpd: session s-1 running in cldpd-s (run 1)\n']]],
    [{ type: 'container.started', at: 0, containerId: 'c', containerName: 'cldpd-s', exec: true, run: 2 }, [['stderr', 'cldpd: session s-1 resumed in cldpd-s (run 2)\n']]],
    [{ type: 'output', at: 0, stream: 'stdout', line: 'hello' }, [['stdout', 'hello\n']]],
    [{ type: 'output', at: 0, stream: 'stdout', line: 'par', partial: true }, [['stdout', 'par']]],
    [{ type: 'output', at: 0, stream: 'stderr', line: 'oops' }, [['stderr', 'oops\n']]],
    [
      { type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'text', text: 'Done.' }, { kind: 'tool', name: 'Bash', summary: 'ls' }] },
      [['stdout', 'Done.\n'], ['stdout', '→ Bash: ls\n']],
    ],
    [
      {
        type: 'output', at: 0, stream: 'stdout', line: '{…}',
        agent: [
          { kind: 'thinking', chars: 10 },
          { kind: 'tool_result', isError: false, chars: 40, lines: 3, firstLine: 'total 8' },
          { kind: 'tool_result', isError: true, chars: 4, lines: 1, firstLine: 'boom' },
          { kind: 'tool_result', isError: false, chars: 0, lines: 0, firstLine: '' },
          { kind: 'message', text: '- first\n- second', replay: true },
          { kind: 'system', subtype: 'thinking_tokens' },
          { kind: 'other', type: 'rate_limit_event' },
        ],
      },
      [['stdout', '✻ thinking…\n'], ['stdout', '  ⎿ total 8 (+2 lines)\n'], ['stdout', '  ⎿ error: boom\n'], ['stdout', '  ⎿ (no output)\n'], ['stdout', '> - first (+1 lines)\n']],
    ],
    [
      { type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'result', isError: true, subtype: 'error_max_turns', turns: 3, errors: ['Reached maximum number of turns (3)'] }] },
      [['stderr', 'cldpd: agent error (error_max_turns), 3 turns\n'], ['stderr', 'cldpd: agent error: Reached maximum number of turns (3)\n']],
    ],
    [
      { type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'result', isError: false, turns: 3, costUsd: 0.5, durationMs: 1500 }] },
      [['stderr', 'cldpd: agent done, 3 turns, 1.5 s\n']],
    ],
    [{ type: 'container.exited', at: 0, exitCode: 2, reason: 'exited', durationMs: 2000 }, [['stderr', 'cldpd: exited with code 2 after 2.0 s\n']]],
    [{ type: 'container.exited', at: 0, exitCode: 143, reason: 'timeout', durationMs: 2000 }, [['stderr', 'cldpd: exited with code 143 after 2.0 s (timed out: timeoutSeconds in pod.json)\n']]],
    [{ type: 'error', at: 0, code: 'BuildFailed', message: 'bad' }, [['stderr', 'cldpd: error (BuildFailed): bad\n']]],
    [
      { type: 'output', at: 0, stream: 'stdout', line: '{…}', agent: [{ kind: 'text', text: 'look \u001b]52;c;aGk=\u0007 here\tok' }, { kind: 'tool_result', isError: false, chars: 9, lines: 1, firstLine: '\u001b[2Jboom' }] },
      [['stdout', 'look \\x1b]52;c;aGk=\\x07 here\tok\n'], ['stdout', '  ⎿ \\x1b[2Jboom\n']],
    ],
  ])('%j', (event, expected) => {
    expect(renderEvent(event, 's-1').map((p) => [p.to, p.text])).toEqual(expected);
  });

  const agentSaid = (...agent: AgentEvent[]): string[] => renderEvent({ type: 'output', at: 0, stream: 'stdout', line: '{…}', agent }, 's-1').map((p) => p.text);

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
