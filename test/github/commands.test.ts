import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { commandTrigger, mayHoldCommand, parseCommand, podFromLabel } from '../../src/github/commands.js';

describe('podFromLabel', () => {
  it.each([
    ['cldpd:web', 'web'],
    ['CLDPD:web', 'web'],
    [' cldpd: web ', 'web'],
    ['cldpd:Web/../x', 'Web/../x'], // refused later by the core's name check, with a reply
    ['cldpd:', undefined],
    ['cldpd', undefined],
    ['bug', undefined],
    ['x-cldpd:web', undefined],
    ['', undefined],
    [undefined, undefined],
  ])('%j → %j', (label, pod) => {
    expect(podFromLabel(label)).toBe(pod);
  });
});

describe('parseCommand', () => {
  it.each([
    ['/cldpd resume fix the tests', { kind: 'resume', prompt: 'fix the tests' }],
    ['/cldpd resume', { kind: 'invalid', problem: expect.stringContaining('needs a prompt') }],
    ['/cldpd resume   \n\n  ', { kind: 'invalid', problem: expect.stringContaining('needs a prompt') }],
    ['/cldpd resume first line\nsecond line\n\nthird', { kind: 'resume', prompt: 'first line\nsecond line\n\nthird' }],
    ['/cldpd resume\nall on\nthe next lines', { kind: 'resume', prompt: 'all on\nthe next lines' }],
    ['Thanks!\n/cldpd resume now the docs', { kind: 'resume', prompt: 'now the docs' }],
    ['   /cldpd stop', { kind: 'stop' }],
    ['/cldpd stop please', { kind: 'stop' }],
    ['/CLDPD STATUS', { kind: 'status' }],
    ['/cldpd\tstatus', { kind: 'status' }],
    ['/cldpd\u00a0status', { kind: 'status' }],
    ['/cldpd  resume  spaced  out ', { kind: 'resume', prompt: 'spaced  out' }],
    ['/cldpd resume \u00e9t\u00e9 \u{1F680} unicode', { kind: 'resume', prompt: '\u00e9t\u00e9 \u{1F680} unicode' }],
    ['/cldpd resume a\r\nb', { kind: 'resume', prompt: 'a\nb' }],
    ['/cldpd frob', { kind: 'invalid', problem: expect.stringContaining('`/cldpd frob` is not a command') }],
    ['/cldpd', { kind: 'invalid', problem: expect.stringContaining('needs a command') }],
    ['/cldpd stop\n/cldpd resume later', { kind: 'stop' }],
    ['/cldpd resume do this\n/cldpd stop', { kind: 'resume', prompt: 'do this\n/cldpd stop' }],
    ['/cl\u200Bdpd stop', { kind: 'stop' }], // what a reader sees is what counts
    ['```\n/cldpd stop\n```\n/cldpd status', { kind: 'status' }],
  ])('%j', (body, expected) => {
    expect(parseCommand(body)).toEqual(expected);
  });

  it.each([
    ['plain comment', 'Looks good to me'],
    ['mid-line', 'please run /cldpd stop'],
    ['other bot', '/cldpdx stop'],
    ['in a fenced block', '```\n/cldpd stop\n```'],
    ['in a tilde block', '~~~sh\n/cldpd stop\n~~~'],
    ['in an indented block', '    /cldpd stop'],
    ['in a quote', '> /cldpd stop'],
    ['in a nested quote', '> > /cldpd resume x'],
    ['in an HTML comment', '<!--\n/cldpd stop\n-->'],
    ['in an unterminated HTML comment', 'hi <!--\n/cldpd stop'],
    ['empty', ''],
    ['null', null],
  ])('ignores a command %s', (_, body) => {
    expect(parseCommand(body)).toBeUndefined();
  });

  it('handles a 1 MB comment', () => {
    const body = `${'x'.repeat(1024 * 1024)}\n/cldpd status`;
    expect(parseCommand(body)).toEqual({ kind: 'status' });
  });
});

describe('mayHoldCommand', () => {
  it.each([
    ['/cldpd status', true],
    ['> /cldpd stop', true], // the intake step finds it quoted
    ['/CL\u200Bdpd stop', true],
    ['/cl<!-- hidden -->dpd stop', true],
    ['/cl<span hidden>x</span>d<!---->pd stop', true],
    ['Looks good to me', false],
    ['see https://example.com/cldp/d', false],
    ['/cl dpd', false],
    ['/cl>dpd', false],
    [null, false],
  ])('%j → %j', (body, expected) => {
    expect(mayHoldCommand(body)).toBe(expected);
  });

  it('sanitize: is true whenever parseCommand finds a command, so the request path drops no command', () => {
    const piece = fc.constantFrom('/cldpd', '/cl', 'dpd', 'd', 'p', 'c', 'l', '/', ' status', ' resume x', '\n', ' ', '> ', '```\n', '    ',
      '<!--', '-->', '<b hidden>', '</b>', '<i style="display:none">', '</i>', '<', '>', '\u200B', '\u2028', '![a](b)', '[r]: u\n');
    fc.assert(fc.property(fc.array(piece, { maxLength: 24 }).map((parts) => parts.join('')), (body) => {
      if (parseCommand(body) !== undefined) expect(mayHoldCommand(body)).toBe(true);
    }), { numRuns: 3000 });
  });
});

describe('commandTrigger', () => {
  it.each([
    ['/cldpd resume and then\nthe tests', { kind: 'resume', prompt: 'and then\nthe tests', commentId: 5, commentBody: '/cldpd resume and then\nthe tests' }],
    ['/cldpd stop', { kind: 'stop', commentId: 5 }],
    ['/cldpd status', { kind: 'status', commentId: 5 }],
    ['/cldpd nope', { kind: 'invalid', problem: '`/cldpd nope` is not a command.', commentId: 5 }],
    ['> /cldpd stop', undefined],
  ])('%j', (body, trigger) => {
    expect(commandTrigger(body, 5)).toEqual(trigger);
  });
});
