import type { Agent } from './agent.js';

/** Options every Codex run takes: JSON lines out, no approvals asked (the container is the sandbox), any directory. */
const EXEC: readonly string[] = Object.freeze(['codex', 'exec', '--json', '--skip-git-repo-check', '--dangerously-bypass-approvals-and-sandbox']);

/**
 * OpenAI's Codex CLI (`@openai/codex`): `codex exec --json`, resumed after exit with
 * `codex exec resume <thread id>`, its state in `~/.codex`.
 */
export const codexAgent: Agent = Object.freeze<Agent>({
  name: 'codex',
  title: 'Codex CLI',
  program: 'codex',
  commands: () => ({ command: [...EXEC, '--', '{prompt}'], resumeCommand: [...EXEC, 'resume', '{agentSessionId}', '--', '{prompt}'] }),
  limits: { maxTurns: undefined, maxBudgetUsd: undefined },
  takesLiveInput: false,
  persist: Object.freeze(['~/.codex']),
  reader: () => ({ line: () => [] }),
  provider: Object.freeze({
    urlVar: 'OPENAI_BASE_URL',
    defaultUrl: 'https://api.openai.com/v1',
    keys: Object.freeze([
      { name: 'OPENAI_API_KEY', header: 'authorization', scheme: 'Bearer' as const },
      { name: 'CODEX_API_KEY', header: 'authorization', scheme: 'Bearer' as const },
    ]),
  }),
  env: () => ({}),
  quietEnv: Object.freeze({}),
});
