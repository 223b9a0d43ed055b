import type { Pod } from './pod.js';
import { issueBranch, type IssueAddress } from './issue-address.js';

/** One step run in a pod's container before its agent: the checkout, then each pod.json `setup` command. */
export interface SetupStep {
  /** What it does, in words, for the terminal and the status comment. */
  readonly name: string;
  readonly cmd: readonly string[];
  /** Run as this user (`0`: root); the container's own user when absent. */
  readonly user?: string;
}

/** The file whose existence lets a held container start its agent (see {@link holdCommand}). */
export const RELEASE_FILE = '/run/cldpd/release';

/**
 * The container's command when setup steps come first: `sh` waits (sleeping a fifth of a
 * second at a time) until cldpd writes {@link RELEASE_FILE}, then becomes the agent (`exec`,
 * so the agent is the process Docker signals and whose exit code counts). The agent runs as
 * the container's user; steps that need root run beside it, as execs that end first.
 */
export function holdCommand(cmd: readonly string[]): string[] {
  // A sleep without fractions sleeps a second; an image with no sleep at all ends at once (127).
  return ['sh', '-c', `while [ ! -e ${RELEASE_FILE} ]; do sleep 0.2 2>/dev/null || sleep 1 || exit 127; done; exec "$@"`, 'cldpd-hold', ...cmd];
}

/**
 * The checkout as a shell script (argv: directory, clone URL, branch): a fresh clone where
 * the directory is empty or missing, checking out the issue's branch when the repository
 * has it; a fetch where a clone is already there (a resume keeps its workspace as it is).
 * Authenticates through the credential helper cldpd gives the container.
 */
const CHECKOUT = `set -e
dir=$1; url=$2; branch=$3
if [ -d "$dir/.git" ]; then
  git -C "$dir" fetch --prune origin
  exit 0
fi
if [ -d "$dir" ] && [ -n "$(ls -A "$dir")" ]; then
  echo "cldpd: $dir is not empty and holds no git repository; checkout needs it empty (or a clone)." >&2
  exit 1
fi
git clone "$url" "$dir"
if git -C "$dir" rev-parse --verify --quiet "refs/remotes/origin/$branch" >/dev/null; then
  git -C "$dir" checkout -q "$branch"
  echo "on the issue's branch $branch"
fi`;

/**
 * Pure: the steps a new container takes before its agent: the checkout of the issue's
 * repository into `workdir` when the pod asks for it (and the run has an issue), then the
 * pod's `setup` commands, which every new container runs (what root installed went with the
 * last container). A resume's checkout only fetches into the persisted clone, leaving the
 * agent's work as it was. Empty when there is nothing to do.
 */
export function setupSteps(pod: Pod, input: { issue?: IssueAddress | undefined; cloneUrl?: string | undefined; workdir: string; resume: boolean }): SetupStep[] {
  const steps: SetupStep[] = [];
  if (pod.config.checkout && input.issue && input.cloneUrl) {
    steps.push({
      name: `${input.resume ? 'fetching' : 'cloning'} ${input.issue.owner}/${input.issue.repo}`,
      cmd: ['sh', '-c', CHECKOUT, 'cldpd-checkout', input.workdir, input.cloneUrl, issueBranch(input.issue)],
    });
  }
  for (const step of pod.config.setup) steps.push({ name: step.run.join(' '), cmd: [...step.run], ...(step.root ? { user: '0' } : {}) });
  return steps;
}
