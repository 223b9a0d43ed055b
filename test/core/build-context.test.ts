import { chmod, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { baseImages, contextDigest, contextFiles } from '../../src/core/build-context.js';
import { tempDir } from '../fakes/pods.js';

describe('baseImages', () => {
  it.each([
    ['a plain FROM', 'FROM node:20\nRUN true', ['node:20']],
    ['scratch is no image', 'FROM scratch\nCOPY a /a', []],
    ['a stage is not an image', 'FROM golang:1 AS build\nRUN make\nFROM debian:12\nCOPY --from=build /x /x', ['golang:1', 'debian:12']],
    ['a FROM naming an earlier stage', 'FROM alpine AS base\nFROM base\nRUN true', ['alpine']],
    ['stage names are case-insensitive', 'from alpine as Base\nfrom BASE', ['alpine']],
    ['a --platform flag', 'FROM --platform=linux/amd64 alpine:3', ['alpine:3']],
    ['COPY --from an outside image', 'FROM scratch\nCOPY --from=busybox:1 /bin/busybox /bin/', ['busybox:1']],
    ['COPY --from a stage index', 'FROM alpine\nFROM scratch\nCOPY --from=0 /x /x', ['alpine']],
    ['RUN --mount from an outside image', 'FROM alpine\nRUN --mount=type=bind,from=tools:1,target=/t true', ['alpine', 'tools:1']],
    ['a continued FROM line', 'FROM \\\n  alpine:3 \\\n  AS x', ['alpine:3']],
    ['the same image twice', 'FROM alpine\nFROM alpine', ['alpine']],
  ])('%s', (_, dockerfile, expected) => {
    expect(baseImages(dockerfile)).toEqual(expected);
  });

  it.each([
    ['an image named by an ARG', 'ARG BASE=alpine\nFROM $BASE'],
    ['a COPY --from named by an ARG', 'FROM alpine\nCOPY --from=${IMG} /a /a'],
    ['ADD of a URL', 'FROM alpine\nADD https://example.com/x.tgz /x'],
    ['ADD of a git repository', 'FROM alpine\nADD git@github.com:o/r.git /r'],
    ['a changed escape character', '# escape=`\nFROM alpine'],
    ['no image at all', 'FROM'],
  ])('cannot tell for %s', (_, dockerfile) => {
    expect(baseImages(dockerfile)).toBeUndefined();
  });
});

describe('contextDigest', () => {
  let dir: string;
  const digest = async (inputs: unknown = { args: {} }): Promise<string> => contextDigest(dir, await contextFiles(dir), inputs);

  beforeEach(async () => {
    dir = await tempDir('cldpd-ctx-');
    await writeFile(join(dir, 'Dockerfile'), 'FROM scratch\nCOPY . /\n');
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a.sh'), 'echo a\n');
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('is the same for the same context and inputs', async () => {
    expect(await digest()).toBe(await digest());
  });

  it('changes with a file\'s content, its mode, a new file, a link target and the inputs', async () => {
    const seen = new Set([await digest()]);
    await writeFile(join(dir, 'sub', 'a.sh'), 'echo b\n');
    seen.add(await digest());
    await chmod(join(dir, 'sub', 'a.sh'), 0o755);
    seen.add(await digest());
    await writeFile(join(dir, 'b.txt'), '');
    seen.add(await digest());
    await symlink('sub/a.sh', join(dir, 'link'));
    seen.add(await digest());
    await rm(join(dir, 'link'));
    await symlink('b.txt', join(dir, 'link'));
    seen.add(await digest());
    seen.add(await digest({ args: { A: '1' } }));
    expect(seen.size).toBe(7);
  });

  it('does not change with a file .dockerignore leaves out', async () => {
    await writeFile(join(dir, '.dockerignore'), '*.log\n');
    const before = await digest();
    await writeFile(join(dir, 'debug.log'), 'noise');
    expect(await digest()).toBe(before);
  });

  it('tells a file moved to another name from the original', async () => {
    const before = await digest();
    await rm(join(dir, 'sub', 'a.sh'));
    await writeFile(join(dir, 'sub', 'b.sh'), 'echo a\n');
    expect(await digest()).not.toBe(before);
  });
});
