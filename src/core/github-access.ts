import type { Logger } from 'pino';
import { CldpdError, messageOf } from './errors.js';
import type { ContainerFile } from './runner.js';
import { within } from './within.js';

/** A token for one repository, as GitHub minted it. */
export interface RepoToken {
  readonly token: string;
  /** Epoch ms after which GitHub refuses it. */
  readonly expiresAt: number;
}

/** The repository a run works on, as the API describes it. */
export interface RepoInfo {
  /** `owner/name`. */
  readonly fullName: string;
  /** The HTTPS URL git clones from, e.g. `https://github.com/acme/web.git`. */
  readonly cloneUrl: string;
  readonly defaultBranch: string;
}

/**
 * Mints tokens for the repository. Provided by the GitHub front end (it holds the
 * app's key); the core only asks, hands the token to the container and keeps it fresh.
 */
export interface RepoTokenSource {
  /** `owner/name` of the repository, for messages. */
  readonly fullName: string;
  /** Where the repository is: asked of the API once, when a pod first needs a token. */
  repository(): Promise<RepoInfo>;
  /** The host name `gh` needs in `GH_HOST` on GitHub Enterprise Server; undefined on github.com. */
  readonly ghHost?: string;
  /**
   * A new token limited to the repository and `permissions` (never more than the app was
   * granted). Throws with GitHub's reason when it refuses.
   */
  mint(permissions: Readonly<Record<string, string>>): Promise<RepoToken>;
  /**
   * Ends `token` at GitHub (`DELETE /installation/token`, authenticated with the token itself),
   * so it works no longer, whoever copied it. Called once for each token minted for a run, when
   * the run ends; throws with GitHub's reason when it could not. Absent: tokens live out their hour.
   */
  revoke?(token: string): Promise<void>;
}

/** Where the container finds the current token: always the live one, rewritten before the last expires. */
export const TOKEN_FILE = '/run/cldpd/github-token';

/**
 * git's askpass program, for git older than 2.31 (which ignores `GIT_CONFIG_COUNT` and so
 * the credential helper): it answers git's username and password prompts the same way.
 */
export const ASKPASS_FILE = '/run/cldpd/git-askpass';

/** How long before a token expires it is replaced. GitHub's live an hour. */
const REFRESH_BEFORE_MS = 10 * 60_000;
/** After a failed refresh, the next try. */
const RETRY_MS = 30_000;
/** How long one revocation may take before it is given up (and logged). */
const REVOKE_TIMEOUT_MS = 10_000;

/**
 * When to replace a token that expires at `expiresAt`: ten minutes before, or half way
 * through its life when that is later (a clock ahead of GitHub's must not make it mint every
 * second), never sooner than a second from now.
 */
function refreshDelay(expiresAt: number, now = Date.now()): number {
  const life = expiresAt - now;
  return Math.max(life - REFRESH_BEFORE_MS, life / 2, 1000);
}

/**
 * The git credential helper cldpd gives a container: it answers `get` with the token file's
 * current content, so every clone, fetch and push uses a live token however long the run.
 * A `!` helper runs in `sh`; the token is read when git asks, never stored in git's config.
 */
export function credentialHelper(tokenFile = TOKEN_FILE): string {
  return `!f() { test "$1" = get || exit 0; t=$(cat ${tokenFile} 2>/dev/null); test -n "$t" || { sleep 1; t=$(cat ${tokenFile}); }; echo username=x-access-token; echo "password=$t"; }; f`;
}

/** What {@link GitHubAccess.close} leaves working. */
export interface CloseOptions {
  /**
   * Keep the live token (the one in the token file): an exec into a container whose own run
   * reads that file until its next refresh. It expires within the hour by itself.
   */
  readonly keepLive?: boolean;
}

/**
 * One run's access to its repository: the first token, the environment and files that hand
 * it to the container, and a timer that rewrites the token file before each token expires.
 * Every value it minted is in {@link secrets}, so the run's output can be cleaned of them,
 * and each is revoked at GitHub when the run ends ({@link close}).
 */
