import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validatePodJson } from '../../src/core/index.js';
import { LineSplitter } from '../../src/core/line-splitter.js';
import { parseStreamJsonLine } from '../../src/core/stream-json.js';
import { isWellFormed } from '../../src/core/text.js';
import { parseCommand, podFromLabel } from '../../src/github/commands.js';
import { createRedactor } from '../../src/core/redact.js';
import { sanitizeUntrusted } from '../../src/github/sanitize.js';
import { MAX_COMMENT_CHARS, renderStatusComment, statusMarker, type StatusView } from '../../src/github/status-comment.js';

const RUNS = { numRuns: Number(process.env.PROPERTY_RUNS ?? 2000) };

/** Text with the characters that matter to these parsers mixed in. */
const tricky = fc.string({
  unit: fc.oneof(
    { weight: 6, arbitrary: fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' }) },
    { weight: 3, arbitrary: fc.constantFrom('\n', ' ', '\t', '\r', '/', '`', '~', '>', '<', '!', '[', ']', '(', ')', '-', '#', ':') },
    { weight: 2, arbitrary: fc.constantFrom('/cldpd', 'resume', 'stop', 'status', '```', '<!--', '-->', '![x](y)', '<img alt="a">', '    ', 'cldpd:') },
    { weight: 1, arbitrary: fc.constantFrom('\u200b', '\u202e', '\u2066', '\ufeff', '\u00ad', '\u2028', '\u0000', String.fromCodePoint(0xe0041)) },
  ),
  maxLength: 200,
});

const INVISIBLE = /[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\u00ad]|\udb40[\udc00-\udc7f]/;

describe('property: sanitizeUntrusted', () => {
  it('never throws, leaves no invisible carrier or HTML comment, and is idempotent', () => {
    fc.assert(fc.property(tricky, (text) => {
      const clean = sanitizeUntrusted(text);
      expect(clean).not.toMatch(INVISIBLE);
      expect(clean).not.toContain('<!--');
      // No image whose alt text a reader would not see (flat ones; nested ones are unit-tested).
      expect(clean).not.toMatch(/(?<!\\)!\[[^[\]]*\]\([^()]*\)/);
      expect(sanitizeUntrusted(clean)).toBe(clean);
    }), RUNS);
  });
});

describe('property: parseCommand', () => {
  it('never throws; a resume always has a non-empty prompt; nothing inside a fence or quote triggers', () => {
    fc.assert(fc.property(tricky, (text) => {
      const command = parseCommand(text);
      if (command?.kind === 'resume') expect(command.prompt.trim()).not.toBe('');
      const fenced = `\`\`\`\n${text.replaceAll('```', '')}\n\`\`\``;
      expect(parseCommand(fenced)).toBeUndefined();
      const quoted = text.split(/\r\n|\r|\n/).map((l) => `> ${l}`).join('\n');
      expect(parseCommand(quoted)).toBeUndefined();
    }), RUNS);
  });

  it('finds a command written on its own line after any prose', () => {
    fc.assert(fc.property(tricky, fc.constantFrom('stop', 'status'), (prose, word) => {
      const body = `${prose.replace(/[`~<]/g, '')}\n\n/cldpd ${word}`;
      const command = parseCommand(body);
      expect(command).toBeDefined();
    }), RUNS);
  });
});

describe('property: podFromLabel', () => {
  it('never throws and returns a trimmed, non-empty name only for cldpd: labels', () => {
    fc.assert(fc.property(tricky, (label) => {
      const pod = podFromLabel(label);
      if (pod !== undefined) {
        expect(label.trim().toLowerCase().startsWith('cldpd:')).toBe(true);
        expect(pod).toBe(pod.trim());
        expect(pod.length).toBeGreaterThan(0);
      }
    }), RUNS);
  });
});

describe('property: pod.json validation', () => {
  it('never throws on any JSON value; accepts or names at least one problem', () => {
    fc.assert(fc.property(fc.jsonValue(), (value) => {
      const result = validatePodJson(value);
      if (!result.ok) {
        expect(result.problems.length).toBeGreaterThan(0);
        for (const p of result.problems) expect(p).toMatch(/field|unknown/);
      }
    }), RUNS);
  });

  it('never throws on objects with pod.json keys and random values', () => {
    const keys = ['image', 'env', 'inheritEnv', 'buildArgs', 'workdir', 'mounts', 'command', 'resumeCommand', 'persist', 'timeoutSeconds', 'buildTimeoutSeconds', 'stopGraceSeconds', 'memory', 'cpus', 'pids', 'network'];
    fc.assert(fc.property(fc.dictionary(fc.constantFrom(...keys), fc.jsonValue()), (value) => {
      const result = validatePodJson(value);
      expect(typeof result.ok).toBe('boolean');
    }), RUNS);
  });
});

describe('property: stream-json and line splitting', () => {
  it('parseStreamJsonLine never throws', () => {
    fc.assert(fc.property(fc.oneof(tricky, fc.jsonValue().map((v) => JSON.stringify(v))), (line) => {
      expect(Array.isArray(parseStreamJsonLine(line))).toBe(true);
    }), RUNS);
  });

  it('LineSplitter loses and adds no character, however the stream is chunked', () => {
    fc.assert(fc.property(fc.string({ unit: fc.oneof(fc.constantFrom('\n', '\r\n', 'a'), fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })), maxLength: 80 }), fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 10 }), fc.integer({ min: 1, max: 16 }), (text, cuts, max) => {
      const bytes = Buffer.from(text);
      const chunks: Buffer[] = [];
      for (let at = 0, i = 0; at < bytes.length; i++) {
        const size = cuts[i % cuts.length] as number;
        chunks.push(bytes.subarray(at, at + size));
        at += size;
      }
      const splitter = new LineSplitter(max);
      const lines = [...chunks.flatMap((c) => splitter.push(c)), ...splitter.end()];
      let rebuilt = '';
      for (const l of lines) rebuilt += l.partial ? l.line : `${l.line}\n`;
      // Line ends are normalised (a CR before LF dropped); a final line without LF gains one.
      const normalise = (t: string) => t.replace(/\r\n/g, '\n').replace(/\n$/, '');
      expect(normalise(rebuilt)).toBe(normalise(text));
    }), RUNS);
  });
});

describe('property: line pieces do not depend on chunking', () => {
  it('two different chunkings of one stream give the same pieces (re-attaching counts on it)', () => {
    const text = fc.string({ unit: fc.oneof(fc.constantFrom('\n', 'a', 'bb', 'é', '\u{1F600}'), fc.string({ minLength: 1, maxLength: 1, unit: 'grapheme' })), maxLength: 120 });
    const cuts = fc.array(fc.integer({ min: 1, max: 7 }), { minLength: 1, maxLength: 8 });
    fc.assert(fc.property(text, cuts, cuts, fc.integer({ min: 1, max: 12 }), (t, a, b, max) => {
      const pieces = (sizes: number[]) => {
        const bytes = Buffer.from(t);
        const splitter = new LineSplitter(max);
        const out = [];
        for (let at = 0, i = 0; at < bytes.length; i++) {
          const size = sizes[i % sizes.length] as number;
          out.push(...splitter.push(bytes.subarray(at, at + size)));
          at += size;
        }
        return [...out, ...splitter.end()];
      };
      expect(pieces(a)).toEqual(pieces(b));
    }), RUNS);
  });
});

describe('property: status comment', () => {
  const view = fc.record({
    phase: fc.constantFrom('queued', 'building', 'running', 'finished', 'failed', 'cancelled'),
    activity: fc.option(fc.string({ maxLength: 5000 }), { nil: undefined }),
    lastLines: fc.option(fc.array(fc.string({ maxLength: 3000 }), { maxLength: 30 }), { nil: undefined }),
    finalAnswer: fc.option(fc.oneof(fc.string({ maxLength: 2000 }), fc.string({ minLength: 70_000, maxLength: 80_000 })), { nil: undefined }),
    error: fc.option(fc.string({ maxLength: 3000 }), { nil: undefined }),
    exitCode: fc.option(fc.integer({ min: 0, max: 255 }), { nil: undefined }),
  });

  it('is always under the size limit and never contains an injected secret', () => {
    fc.assert(fc.property(view, fc.string({ minLength: 6, maxLength: 40 }).filter((s) => s.trim().length >= 6 && !s.includes('redacted')), (v, secret) => {
      const inject = (t: string | undefined) => (t === undefined ? undefined : `${t.slice(0, t.length / 2)}${secret}${t.slice(t.length / 2)}`);
      const full: StatusView = {
        pod: 'web', sessionId: 'web-00000000', run: 1, command: 'start', now: 0,
        phase: v.phase as StatusView['phase'],
        ...(v.activity !== undefined ? { activity: inject(v.activity) } : {}),
        ...(v.lastLines !== undefined ? { lastLines: v.lastLines.map((l) => inject(l) as string) } : {}),
        ...(v.finalAnswer !== undefined ? { finalAnswer: inject(v.finalAnswer) } : {}),
        ...(v.error !== undefined ? { error: inject(v.error) } : {}),
        ...(v.exitCode !== undefined ? { exitCode: v.exitCode } : {}),
      };
      const body = renderStatusComment(full, statusMarker({ issueKey: 'a-b-1', seq: 1 }), createRedactor([secret]));
      expect(body.length).toBeLessThanOrEqual(MAX_COMMENT_CHARS);
      expect(body).not.toContain(secret);
    }), { numRuns: 1000 });
  });

  /** Any code point, astral ones and joined emoji often, and the lone halves an agent can send as JSON escapes. */
  const unicode = fc.string({
    unit: fc.oneof(
      { weight: 4, arbitrary: fc.string({ minLength: 1, maxLength: 1, unit: 'binary' }) },
      { weight: 3, arbitrary: fc.constantFrom('\u{1F600}', '\u{1F468}\u200D\u{1F469}\u200D\u{1F467}', '\u{1F1EB}\u{1F1F7}', '\u{20000}', 'e\u0301', ' ', '\n', '`') },
      { weight: 1, arbitrary: fc.constantFrom('\uD83D', '\uDE00') },
    ),
    maxLength: 300,
  });
  /** Long enough, now and then, to be cut by every limit of the comment. */
  const long = fc.tuple(unicode, fc.integer({ min: 1, max: 300 })).map(([text, times]) => text.repeat(times));
  const unicodeView = fc.record({
    pod: fc.oneof({ weight: 5, arbitrary: fc.constant('web') }, { weight: 1, arbitrary: long }),
    phase: fc.constantFrom('queued', 'building', 'running', 'finished', 'failed', 'cancelled'),
    activity: fc.option(long, { nil: undefined }),
    lastLines: fc.option(fc.array(long, { maxLength: 20 }), { nil: undefined }),
    finalAnswer: fc.option(long, { nil: undefined }),
    error: fc.option(long, { nil: undefined }),
    note: fc.option(unicode, { nil: undefined }),
  }, { requiredKeys: ['pod', 'phase'] });

  it('markdown: whatever an agent writes outside code, no mention, reference, image or HTML tag survives in the comment', () => {
    // Prose built from the pieces that would notify, link, load or hide: no backticks, tildes or indentation (code keeps its text).
    const piece = fc.constantFrom('@octocat', '@acme/core', '#12', 'acme/web#3', 'GH-7', 'gh-8', '![x](http://e.test/p.png)', '<img src=x>', '</details>', '<!-- hidden -->', 'text', ' ', '\n', '(', '@', '#', '!', '[', '<', 'a@b.c');
    const prose = fc.array(piece, { maxLength: 60 }).map((parts) => parts.join(''));
    fc.assert(fc.property(prose, prose, prose, (answer, activity, error) => {
      const render = (v: Partial<StatusView>) => renderStatusComment({ pod: 'web', sessionId: 'web-00000000', run: 1, command: 'start', now: 0, phase: 'finished', exitCode: 0, ...v } as StatusView, '', (t) => t);
      for (const rendered of [render({ finalAnswer: answer || 'x', error }), render({ phase: 'running', activity })]) {
        // Inline code (cldpd's own hints) neither links nor renders HTML; the entity is the zero-width break GitHub shows.
        const body = rendered.replace(/`[^`\n]*`/g, '').replaceAll('&#8203;', '\u200b');
        expect(body).not.toMatch(/(^|[^\w&])@[A-Za-z0-9]/m); // a mention (an e-mail's @ follows a letter)
        expect(body).not.toMatch(/#\d|\bGH-\d/i); // an issue reference
        expect(body).not.toContain('![');
        expect(body.replace(/<\/?(details|summary)[^>]*>/g, '')).not.toMatch(/<[A-Za-z/!]/); // only the comment's own tags
      }
    }), { numRuns: 1000 });
  });

  it('unicode: for any Unicode text, astral characters included, the comment is well-formed and under 65,536 characters', () => {
    fc.assert(fc.property(unicodeView, (v) => {
      const full = { sessionId: 'web-00000000', run: 1, command: 'start', now: 0, exitCode: 0, ...v } as StatusView;
      const body = renderStatusComment(full, statusMarker({ issueKey: 'a-b-1', seq: 1 }), createRedactor([]));
      expect(isWellFormed(body)).toBe(true);
      expect(body.length).toBeLessThan(65_536);
    }), { numRuns: 500 });
  });
});
