import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeGemini, type Script } from '../fakes/fake-gemini.js';
import { TestWorld } from '../integration/harness.js';
import { realCliSuite } from '../fakes/real-cli.js';

const suite = await realCliSuite({
  versionKey: 'geminiCliVersion', image: 'cldpd-test/gemini', title: 'Gemini CLI', suite: 'real-gemini',
  takes: 'seconds once the Debian base exists; scripts/real-claude.sh makes it', example: 'gemini', install: 'npm install -g @google/gemini-cli',
});

/** The Gemini CLI version the suite runs (package.json config.geminiCliVersion; scripts/real-gemini.sh installs it). */
export const GEMINI_CLI_VERSION = suite.version;

/** Debian bookworm (debootstrap, no registry) with Node and that CLI as /usr/local/bin/gemini: what the suite's pods build FROM. */
export const GEMINI_BASE_IMAGE = suite.baseImage;

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealGemini = suite.describeWith;

/** examples/pods/gemini's Dockerfile on the suite's image: every line after the CLI's install is the example's own. */
export const GEMINI_DOCKERFILE = suite.dockerfile;

/** examples/pods/gemini's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = suite.podJson;

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
