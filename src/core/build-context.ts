import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile, readdir, readlink } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';

const require = createRequire(import.meta.url);

// Both ship without types; these are the parts used. Loaded when needed: a start on an
// unchanged context packs nothing, and most pods have no .dockerignore.
type TarFs = { pack(dir: string, options: { entries: string[]; dereference?: boolean }): Readable };
type DockerIgnore = (options: { ignorecase: boolean }) => { add(rules: string): { createFilter(): (path: string) => boolean } };

/** Files above this size are hashed as a stream instead of read whole. */
const READ_WHOLE_BYTES = 8 * 1024 * 1024;

/**
 * The files of a build context, relative to `dir` and sorted, honouring its .dockerignore
 * the way Docker does: the Dockerfile and .dockerignore are always sent.
 */
export async function contextFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  let files = entries
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
  const rules = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => undefined);
  if (rules !== undefined) {
    const dockerignore = require('@balena/dockerignore') as DockerIgnore;
    const keep = dockerignore({ ignorecase: false }).add(rules).createFilter();
    files = files.filter((f) => keep(f) || f === 'Dockerfile' || f === '.dockerignore');
  }
  return files.sort();
}

/**
 * The build context as an uncompressed tar stream. Uncompressed on purpose: the engine is
 * local, and gzipping a context with binaries in it costs more than sending it.
 */
export async function packContext(dir: string, files?: readonly string[], options: { readonly dereference?: boolean } = {}): Promise<Readable> {
  const tar = require('tar-fs') as TarFs;
  return tar.pack(dir, { entries: [...(files ?? await contextFiles(dir))], dereference: options.dereference === true });
}

/**
 * A digest of everything a build reads from the client: each file's path, type, mode and
 * content (a link's target), plus `inputs` (build args, labels, the base images' ids).
 * Two builds with the same digest produce the same image from Docker's cache.
 */
export async function contextDigest(dir: string, files: readonly string[], inputs: unknown): Promise<string> {
  const hash = createHash('sha256').update(JSON.stringify(inputs)).update('\0');
  for (const file of files) {
    const path = join(dir, file);
    const stat = await lstat(path);
    hash.update(`${file}\0${stat.mode}\0`);
    if (stat.isSymbolicLink()) hash.update(await readlink(path));
    else if (stat.size <= READ_WHOLE_BYTES) hash.update(await readFile(path));
    else await pipeline(createReadStream(path), async (chunks: AsyncIterable<Buffer>) => { for await (const c of chunks) hash.update(c); });
    hash.update('\0');
  }
  return `sha256:${hash.digest('hex')}`;
}

/**
 * The images a Dockerfile builds on: each `FROM` and `COPY --from` / `RUN --mount=from=`
 * that is not an earlier stage or `scratch`. Undefined when that cannot be told without
 * building (an image named by an ARG, a changed escape character) or when the build reads
 * something outside the context (`ADD` of a URL or a git repository): such builds always run.
 */
export function baseImages(dockerfile: string): string[] | undefined {
  if (/^#\s*escape\s*=/im.test(dockerfile)) return undefined;
  const instructions = dockerfile.replace(/\\[ \t]*\r?\n/g, ' ').split(/\r?\n/).map((l) => l.trim());
  const stages = new Set<string>();
  const bases = new Set<string>();
  const use = (image: string): boolean => {
    const name = image.toLowerCase();
    if (image.includes('$')) return false;
    if (name !== 'scratch' && !stages.has(name) && !/^\d+$/.test(name)) bases.add(image);
    return true;
  };
  for (const line of instructions) {
    const [keyword = '', ...words] = line.split(/\s+/);
    const instruction = keyword.toUpperCase();
    if (instruction === 'FROM') {
      const [image, as, stage] = words.filter((w) => !w.startsWith('--'));
      if (!image || !use(image)) return undefined;
      if (as?.toLowerCase() === 'as' && stage) stages.add(stage.toLowerCase());
    } else if (instruction === 'ADD' && words.some((w) => /^(?:[a-z]+:\/\/|git@)/i.test(w))) {
      return undefined;
    } else if (instruction === 'COPY' || instruction === 'RUN' || instruction === 'ADD') {
      for (const w of words) {
        const from = /^--(?:from=|mount=(?:.*,)?from=)([^,\s]+)/.exec(w);
        if (from?.[1] && !use(from[1])) return undefined;
      }
    }
  }
  return [...bases];
}
