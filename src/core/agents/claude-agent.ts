import { parseStreamJsonLine } from '../stream-json.js';
import type { Agent } from './agent.js';

/**
 * Claude Code in print mode, stream-json both ways: the prompt arrives as a user message on
 * standard input (never read as an option, not bounded by argv), and later instructions can
 * follow into the same conversation while it runs (`--replay-user-messages` echoes each one
 * it takes, which is how cldpd knows all of them were answered). The default start command.
 */
export const CLAUDE_COMMAND: readonly string[] = Object.freeze([
  'claude', '-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--replay-user-messages',
  '--dangerously-skip-permissions',
]);

/**
 * Claude Code (`@anthropic-ai/claude-code`): stream-json in and out, resumed with
 * `--resume <session id>`, limited by `--max-turns` and `--max-budget-usd`, its state in
 * `~/.claude`. Its stream is read by parseStreamJsonLine; its result reports the
 * conversation's cost, and its usage-limit results are read by providerLimit.
 */
export const claudeAgent: Agent = Object.freeze<Agent>({
  name: 'claude',
  title: 'Claude Code',
  program: 'claude',
  commands(limits) {
    const flags = [
      ...(limits.maxTurns !== undefined ? ['--max-turns', String(limits.maxTurns)] : []),
      ...(limits.maxBudgetUsd !== undefined ? ['--max-budget-usd', String(limits.maxBudgetUsd)] : []),
    ];
    return { command: [...CLAUDE_COMMAND, ...flags], resumeCommand: [...CLAUDE_COMMAND, ...flags, '--resume', '{claudeSessionId}'] };
  },
  limits: { maxTurns: { via: 'option', name: '--max-turns' }, maxBudgetUsd: { via: 'option', name: '--max-budget-usd' } },
  takesLiveInput: true,
  persist: Object.freeze(['~/.claude']),
  reader: () => ({ line: parseStreamJsonLine }),
  provider: Object.freeze({
    urlVar: 'ANTHROPIC_BASE_URL',
    defaultUrl: 'https://api.anthropic.com',
    keys: Object.freeze([
      { name: 'ANTHROPIC_API_KEY', header: 'x-api-key' },
      { name: 'ANTHROPIC_AUTH_TOKEN', header: 'authorization', scheme: 'Bearer' as const },
      { name: 'CLAUDE_CODE_OAUTH_TOKEN', header: 'authorization', scheme: 'Bearer' as const },
    ]),
  }),
  /**
   * Claude Code keeps its settings file at `~/.claude.json`, beside (not inside) `~/.claude`:
   * when only `~/.claude` is persisted, every new container starts without it and the CLI
   * complains on stderr. `CLAUDE_CONFIG_DIR` puts both in the persisted directory. Nothing
   * when `~/.claude` is not persisted or the pod sets `CLAUDE_CONFIG_DIR` itself.
   */
  env({ podEnv, persisted, home }): Record<string, string> {
    const dir = `${home.replace(/\/$/, '')}/.claude`;
    if (podEnv.CLAUDE_CONFIG_DIR !== undefined || !persisted.includes(dir)) return {};
    return { CLAUDE_CONFIG_DIR: dir };
  },
  // Its start-up calls home (feature flags, server URLs, telemetry): three refusals on every run's status otherwise.
  quietEnv: Object.freeze({ CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1' }),
});
