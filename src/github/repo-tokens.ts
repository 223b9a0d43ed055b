import type { RepoInfo } from '../core/index.js';
import type { RunRepoAccess, RunWork, WorkPull } from '../queue/contract.js';
import type { OctokitLike } from './comments-api.js';

/** Where a run's token comes from: the app (its own JWT) and the installation that covers the repository. */
export interface RepoTokenSourceOptions {
  /** An Octokit authenticated as the app itself (JWT), which may mint installation tokens. */
  readonly appOctokit: () => Promise<OctokitLike>;
  /** An Octokit authenticated as the installation, for reading the repository. */
  readonly installationOctokit: () => Promise<OctokitLike>;
  /** An Octokit authenticated with `token` alone, which revokes it; absent, tokens are not revoked (they expire in an hour). */
  readonly tokenOctokit?: (token: string) => OctokitLike;
  readonly installationId: number;
  readonly owner: string;
  readonly repo: string;
  /** `GH_HOST` for `gh` on GitHub Enterprise Server; undefined on github.com. */
  readonly ghHost?: string;
  /**
   * The branch the run is told to push to (`cldpd/issue-<n>`): its work is what changed on it
   * and on branches named after it (`cldpd/issue-<n>-…`, `cldpd/issue-<n>/…`), never what
   * others pushed elsewhere meanwhile.
   */
  readonly branch: string;
  /**
   * Where the heads from before the run are kept beyond this process (see the queue's
   * RunHeads), so the job picked up again after a worker died compares with them; kept in
   * memory only when absent.
   */
  readonly headsBefore?: {
    /** Keeps `heads` unless some were kept already; resolves with the ones kept. */
    keep(heads: ReadonlyMap<string, string>): Promise<Map<string, string>>;
    load(): Promise<Map<string, string> | undefined>;
  };
}

/** Branch heads listed at most: 10 pages of 100 (of the run's own branch names, so few). */
const MAX_HEAD_PAGES = 10;
/** Changed branches whose pull requests are looked up, at most. */
const MAX_BRANCHES = 10;

/**
 * A {@link RunRepoAccess} backed by GitHub's API: each token is an installation access
 * token (`POST /app/installations/{id}/access_tokens`) restricted to the one repository and
 * to exactly the permissions asked; GitHub refuses (422) a permission the app was not
 * granted, so a token is never more than the app has. The repository's clone URL and
 * default branch are asked once.
 *
 * What the run pushed is found by the API, not the agent's word: the heads of the run's
 * branch (and branches named after it) are listed before the first token is handed out (and
 * kept, with `headsBefore`, for a retried job) and again after the run; one that is new or
 * moved, and the pull requests from it, are the run's work.
 *
 * Each token is revoked when the run ends (`DELETE /installation/token` with the token
 * itself, through `tokenOctokit`).
 */
export function repoTokenSource(options: RepoTokenSourceOptions): RunRepoAccess {
  let info: Promise<RepoInfo & { htmlUrl: string }> | undefined;
  /** The heads before the first token; undefined when they could not be listed (then nothing is reported). */
  let before: Promise<Map<string, string> | undefined> | undefined;
  const installation = options.installationOctokit;
  const heads = async (): Promise<Map<string, string>> => {
    const octokit = await installation();
    const found = new Map<string, string>();
    for (let page = 1; page <= MAX_HEAD_PAGES; page++) {
      const route = `GET /repos/{owner}/{repo}/git/matching-refs/heads/${options.branch.split('/').map(encodeURIComponent).join('/')}`;
      const { data } = await octokit.request(route, { owner: options.owner, repo: options.repo, per_page: 100, page });
      const refs = data as Array<{ ref: string; object: { sha: string } }>;
      for (const r of refs) {
        const name = r.ref.replace(/^refs\/heads\//, '');
        // A prefix match: cldpd/issue-5 also matches cldpd/issue-50, which is another issue's.
        if (name === options.branch || name.startsWith(`${options.branch}-`) || name.startsWith(`${options.branch}/`)) found.set(name, r.object.sha);
      }
      if (refs.length < 100) break;
    }
    return found;
  };
  const repository = () => {
    info ??= (async () => {
      const octokit = await installation();
      const { data } = await octokit.request('GET /repos/{owner}/{repo}', { owner: options.owner, repo: options.repo });
      const repo = data as { full_name: string; clone_url: string; default_branch: string; html_url: string };
      return { fullName: repo.full_name, cloneUrl: repo.clone_url, defaultBranch: repo.default_branch, htmlUrl: repo.html_url };
    })().catch((err: unknown) => {
      info = undefined; // ask again next time
      throw err;
    });
    return info;
  };
  return {
    fullName: `${options.owner}/${options.repo}`,
    ...(options.ghHost ? { ghHost: options.ghHost } : {}),
    async repository() {
      const { htmlUrl: _, ...repo } = await repository();
      return repo;
    },
    async mint(permissions) {
      // The heads before the container has any token: what differs after the run is its work.
      // A retried job's run compares with the ones its first try kept.
      before ??= (async () => {
        const kept = await options.headsBefore?.load().catch(() => undefined);
        if (kept) return kept;
        const now = await heads();
        return (await options.headsBefore?.keep(now).catch(() => undefined)) ?? now;
      })().catch(() => undefined);
      await before;
      const octokit = await options.appOctokit();
      const { data } = await octokit.request('POST /app/installations/{installation_id}/access_tokens', {
        installation_id: options.installationId,
        repositories: [options.repo],
        permissions,
      });
      const token = data as { token: string; expires_at: string };
      return { token: token.token, expiresAt: Date.parse(token.expires_at) };
    },
    ...(options.tokenOctokit ? {
      async revoke(token: string) {
        await options.tokenOctokit?.(token).request('DELETE /installation/token');
      },
    } : {}),
    async produced(): Promise<RunWork | undefined> {
      // A run found finished after a restart minted nothing here: its first try kept the heads.
      before ??= options.headsBefore?.load().catch(() => undefined);
      const start = await before;
      if (!start) return undefined;
      const { htmlUrl } = await repository();
      const after = await heads();
      const changed = [...after].filter(([name, sha]) => start.get(name) !== sha).map(([name]) => name).sort().slice(0, MAX_BRANCHES);
      const octokit = await installation();
      const pulls: WorkPull[] = [];
      for (const branch of changed) {
        const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls', { owner: options.owner, repo: options.repo, state: 'all', head: `${options.owner}:${branch}`, per_page: 10 });
        for (const p of data as Array<{ number: number; title: string; html_url: string; state: string; merged_at?: string | null; draft?: boolean; base?: { ref?: string } }>) {
          pulls.push({ number: p.number, title: p.title, url: p.html_url, state: p.merged_at ? 'merged' : p.state, branch, ...(p.base?.ref ? { base: p.base.ref } : {}), ...(p.draft ? { draft: true } : {}) });
        }
      }
      return { watched: options.branch, branches: changed.map((name) => ({ name, url: `${htmlUrl}/tree/${name.split('/').map(encodeURIComponent).join('/')}`, sha: after.get(name) as string })), pulls };
    },
  };
}
