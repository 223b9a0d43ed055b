import { createHash } from 'node:crypto';
import { loadPod, type PodSource } from './pod.js';
import { podAgent } from './pod-agent.js';

/**
 * Names the model credential a pod's runs use, without revealing it: a hash of the values of
 * its model variables (pod.json env, or inherited from the host); `pod:<name>` when it sets
 * none (its agent signs in some other way, the same for all its runs). Runs that share one
 * wait together when the provider refuses it.
 */
export async function modelCredential(pods: PodSource, pod: string, hostEnv: Readonly<Record<string, string | undefined>>): Promise<string> {
  const loaded = await loadPod(pods, pod);
  const agent = podAgent(loaded);
  const { provider } = agent;
  // The agent's own variables: its key and endpoint (see Agent.provider).
  const credentials = [...provider.keys.map((k) => k.name), provider.urlVar];
  const values = credentials.map((variable) => loaded.config.env[variable] ?? (loaded.config.inheritEnv.includes(variable) ? hostEnv[variable] : undefined) ?? '');
  if (values.every((v) => v === '')) return `pod:${pod}`;
  return createHash('sha256').update([...(agent.name === 'claude' ? [] : [agent.name]), ...values].join('\n')).digest('hex').slice(0, 24);
}

/** Values of the environment a pod's containers get (pod.json env and inherited host variables): secrets to redact. */
export async function containerEnvValues(pods: PodSource, pod: string, hostEnv: Readonly<Record<string, string | undefined>>): Promise<string[]> {
  try {
    const loaded = await loadPod(pods, pod);
    const inherited = loaded.config.inheritEnv.map((name) => hostEnv[name]).filter((v): v is string => typeof v === 'string');
    return [...Object.values(loaded.config.env), ...inherited];
  } catch {
    return [];
  }
}
