import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { chooseLogFormat, createLogger, type LogDestination } from '../../src/main/logger.js';

/** A destination that keeps what is written, a terminal or not. */
function capture(isTTY: boolean): { stream: LogDestination; lines: () => string[] } {
  const chunks: string[] = [];
  const stream = Object.assign(new Writable({ write(chunk: Buffer, _enc, done) { chunks.push(chunk.toString()); done(); } }), { isTTY });
  return { stream, lines: () => chunks.join('').split('\n').filter((l) => l !== '') };
}

const isJson = (line: string) => {
  try {
    return typeof JSON.parse(line) === 'object';
  } catch {
    return false;
  }
};
const plain = (line: string) => line.replace(/\u001b\[[0-9;]*m/g, '');

describe('the log format', () => {
  it('is readable lines on a terminal and JSON elsewhere, unless one is asked for', () => {
    expect(chooseLogFormat(undefined, { isTTY: true })).toBe('pretty');
    expect(chooseLogFormat(undefined, {})).toBe('json');
    expect(chooseLogFormat('json', { isTTY: true })).toBe('json');
    expect(chooseLogFormat('pretty', { isTTY: false })).toBe('pretty');
  });

  it('a terminal gets readable lines, written at once, that are not JSON', () => {
    const out = capture(true);
    const logger = createLogger({ level: 'info', destination: out.stream });
    logger.info({ port: 3000 }, 'listening for webhooks');
    logger.debug('not at info');
    // Synchronous: the line is there before anything else runs (exit does not lose it).
    const lines = out.lines().map(plain);
    expect(lines.length).toBeGreaterThan(0);
    expect(lines.some(isJson)).toBe(false);
    expect(lines[0]).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(cldpd\): listening for webhooks$/);
    expect(lines.join('\n')).toMatch(/port: 3000/);
    expect(lines.join('\n')).not.toContain('not at info');
  });

  it('a pipe, a file or CI gets one JSON object a line', () => {
    const out = capture(false);
    const logger = createLogger({ level: 'info', destination: out.stream });
    logger.info({ port: 3000 }, 'listening for webhooks');
    logger.warn('second');
    const lines = out.lines();
    expect(lines).toHaveLength(2);
    expect(lines.every(isJson)).toBe(true);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ level: 30, name: 'cldpd', port: 3000, msg: 'listening for webhooks' });
  });

  it('CLDPD_LOG_FORMAT overrides: JSON on a terminal, pretty (without colours) into a pipe', () => {
    const tty = capture(true);
    createLogger({ level: 'info', format: loadConfig({ HOME: '/h', CLDPD_LOG_FORMAT: 'json' }).logFormat, destination: tty.stream }).info('x');
    expect(tty.lines().every(isJson)).toBe(true);
    const pipe = capture(false);
    createLogger({ level: 'info', format: 'pretty', destination: pipe.stream }).info('y');
    expect(pipe.lines()[0]).toMatch(/^\[[\d:.]+\] INFO \(cldpd\): y$/); // no escape codes
  });
});
