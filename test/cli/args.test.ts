import { describe, expect, it } from 'vitest';
import { parseCommand, UsageError } from '../../src/cli/args.js';

describe('parseCommand', () => {
  it.each([
    [['start', 'web', '--issue', 'https://github.com/a/b/issues/1'], { name: 'start', pod: 'web', issueUrl: 'https://github.com/a/b/issues/1', json: false }],
    [['--prompt', 'fix it', 'start', 'web'], { name: 'start', pod: 'web', prompt: 'fix it', json: false }],
    [['start', '--json', 'web', '--prompt=hi', '--pods-dir', '/p'], { name: 'start', pod: 'web', prompt: 'hi', json: true, podsDir: '/p' }],
    [['resume', 'web-00aa11bb', '--prompt', 'more'], { name: 'resume', session: 'web-00aa11bb', prompt: 'more', json: false }],
    [['resume', 'web-00aa11bb', '--prompt', '- a list\n- of things'], { name: 'resume', session: 'web-00aa11bb', prompt: '- a list\n- of things', json: false }],
    [['start', 'web', '--prompt', '--help me'], { name: 'start', pod: 'web', prompt: '--help me', json: false }],
    [['start', 'web', '--prompt', '-x'], { name: 'start', pod: 'web', prompt: '-x', json: false }],
    [['start', 'web', '--prompt-file', '-'], { name: 'start', pod: 'web', promptFile: '-', json: false }],
    [['resume', 'web-00aa11bb', '--prompt-file', '/tmp/p.md'], { name: 'resume', session: 'web-00aa11bb', promptFile: '/tmp/p.md', json: false }],
    [['stop', 'web-00aa11bb'], { name: 'stop', session: 'web-00aa11bb' }],
    [['ps'], { name: 'ps', all: false, json: false }],
    [['ps', '-a', '--json'], { name: 'ps', all: true, json: true }],
    [['logs', '-f', 'web-00aa11bb'], { name: 'logs', session: 'web-00aa11bb', follow: true, json: false }],
    [['pods', '--pods-dir', '/x'], { name: 'pods', json: false, podsDir: '/x' }],
    [['doctor'], { name: 'doctor', json: false }],
    [[], { name: 'help' }],
    [['start', '--help'], { name: 'help' }],
    [['--version'], { name: 'version' }],
  ])('%j', (argv, expected) => {
    expect(parseCommand(argv)).toEqual(expected);
  });

  it.each([
    [['frob'], 'Unknown command "frob"'],
    [['start'], 'needs exactly one pod name'],
    [['start', 'a', 'b', '--prompt', 'x'], 'needs exactly one pod name, got 2: a b'],
    [['start', 'web'], 'needs --issue <url> or --prompt <text>'],
    [['start', 'web', '--issue'], "argument missing"],
    [['resume', 'web-00aa11bb'], 'needs --prompt'],
    [['stop'], 'needs exactly one session id'],
    [['start', 'web', '--prompt', '--json'], 'Did you forget to specify the option argument'],
    [['start', 'web', '--prompt', 'a', '--prompt-file', 'f'], 'not both'],
    [['ps', 'extra'], 'takes no arguments, got: extra'],
    [['ps', '--prompt', 'x'], 'takes no --prompt option'],
    [['stop', 'x', '--json'], 'takes no --json option'],
    [['start', 'web', '--bogus'], "Unknown option '--bogus'"],
  ])('refuses %j', (argv, message) => {
    expect(() => parseCommand(argv)).toThrow(UsageError);
    expect(() => parseCommand(argv)).toThrow(message);
  });
});
