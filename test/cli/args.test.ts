import { describe, expect, it } from 'vitest';
import { parseCommand, usageHint, UsageError } from '../../src/cli/args.js';

describe('parseCommand', () => {
  it.each([
    [['start', 'web', '--issue', 'https://github.com/a/b/issues/1'], { name: 'start', pod: 'web', issueUrl: 'https://github.com/a/b/issues/1', json: false, verbose: false }],
    [['--prompt', 'fix it', 'start', 'web'], { name: 'start', pod: 'web', prompt: 'fix it', json: false, verbose: false }],
    [['start', '--json', 'web', '--prompt=hi', '--pods-dir', '/p'], { name: 'start', pod: 'web', prompt: 'hi', json: true, verbose: false, podsDir: '/p' }],
    [['resume', 'web-00aa11bb', '--prompt', 'more'], { name: 'resume', session: 'web-00aa11bb', prompt: 'more', json: false, verbose: false }],
    [['resume', 'web-00aa11bb', '--prompt', '- a list\n- of things'], { name: 'resume', session: 'web-00aa11bb', prompt: '- a list\n- of things', json: false, verbose: false }],
    [['start', 'web', '--prompt', '--help me'], { name: 'start', pod: 'web', prompt: '--help me', json: false, verbose: false }],
    [['start', 'web', '--prompt', '-x'], { name: 'start', pod: 'web', prompt: '-x', json: false, verbose: false }],
    [['start', 'web', '--prompt-file', '-'], { name: 'start', pod: 'web', promptFile: '-', json: false, verbose: false }],
    [['resume', 'web-00aa11bb', '--prompt-file', '/tmp/p.md'], { name: 'resume', session: 'web-00aa11bb', promptFile: '/tmp/p.md', json: false, verbose: false }],
    [['stop', 'web-00aa11bb'], { name: 'stop', session: 'web-00aa11bb' }],
    [['ps'], { name: 'ps', all: false, json: false }],
    [['ps', '-a', '--json'], { name: 'ps', all: true, json: true }],
    [['logs', '-f', 'web-00aa11bb'], { name: 'logs', session: 'web-00aa11bb', follow: true, json: false, verbose: false }],
    [['pods', '--pods-dir', '/x'], { name: 'pods', json: false, podsDir: '/x' }],
    [['doctor'], { name: 'doctor', json: false }],
    [[], { name: 'help' }],
    [['start', '--help'], { name: 'help' }],
    [['--version'], { name: 'version' }],
    [['start', 'web', '-v', '--prompt', 'x'], { name: 'start', pod: 'web', prompt: 'x', json: false, verbose: true }],
    [['logs', 'web-00aa11bb', '--verbose'], { name: 'logs', session: 'web-00aa11bb', follow: false, json: false, verbose: true }],
    [['volumes'], { name: 'volumes', json: false }],
    [['volumes', '--json'], { name: 'volumes', json: true }],
    [['volumes', 'rm', 'web-00aa11bb', 'cldpd-x'], { name: 'volumes rm', targets: ['web-00aa11bb', 'cldpd-x'] }],
  ])('%j', (argv, expected) => {
    expect(parseCommand(argv)).toEqual(expected);
  });

  it.each([
    [['frob'], 'Unknown command "frob".'],
    [['constructor'], 'Unknown command "constructor".'],
    [['--promt', 'constructor'], 'Unknown option --promt.'],
    [['toString', '--promt', 'x'], 'Unknown option --promt.'],
    [['strat', 'web'], 'Unknown command "strat". Did you mean "start"?'],
    [['sevre'], 'Unknown command "sevre". Did you mean "serve"?'],
    [['ps', '--al'], 'Unknown option --al for "cldpd ps". Did you mean --all?'],
    [['start', 'web', '--promt', 'x'], 'Unknown option --promt for "cldpd start". Did you mean --prompt?'],
    [['volumes', 'remove', 'x'], '"cldpd volumes" takes "rm <session|volume>..." or nothing, got: remove.'],
    [['volumes', 'rm'], 'needs a session id or a volume name'],
    [['start'], 'needs exactly one pod name'],
    [['start', 'a', 'b', '--prompt', 'x'], 'needs exactly one pod name, got 2: a b'],
    [['start', 'web'], 'needs --issue <url> or --prompt <text>'],
    [['start', 'web', '--issue'], 'Option --issue needs a value: --issue <value>.'],
    [['resume', 'web-00aa11bb'], 'needs --prompt'],
    [['stop'], 'needs exactly one session id'],
    [['start', 'web', '--prompt', '--json'], 'Did you forget to specify the option argument'],
    [['start', 'web', '--prompt', 'a', '--prompt-file', 'f'], 'not both'],
    [['ps', 'extra'], 'takes no arguments, got: extra'],
    [['ps', '--prompt', 'x'], 'takes no --prompt option'],
    [['stop', 'x', '--json'], 'takes no --json option'],
    [['start', 'web', '--bogus'], 'Unknown option --bogus for "cldpd start".'],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
    expect(() => parseCommand(argv)).toThrow(message);
    // Node's parser's own wording, with its nested quotes, never reaches the person.
    expect(() => parseCommand(argv)).not.toThrow(/To specify a positional argument|'--/);
  });

  it('names the command an error is about, for its usage line', () => {
    const err = (() => { try { parseCommand(['ps', '--al']); } catch (e) { return e as UsageError; } })();
    expect(err?.command).toBe('ps');
    expect(usageHint('ps')).toBe('Usage: cldpd ps [--all]\nRun "cldpd --help" for all commands and options.');
  });
});
