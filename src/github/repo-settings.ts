import { parse } from 'yaml';
import { z } from 'zod';

/** Per-repository settings from `.github/cldpd.yml`. */
export interface RepoSettings {
  /** Pods this repository may use; undefined means every pod of the host. */
  readonly pods: readonly string[] | undefined;
}

const schema = z.strictObject({
  pods: z.array(z.string().min(1)).optional(),
});

/** Settings of a repository without `.github/cldpd.yml`. */
export const DEFAULT_REPO_SETTINGS: RepoSettings = Object.freeze({ pods: undefined });

/** Parses `.github/cldpd.yml`; throws an Error whose message names the field and the fix. */
export function parseRepoSettings(text: string): RepoSettings {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    throw new Error(`.github/cldpd.yml is not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problem = result.error.issues.map((i) => (i.code === 'unrecognized_keys' ? `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: pods)` : `"${i.path.join('.') || '(top level)'}": ${i.message}`));
    throw new Error(`.github/cldpd.yml: ${problem.join('; ')}`);
  }
  return Object.freeze({ pods: result.data.pods ? Object.freeze([...result.data.pods]) : undefined });
}

/** Whether `settings` allow `pod`. */
export function allowsPod(settings: RepoSettings, pod: string): boolean {
  return settings.pods === undefined || settings.pods.includes(pod);
}
