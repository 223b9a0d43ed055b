import type { Pod } from './pod.js';
import type { ImageInfo, Runner } from './runner.js';

/** True when the image's processes run as root (no USER, or USER root / 0). */
export function runsAsRoot(image: Pick<ImageInfo, 'user'>): boolean {
  const user = image.user.split(':')[0] ?? '';
  return user === '' || user === 'root' || user === '0';
}

/** True when the command's program is Claude Code (`claude`, by name or path). */
function isClaude(cmd: readonly string[]): boolean {
  return (cmd[0] ?? '').split('/').pop() === 'claude';
}

/** True when the pod's start or resume command runs Claude Code. */
function runsClaude(pod: Pod): boolean {
  return isClaude(pod.config.command) || isClaude(pod.config.resumeCommand);
}

/** True when the command starts Claude Code with --dangerously-skip-permissions. */
export function skipsPermissions(cmd: readonly string[]): boolean {
  return isClaude(cmd) && cmd.includes('--dangerously-skip-permissions');
}

/**
 * Pure: why `commands` (default: the pod's start and resume commands) cannot run in
 * `image` as configured, or undefined. Claude
 * Code refuses `--dangerously-skip-permissions` as root (exit 1) unless IS_SANDBOX=1 says
 * the container is a sandbox.
 */
export function rootProblem(pod: Pod, image: Pick<ImageInfo, 'user' | 'env'>, commands: ReadonlyArray<readonly string[]> = [pod.config.command, pod.config.resumeCommand]): string | undefined {
  if (!runsAsRoot(image)) return undefined;
  if (!commands.some(skipsPermissions)) return undefined;
  if (pod.config.env.IS_SANDBOX || image.env.IS_SANDBOX) return undefined;
  return `Pod "${pod.name}": its image runs as root, and Claude Code refuses --dangerously-skip-permissions as root. `
    + 'Add a user to the Dockerfile ("RUN useradd --create-home agent" then "USER agent"), as examples/pods/claude does; '
    + 'or, to run the agent as root anyway, set "env": {"IS_SANDBOX": "1"} in pod.json.';
}

/**
 * Pure: environment a pod running Claude Code needs beyond its own. Claude Code keeps its
 * settings file at `~/.claude.json`, beside (not inside) `~/.claude`: when only `~/.claude`
 * is persisted, every new container starts without it and the CLI complains on stderr.
 * `CLAUDE_CONFIG_DIR` puts both in the persisted directory. Nothing when the pod does not
 * run `claude`, does not persist `~/.claude`, or sets `CLAUDE_CONFIG_DIR` itself.
 */
export function claudeEnv(pod: Pod, persistedPaths: readonly string[], home: string): Record<string, string> {
  const dir = `${home.replace(/\/$/, '')}/.claude`;
  if (!runsClaude(pod) || pod.config.env.CLAUDE_CONFIG_DIR !== undefined || !persistedPaths.includes(dir)) return {};
  return { CLAUDE_CONFIG_DIR: dir };
}

/**
 * What may keep the agent of `pod` from working in its built image, in words that say what
 * to change; empty when nothing was found or the image is not built yet. `deep` also looks
 * into the image's filesystem (a short-lived container is created, never started).
 */
export async function imageWarnings(pod: Pod, runner: Pick<Runner, 'inspectImage' | 'imageHasPath'>, deep: boolean): Promise<string[]> {
  const image = await runner.inspectImage(pod.config.image);
  if (!image) return [];
  const warnings: string[] = [];
  const root = rootProblem(pod, image);
  if (root) warnings.push(root);
  if (deep && runsClaude(pod) && !(await runner.imageHasPath(image.id, '/bin/bash')) && !(await runner.imageHasPath(image.id, '/usr/bin/bash'))) {
    warnings.push(`Pod "${pod.name}": its image has no bash, and Claude Code's Bash tool runs only in bash or zsh. Install bash in the Dockerfile (for example "RUN apt-get install -y bash").`);
  }
  return warnings;
}
