import { existsSync } from 'node:fs';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, realpath, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type Docker from 'dockerode';
import { contextFiles, packContext } from './build-context.js';
import { CldpdError, messageOf } from './errors.js';
import { LABELS } from './labels.js';
import { LineSplitter } from './line-splitter.js';

const run = promisify(execFile);

/** The repository of the gateway's images; the tag says what they were made from (see gatewayImageTag). */
export const GATEWAY_IMAGE_REPOSITORY = 'cldpd-gateway';

/** Where the gateway's program sits in its image. */
const PROGRAM_IN_IMAGE = '/gateway/gateway.mjs';

/**
 * The way the image is put together; part of its tag, so a change here gives a new image
 * rather than reusing one made the old way.
 */
const RECIPE = 1;

/** How long `ldd` may take. */
const LDD_TIMEOUT_MS = 15_000;

/**
 * The program the gateway runs, as the build leaves it: dist/gateway/gateway.mjs beside
 * dist/core (or dist/main, bundled); from the sources (src/core, as tests load them), the
 * build's copy in dist.
 */
export function defaultGatewayProgram(): string {
  const beside = fileURLToPath(new URL('../gateway/gateway.mjs', import.meta.url));
  if (existsSync(beside)) return beside;
  return fileURLToPath(new URL('../../dist/gateway/gateway.mjs', import.meta.url));
}

/** One file of the gateway's image: where it goes in the image, and the host file whose bytes it gets. */
export interface ImageFile {
  readonly path: string;
  readonly source: string;
}

/**
 * Pure: the shared libraries an `ldd` listing names, as absolute paths, in its order; the
 * dynamic loader included (the line with no `=>`), the kernel's vDSO (no file) left out.
 * Throws `ContainerFailed` for a library ldd could not find.
 */
export function librariesOf(lddOutput: string): string[] {
  const paths: string[] = [];
  for (const raw of lddOutput.split('\n')) {
    const line = raw.trim();
    if (!line || /^(?:statically linked|not a dynamic executable)$/.test(line)) continue;
    const missing = /^(\S+)\s+=>\s+not found/.exec(line);
    if (missing) throw new CldpdError('ContainerFailed', `The node binary needs ${missing[1]}, which ldd cannot find on this host: the gateway's image cannot be made. Install the library (or run the worker with a node that has it).`);
    const linked = /=>\s+(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line) ?? /^(\/\S+)\s+\(0x[0-9a-f]+\)$/.exec(line);
    if (linked?.[1] && !paths.includes(linked[1])) paths.push(linked[1]);
  }
  return paths;
}

/** Whether the file starts as an ELF binary does. */
async function isElf(path: string): Promise<boolean> {
  const file = await open(path, 'r');
  try {
    const head = Buffer.alloc(4);
    await file.read(head, 0, 4, 0);
    return head.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    await file.close();
  }
}

/**
 * The files a node binary needs to run in an empty image: itself and every shared library
 * `ldd` lists for it (at the paths ldd names, with the bytes of the files they resolve to),
 * the dynamic loader included; a statically linked node needs only itself. Throws
 * `ContainerFailed` when `node` is not an ELF binary or `ldd` is missing or fails.
 */
