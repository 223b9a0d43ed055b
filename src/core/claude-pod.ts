import type { Pod } from './pod.js';
import { defaultCommands } from './pod-config.js';
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

/**
 * The pod's commands that run Claude Code: its start command when that is Claude Code
 * (the default, or one whose program is `claude`); its resume command when that is too,
 * unless it is the default one under a start command of the pod's own that is not (every
 * pod gets the default resume command, and it resumes the Claude session only a start of
 * Claude Code makes).
 */
function claudeCommands(pod: Pod): Array<readonly string[]> {
  const { command, resumeCommand } = pod.config;
  const defaultResume = defaultCommands(pod.config).resumeCommand;
  const ownResume = resumeCommand.length !== defaultResume.length || resumeCommand.some((arg, i) => arg !== defaultResume[i]);
  return [command, ...(isClaude(command) || ownResume ? [resumeCommand] : [])].filter(isClaude);
}

/**
 * The pod's resume command when it continues a Claude Code conversation (see
 * claudeCommands); undefined for a pod whose agent is a command of its own.
 */
export function claudeResumeCommand(pod: Pod): readonly string[] | undefined {
  return claudeCommands(pod).includes(pod.config.resumeCommand) ? pod.config.resumeCommand : undefined;
}

/** True when the pod runs Claude Code (see claudeCommands). */
function runsClaude(pod: Pod): boolean {
  return claudeCommands(pod).length > 0;
}

/** True when the command starts Claude Code with --dangerously-skip-permissions. */
export function skipsPermissions(cmd: readonly string[]): boolean {
  return isClaude(cmd) && cmd.includes('--dangerously-skip-permissions');
}

/**
 * Pure: why `commands` (default: the pod's commands that run Claude Code) cannot run in
 * `image` as configured, or undefined. Claude
 * Code refuses `--dangerously-skip-permissions` as root (exit 1) unless IS_SANDBOX=1 says
 * the container is a sandbox.
 */
export function rootProblem(pod: Pod, image: Pick<ImageInfo, 'user' | 'env'>, commands: ReadonlyArray<readonly string[]> = claudeCommands(pod)): string | undefined {
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
