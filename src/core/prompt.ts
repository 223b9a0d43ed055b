import { CldpdError } from './errors.js';
import { isConversationId } from './events.js';
import { issueBranch, parseIssueUrl, type IssueAddress } from './issue-address.js';

/** 100 KiB: a prompt that travels as one argv element (Linux caps one at 128 KiB). */
export const MAX_PROMPT_BYTES = 100 * 1024;

/**
 * 512 KiB: a prompt that travels on standard input as one stream-json line, measured as that
 * line. The agent echoes the line back with a few fields more, and that echo must stay one
 * whole output line (the line limit is 1 MiB): it is how cldpd knows the message was taken.
 */
export const MAX_STDIN_PROMPT_BYTES = 512 * 1024;

/**
 * How a command takes its prompt:
 * - `argv`: an element holds `{prompt}` (bounded by {@link MAX_PROMPT_BYTES});
 * - `stream-json`: Claude Code's `--input-format stream-json`: the prompt is a user message
 *   on standard input; `live` when `--replay-user-messages` is there too, so the CLI echoes
 *   each message it takes and more messages can follow while it runs;
 * - `none`: any other command gets no prompt, and no standard input: a command that reads
 *   its input (a shell, say) never runs issue text it did not ask for.
 */
export type PromptChannel = { readonly kind: 'argv' } | { readonly kind: 'none' } | { readonly kind: 'stream-json'; readonly live: boolean };

/** Pure: the prompt channel of a command (see {@link PromptChannel}). */
export function promptChannel(cmd: readonly string[]): PromptChannel {
  if (cmd.some((arg) => arg.includes('{prompt}'))) return { kind: 'argv' };
  const streamJson = cmd.some((arg, i) => arg === '--input-format=stream-json' || (arg === '--input-format' && cmd[i + 1] === 'stream-json'));
  if (streamJson) return { kind: 'stream-json', live: cmd.includes('--replay-user-messages') };
  return { kind: 'none' };
}

/** One Claude Code stream-json user message (a line of its standard input). */
export function streamJsonUserMessage(text: string): string {
  return `${JSON.stringify({ type: 'user', message: { role: 'user', content: [{ type: 'text', text }] } })}\n`;
}

/**
 * Pure: what the agent is told of the repository when its run has a token: where it is,
 * how git is set up, the branch to push to and, when its token may, that it may open a pull
 * request. Only what the token allows is offered.
 */
export function repositoryBrief(issue: IssueAddress, permissions: Readonly<Record<string, string>>): string {
  const lines = [
    `The issue's repository is ${issue.owner}/${issue.repo} ($CLDPD_REPO_URL; default branch $CLDPD_DEFAULT_BRANCH). git is set up to fetch${permissions.contents === 'write' ? ' and push' : ''} it over HTTPS with a token cldpd keeps fresh for the whole run: $GH_TOKEN holds it at the start, the file $CLDPD_GITHUB_TOKEN_FILE always holds the current one.`,
  ];
  if (permissions.contents === 'write') lines.push(`Commit your work on the branch ${issueBranch(issue)} and push it there.`);
  if (permissions.pull_requests === 'write') lines.push(`You may open a pull request from that branch to the default branch (for example: GH_TOKEN=$(cat "$CLDPD_GITHUB_TOKEN_FILE") gh pr create --fill), or update the one that is open; when none is open after your run, cldpd opens one itself (unless the repository turned that off), with your final answer in its description.`);
  if (permissions.contents === 'write') lines.push('cldpd links the branches you push and the pull requests you open in its final comment on the issue.');
  return lines.join(' ');
}

/**
 * The start prompt: the pod's template, then the issue to work on (with what the agent may
 * do in its repository, when the run has a token), then the caller's own prompt. Throws
 * `InvalidInput` when there is nothing to do or it is too long.
 */
