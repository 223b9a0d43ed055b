import { parse } from 'yaml';
import * as z from 'zod/mini';
import { parseLimits, type RepoLimits } from '../queue/limits-policy.js';
import type { OctokitLike } from './comments-api.js';

/** Per-repository settings from `.github/cldpd.yml`. */
export interface RepoSettings {
  /** Pods this repository may use; undefined means every pod of the host. */
  readonly pods: readonly string[] | undefined;
  /** Limits of runs and spending; with the installation's (CLDPD_LIMITS), the lower of each applies. */
  readonly limits?: Partial<RepoLimits>;
  /**
   * Whether cldpd opens the pull request of a run that pushed to `cldpd/issue-<n>` when none
   * is open from it: as a draft (the default), ready for review, or not at all.
   */
  readonly pullRequest: 'draft' | 'ready' | 'off';
  /**
   * How many times per pull request a failing check on the head the agent pushed resumes the
   * session to fix it; 0 (the default) never.
   */
  readonly fixChecks: number;
}

/** The most automatic fixes of failing checks a repository may ask per pull request. */
export const MAX_CHECK_FIXES = 10;

const schema = z.strictObject({
  pods: z.optional(z.array(z.string().check(z.minLength(1, 'a pod name must not be empty')))),
  limits: z.optional(z.unknown()),
  pullRequest: z.optional(z.enum(['draft', 'ready', 'off'])),
  fixChecks: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(MAX_CHECK_FIXES))),
});

/** Settings of a repository without `.github/cldpd.yml`. */
export const DEFAULT_REPO_SETTINGS: RepoSettings = Object.freeze({ pods: undefined, pullRequest: 'draft', fixChecks: 0 });

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
      if (i.code === 'unrecognized_keys') return `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: pods, limits, pullRequest, fixChecks)`;
      const where = i.path.join('.');
      if (where === 'pullRequest') return '"pullRequest" must be draft, ready or off';
      if (where === 'fixChecks') return `"fixChecks" must be a whole number from 0 to ${MAX_CHECK_FIXES} (how many times a failing check resumes the session per pull request)`;
      if (i.code !== 'invalid_type') return `"${where}": ${i.message}`;
      if (!where) return 'the file must be a mapping of settings, like "pods: [web]"';
      return `"${where}" must be ${where === 'pods' ? 'a list of pod names, like "pods: [web]"' : where === 'pullRequest' ? 'draft, ready or off' : where === 'fixChecks' ? `a whole number from 0 to ${MAX_CHECK_FIXES}` : `a ${i.expected}`}`;
    });
    throw new Error(`.github/cldpd.yml: ${problem.join('; ')}`);
  }
  let limits: Partial<RepoLimits> | undefined;
  try {
    limits = result.data.limits === undefined ? undefined : parseLimits(result.data.limits, 'limits');
  } catch (err) {
    throw new Error(`.github/cldpd.yml: ${(err as Error).message}`);
  }
  return Object.freeze({
    pods: result.data.pods ? Object.freeze([...result.data.pods]) : undefined,
    ...(limits ? { limits } : {}),
    pullRequest: result.data.pullRequest ?? 'draft',
    fixChecks: result.data.fixChecks ?? 0,
  });
}

/** Whether `settings` allow `pod`. */
export function allowsPod(settings: RepoSettings, pod: string): boolean {
  return settings.pods === undefined || settings.pods.includes(pod);
}

/**
 * Reads and parses a repository's `.github/cldpd.yml` with an installation's Octokit: the
 * defaults when there is none (404). Rejects with the API's error (it carries a `status`) when
 * GitHub fails, and with {@link parseRepoSettings}'s Error (no `status`) when the file is wrong.
 */
export async function readRepoSettings(octokit: OctokitLike, repo: { readonly owner: string; readonly repo: string }): Promise<RepoSettings> {
  let file: { content?: string; encoding?: string };
  try {
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/contents/{path}', { owner: repo.owner, repo: repo.repo, path: '.github/cldpd.yml' });
    file = data as { content?: string; encoding?: string };
  } catch (err) {
    if ((err as { status?: number }).status === 404) return DEFAULT_REPO_SETTINGS;
    throw err;
  }
  return parseRepoSettings(Buffer.from(file.content ?? '', file.encoding === 'base64' ? 'base64' : 'utf8').toString('utf8'));
}
