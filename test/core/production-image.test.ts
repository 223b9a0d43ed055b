import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';

/** End of life of each Node.js major (https://nodejs.org/en/about/previous-releases). */
const NODE_END_OF_LIFE: Readonly<Record<number, string>> = {
  20: '2026-04-30',
  22: '2027-04-30',
  24: '2028-04-30',
};

/**
 * The Node major of every `FROM node:<major>…` line and `ARG <name>=node:<major>…` default
 * (the base image a `FROM ${<name>}` takes) of a Dockerfile, and `image: node:<major>…` of a
 * compose file.
 */
function nodeMajors(text: string): number[] {
  const image = String.raw`(?:docker\.io\/)?(?:library\/)?node:(\d+)`;
  const from = new RegExp(String.raw`^\s*FROM\s+(?:--platform=\S+\s+)?${image}`, 'gim');
  const argDefault = new RegExp(String.raw`^\s*ARG\s+\w+=["']?${image}`, 'gim');
  const compose = new RegExp(String.raw`^\s*image:\s*["']?${image}`, 'gim');
  return [...text.matchAll(from), ...text.matchAll(argDefault), ...text.matchAll(compose)].map((m) => Number(m[1]));
}

const read = (file: string): Promise<string> => readFile(new URL(`../../${file}`, import.meta.url), 'utf8');

describe('the production image', () => {
  it('hardening: runs a Node.js LTS that has not reached its end of life', async () => {
    const dockerfile = nodeMajors(await read('Dockerfile'));
    expect(dockerfile.length, 'the Dockerfile has no FROM node:<major> line nor ARG default node:<major>').toBeGreaterThan(0);
    const today = new Date().toISOString().slice(0, 10);
    for (const major of [...dockerfile, ...nodeMajors(await read('docker-compose.yml'))]) {
      const eol = NODE_END_OF_LIFE[major];
      expect(eol, `Node ${major} is not in this test's table of end-of-life dates: add it (https://nodejs.org/en/about/previous-releases)`).toBeDefined();
      expect(today < (eol as string), `Node ${major} reached its end of life on ${eol}: move the image to a supported LTS`).toBe(true);
    }
  });

  it('reads the Node major of FROM and image lines in their usual forms', () => {
    const text = 'FROM node:24-bookworm-slim AS build\nRUN x\nfrom --platform=linux/amd64 docker.io/library/node:22\nFROM debian:12\n  image: "node:20-alpine"\n  image: redis:7\n';
    expect(nodeMajors(text)).toEqual([24, 22, 20]);
  });

  it('reads the Node major of the base image an ARG gives FROM by default', async () => {
    const text = 'ARG BASE_IMAGE=node:22-bookworm-slim\nARG OTHER=debian:12\nFROM ${BASE_IMAGE} AS build\nFROM ${BASE_IMAGE}\n';
    expect(nodeMajors(text)).toEqual([22]);
    // The Dockerfile's own base is an ARG: the end-of-life check above reads its default.
    expect(await read('Dockerfile')).toMatch(/^ARG BASE_IMAGE=node:\d+-bookworm-slim$/m);
    expect(await read('Dockerfile')).toMatch(/^FROM \$\{BASE_IMAGE\}$/m);
  });

  it('hardening: the build context is an allow-list, so a .env or a private key beside the Dockerfile never enters it', async () => {
    const ignore = (await read('.dockerignore')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    expect(ignore[0]).toBe('*');
    const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1));
    expect(allowed.some((l) => /env|pem|key/i.test(l))).toBe(false);
    // Every file the Dockerfile copies from the context is let in.
    const copied = [...(await read('Dockerfile')).matchAll(/^COPY (?!--from)(.+) \S+$/gm)].flatMap((m) => (m[1] as string).split(/\s+/));
    for (const file of copied) expect(allowed.some((a) => a.replace(/\/$/, '') === file.replace(/\/$/, '')), `${file} is copied but .dockerignore leaves it out`).toBe(true);
  });
});