export class GitHubAccess {
  private current: RepoToken;
  private readonly minted: string[] = [];
  /** When each minted token expires (epoch ms): one past it is dead already, and GitHub would refuse to revoke it. */
  private readonly expiries = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** The refresh under way, if any: a token it mints after close is revoked too. */
  private refreshing: Promise<void> | undefined;
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly source: RepoTokenSource,
    private readonly repo: RepoInfo,
    private readonly permissions: Readonly<Record<string, string>>,
    first: RepoToken,
    private readonly logger?: Logger,
  ) {
    this.current = first;
    this.minted.push(first.token);
    this.expiries.set(first.token, first.expiresAt);
  }

  /** Mints the run's first token. Throws `GitHubAccess` naming the repository, the permissions and GitHub's reason. */
  static async open(source: RepoTokenSource, permissions: Readonly<Record<string, string>>, logger?: Logger): Promise<GitHubAccess> {
    const first = await mintOrExplain(source, permissions);
    let repo: RepoInfo;
    try {
      repo = await source.repository();
    } catch (err) {
      throw new CldpdError('GitHubAccess', `GitHub did not describe ${source.fullName} (${messageOf(err)}); the run cannot be given its repository.`, { cause: err });
    }
    return new GitHubAccess(source, repo, permissions, first, logger);
  }

  /** The repository the token is for. */
  get repository(): RepoInfo {
    return this.repo;
  }

  /** Every token this run was given: values to remove from whatever it printed. */
  get secrets(): readonly string[] {
    return this.minted;
  }

  /**
   * The variables that hand the token to the container: `GH_TOKEN` and `GITHUB_TOKEN` (the
   * first token: a process started later reads {@link TOKEN_FILE} for the live one),
   * `GH_HOST` on Enterprise Server, git's credential helper for the repository's host (by
   * `GIT_CONFIG_*`, so no file of the image changes; `GIT_ASKPASS` for git before 2.31), and
   * where the repository is.
   */
  env(): Record<string, string> {
    const origin = new URL(this.repo.cloneUrl).origin;
    return {
      GH_TOKEN: this.current.token,
      GITHUB_TOKEN: this.current.token,
      ...(this.source.ghHost ? { GH_HOST: this.source.ghHost } : {}),
      GIT_CONFIG_COUNT: '1',
      GIT_CONFIG_KEY_0: `credential.${origin}.helper`,
      GIT_CONFIG_VALUE_0: credentialHelper(),
      GIT_ASKPASS: ASKPASS_FILE,
      CLDPD_GITHUB_TOKEN_FILE: TOKEN_FILE,
      CLDPD_REPO: this.repo.fullName,
      CLDPD_REPO_URL: this.repo.cloneUrl,
      CLDPD_DEFAULT_BRANCH: this.repo.defaultBranch,
    };
  }

  /** The token file as the container gets it: readable by the agent's user, whoever that is. */
  files(): ContainerFile[] {
    return [
      { path: TOKEN_FILE, content: `${this.current.token}\n`, mode: 0o444 },
      { path: ASKPASS_FILE, content: `#!/bin/sh\ncase "$1" in Username*) echo x-access-token ;; *) cat ${TOKEN_FILE} ;; esac\n`, mode: 0o555 },
    ];
  }

  /**
   * Rewrites the token file with a new token before each one expires, through `write`, until
   * {@link close}. A failed mint or write is logged and tried again soon; it never ends the run.
   */
  keepFresh(write: (files: ContainerFile[]) => Promise<void>): void {
    const schedule = (inMs: number): void => {
      if (this.closed) return;
      this.timer = setTimeout(() => {
        this.refreshing = refresh().finally(() => {
          this.refreshing = undefined;
        });
      }, Math.max(1000, inMs));
      this.timer.unref();
    };
    const refresh = async (): Promise<void> => {
      try {
        const next = await mintOrExplain(this.source, this.permissions);
        this.minted.push(next.token);
        this.expiries.set(next.token, next.expiresAt);
        if (this.closed) return;
        this.current = next;
        await write(this.files());
        schedule(refreshDelay(next.expiresAt));
      } catch (err) {
        this.logger?.warn({ err: messageOf(err), repo: this.repo.fullName }, 'could not refresh the run\'s GitHub token; trying again');
        schedule(RETRY_MS);
      }
    };
    schedule(refreshDelay(this.current.expiresAt));
  }

  /**
   * Stops refreshing, then revokes every token this run was given that has not expired (one a
   * refresh under way mints as well), all at once, each within {@link REVOKE_TIMEOUT_MS}. A token GitHub would
   * not revoke is logged and left to expire: never an error, never a failed run. Idempotent:
   * every call resolves when the revocations have been answered.
   */
  close(options: CloseOptions = {}): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.closing ??= (async () => {
      // A refresh under way is waited for, so the token it mints is revoked too; but never for
      // longer than a revocation may take: a mint GitHub does not answer must not hold the run's end.
      await within(REVOKE_TIMEOUT_MS, this.refreshing ?? Promise.resolve()).catch(() => undefined);
      const revoke = this.source.revoke?.bind(this.source);
      if (!revoke) return;
      const now = Date.now();
      const tokens = this.minted.filter((t) => (this.expiries.get(t) ?? Infinity) > now && !(options.keepLive && t === this.current.token));
      await Promise.all(tokens.map(async (token) => {
        try {
          await within(REVOKE_TIMEOUT_MS, revoke(token), () => new Error(`no answer in ${REVOKE_TIMEOUT_MS / 1000} s`));
        } catch (err) {
          this.logger?.warn({ err: messageOf(err), repo: this.repo.fullName }, 'could not revoke one of the run\'s GitHub tokens; it expires within the hour');
        }
      }));
    })();
    return this.closing;
  }
}

async function mintOrExplain(source: RepoTokenSource, permissions: Readonly<Record<string, string>>): Promise<RepoToken> {
  try {
    return await source.mint(permissions);
  } catch (err) {
    const asked = Object.entries(permissions).map(([k, v]) => `${k}: ${v}`).join(', ');
    throw new CldpdError('GitHubAccess', `GitHub did not give a token for ${source.fullName} with ${asked} (${messageOf(err)}). The pod's pod.json "github" asks for these: grant them to the GitHub App in its settings (Permissions), and accept the new permissions on the installation.`, { cause: err });
  }
}
