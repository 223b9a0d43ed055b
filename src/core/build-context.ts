import { readFile, readdir } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join, relative } from 'node:path';
import type { Readable } from 'node:stream';

const require = createRequire(import.meta.url);

// Both ship without types; these are the parts used.
const tar = require('tar-fs') as { pack(dir: string, options: { entries: string[] }): Readable };
const dockerignore = require('@balena/dockerignore') as (options: { ignorecase: boolean }) => { add(rules: string): { createFilter(): (path: string) => boolean } };

/**
 * The build context of a directory as an uncompressed tar stream, honouring its
 * .dockerignore the way Docker does. Uncompressed on purpose: the engine is local, and
 * gzipping a context with binaries in it costs more than sending it.
 */
export async function packContext(dir: string): Promise<Readable> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  let files = entries
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath ?? (e as unknown as { path: string }).path, e.name)));
  const rules = await readFile(join(dir, '.dockerignore'), 'utf8').catch(() => undefined);
  if (rules !== undefined) {
    const keep = dockerignore({ ignorecase: false }).add(rules).createFilter();
    // Docker always sends the Dockerfile and .dockerignore, whatever the rules say.
    files = files.filter((f) => keep(f) || f === 'Dockerfile' || f === '.dockerignore');
  }
  return tar.pack(dir, { entries: files });
}
