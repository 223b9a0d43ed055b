import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeGemini, type Script } from '../fakes/fake-gemini.js';
import { TestWorld } from '../integration/harness.js';

/** The Gemini CLI version the suite runs (package.json config.geminiCliVersion; scripts/real-gemini.sh installs it). */
export const GEMINI_CLI_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { geminiCliVersion: string } }).config.geminiCliVersion;

/** Debian bookworm (debootstrap, no registry) with Node and that CLI as /usr/local/bin/gemini: what the suite's pods build FROM. */
export const GEMINI_BASE_IMAGE = `cldpd-test/gemini:${GEMINI_CLI_VERSION}`;

async function probe(): Promise<string | undefined> {
  try {
    await new Docker().getImage(GEMINI_BASE_IMAGE).inspect();
    return undefined;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    return status === 404 ? `the image ${GEMINI_BASE_IMAGE} is missing` : `Docker engine not reachable (${(err as Error).message})`;
  }
}

const unavailable = await probe();
if (unavailable && process.env.CI === 'true') {
  throw new Error(`${unavailable}. CI runs the real Gemini CLI suite: .ci/run prepares it with scripts/real-gemini.sh.`);
}
if (unavailable) {
  console.warn(`\n[real-gemini] SKIPPED: ${unavailable}. Run "bash scripts/real-gemini.sh" (seconds once the Debian base exists; scripts/real-claude.sh makes it) to run the suite on the real Gemini CLI.\n`);
}

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealGemini = unavailable ? describe.skip : describe;

const EXAMPLE_DOCKERFILE = readFileSync(new URL('../../examples/pods/gemini/Dockerfile', import.meta.url), 'utf8');

/**
 * examples/pods/gemini's Dockerfile with its base swapped for the Debian one (no registry
 * here): everything up to the CLI's install is replaced by `FROM` the image that has Debian,
 * Node, git and the CLI; every line after it (the CLI's settings, the user, the workspace,
 * USER, HOME) is the example's own, so the suite proves the example's pod works.
 */
export const GEMINI_DOCKERFILE = ((): string => {
  const lines = EXAMPLE_DOCKERFILE.split('\n');
  const install = lines.findIndex((l) => l.includes('npm install -g @google/gemini-cli'));
  if (install < 0) throw new Error('examples/pods/gemini/Dockerfile no longer installs @google/gemini-cli: update test/real-gemini/harness.ts');
  return [`FROM ${GEMINI_BASE_IMAGE}`, ...lines.slice(install + 1)].join('\n');
})();

/** examples/pods/gemini's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = ((): Record<string, unknown> => {
  const { inheritEnv: _, ...rest } = JSON.parse(readFileSync(new URL('../../examples/pods/gemini/pod.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  return rest;
})();

/** The key the pods get: the fake records the header it arrives in. */
export const TEST_GEMINI_KEY = 'test-gemini-key';

/** The environment that points the real CLI at the fake API. */
export function fakeApiEnv(url: string): Record<string, string> {
  return { GOOGLE_GEMINI_BASE_URL: url, GEMINI_API_KEY: TEST_GEMINI_KEY };
}

/** A TestWorld with a fake Gemini API the containers reach over the host's loopback. */
export class RealGeminiWorld extends TestWorld {
  readonly api: FakeGemini;
  apiUrl = '';

  constructor(script: Script) {
    super();
    this.api = new FakeGemini(script);
  }

  override async init(): Promise<this> {
    await super.init();
    this.apiUrl = await this.api.listen('127.0.0.1');
    return this;
  }

  /**
   * Writes a pod: `dockerfile` (default {@link GEMINI_DOCKERFILE}) and the example's pod.json
   * (its `"agent": "gemini"`) with the fake API's env and host networking; no checkout, which
   * needs a git server.
   */
  async geminiPod(name: string, podJson: Record<string, unknown> = {}, dockerfile = GEMINI_DOCKERFILE): Promise<void> {
    const dir = join(this.podsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    const env = { ...fakeApiEnv(this.apiUrl), ...((podJson.env as Record<string, string> | undefined) ?? {}) };
    const { checkout: _, egress: __, ...example } = EXAMPLE_POD_JSON;
    await writeFile(join(dir, 'pod.json'), JSON.stringify({ ...example, network: 'host', stopGraceSeconds: 5, ...podJson, env }));
  }

  override async close(): Promise<void> {
    await super.close();
    await this.api.close();
  }
}

/** The understood agent events of a run, flattened. */
export function agentEvents(events: readonly SessionEvent[]) {
  return events.flatMap((e) => (e.type === 'output' && e.agent ? e.agent : []));
}
