import { readFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { CldpdError, isCldpdError, messageOf } from './errors.js';
import { assertPodName } from './pod-name.js';
import { resolvePodConfig, validatePodJson, type PodConfig } from './pod-config.js';
import { closest } from './text.js';

/** A pod found on disk, validated, with defaults applied. */
export interface Pod {
  readonly name: string;
  /** Absolute path of the pod directory (the build context). */
  readonly dir: string;
  readonly dockerfile: string;
  readonly config: PodConfig;
  /** Contents of template.md, prepended to start prompts; undefined when absent or empty. */
  readonly template: string | undefined;
}

/** Where pods live and how to expand `~` in their mounts. */
export interface PodSource {
  readonly podsDir: string;
  readonly homeDir: string;
}

async function exists(path: string): Promise<'file' | 'dir' | undefined> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : 'file';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/**
 * Loads the pod `name` from `source.podsDir`. The name is checked before any file access.
 * Throws `InvalidPodName`, `PodNotFound` (no directory), or `InvalidPod` (no Dockerfile,
 * pod.json that is not JSON or breaks the schema, a mount source that does not exist);
 * every message names the pod, the file, the field and the fix.
 */
export async function loadPod(source: PodSource, name: string): Promise<Pod> {
  assertPodName(name);
  const dir = resolve(source.podsDir, name);
  if ((await exists(dir)) !== 'dir') {
    const near = closest(name, await podNames(source.podsDir).catch(() => []));
    throw new CldpdError(
      'PodNotFound',
      `Pod "${name}" not found: there is no directory ${dir}.${near ? ` Did you mean "${near}"?` : ''} Create it with a Dockerfile, or list pods with "cldpd pods".`,
    );
  }
  const dockerfile = join(dir, 'Dockerfile');
  if ((await exists(dockerfile)) !== 'file') {
    throw new CldpdError('InvalidPod', `Pod "${name}" has no Dockerfile: add ${dockerfile}.`);
  }

  const podJsonPath = join(dir, 'pod.json');
  const text = await readOptional(podJsonPath);
  let raw: unknown = {};
  if (text !== undefined) {
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new CldpdError('InvalidPod', `Pod "${name}": ${podJsonPath} is not valid JSON (${messageOf(err)}). Fix the syntax.`, { cause: err });
    }
  }
  const checked = validatePodJson(raw);
  if (!checked.ok) {
    throw new CldpdError('InvalidPod', `Pod "${name}": ${podJsonPath}: ${checked.problems.join('; ')}.`);
  }
  const config = resolvePodConfig(name, checked.value, source.homeDir);
  for (const [i, m] of config.mounts.entries()) {
    if (!m.source.startsWith('/')) {
      throw new CldpdError('InvalidPod', `Pod "${name}": ${podJsonPath}: field "mounts[${i}].source" is "${m.source}"; use an absolute host path or one starting with "~/".`);
    }
    if (!(await exists(m.source))) {
      throw new CldpdError('InvalidPod', `Pod "${name}": ${podJsonPath}: field "mounts[${i}].source" is ${m.source}, which does not exist on this host. Create it or fix the path; a cldpd running in a container sees only what is mounted into it, while Docker mounts the host's path into the pod: give its container the directory at the same path (docker run -v ${m.source}:${m.source}, or a volumes line of the worker in docker-compose.yml).`);
    }
  }

  const template = await readOptional(join(dir, 'template.md'));
  return Object.freeze({ name, dir, dockerfile, config, template: template?.trim() ? template : undefined });
}

/** The names of the directories in `podsDir`, sorted. */
async function podNames(podsDir: string): Promise<string[]> {
  return (await readdir(podsDir, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name).sort();
}

/** One entry of {@link listPods}: a valid pod, or the error that makes it unusable. */
export type PodListing = { readonly name: string; readonly pod: Pod; readonly error?: undefined } | { readonly name: string; readonly pod?: undefined; readonly error: CldpdError };

/**
 * Lists every directory of the pods directory, sorted by name, each loaded and validated.
 * A broken pod is listed with its error rather than hidden. Throws `PodNotFound` when the
 * pods directory itself is missing.
 */
export async function listPods(source: PodSource): Promise<PodListing[]> {
  let names;
  try {
    names = await podNames(source.podsDir);
  } catch (err) {
    throw new CldpdError('PodNotFound', `The pods directory ${source.podsDir} cannot be read (${messageOf(err)}). Create it, or point --pods-dir / CLDPD_PODS_DIR at yours.`, { cause: err });
  }
  return Promise.all(
    names.map(async (name): Promise<PodListing> => {
      try {
        return { name, pod: await loadPod(source, name) };
      } catch (err) {
        if (isCldpdError(err)) return { name, error: err };
        return { name, error: new CldpdError('InvalidPod', `Pod "${name}" could not be read: ${messageOf(err)}`, { cause: err }) };
      }
    }),
  );
}
