import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Writable } from 'node:stream';
import { CldpdError, claudeProjectKey, issueBranch, parseIssueUrl, type ConversationExport, type SessionTakeover } from '../core/index.js';
import { shellWord, writeTo } from './stream-write.js';

/** The file `cldpd export` writes into the directory, saying what to run. */
export const EXPORT_README = 'CLDPD-EXPORT.md';

/** Where `--portable` puts the transcript, inside the directory. */
export const PORTABLE_DIR = '.cldpd-export';

/** What `cldpd export` was asked. */
export interface ExportRequest {
  readonly session: string;
  /** The directory to go on in; `./cldpd-<session>` when absent. */
  readonly out?: string | undefined;
  /** The transcript into `<dir>/.cldpd-export` instead of this user's Claude Code state. */
  readonly portable: boolean;
}

/** What the CLI knows of the person's machine that an export needs. */
export interface ExportPlaces {
  /** The working directory `--out` is relative to. */
  readonly cwd: string;
  /** This user's Claude Code state (`CLAUDE_CONFIG_DIR`, or `~/.claude`). */
  readonly claudeConfigDir: string;
  /** This Docker host's name, as the session page shows it. */
  readonly hostId: string;
}

/**
 * Pure: the commands that go on with an exported conversation in `dir`: check the issue's
 * branch out (a clone made in place, or a fetch in a checkout that is there already), put a
 * portable transcript where Claude Code looks for it (computed where it runs, so `dir` may
 * move to another machine), then `claude --resume <id>`.
 */
export function continueCommands(input: { readonly dir: string; readonly claudeSessionId: string; readonly issueUrl: string | undefined; readonly portable: boolean; readonly checkout: boolean }): string[] {
  const lines = [`cd ${shellWord(input.dir)}`];
  const issue = input.issueUrl ? parseIssueUrl(input.issueUrl) : undefined;
  if (issue) {
    const url = `${new URL(issue.url).origin}/${issue.owner}/${issue.repo}.git`;
    const branch = issueBranch(issue);
    if (!input.checkout) lines.push('git init -q', `git remote add origin ${shellWord(url)}`);
    lines.push(`git fetch origin ${shellWord(branch)}`, `git checkout ${shellWord(branch)}`);
  }
  if (input.portable) {
    const place = '"${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects/$(pwd | sed \'s/[^A-Za-z0-9]/-/g\')"';
    lines.push(`mkdir -p ${place}`, `cp ${PORTABLE_DIR}/${input.claudeSessionId}.jsonl ${place}/`);
  }
  lines.push(`claude --resume ${input.claudeSessionId}`);
  return lines;
}

/** Pure: the README an export leaves in its directory. */
export function exportReadme(input: { readonly conversation: ConversationExport; readonly transcriptPath: string; readonly hostId: string; readonly commands: readonly string[]; readonly portable: boolean }): string {
  const { conversation } = input;
  const issue = conversation.issueUrl ? parseIssueUrl(conversation.issueUrl) : undefined;
  return `${[
    `# Session ${conversation.sessionId}, to go on with here`,
    '',
    `cldpd exported the Claude Code conversation \`${conversation.claudeSessionId}\` of session \`${conversation.sessionId}\` (host \`${input.hostId}\`${issue ? `, issue ${issue.url}` : ''}).`,
    input.portable
      ? `Its transcript is in \`${PORTABLE_DIR}/\`; the commands below put it where Claude Code looks for it for this directory, wherever the directory is now.`
      : `Its transcript is at \`${input.transcriptPath}\`, where Claude Code looks for it when it runs in this directory.`,
    issue ? `The agent's work is on the branch \`${issueBranch(issue)}\` of ${issue.owner}/${issue.repo}.` : 'The session has no issue, so no branch: its workspace stays in its volumes on the host (`cldpd volumes`).',
    '',
    '```sh',
    ...input.commands,
    '```',
    '',
    `The agent worked in \`${conversation.containerCwd}\` in its container; here the conversation goes on in this directory.`,
    conversation.runGoing ? 'A run of the session was going when this was exported: the transcript is as it was then.' : '',
    'Your own Claude Code (its login or API key, its permission prompts) runs it from here on; the session on the host is not told.',
    '',
  ].join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`;
}

/**
 * `cldpd export <session>`: reads the conversation's transcript (see
 * SessionTakeover.exportConversation) and writes it where Claude Code finds it for the
 * directory (this user's Claude Code state, or with `portable` into the directory), with
 * CLDPD-EXPORT.md saying what to run; prints the commands on stdout. A transcript already
 * there with other content is never overwritten (`InvalidInput`): the person may have gone
 * on with it.
 */
export async function exportCommand(request: ExportRequest, takeover: SessionTakeover, places: ExportPlaces, io: { readonly stdout: Writable; readonly stderr: Writable }): Promise<number> {
  const conversation = await takeover.exportConversation(request.session);
  const dir = resolve(places.cwd, request.out ?? `cldpd-${request.session}`);
  const file = `${conversation.claudeSessionId}.jsonl`;
  const transcriptPath = request.portable ? join(dir, PORTABLE_DIR, file) : join(places.claudeConfigDir, 'projects', claudeProjectKey(dir), file);
  const before = await readFile(transcriptPath).catch(() => undefined);
  if (before && !before.equals(conversation.transcript)) {
    throw new CldpdError('InvalidInput', `${transcriptPath} exists already, with another version of the conversation (perhaps one you went on with). Move it away to export again, or export into another directory with --out.`);
  }
  await mkdir(dir, { recursive: true });
  await mkdir(dirname(transcriptPath), { recursive: true, mode: 0o700 });
  await writeFile(transcriptPath, conversation.transcript, { mode: 0o600 });
  const checkout = await readFile(join(dir, '.git', 'HEAD')).then(() => true, () => false);
  const commands = continueCommands({ dir, claudeSessionId: conversation.claudeSessionId, issueUrl: conversation.issueUrl, portable: request.portable, checkout });
  await writeFile(join(dir, EXPORT_README), exportReadme({ conversation, transcriptPath, hostId: places.hostId, commands, portable: request.portable }));
  if (conversation.runGoing) await writeTo(io.stderr, `cldpd: a run of session ${request.session} is going: the transcript is as it is now, up to its last whole line.\n`);
  await writeTo(io.stderr, `cldpd: the conversation of session ${request.session} is in ${transcriptPath}; ${join(dir, EXPORT_README)} says what to run:\n`);
  await writeTo(io.stdout, `${commands.join('\n')}\n`);
  return 0;
}