export async function nodeFiles(node: string): Promise<ImageFile[]> {
  const binary = await realpath(node);
  if (!(await isElf(binary))) {
    throw new CldpdError('ContainerFailed', `${binary} (the node running cldpd) is not an ELF binary, so cldpd cannot put it into the gateway's image. Run the worker with Node's own binary (not a wrapper script).`);
  }
  let listing: string;
  try {
    listing = (await run('ldd', [binary], { timeout: LDD_TIMEOUT_MS, maxBuffer: 1024 * 1024, env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' } })).stdout;
  } catch (err) {
    const e = err as { code?: unknown; stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new CldpdError('ContainerFailed', 'ldd is not installed on this host: cldpd needs it to find the libraries node uses, to make the gateway\'s image. Install it (Debian and Ubuntu: libc-bin; Alpine: musl-utils).', { cause: err });
    }
    // glibc's ldd exits 1 for a static binary, saying so.
    const said = `${e.stdout ?? ''}${e.stderr ?? ''}`;
    if (/not a dynamic executable|statically linked/.test(said)) return [{ path: binary, source: binary }];
    throw new CldpdError('ContainerFailed', `ldd ${binary} failed (${said.trim() || messageOf(err)}): cldpd cannot tell which libraries node needs for the gateway's image.`, { cause: err });
  }
  const files: ImageFile[] = [{ path: binary, source: binary }];
  for (const library of librariesOf(listing)) files.push({ path: library, source: await realpath(library) });
  return files;
}

/**
 * Pure: the Dockerfile of the gateway's image: the files under `rootfs/` at their places, the
 * program, an unprivileged user, and node running the program.
 */
export function gatewayDockerfile(node: string, libraryDirs: readonly string[]): string {
  return [
    'FROM scratch',
    'COPY rootfs/ /',
    // The loader looks where ldd found each library, whatever the host's ld.so.cache said.
    ...(libraryDirs.length > 0 ? [`ENV LD_LIBRARY_PATH=${libraryDirs.join(':')}`] : []),
    'USER 65534:65534',
    'WORKDIR /gateway',
    `ENTRYPOINT ${JSON.stringify([node, PROGRAM_IN_IMAGE])}`,
    '',
  ].join('\n');
}

/**
 * The tag of the gateway's image for these files (and the whole digest, its label): 12 hex digits of a SHA-256 over what makes
 * the image (node's version, each file's path and size, the program's bytes, the recipe), so
 * a worker with another node or another gateway gets another image, and one with the same
 * reuses it.
 */
export async function gatewayImageTag(files: readonly ImageFile[], program: Buffer, nodeVersion = process.version): Promise<{ tag: string; digest: string }> {
  const hash = createHash('sha256').update(JSON.stringify({ recipe: RECIPE, node: nodeVersion })).update('\0');
  for (const file of files) hash.update(`${file.path}\0${(await stat(file.source)).size}\0`);
  const digest = hash.update(program).digest('hex');
  return { tag: `${GATEWAY_IMAGE_REPOSITORY}:${digest.slice(0, 12)}`, digest: `sha256:${digest}` };
}

/**
 * glibc before 2.34 loads its name-service modules at run time, which ldd does not list:
 * the ones beside libc that the gateway's name lookups use, when there are any.
 */
async function nameServiceFiles(libraries: readonly ImageFile[]): Promise<ImageFile[]> {
  const libc = libraries.find((f) => /\/libc\.so\.\d+$/.test(f.path));
  if (!libc) return [];
  const found: ImageFile[] = [];
  for (const name of ['libnss_files.so.2', 'libnss_dns.so.2', 'libresolv.so.2']) {
    const path = join(dirname(libc.path), name);
    if (libraries.some((f) => f.path === path)) continue;
    const source = await realpath(path).catch(() => undefined);
    if (source) found.push({ path, source });
  }
  return found;
}

/** What building the gateway's image needs. */
export interface GatewayImageOptions {
  /** The node binary to put in it; the running one when absent. */
  readonly node?: string;
  /** The gateway's program; {@link defaultGatewayProgram} when absent. */
  readonly program?: string;
}

/**
 * The gateway's image on `docker`: its tag, built first when the engine does not have it
 * (FROM scratch: the worker's node, its libraries, the program; no registry is asked for
 * anything); a build removes the unused images of other tags. Building the same tag from two processes at once is harmless: both make the
 * same image. Throws `ContainerFailed` saying what is missing or what the build said.
 */
export async function ensureGatewayImage(docker: Docker, options: GatewayImageOptions = {}): Promise<string> {
  const programPath = options.program ?? defaultGatewayProgram();
  const program = await readFile(programPath).catch((err: unknown) => {
    throw new CldpdError('ContainerFailed', `The gateway's program ${programPath} cannot be read (${messageOf(err)}): build cldpd ("npm run build") so that dist/gateway/gateway.mjs exists.`, { cause: err });
  });
  const nodeBinary = await nodeFiles(options.node ?? process.execPath);
  const files = [...nodeBinary, ...await nameServiceFiles(nodeBinary)];
  const { tag, digest } = await gatewayImageTag(files, program);
  try {
    await docker.getImage(tag).inspect();
    return tag;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== 404) throw new CldpdError('ContainerFailed', `Docker did not say whether it has ${tag}: ${messageOf(err)}`, { cause: err });
  }
  // The image is this worker's own node: an engine elsewhere (DOCKER_HOST) of another CPU could not run it.
  const arch = await docker.version().then((v) => v.Arch, () => undefined);
  const own = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x', riscv64: 'riscv64', ia32: '386' } as Record<string, string>)[process.arch] ?? process.arch;
  if (arch && arch !== own) {
    throw new CldpdError('ContainerFailed', `The Docker engine runs on ${arch} and this worker on ${own}: the egress gateway's image is made from this worker's node, which that engine cannot run. Run the worker on a machine of the engine's CPU (or the engine's own), or give the pod "egress": "open".`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'cldpd-gateway-'));
  try {
    // Links to the host's files, followed when packed: nothing is copied twice.
    for (const file of files) {
      const at = join(dir, 'rootfs', file.path);
      await mkdir(dirname(at), { recursive: true });
      await symlink(file.source, at);
    }
    await mkdir(join(dir, 'rootfs', dirname(PROGRAM_IN_IMAGE)), { recursive: true });
    await writeFile(join(dir, 'rootfs', PROGRAM_IN_IMAGE), program, { mode: 0o644 });
    // Names Docker writes into /etc/hosts (the pod's fixed hosts) before any DNS server;
    // glibc without this file asks DNS first and may never read /etc/hosts.
    await mkdir(join(dir, 'rootfs', 'etc'), { recursive: true });
    await writeFile(join(dir, 'rootfs', 'etc', 'nsswitch.conf'), 'hosts: files dns\n', { mode: 0o644 });
    const libraryDirs = [...new Set(files.slice(1).map((f) => dirname(f.path)))];
    await writeFile(join(dir, 'Dockerfile'), gatewayDockerfile(nodeBinary[0]?.path ?? '/node', libraryDirs));
    await buildImage(docker, tag, digest, await packContext(dir, await contextFiles(dir), { dereference: true }));
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  await removeOtherImages(docker, tag);
  return tag;
}

/**
 * Removes the gateway's images of other tags (another node's or program's, from before an
 * upgrade) that no container uses: Docker refuses to remove one that a container, running or
 * not, was made from, and that refusal is left alone. A worker whose image another removed
 * builds it again when it next needs it (see DockerGateways).
 */
async function removeOtherImages(docker: Docker, keep: string): Promise<void> {
  const images = await docker.listImages({ filters: { reference: [GATEWAY_IMAGE_REPOSITORY] } }).catch(() => []);
  for (const tag of images.flatMap((image) => image.RepoTags ?? [])) {
    if (tag !== keep && tag.startsWith(`${GATEWAY_IMAGE_REPOSITORY}:`)) await docker.getImage(tag).remove().catch(() => undefined);
  }
}

/** Sends a build context to the engine and follows the build; throws `ContainerFailed` with what the build said when it fails. */
async function buildImage(docker: Docker, tag: string, digest: string, context: NodeJS.ReadableStream): Promise<void> {
  let failure: string | undefined;
  const said: string[] = [];
  try {
    const stream = await docker.buildImage(context, { t: tag, labels: { [LABELS.context]: digest }, rm: true, forcerm: true } as Docker.ImageBuildOptions);
    const records = new LineSplitter();
    const take = (record: string): void => {
      try {
        const message = JSON.parse(record) as { stream?: string; error?: string; errorDetail?: { message?: string } };
        if (message.error || message.errorDetail) failure = message.errorDetail?.message ?? message.error;
        if (message.stream?.trim()) said.push(message.stream.trim());
        if (said.length > 20) said.shift();
      } catch {
        // Not a record of the build's.
      }
    };
    for await (const piece of stream as AsyncIterable<Buffer>) for (const r of records.push(piece)) take(r.line);
    for (const r of records.end()) take(r.line);
  } catch (err) {
    throw new CldpdError('ContainerFailed', `Docker could not build the gateway's image ${tag}: ${messageOf(err)}`, { cause: err });
  }
  if (failure) throw new CldpdError('ContainerFailed', `The build of the gateway's image ${tag} failed: ${failure.trim()}${said.length > 0 ? ` (it said: ${said.join(' | ')})` : ''}`);
}
