import { keepStart } from '../core/index.js';
import type { Trigger } from '../queue/contract.js';
import { sanitizeUntrusted, withoutInvisible } from './sanitize.js';

/** A `/cldpd` command found in a comment. */
export type IssueCommand =
  | { readonly kind: 'resume'; readonly prompt: string }
  | { readonly kind: 'stop' }
  | { readonly kind: 'status' }
  /** `/cldpd` with a missing prompt or an unknown word: answered with the usage. */
  | { readonly kind: 'invalid'; readonly problem: string };

/** The label prefix that starts a session: `cldpd:<pod>`. */
export const LABEL_PREFIX = 'cldpd:';

/**
 * The pod named by a label `cldpd:<pod>` (case of the prefix ignored, whitespace trimmed),
 * or undefined for any other label. The pod name itself is validated later, by the core.
 */
export function podFromLabel(label: string | undefined | null): string | undefined {
  if (typeof label !== 'string') return undefined;
  const trimmed = label.trim();
  if (trimmed.slice(0, LABEL_PREFIX.length).toLowerCase() !== LABEL_PREFIX) return undefined;
  const pod = trimmed.slice(LABEL_PREFIX.length).trim();
  return pod.length > 0 ? pod : undefined;
}

/** Lines a reader sees as code or quotation: never commands. */
function visibleCommandLines(markdown: string): string[] {
  const lines = markdown.split('\n');
  const result: string[] = [];
  let fence: string | undefined;
  for (const line of lines) {
    const fenceMatch = /^ {0,3}(`{3,}|~{3,})/.exec(line);
    if (fence) {
      if (fenceMatch && fenceMatch[1]?.[0] === fence[0] && (fenceMatch[1]?.length ?? 0) >= fence.length && line.trim() === fenceMatch[1]) fence = undefined;
      result.push('');
      continue;
    }
    if (fenceMatch) {
      fence = fenceMatch[1];
      result.push('');
      continue;
    }
    // Quoted text (someone else's words) and indented code are not commands.
    if (/^ {0,3}>/.test(line) || /^( {4}|\t)/.test(line)) {
      result.push('');
      continue;
    }
    result.push(line);
  }
  return result;
}

const COMMAND_LINE = /^ {0,3}\/cldpd(?=\s|$)(.*)$/i;

/**
 * Finds the command of a comment: the first line that starts with `/cldpd` (up to three
 * spaces of indentation), outside code blocks, quotes and HTML comments. `resume` takes the
 * rest of that line and every following line as its prompt. One command per comment: later
 * `/cldpd` lines belong to the prompt. Returns undefined when the comment has no command.
 */
export function parseCommand(body: string | undefined | null): IssueCommand | undefined {
  if (typeof body !== 'string' || !body.includes('/')) return undefined;
  const clean = sanitizeUntrusted(body);
  const lines = visibleCommandLines(clean);
  const at = lines.findIndex((line) => COMMAND_LINE.test(line));
  if (at === -1) return undefined;
  const rest = (COMMAND_LINE.exec(lines[at] as string)?.[1] ?? '').replace(/^\s+/, '');
  const word = (/^\S+/.exec(rest)?.[0] ?? '').toLowerCase();
  const after = rest.slice(word.length);
  switch (word) {
    case 'resume': {
      const original = clean.split('\n');
      const prompt = [after, ...original.slice(at + 1)].join('\n').trim();
      return prompt ? { kind: 'resume', prompt } : { kind: 'invalid', problem: '`/cldpd resume` needs a prompt: `/cldpd resume <what to do next>`.' };
    }
    case 'stop':
      return { kind: 'stop' };
    case 'status':
      return { kind: 'status' };
    case '':
      return { kind: 'invalid', problem: '`/cldpd` needs a command.' };
    default:
      return { kind: 'invalid', problem: `\`/cldpd ${keepStart(word, 40)}\` is not a command.` };
  }
}

const COMMAND_WORD = '/cldpd';

/**
 * Whether a comment may hold a command, read from its raw text in one pass, without
 * sanitising it: the webhook request path asks this and leaves the rest to the intake step.
 * True whenever `parseCommand` finds a command: invisible characters are skipped, and the
 * letters of `/cldpd` may lie apart where markup that sanitising removes (it starts with `<`)
 * could stand between them. It may be true where `parseCommand` finds none (a `/cldpd` in a
 * quote or in code): the intake step then ignores the comment.
 */
export function mayHoldCommand(body: unknown): boolean {
  if (typeof body !== 'string' || !body.includes('/')) return false;
  const text = withoutInvisible(body);
  // adjacent[m]: the first m characters of `/cldpd` end right before this one; apart[m]: they
  // end before a run that starts with `<` (removed markup, maybe) and reaches this one.
  let adjacent = new Array<boolean>(COMMAND_WORD.length + 1).fill(false);
  const apart = new Array<boolean>(COMMAND_WORD.length).fill(false);
  for (let i = 0; i < text.length; i++) {
    const char = (text[i] as string).toLowerCase();
    const next = new Array<boolean>(COMMAND_WORD.length + 1).fill(false);
    for (let m = 0; m < COMMAND_WORD.length; m++) {
      const reached = m === 0 || adjacent[m] === true || apart[m] === true;
      if (reached && char === COMMAND_WORD[m]) next[m + 1] = true;
      if (m > 0 && adjacent[m] === true && char === '<') apart[m] = true;
    }
    if (next[COMMAND_WORD.length]) return true;
    adjacent = next;
  }
  return false;
}

/**
 * The trigger a comment's command makes (see `parseCommand`), or undefined when the comment
 * holds none. The intake step calls it on the comment as written.
 */
export function commandTrigger(body: string, commentId: number): Trigger | undefined {
  const command = parseCommand(body);
  if (!command) return undefined;
  switch (command.kind) {
    case 'resume':
      return { kind: 'resume', prompt: command.prompt, commentId, commentBody: body };
    case 'invalid':
      return { kind: 'invalid', problem: command.problem, commentId };
    default:
      return { kind: command.kind, commentId };
  }
}

/** The usage reply for an invalid command. */
export const COMMAND_HELP = [
  'Commands (at the start of a line in a comment):',
  '- `/cldpd resume <prompt>`: continue this issue\'s session with a new instruction',
  '- `/cldpd stop`: stop the running session',
  '- `/cldpd status`: show the session\'s state',
  'Start a session by adding the label `cldpd:<pod>` to the issue.',
].join('\n');
