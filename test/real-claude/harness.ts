import { readFileSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import Docker from 'dockerode';
import { describe } from 'vitest';
import type { SessionEvent } from '../../src/core/index.js';
import { FakeAnthropic, isToolResultTurn, lastUserText, userTexts, type Script } from '../fakes/fake-anthropic.js';
import { TestWorld } from '../integration/harness.js';

/** The Claude Code version the suite runs (package.json config.claudeCodeVersion; scripts/real-claude.sh installs it). */
export const CLAUDE_CODE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { claudeCodeVersion: string } }).config.claudeCodeVersion;

/** Debian bookworm (debootstrap, no registry) with that CLI in /usr/local/bin: what the suite's pods build FROM. */
export const CLAUDE_BASE_IMAGE = `cldpd-test/claude-code:${CLAUDE_CODE_VERSION}`;

async function probe(): Promise<string | undefined> {
  try {
    await new Docker().getImage(CLAUDE_BASE_IMAGE).inspect();
    return undefined;
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    return status === 404 ? `the image ${CLAUDE_BASE_IMAGE} is missing` : `Docker engine not reachable (${(err as Error).message})`;
  }
}

const unavailable = await probe();
if (unavailable && process.env.CI === 'true') {
  throw new Error(`${unavailable}. CI runs the real Claude Code suite: .ci/run prepares it with scripts/real-claude.sh.`);
}
if (unavailable) {
  console.warn(`\n[real-claude] SKIPPED: ${unavailable}. Run "bash scripts/real-claude.sh" (about 2 minutes, once per machine) to run the suite on the real Claude Code CLI.\n`);
}

/** `describe` that runs where the real CLI's image is ready (always in CI, where its absence fails the run). */
export const describeWithRealClaude = unavailable ? describe.skip : describe;

const EXAMPLE_DOCKERFILE = readFileSync(new URL('../../examples/pods/claude/Dockerfile', import.meta.url), 'utf8');

/**
 * examples/pods/claude's Dockerfile with its base swapped for the Debian one (no registry
 * here): everything up to the CLI's install is replaced by `FROM` the image that has Debian,
 * bash, git and the CLI; every line after it (the user, the workspace, USER, HOME) is the
 * example's own, so the suite proves the example's pod works.
 */
export const AGENT_DOCKERFILE = ((): string => {
  const lines = EXAMPLE_DOCKERFILE.split('\n');
  const install = lines.findIndex((l) => l.includes('npm install -g @anthropic-ai/claude-code'));
  if (install < 0) throw new Error('examples/pods/claude/Dockerfile no longer installs @anthropic-ai/claude-code: update test/real-claude/harness.ts');
  return [`FROM ${CLAUDE_BASE_IMAGE}`, ...lines.slice(install + 1)].join('\n');
})();

/** examples/pods/claude's pod.json, less inheritEnv (the suite's env points at the fake API). */
export const EXAMPLE_POD_JSON = ((): Record<string, unknown> => {
  const { inheritEnv: _, ...rest } = JSON.parse(readFileSync(new URL('../../examples/pods/claude/pod.json', import.meta.url), 'utf8')) as Record<string, unknown>;
  return rest;
})();

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
