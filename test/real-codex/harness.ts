import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeOpenAI, type Script } from '../fakes/fake-openai.js';
import { TestWorld } from '../integration/harness.js';
import { realCliSuite } from '../fakes/real-cli.js';

const suite = await realCliSuite({
  versionKey: 'codexVersion', image: 'cldpd-test/codex', title: 'Codex CLI', suite: 'real-codex',
  takes: 'a 170 MB download, once per machine', example: 'codex', install: 'npm install -g @openai/codex',
});

/** The Codex CLI version the suite runs (package.json config.codexVersion; scripts/real-codex.sh installs it). */
export const CODEX_VERSION = suite.version;

/** Debian bookworm (debootstrap, no registry) with that CLI in /usr/local/lib/codex, linked from /usr/local/bin/codex: what the suite's pods build FROM. */
export const CODEX_BASE_IMAGE = suite.baseImage;

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealCodex = suite.describeWith;

/** examples/pods/codex's Dockerfile on the suite's image: every line after the CLI's install is the example's own. */
export const CODEX_DOCKERFILE = suite.dockerfile;

/** examples/pods/codex's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = suite.podJson;

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
