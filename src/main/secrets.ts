import { loadPod, type PodSource } from '../core/index.js';

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
