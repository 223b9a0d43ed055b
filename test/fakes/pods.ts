import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A fresh temporary directory, under the test run's root (see test/global-setup.ts) when there is one. */
export function tempDir(prefix = 'cldpd-test-'): Promise<string> {
  return mkdtemp(join(process.env.CLDPD_TEST_TMP ?? tmpdir(), prefix));
}

/** Writes a pod directory: a Dockerfile plus the given files (objects are written as JSON). */
export async function writePod(podsDir: string, name: string, files: Record<string, string | object> = {}): Promise<string> {
  const dir = join(podsDir, name);
  await mkdir(dir, { recursive: true });
  const all = { Dockerfile: 'FROM scratch\n', ...files };
  for (const [file, content] of Object.entries(all)) {
    await writeFile(join(dir, file), typeof content === 'string' ? content : JSON.stringify(content, null, 2));
  }
  return dir;
}
