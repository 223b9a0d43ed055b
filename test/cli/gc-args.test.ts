import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseCommand, parseDuration, usageHint, UsageError } from '../../src/cli/args.js';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const MINUTE = 60_000;
const SECOND = 1000;

/** The UsageError `argv` throws; fails the test when it throws nothing, or something else. */
function usageErrorOf(argv: readonly string[]): UsageError {
  try {
    parseCommand(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return err as UsageError;
  }
  throw new Error(`parseCommand(${JSON.stringify(argv)}) threw nothing`);
}

describe('parseDuration', () => {
  it.each([
    ['30d', 30 * DAY],
    ['12h', 12 * HOUR],
    ['45m', 45 * MINUTE],
    ['90s', 90 * SECOND],
    ['7', 7 * DAY], // a bare number is days
    ['0.5d', DAY / 2],
    ['1.5h', 1.5 * HOUR],
    ['0.25', DAY / 4],
    ['030d', 30 * DAY],
    [' 30d ', 30 * DAY], // spaces around the value, as a shell variable may leave them
    ['\t2h\n', 2 * HOUR],
    // Zero is a duration: `cldpd gc --older-than 0s` removes every finished terminal session.
    ['0', 0],
    ['0s', 0],
    ['00.000d', 0],
  ])('%j is %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each([
    '', ' ', 'd', '30x', '30D', '30 d', '30dd', '30d 1h', '-1d', '+1d', '-0', '1e3d', '1e3', '.5d', '5.d', '5.',
    '0x10', '1_000s', '1,5d', 'Infinity', 'NaN', 'thirty days', '30days', '３０d', '١٢d', '30d;rm -rf /',
  ])('refuses %j', (text) => {
    expect(parseDuration(text)).toBeUndefined();
  });

  it('refuses a number of digits too large to be a duration at all (it would be Infinity ms)', () => {
    expect(parseDuration(`1${'0'.repeat(400)}d`)).toBeUndefined();
    expect(parseDuration(`1${'0'.repeat(400)}`)).toBeUndefined();
  });

  it('property: whatever the text, the answer is undefined or a finite number of ms, never negative or NaN', () => {
    const durationLike = fc.tuple(fc.stringMatching(/^[0-9]{1,400}(\.[0-9]{1,20})?$/), fc.constantFrom('', 'd', 'h', 'm', 's'))
      .map(([n, unit]) => n + unit);
    fc.assert(fc.property(fc.oneof(fc.string(), durationLike), (text) => {
      const ms = parseDuration(text);
      expect(ms === undefined || (Number.isFinite(ms) && ms >= 0)).toBe(true);
    }));
  });
});

describe('parseCommand: gc', () => {
  it.each([
    [['gc'], { name: 'gc', dryRun: false, olderThanMs: 30 * DAY, json: false }],
    [['gc', '--dry-run'], { name: 'gc', dryRun: true, olderThanMs: 30 * DAY, json: false }],
    [['gc', '--json'], { name: 'gc', dryRun: false, olderThanMs: 30 * DAY, json: true }],
    [['gc', '--older-than', '12h'], { name: 'gc', dryRun: false, olderThanMs: 12 * HOUR, json: false }],
    [['gc', '--older-than=45m'], { name: 'gc', dryRun: false, olderThanMs: 45 * MINUTE, json: false }],
    [['gc', '--older-than', '0.5d', '--dry-run', '--json'], { name: 'gc', dryRun: true, olderThanMs: DAY / 2, json: true }],
    [['--dry-run', '--older-than', '90s', 'gc'], { name: 'gc', dryRun: true, olderThanMs: 90 * SECOND, json: false }],
    [['gc', '--older-than', '7'], { name: 'gc', dryRun: false, olderThanMs: 7 * DAY, json: false }],
    [['gc', '--older-than', '0s'], { name: 'gc', dryRun: false, olderThanMs: 0, json: false }],
    [['gc', '--older-than', '1d', '--older-than', '2d'], { name: 'gc', dryRun: false, olderThanMs: 2 * DAY, json: false }], // the last one counts
  ])('%j', (argv, expected) => {
    expect(parseCommand(argv)).toEqual(expected);
  });

  it.each([
    '30x', '30 d', '1e3d', '-1d', '-30', '', 'soon', '30D', 'Infinity',
  ])('refuses --older-than %j, naming the option and the value', (value) => {
    for (const argv of [['gc', `--older-than=${value}`], ['gc', '--older-than', value]]) {
      const err = usageErrorOf(argv);
      expect(err.message).toBe(`"cldpd gc --older-than" takes a duration like 30d, 12h, 45m or 90s, not "${value}".`);
      expect(err.command).toBe('gc');
    }
  });

  it('refuses an --older-than of 400 digits (Infinity ms would keep everything, silently)', () => {
    const huge = `1${'0'.repeat(400)}d`;
    expect(usageErrorOf(['gc', '--older-than', huge]).message).toContain(`not "${huge}"`);
  });

  it.each([
    [['gc', '--older-than'], 'Option --older-than needs a value: --older-than <value>.'],
    [['gc', '--older-than', '--dry-run'], 'Option --older-than needs a value, but the next word is an option.'],
    [['gc', '--older-than', '-f'], 'Option --older-than needs a value, but the next word is an option.'],
    [['gc', '--dry-run=yes'], 'Option --dry-run takes no value.'],
    [['gc', '--json=false'], 'Option --json takes no value.'],
    [['gc', 'now'], '"cldpd gc" takes no arguments, got: now.'],
    [['gc', '30d'], '"cldpd gc" takes no arguments, got: 30d.'],
    [['gc', '--all'], '"cldpd gc" takes no --all option.'],
    [['gc', '-a'], '"cldpd gc" takes no --all option.'],
    [['gc', '--follow'], '"cldpd gc" takes no --follow option.'],
    [['gc', '--verbose'], '"cldpd gc" takes no --verbose option.'],
    [['gc', '--pods-dir', '/p'], '"cldpd gc" takes no --pods-dir option.'],
    [['gc', '--prompt', 'x'], '"cldpd gc" takes no --prompt option.'],
    [['gc', '--issue', 'https://github.com/a/b/issues/1'], '"cldpd gc" takes no --issue option.'],
    [['gc', '--dry'], 'Unknown option --dry for "cldpd gc". Did you mean --dry-run?'],
    [['gc', '--older', '1d'], 'Unknown option --older for "cldpd gc". Did you mean --older-than?'],
    [['gc', '--force'], 'Unknown option --force for "cldpd gc".'],
    [['ps', '--dry-run'], '"cldpd ps" takes no --dry-run option.'],
    [['ps', '--older-than', '1d'], '"cldpd ps" takes no --older-than option.'],
    [['volumes', 'rm', 'x', '--dry-run'], '"cldpd volumes" takes no --dry-run option.'],
    [['doctor', '--older-than=1d'], '"cldpd doctor" takes no --older-than option.'],
  ])('refuses %j', (argv, message) => {
    const err = usageErrorOf(argv);
    expect(err.message).toContain(message);
    // Node's parser's own wording, with its nested quotes, never reaches the person.
    expect(err.message).not.toMatch(/To specify a positional argument|'--/);
  });

  it('names gc in its errors, whose usage line then shows the default', () => {
    expect(usageErrorOf(['gc', '--older-than', '30x']).command).toBe('gc');
    expect(usageErrorOf(['gc', '--all']).command).toBe('gc');
    expect(usageHint('gc')).toBe('Usage: cldpd gc [--dry-run] [--older-than 30d]\nRun "cldpd --help" for all commands and options.');
  });
});