export function buildStartPrompt(template: string | undefined, input: { issueUrl?: string | undefined; prompt?: string | undefined; github?: Readonly<Record<string, string>> | undefined }, channel: PromptChannel = { kind: 'argv' }): string {
  const parts: string[] = [];
  if (template?.trim()) parts.push(template.trim());
  if (input.issueUrl) parts.push(`Work on this GitHub issue: ${input.issueUrl}`);
  if (input.issueUrl && input.github && Object.keys(input.github).length > 0) parts.push(repositoryBrief(parseIssueUrl(input.issueUrl), input.github));
  if (input.prompt?.trim()) parts.push(input.prompt.trim());
  if (!input.issueUrl && !input.prompt?.trim()) {
    throw new CldpdError('InvalidInput', 'Nothing to do: give an issue URL (--issue) or a prompt (--prompt).');
  }
  return checkPromptSize(parts.join('\n\n'), channel);
}

/**
 * Throws `InvalidInput` for an empty prompt or one over the limit of its channel:
 * {@link MAX_PROMPT_BYTES} in argv, {@link MAX_STDIN_PROMPT_BYTES} on standard input.
 */
export function checkPromptSize(prompt: string, channel: PromptChannel = { kind: 'argv' }): string {
  if (!prompt.trim()) throw new CldpdError('InvalidInput', 'The prompt is empty: say what the agent should do.');
  const bytes = channel.kind === 'stream-json' ? Buffer.byteLength(streamJsonUserMessage(prompt)) : Buffer.byteLength(prompt);
  const limit = channel.kind === 'stream-json' ? MAX_STDIN_PROMPT_BYTES : MAX_PROMPT_BYTES;
  if (bytes > limit) {
    const why = channel.kind === 'argv' ? ' (the pod\'s command takes it as an argument; Claude Code\'s --input-format stream-json takes more, on standard input)' : '';
    const what = channel.kind === 'stream-json' ? 'The prompt, as the stream-json line it travels in,' : 'The prompt';
    throw new CldpdError('InvalidInput', `${what} is ${bytes} bytes; the limit is ${limit}${why}. Shorten it or point the agent at a file.`);
  }
  return prompt;
}

/** Values for the placeholders of a pod's command. */
export interface CommandValues {
  readonly prompt: string;
  readonly sessionId: string;
  readonly claudeSessionId?: string | undefined;
  readonly issueUrl?: string | undefined;
  /** The pod's limits (pod.json `maxTurns`, `maxBudgetUsd`), as the command takes them. */
  readonly maxTurns?: string | undefined;
  readonly maxBudgetUsd?: string | undefined;
  /**
   * Where the agent's model requests go (see modelUrlOf): the run's gateway, when it holds the
   * key, else the pod's endpoint variable or the provider's default. For a CLI that reads its
   * endpoint from its options only (Codex CLI).
   */
  readonly modelUrl?: string | undefined;
}

/**
 * Fills `{prompt}`, `{agentSessionId}` (the agent's conversation id; `{claudeSessionId}` is
 * the same value), `{sessionId}`, `{issueUrl}`, `{modelUrl}`, `{maxTurns}` and `{maxBudgetUsd}` in each argv
 * element, in one pass (a prompt containing "{sessionId}" stays as written). No shell is
 * involved. Throws `InvalidInput` when the command needs a value that is unknown.
 */
export function renderCommand(template: readonly string[], values: CommandValues): string[] {
  return template.map((arg) =>
    arg.replace(/\{(prompt|claudeSessionId|agentSessionId|sessionId|issueUrl|modelUrl|maxTurns|maxBudgetUsd)\}/g, (_, placeholder: keyof CommandValues | 'agentSessionId') => {
      const name = placeholder === 'agentSessionId' ? 'claudeSessionId' : placeholder;
      const value = values[name];
      if (name === 'claudeSessionId' && value !== undefined && value !== '' && !isConversationId(value)) {
        throw new CldpdError('InvalidInput', `Session ${values.sessionId} has a conversation id that is no id (${JSON.stringify(value.slice(0, 40))}), so the resume command cannot take it. Start a new session instead.`);
      }
      if (value === undefined || value === '') {
        throw new CldpdError('InvalidInput', name === 'claudeSessionId'
          ? `Session ${values.sessionId} has no conversation id of its agent recorded (the agent never reported one), so the resume command cannot continue it. Start a new session instead.`
          : `The pod's command uses {${name}}, but this session has none.`);
      }
      return value;
    }),
  );
}
