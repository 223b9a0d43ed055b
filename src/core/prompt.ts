import { CldpdError } from './errors.js';

/** 100 KiB: a prompt travels as one argv element, which Linux caps at 128 KiB. */
export const MAX_PROMPT_BYTES = 100 * 1024;

const ISSUE_URL = /^https?:\/\/[^/\s]+\/([^/\s]+)\/([^/\s]+)\/issues\/(\d+)\/?$/;

/** An issue reference parsed from its URL. */
export interface IssueRef {
  readonly url: string;
  readonly owner: string;
  readonly repo: string;
  readonly number: number;
}

/** Parses `https://<host>/<owner>/<repo>/issues/<n>` (github.com or Enterprise Server); throws `InvalidInput` otherwise. */
export function parseIssueUrl(url: string): IssueRef {
  const match = ISSUE_URL.exec(url.trim());
  if (!match) {
    throw new CldpdError('InvalidInput', `"${url}" is not an issue URL. Use the form https://github.com/OWNER/REPO/issues/NUMBER.`);
  }
  return { url: url.trim().replace(/\/$/, ''), owner: match[1] as string, repo: match[2] as string, number: Number(match[3]) };
}

/** A stable, Docker-safe key for an issue: `owner-repo-<n>`, lowercase. */
export function issueKey(issue: IssueRef): string {
  return `${issue.owner}-${issue.repo}-${issue.number}`.toLowerCase().replace(/[^a-z0-9_.-]+/g, '-');
}

/**
 * The start prompt: the pod's template, then the issue to work on, then the caller's own
 * prompt. Throws `InvalidInput` when there is nothing to do or it is too long.
 */
export function buildStartPrompt(template: string | undefined, input: { issueUrl?: string | undefined; prompt?: string | undefined }): string {
  const parts: string[] = [];
  if (template?.trim()) parts.push(template.trim());
  if (input.issueUrl) parts.push(`Work on this GitHub issue: ${input.issueUrl}`);
  if (input.prompt?.trim()) parts.push(input.prompt.trim());
  if (!input.issueUrl && !input.prompt?.trim()) {
    throw new CldpdError('InvalidInput', 'Nothing to do: give an issue URL (--issue) or a prompt (--prompt).');
  }
  return checkPromptSize(parts.join('\n\n'));
}

/** Throws `InvalidInput` for an empty prompt or one over {@link MAX_PROMPT_BYTES}. */
export function checkPromptSize(prompt: string): string {
  if (!prompt.trim()) throw new CldpdError('InvalidInput', 'The prompt is empty: say what the agent should do.');
  const bytes = Buffer.byteLength(prompt);
  if (bytes > MAX_PROMPT_BYTES) {
    throw new CldpdError('InvalidInput', `The prompt is ${bytes} bytes; the limit is ${MAX_PROMPT_BYTES}. Shorten it or point the agent at a file.`);
  }
  return prompt;
}

/** Values for the placeholders of a pod's command. */
export interface CommandValues {
  readonly prompt: string;
  readonly sessionId: string;
  readonly claudeSessionId?: string | undefined;
  readonly issueUrl?: string | undefined;
}

/**
 * Fills `{prompt}`, `{claudeSessionId}`, `{sessionId}` and `{issueUrl}` in each argv
 * element, in one pass (a prompt containing "{sessionId}" stays as written). No shell is
 * involved. Throws `InvalidInput` when the command needs a value that is unknown.
 */
export function renderCommand(template: readonly string[], values: CommandValues): string[] {
  return template.map((arg) =>
    arg.replace(/\{(prompt|claudeSessionId|sessionId|issueUrl)\}/g, (_, name: keyof CommandValues) => {
      const value = values[name];
      if (value === undefined || value === '') {
        throw new CldpdError('InvalidInput', name === 'claudeSessionId'
          ? `Session ${values.sessionId} has no Claude session id recorded (the agent never reported one), so the resume command cannot continue it. Start a new session instead.`
          : `The pod's command uses {${name}}, but this session has none.`);
      }
      return value;
    }),
  );
}
