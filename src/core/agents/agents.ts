import type { Agent, AgentName } from './agent.js';
import { claudeAgent } from './claude-agent.js';
import { codexAgent } from './codex-agent.js';
import { geminiAgent } from './gemini-agent.js';

/** Every agent cldpd runs, by its pod.json name. */
export const AGENTS: Readonly<Record<AgentName, Agent>> = Object.freeze({ claude: claudeAgent, codex: codexAgent, gemini: geminiAgent });

/** The agent a pod names (pod.json `agent`; Claude Code when it names none). */
export function agentNamed(name: AgentName | undefined): Agent {
  return AGENTS[name ?? 'claude'];
}
