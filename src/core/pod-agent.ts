import type { Agent } from './agents/agent.js';
import { agentNamed } from './agents/agents.js';
import { claudeEnv } from './claude-pod.js';
import type { Pod } from './pod.js';
import { promptChannel } from './prompt.js';

/** The agent a pod runs (pod.json `agent`; Claude Code when it names none). */
export function podAgent(pod: Pod): Agent {
  return agentNamed(pod.config.agent);
}

/**
 * Variables the pod's agent needs beyond the pod's own, for a run whose container is
 * configured with `containerEnv` (the pod's env and inherited variables), with `persisted`
 * paths, in a container whose user's home is `home` (see Agent.env). Claude Code's only when
 * the pod's commands run it (see claudeEnv).
 */
export function agentEnvOf(pod: Pod, containerEnv: Readonly<Record<string, string>>, persisted: readonly string[], home: string): Record<string, string> {
  const agent = podAgent(pod);
  if (agent.name === 'claude') return claudeEnv(pod, persisted, home);
  return agent.env({ podEnv: containerEnv, persisted, home });
}

/** Files the pod's agent needs in each new container (see Agent.files), given the container's configured environment. */
export function agentFilesOf(pod: Pod, containerEnv: Readonly<Record<string, string>>): Array<{ path: string; content: string; mode: number }> {
  const files = podAgent(pod).files?.({ podEnv: containerEnv, limits: pod.config }) ?? [];
  return files.map((f) => ({ path: f.path, content: f.content, mode: 0o444 }));
}

/**
 * Whether a running container of the pod holds a conversation that a second process must not
 * join: its resume command is Claude Code's live stream-json input (only the process that
 * started the run can reach it), or its agent is one that takes no input while it runs. A
 * resume then waits for the run to end. False only for a pod whose own commands resume by a
 * command run beside the first (an exec).
 */
export function holdsConversation(pod: Pod): boolean {
  return promptChannel(pod.config.resumeCommand).kind === 'stream-json' || !podAgent(pod).takesLiveInput;
}
