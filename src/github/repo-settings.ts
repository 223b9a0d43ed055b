import { parse } from 'yaml';
import * as z from 'zod/mini';
import { parseLimits, type RepoLimits } from '../queue/limits-policy.js';

/** Per-repository settings from `.github/cldpd.yml`. */
export interface RepoSettings {
  /** Pods this repository may use; undefined means every pod of the host. */
  readonly pods: readonly string[] | undefined;
  /** Limits of runs and spending; with the installation's (CLDPD_LIMITS), the lower of each applies. */
  readonly limits?: Partial<RepoLimits>;
}

const schema = z.strictObject({
  pods: z.optional(z.array(z.string().check(z.minLength(1, 'a pod name must not be empty')))),
  limits: z.optional(z.unknown()),
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
    const problem = result.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: pods, limits)`;
      const where = i.path.join('.');
      if (i.code !== 'invalid_type') return `"${where}": ${i.message}`;
      if (!where) return 'the file must be a mapping of settings, like "pods: [web]"';
      return `"${where}" must be ${where === 'pods' ? 'a list of pod names, like "pods: [web]"' : `a ${i.expected}`}`;
    });
    throw new Error(`.github/cldpd.yml: ${problem.join('; ')}`);
  }
  let limits: Partial<RepoLimits> | undefined;
  try {
    limits = result.data.limits === undefined ? undefined : parseLimits(result.data.limits, 'limits');
  } catch (err) {
    throw new Error(`.github/cldpd.yml: ${(err as Error).message}`);
  }
  return Object.freeze({ pods: result.data.pods ? Object.freeze([...result.data.pods]) : undefined, ...(limits ? { limits } : {}) });
}

/** Whether `settings` allow `pod`. */
export function allowsPod(settings: RepoSettings, pod: string): boolean {
  return settings.pods === undefined || settings.pods.includes(pod);
}
