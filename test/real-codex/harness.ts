import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeOpenAI, type Script } from '../fakes/fake-openai.js';
import { TestWorld } from '../integration/harness.js';

/** The Codex CLI version the suite runs (package.json config.codexVersion; scripts/real-codex.sh installs it). */
export const CODEX_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { codexVersion: string } }).config.codexVersion;

/** Debian bookworm (debootstrap, no registry) with that CLI in /usr/local/lib/codex, linked from /usr/local/bin/codex: what the suite's pods build FROM. */
export const CODEX_BASE_IMAGE = `cldpd-test/codex:${CODEX_VERSION}`;

async function probe(): Promise<string | undefined> {
  try {
    await new Docker().getImage(CODEX_BASE_IMAGE).inspect();
    return undefined;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    return status === 404 ? `the image ${CODEX_BASE_IMAGE} is missing` : `Docker engine not reachable (${(err as Error).message})`;
  }
}

const unavailable = await probe();
if (unavailable && process.env.CI === 'true') {
  throw new Error(`${unavailable}. CI runs the real Codex CLI suite: .ci/run prepares it with scripts/real-codex.sh.`);
}
if (unavailable) {
  console.warn(`\n[real-codex] SKIPPED: ${unavailable}. Run "bash scripts/real-codex.sh" (a 170 MB download, once per machine) to run the suite on the real Codex CLI.\n`);
}

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealCodex = unavailable ? describe.skip : describe;

const EXAMPLE_DOCKERFILE = readFileSync(new URL('../../examples/pods/codex/Dockerfile', import.meta.url), 'utf8');

/**
 * examples/pods/codex's Dockerfile with its base swapped for the Debian one (no registry
 * here): everything up to the CLI's install is replaced by `FROM` the image that has Debian,
 * bash, git and the CLI; every line after it (the user, the workspace, USER, HOME) is the
 * example's own, so the suite proves the example's pod works.
 */
export const CODEX_DOCKERFILE = ((): string => {
  const lines = EXAMPLE_DOCKERFILE.split('\n');
  const install = lines.findIndex((l) => l.includes('npm install -g @openai/codex'));
  if (install < 0) throw new Error('examples/pods/codex/Dockerfile no longer installs @openai/codex: update test/real-codex/harness.ts');
  return [`FROM ${CODEX_BASE_IMAGE}`, ...lines.slice(install + 1)].join('\n');
})();

/** examples/pods/codex's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = ((): Record<string, unknown> => {
  const { inheritEnv: _, ...rest } = JSON.parse(readFileSync(new URL('../../examples/pods/codex/pod.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  return rest;
})();

/** A TestWorld with a fake OpenAI Responses API the containers reach over the host's loopback. */
export class RealCodexWorld extends TestWorld {
  readonly api: FakeOpenAI;
  apiUrl = '';

  constructor(script: Script) {
    super();
    this.api = new FakeOpenAI(script);
  }

  override async init(): Promise<this> {
    await super.init();
    this.apiUrl = await this.api.listen('127.0.0.1');
    return this;
  }

  /**
   * Writes a pod: the example's Dockerfile and pod.json (`"agent": "codex"`, its default
   * commands), host networking (an open pod), the key, and OPENAI_BASE_URL naming the fake
   * API (which the default commands hand to Codex as `-c openai_base_url=…`: see codexCommands).
   */
  async codexPod(name: string, podJson: Record<string, unknown> = {}): Promise<void> {
    const dir = join(this.podsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), CODEX_DOCKERFILE);
    const env = { OPENAI_BASE_URL: this.apiUrl, CODEX_API_KEY: 'sk-codex-test-key', ...((podJson.env as Record<string, string> | undefined) ?? {}) };
    // The example checks its issue's repository out and is gated; these tests have no git server and run open.
    const { checkout: _, egress: __, setup: ___, ...example } = EXAMPLE_POD_JSON;
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
