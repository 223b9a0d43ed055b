import { keepStart } from '../core/index.js';
import { sanitizeUntrusted } from './sanitize.js';

/** The largest share of the prompt one part of the issue may take. */
const MAX_PART_CHARS = 30_000;

function clip(text: string, max: number): string {
  return text.length > max ? `${keepStart(text, max)}\n…(cut: ${text.length - max} more characters on the issue)` : text;
}

/**
 * The issue context handed to the agent after the pod template: title, body and the
 * triggering comment, each sanitised and bounded so the whole fits the prompt limit.
 */
export function buildIssuePrompt(input: { title: string; body: string | null | undefined; comment?: { author: string; body: string } | undefined }): string {
  const parts = [`Issue title: ${keepStart(sanitizeUntrusted(input.title).replace(/\s+/g, ' '), 500)}`];
  const body = sanitizeUntrusted(input.body ?? '');
  parts.push(`Issue description:\n${body ? clip(body, MAX_PART_CHARS) : '(empty)'}`);
  if (input.comment) {
    parts.push(`Comment from @${input.comment.author} that triggered this run:\n${clip(sanitizeUntrusted(input.comment.body), MAX_PART_CHARS)}`);
  }
  return parts.join('\n\n');
}

/**
 * The message a `/cldpd resume` sends: the instruction as written (already sanitised by the
 * command parser) and who gave it. The issue itself is not repeated: the session has it
 * from its start, and the instruction is the comment.
 */
export function buildResumePrompt(input: { author: string; instruction: string; on?: { number: number; head: string | undefined } }): string {
  if (!input.on) return `${input.instruction}\n\n(Instruction from @${input.author}, in a comment on the issue.)`;
  const branch = input.on.head ? ` \`${keepStart(sanitizeUntrusted(input.on.head), 255)}\`` : '';
  return `${input.instruction}\n\n(Instruction from @${input.author}, in a comment on pull request #${input.on.number}. Push your changes to its branch${branch}: the pull request follows it.)`;
}
