import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeAnthropic, isToolResultTurn, lastUserText, userTexts, type Script } from '../fakes/fake-anthropic.js';
import { TestWorld } from '../integration/harness.js';
import { realCliSuite } from '../fakes/real-cli.js';

const suite = await realCliSuite({
  versionKey: 'claudeCodeVersion', image: 'cldpd-test/claude-code', title: 'Claude Code', suite: 'real-claude',
  takes: 'about 2 minutes, once per machine', example: 'claude', install: 'npm install -g @anthropic-ai/claude-code',
});

/** The Claude Code version the suite runs (package.json config.claudeCodeVersion; scripts/real-claude.sh installs it). */
export const CLAUDE_CODE_VERSION = suite.version;

/** Debian bookworm (debootstrap, no registry) with that CLI in /usr/local/bin: what the suite's pods build FROM. */
export const CLAUDE_BASE_IMAGE = suite.baseImage;

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealClaude = suite.describeWith;

/** examples/pods/claude's Dockerfile on the suite's image: every line after the CLI's install is the example's own. */
export const AGENT_DOCKERFILE = suite.dockerfile;

/** examples/pods/claude's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = suite.podJson;

/** The environment that points the real CLI at the fake API, offline. */
export function fakeApiEnv(url: string): Record<string, string> {
  return {
    ANTHROPIC_BASE_URL: url,
    ANTHROPIC_API_KEY: 'sk-ant-test-key',
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    DISABLE_AUTOUPDATER: '1',
  };
}

/** A TestWorld with a fake Anthropic API the containers reach over the host's loopback. */
export class RealClaudeWorld extends TestWorld {
  readonly api: FakeAnthropic;
  apiUrl = '';

  constructor(script: Script) {
    super();
    this.api = new FakeAnthropic(script);
  }

  override async init(): Promise<this> {
    await super.init();
    this.apiUrl = await this.api.listen('127.0.0.1');
    return this;
  }

  /**
   * Writes a pod: `dockerfile` (default {@link AGENT_DOCKERFILE}) and the example's pod.json
   * with the fake API's env and host networking (an open pod: test/real-claude/egress.test.ts
   * runs the example gated).
   */
  async claudePod(name: string, podJson: Record<string, unknown> = {}, dockerfile = AGENT_DOCKERFILE): Promise<void> {
    const dir = join(this.podsDir, name);
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'Dockerfile'), dockerfile);
    const env = { ...fakeApiEnv(this.apiUrl), ...((podJson.env as Record<string, string> | undefined) ?? {}) };
    // The example checks its issue's repository out; only a test with a git server to clone from asks for that.
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

/**
 * A fake model for live-input tests: a typed message starts a Bash `sleep` of
 * `seconds(its text)` (time to send more); a tool result is answered "Answered: ask: a |
 * ask: b", naming every "ask: <word>" the conversation holds. A message sent mid-turn
 * reaches the model inside the CLI's own note, not as typed text: the pattern finds it there.
 */
export function askingScript(seconds: (typed: string) => number): Script {
  return (body) => {
    if (isToolResultTurn(body)) {
      const asked = userTexts(body).flatMap((t) => t.match(/ask: \w+/g) ?? []);
      return { blocks: [{ type: 'text', text: `Answered: ${[...new Set(asked)].join(' | ')}` }] };
    }
    return { blocks: [{ type: 'tool_use', name: 'Bash', input: { command: `sleep ${seconds(lastUserText(body))}; echo done`, description: 'wait' } }] };
  };
}
