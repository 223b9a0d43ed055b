import { parse } from 'yaml';
import * as z from 'zod/mini';
import { assertPodName } from '../core/index.js';
import { parseEgressEntry } from '../gateway/rules.js';
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
  /**
   * Per pod, the hosts its runs for this repository may reach, as pod.json `egress` writes
   * them: a run reaches a host only when its pod's list allows it too (it narrows, never
   * widens). A pod not named keeps its own list. See {@link repoEgress}.
   */
  readonly egress?: Readonly<Record<string, readonly string[]>>;
}

/** The most hosts `.github/cldpd.yml` may list for one pod under `egress`. */
export const MAX_REPO_EGRESS = 100;

/** The most automatic fixes of failing checks a repository may ask per pull request. */
export const MAX_CHECK_FIXES = 10;

const schema = z.strictObject({
  pods: z.optional(z.array(z.string().check(z.minLength(1, 'a pod name must not be empty')))),
  limits: z.optional(z.unknown()),
  pullRequest: z.optional(z.enum(['draft', 'ready', 'off'])),
  fixChecks: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(MAX_CHECK_FIXES))),
  egress: z.optional(z.unknown()),
});

function isPodName(name: string): boolean {
  try {
    assertPodName(name);
    return true;
  } catch {
    return false;
  }
}

const EGRESS_EXAMPLE = 'egress: { web: [registry.npmjs.org, "*.pythonhosted.org", "github.com:443"] }';

/**
 * The `egress` key: a mapping of pod names to lists of hosts, each a pod.json `egress` entry
 * (see parseEgressEntry), at most {@link MAX_REPO_EGRESS} per pod. Throws an Error naming
 * what is wrong and what to write. The entries are kept as written (trimmed).
 */
function parseRepoEgress(raw: unknown): Readonly<Record<string, readonly string[]>> {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new Error(`"egress" must be a mapping of pod names to lists of hosts, like "${EGRESS_EXAMPLE}"`);
  const egress: Record<string, readonly string[]> = Object.create(null) as Record<string, readonly string[]>;
  for (const [pod, list] of Object.entries(raw)) {
    const key = `egress.${pod.length > 80 ? `${pod.slice(0, 80)}…` : pod}`;
    const where = `"${key}"`;
    // A name no pod can have would narrow nothing, silently: said instead.
    if (!isPodName(pod)) throw new Error(`${where} names no pod there can be: a pod's name is lowercase letters, digits, ".", "_" and "-", as in its label cldpd:<pod>, like "${EGRESS_EXAMPLE}"`);
    if (!Array.isArray(list)) throw new Error(`${where} must be a list of hosts, like "${EGRESS_EXAMPLE}" (an empty list [] leaves the pod only what cldpd itself needs)`);
    if (list.length > MAX_REPO_EGRESS) throw new Error(`${where} lists ${list.length} hosts; at most ${MAX_REPO_EGRESS} are allowed per pod: use "*.example.com" for many names under one domain`);
    const entries = list.map((entry: unknown, i) => {
      const parsed = parseEgressEntry(entry as string);
      if ('error' in parsed) throw new Error(/^(must|has) /.test(parsed.error) ? `"${key}[${i}]" ${parsed.error}` : `"${key}[${i}]": ${parsed.error}`);
      return (entry as string).trim();
    });
    egress[pod] = Object.freeze(entries);
  }
  return Object.freeze(egress);
}

/** Settings of a repository without `.github/cldpd.yml`. */
export const DEFAULT_REPO_SETTINGS: RepoSettings = Object.freeze({ pods: undefined, pullRequest: 'draft', fixChecks: 0 });

/** Parses `.github/cldpd.yml`; throws an Error whose message names the field and the fix. */
export function parseRepoSettings(text: string): RepoSettings {
  let raw: unknown;
  try {
    raw = parse(text) ?? {};
  } catch (err) {
    const why = (err as Error).message.split('\n')[0];
    // `- *.example.com` is a YAML alias, not a string: the fix is quotes.
    const hint = /alias/i.test(why ?? '') ? ' (an entry that starts with "*", like "*.example.com", must be in quotes)' : '';
    throw new Error(`.github/cldpd.yml is not valid YAML: ${why}${hint}`);
  }
  const result = schema.safeParse(raw);
  if (!result.success) {
    const problem = result.error.issues.map((i) => {
      if (i.code === 'unrecognized_keys') return `unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: pods, limits, pullRequest, fixChecks, egress)`;
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
  let egress: Readonly<Record<string, readonly string[]>> | undefined;
  try {
    limits = result.data.limits === undefined ? undefined : parseLimits(result.data.limits, 'limits');
    egress = result.data.egress === undefined ? undefined : parseRepoEgress(result.data.egress);
  } catch (err) {
    throw new Error(`.github/cldpd.yml: ${(err as Error).message}`);
  }
  return Object.freeze({
    pods: result.data.pods ? Object.freeze([...result.data.pods]) : undefined,
    ...(limits ? { limits } : {}),
    pullRequest: result.data.pullRequest ?? 'draft',
    fixChecks: result.data.fixChecks ?? 0,
    ...(egress ? { egress } : {}),
  });
}

/** The repository's narrower egress list for `pod`; undefined when it names none for it (the pod's own list applies). */
export function repoEgress(settings: RepoSettings, pod: string): readonly string[] | undefined {
  return settings.egress && Object.hasOwn(settings.egress, pod) ? settings.egress[pod] : undefined;
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

/** Options of {@link repoEgressSource}. */
export interface RepoEgressSourceOptions {
  /** Reads of the file a run makes when GitHub fails; default 3. */
  readonly attempts?: number;
  /** Wait before the second read, doubled for each after it; default 1 s. */
  readonly retryMs?: number;
}

/**
 * What a worker asks before each run starts or resumes: the repository's narrower egress list
 * for the run's pod (see {@link repoEgress}), read afresh from `.github/cldpd.yml` with the
 * installation's token, so a list changed since the command was queued counts. Rejects, and
 * the run does not start, when the file cannot be read (GitHub failed every attempt) or is
 * wrong: running on the pod's wider list would ignore what the repository asked.
 */
export function repoEgressSource(octokitFor: (installationId: number) => Promise<OctokitLike>, options: RepoEgressSourceOptions = {}): (run: { readonly issue: { readonly installationId: number; readonly owner: string; readonly repo: string }; readonly pod: string }) => Promise<readonly string[] | undefined> {
  const attempts = Math.max(1, options.attempts ?? 3);
  const retryMs = options.retryMs ?? 1000;
  return async ({ issue, pod }) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return repoEgress(await readRepoSettings(await octokitFor(issue.installationId), issue), pod);
      } catch (err) {
        const status = (err as { status?: number }).status;
        // A file that is wrong stays wrong however often it is read.
        if (status === undefined) throw new Error(`The run did not start: ${(err as Error).message}`);
        if (attempt >= attempts) {
          throw new Error(`The run did not start: cldpd could not read .github/cldpd.yml, whose "egress" may narrow what this pod reaches (GitHub answered ${status}: ${(err as Error).message.split('\n')[0]}). Try again once GitHub answers.`);
        }
        await new Promise((resolve) => setTimeout(resolve, retryMs * 2 ** (attempt - 1)));
      }
    }
  };
}
