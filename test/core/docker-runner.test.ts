import Docker from 'dockerode';
import { describe, expect, it } from 'vitest';
import { DockerRunner } from '../../src/core/index.js';
import { afterGiven, dockerError } from '../../src/core/docker-runner.js';

// An engine that is not there: every call must fail fast with DockerUnavailable and say what to do.
const absent = new DockerRunner(new Docker({ socketPath: '/nonexistent/docker.sock' }));

describe('DockerRunner without an engine', () => {
  it('preflight says Docker is unavailable and how to fix it', async () => {
    await expect(absent.preflight()).rejects.toMatchObject({ code: 'DockerUnavailable', message: expect.stringContaining('DOCKER_HOST') });
  });

  it('build fails with DockerUnavailable, not a hang', async () => {
    const build = absent.build({ tag: 't', contextDir: '/tmp', buildArgs: {}, labels: {} });
    await expect(build.next()).rejects.toMatchObject({ code: 'DockerUnavailable' });
  });

  it.each([
    ['list', () => absent.list({ a: undefined })],
    ['stop', () => absent.stop('x', 1)],
    ['inspectImage', () => absent.inspectImage('x')],
  ])('%s fails with DockerUnavailable', async (_, call) => {
    await expect(call()).rejects.toMatchObject({ code: 'DockerUnavailable' });
  });
});

describe('dockerError', () => {
  it.each([
    [{ code: 'ECONNREFUSED' }, 'DockerUnavailable', 'does not answer (ECONNREFUSED)'],
    [{ statusCode: 409, json: { message: 'name in use ' } }, 'ContainerFailed', 'Docker refused to create x: name in use'],
    [new Error('weird'), 'ContainerFailed', 'Docker refused to create x: weird'],
  ])('%j → %s', (err, code, message) => {
    const e = dockerError(err, 'create x');
    expect(e.code).toBe(code);
    expect(e.message).toContain(message);
  });
});

describe('afterGiven', () => {
  it.each([
    ['nothing given: all of it', { lines: 0, tail: 0 }, ['a\nb\n'], 'a\nb\n'],
    ['two lines given, over pieces', { lines: 2, tail: 0 }, ['a\nb', '\nc\n'], 'c\n'],
    ['a line and part of the next given: the rest of that line', { lines: 1, tail: 2 }, ['a\nbc', 'd\ne\n'], 'd\ne\n'],
    ['the unfinished part is skipped to its line\'s end at most: a line kept shorter is still ended', { lines: 0, tail: 5 }, ['ab\nc\n'], '\nc\n'],
    ['everything given: nothing', { lines: 2, tail: 0 }, ['a\n', 'b\n'], ''],
  ])('attach end: %s', (_, given, pieces, rest) => {
    const left = { ...given };
    expect(pieces.map((p) => afterGiven(left, Buffer.from(p)).toString()).join('')).toBe(rest);
  });
});
