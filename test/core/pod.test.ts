import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { isCldpdError, listPods, loadPod, type PodSource } from '../../src/core/index.js';
import { tempDir, writePod } from '../fakes/pods.js';

let source: PodSource;

beforeEach(async () => {
  const root = await tempDir();
  source = { podsDir: join(root, 'pods'), homeDir: join(root, 'home') };
  await mkdir(source.podsDir);
  await mkdir(join(source.homeDir, 'src'), { recursive: true });
});

async function failure(name: string): Promise<{ code: string; message: string }> {
  try {
    await loadPod(source, name);
  } catch (err) {
    if (isCldpdError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('expected loadPod to fail');
}

describe('loadPod', () => {
  it('loads a pod with pod.json and template.md, expanding ~ in mounts', async () => {
    const dir = await writePod(source.podsDir, 'web', {
      'pod.json': { mounts: [{ source: '~/src', target: '/src' }] },
      'template.md': 'You are careful.\n',
    });
    const pod = await loadPod(source, 'web');
    expect(pod.dir).toBe(dir);
    expect(pod.dockerfile).toBe(join(dir, 'Dockerfile'));
    expect(pod.template).toBe('You are careful.\n');
    expect(pod.config.mounts[0]?.source).toBe(join(source.homeDir, 'src'));
  });

  it('treats a missing pod.json as all defaults and an empty template as none', async () => {
    await writePod(source.podsDir, 'bare', { 'template.md': '  \n' });
    const pod = await loadPod(source, 'bare');
    expect(pod.config.image).toBe('cldpd-bare:latest');
    expect(pod.template).toBeUndefined();
  });

  it('refuses a bad name before touching the disk', async () => {
    // A pods directory that does not exist would give PodNotFound if the disk were read.
    source = { ...source, podsDir: '/nonexistent/pods' };
    expect((await failure('../../etc')).code).toBe('InvalidPodName');
  });

  it('says where to create an unknown pod', async () => {
    const f = await failure('ghost');
    expect(f.code).toBe('PodNotFound');
    expect(f.message).toContain(join(source.podsDir, 'ghost'));
    expect(f.message).toContain('cldpd pods');
    expect(f.message).not.toContain('Did you mean');
  });

  it('suggests the pod a typo was meant to name', async () => {
    await mkdir(join(source.podsDir, 'hello'));
    expect((await failure('helo')).message).toContain('Did you mean "hello"?');
  });

  it('refuses a pod without a Dockerfile', async () => {
    await mkdir(join(source.podsDir, 'empty'));
    const f = await failure('empty');
    expect(f.code).toBe('InvalidPod');
    expect(f.message).toContain('has no Dockerfile');
  });

  it('refuses a Dockerfile that is a directory', async () => {
    await mkdir(join(source.podsDir, 'odd', 'Dockerfile'), { recursive: true });
    expect((await failure('odd')).code).toBe('InvalidPod');
  });

  it('names the file when pod.json is not JSON', async () => {
    await writePod(source.podsDir, 'broken', { 'pod.json': '{ "image": ' });
    const f = await failure('broken');
    expect(f.code).toBe('InvalidPod');
    expect(f.message).toContain(join(source.podsDir, 'broken', 'pod.json'));
    expect(f.message).toContain('is not valid JSON');
  });

  it('names the pod, the file and the field for a schema error', async () => {
    await writePod(source.podsDir, 'typo', { 'pod.json': { timeoutSeconds: -5 } });
    const f = await failure('typo');
    expect(f.code).toBe('InvalidPod');
    expect(f.message).toContain('Pod "typo"');
    expect(f.message).toContain('pod.json');
    expect(f.message).toContain('"timeoutSeconds"');
  });

  it('refuses a relative mount source', async () => {
    await writePod(source.podsDir, 'rel', { 'pod.json': { mounts: [{ source: 'src', target: '/src' }] } });
    const f = await failure('rel');
    expect(f.message).toContain('"mounts[0].source" is "src"; use an absolute host path');
  });

  it('refuses a mount source that does not exist', async () => {
    await writePod(source.podsDir, 'missing', { 'pod.json': { mounts: [{ source: '~/nope', target: '/x' }] } });
    const f = await failure('missing');
    expect(f.code).toBe('InvalidPod');
    expect(f.message).toContain(`${join(source.homeDir, 'nope')}, which does not exist`);
  });
});

describe('listPods', () => {
  it('lists valid and invalid pods sorted by name, ignoring plain files', async () => {
    await writePod(source.podsDir, 'zeta');
    await writePod(source.podsDir, 'alpha', { 'pod.json': { cpus: 'many' } });
    await mkdir(join(source.podsDir, 'Bad Name'));
    await writeFile(join(source.podsDir, 'README.md'), 'not a pod');
    const listing = await listPods(source);
    expect(listing.map((p) => p.name)).toEqual(['Bad Name', 'alpha', 'zeta']);
    expect(listing[0]?.error?.code).toBe('InvalidPodName');
    expect(listing[1]?.error?.message).toContain('"cpus"');
    expect(listing[2]?.pod?.config.image).toBe('cldpd-zeta:latest');
  });

  it('says how to fix a missing pods directory', async () => {
    await expect(listPods({ ...source, podsDir: join(source.podsDir, 'none') })).rejects.toThrow(/--pods-dir/);
  });
});

describe('packContext', () => {
  it('packs the pod directory, leaving out what .dockerignore excludes but never the Dockerfile', async () => {
    const { packContext } = await import('../../src/core/build-context.js');
    const { createRequire } = await import('node:module');
    const tarStream = createRequire(import.meta.url)('tar-stream') as { extract(): NodeJS.WritableStream & { on(e: 'entry', f: (h: { name: string }, s: NodeJS.ReadableStream, next: () => void) => void): void } };
    const dir = await writePod(source.podsDir, 'ctx', { 'keep.txt': 'k', 'secret.env': 's', '.dockerignore': '*.env\nDockerfile\n' });
    await mkdir(join(dir, 'sub'));
    await writeFile(join(dir, 'sub', 'a.txt'), 'a');
    const names: string[] = [];
    const extract = tarStream.extract();
    extract.on('entry', (header, stream, next) => {
      names.push(header.name);
      stream.on('end', next);
      stream.resume();
    });
    const done = new Promise((resolve) => extract.on('finish', resolve));
    (await packContext(dir)).pipe(extract);
    await done;
    expect(names.sort()).toEqual(['.dockerignore', 'Dockerfile', 'keep.txt', 'sub/a.txt']);
  });
});
