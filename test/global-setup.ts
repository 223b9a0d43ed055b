import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * One temporary root for the whole test run, removed when it ends: the tests' pods, homes
 * and session logs (the 1 GB output test writes ~2 GB) go under it, so no run leaves its
 * files behind. The test processes inherit CLDPD_TEST_TMP; tempDir() reads it.
 */
export default function setup(): () => void {
  const root = mkdtempSync(join(tmpdir(), 'cldpd-tests-'));
  process.env.CLDPD_TEST_TMP = root;
  return () => rmSync(root, { recursive: true, force: true });
}
