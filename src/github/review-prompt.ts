import { MAX_PROMPT_BYTES, keepEnd, keepStart } from '../core/index.js';
import { parseCommand, type IssueCommand } from './commands.js';
import type { OctokitLike } from './comments-api.js';
import { sanitizeUntrusted } from './sanitize.js';

/** A line comment of a review, as the API gives it (`GET /repos/{owner}/{repo}/pulls/{n}/comments`). */
export interface LineComment {
  readonly id: number;
  readonly reviewId: number | undefined;
  readonly path: string;
  /** The last line it is on (new side; the original line when it is outdated), and the first of a range. */
  readonly line: number | undefined;
  readonly startLine: number | undefined;
  readonly diffHunk: string;
  readonly body: string;
  readonly author: string;
  /** The thread's first comment, for a reply. */
  readonly inReplyTo: number | undefined;
}

/** A submitted review with its line comments and, for replies, the threads they answer. */
export interface ReviewRead {
  readonly id: number;
  readonly body: string;
  readonly author: string;
  /** APPROVED, CHANGES_REQUESTED or COMMENTED. */
  readonly state: string;
  readonly comments: readonly LineComment[];
  /** Earlier comments of the threads some of `comments` reply to, by the thread's first comment. */
  readonly threads: ReadonlyMap<number, readonly LineComment[]>;
}

/** Review comments of a pull request read at most: 5 pages of 100, newest first. */
const MAX_COMMENT_PAGES = 5;
/** A review's line comments put in the prompt at most; the rest are counted. */
const MAX_LINE_COMMENTS = 40;
/** Characters of one text (a review's body, a comment) in the prompt at most. */
const MAX_TEXT_CHARS = 6_000;
/** Lines of a diff hunk in the prompt at most (its end: where the comment sits). */
const MAX_HUNK_LINES = 20;
/** Earlier comments of a thread in the prompt at most (its newest). */
const MAX_THREAD_COMMENTS = 6;

function lineComment(raw: unknown): LineComment | undefined {
  const c = raw as { id?: unknown; pull_request_review_id?: unknown; path?: unknown; line?: unknown; original_line?: unknown; start_line?: unknown; original_start_line?: unknown; diff_hunk?: unknown; body?: unknown; user?: { login?: unknown } | null; in_reply_to_id?: unknown };
  if (typeof c?.id !== 'number' || typeof c.path !== 'string') return undefined;
  const num = (v: unknown): number | undefined => (typeof v === 'number' && Number.isSafeInteger(v) ? v : undefined);
  return {
    id: c.id,
    reviewId: num(c.pull_request_review_id),
    path: c.path,
    line: num(c.line) ?? num(c.original_line),
    startLine: num(c.start_line) ?? num(c.original_start_line),
    diffHunk: typeof c.diff_hunk === 'string' ? c.diff_hunk : '',
    body: typeof c.body === 'string' ? c.body : '',
    author: typeof c.user?.login === 'string' ? c.user.login : 'ghost',
    inReplyTo: num(c.in_reply_to_id),
  };
}

/**
 * Reads review `reviewId` of pull request `pull`: its body and state, its line comments and
 * the earlier comments of the threads they reply to. The pull request's review comments are
 * listed newest first, at most MAX_COMMENT_PAGES pages: a review just submitted is among them.
 */
export async function readReview(octokit: OctokitLike, pull: { owner: string; repo: string; number: number }, reviewId: number): Promise<ReviewRead> {
  const { data } = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}/reviews/{review_id}', { owner: pull.owner, repo: pull.repo, pull_number: pull.number, review_id: reviewId });
  const review = data as { body?: string | null; state?: string; user?: { login?: string } | null };
  const all: LineComment[] = [];
  for (let page = 1; page <= MAX_COMMENT_PAGES; page++) {
    const listed = await octokit.request('GET /repos/{owner}/{repo}/pulls/{pull_number}/comments', { owner: pull.owner, repo: pull.repo, pull_number: pull.number, sort: 'created', direction: 'desc', per_page: 100, page });
    const rows = Array.isArray(listed.data) ? listed.data : [];
    for (const row of rows) {
      const comment = lineComment(row);
      if (comment) all.push(comment);
    }
    if (rows.length < 100) break;
  }
  const comments = all.filter((c) => c.reviewId === reviewId).sort((a, b) => a.id - b.id);
  const threads = new Map<number, LineComment[]>();
  for (const c of comments) {
    if (c.inReplyTo === undefined || threads.has(c.inReplyTo)) continue;
    const root = c.inReplyTo;
    threads.set(root, all.filter((o) => (o.id === root || o.inReplyTo === root) && o.reviewId !== reviewId).sort((a, b) => a.id - b.id));
  }
  return { id: reviewId, body: typeof review.body === 'string' ? review.body : '', author: review.user?.login ?? 'ghost', state: review.state ?? '', comments, threads };
}

/**
 * The command a review carries: its body's (any command), else `/cldpd resume` in one of its
 * line comments (a line comment's other commands are not read). Undefined when it has none.
 */
export function reviewCommand(review: Pick<ReviewRead, 'body' | 'comments'>): IssueCommand | undefined {
  const own = parseCommand(keepStart(review.body, 65_536));
  if (own) return own;
  for (const c of review.comments) {
    const command = parseCommand(keepStart(c.body, 65_536));
    if (command?.kind === 'resume') return command;
  }
  return undefined;
}

/** Untrusted text as the prompt carries it: sanitised, bounded. */
function text(raw: string, max = MAX_TEXT_CHARS): string {
  const clean = sanitizeUntrusted(keepStart(raw, max * 4)).trim();
  return clean.length > max ? `${keepStart(clean, max)}\n…(cut: ${clean.length - max} more characters)` : clean;
}

/** A fence longer than any run of backticks in `body`, so the body cannot close it. */
function fence(body: string): string {
  const longest = Math.max(2, ...[...body.matchAll(/`+/g)].map((m) => m[0].length));
  return '`'.repeat(longest + 1);
}

function where(c: LineComment): string {
  if (c.line === undefined) return `\`${text(c.path, 300)}\``;
  return c.startLine !== undefined && c.startLine !== c.line ? `\`${text(c.path, 300)}\`, lines ${c.startLine}–${c.line}` : `\`${text(c.path, 300)}\`, line ${c.line}`;
}

function hunk(c: LineComment): string {
  const lines = sanitizeUntrusted(keepEnd(c.diffHunk, 8_000)).split('\n');
  const shown = lines.slice(-MAX_HUNK_LINES).join('\n');
  const f = fence(shown);
  return `${f}diff\n${shown}\n${f}`;
}

const STATES: Record<string, string> = { APPROVED: 'approved', CHANGES_REQUESTED: 'changes requested', COMMENTED: 'commented' };

/**
 * The message a review sends the session: the review's body and each line comment with its
 * file, line (or range), the end of the diff hunk it sits on and its text, with the earlier
 * comments of a thread it replies to; all untrusted text sanitised and bounded, and the whole
 * within MAX_PROMPT_BYTES (line comments past that are counted, not sent). Ends telling the
 * agent to push to the pull request's branch.
 */
export function buildReviewPrompt(review: ReviewRead, pull: { number: number; head: string | undefined }): string {
  const state = STATES[review.state.toUpperCase()];
  const head = `Review of pull request #${pull.number} by @${review.author}${state ? ` (${state})` : ''}:`;
  const body = text(review.body);
  const parts = [body ? `${head}\n${body}` : head];
  const ending = `Work on the pull request's branch${pull.head ? ` \`${text(pull.head, 255)}\`` : ''} and push your changes to it: the pull request follows that branch.\n\n(Review from @${review.author} on pull request #${pull.number}.)`;
  let bytes = Buffer.byteLength(parts[0] as string) + Buffer.byteLength(ending) + 200;
  let left = 0;
  const comments = review.comments.slice(0, MAX_LINE_COMMENTS);
  left += review.comments.length - comments.length;
  const rendered: string[] = [];
  comments.forEach((c, i) => {
    const thread = c.inReplyTo === undefined ? [] : (review.threads.get(c.inReplyTo) ?? []).slice(-MAX_THREAD_COMMENTS);
    const earlier = thread.length > 0 ? `\nEarlier in this thread:\n${thread.map((t) => `> @${t.author}: ${text(t.body, 2_000).replace(/\n/g, '\n> ')}`).join('\n')}` : '';
    const one = `${i + 1}. ${where(c)}:\n${hunk(c)}${earlier}\n@${c.author}: ${text(c.body)}`;
    const size = Buffer.byteLength(one) + 2;
    if (bytes + size > MAX_PROMPT_BYTES) {
      left += 1;
      return;
    }
    bytes += size;
    rendered.push(one);
  });
  if (rendered.length > 0) parts.push(`Line comments (${rendered.length}):\n\n${rendered.join('\n\n')}`);
  if (left > 0) parts.push(`(${left} more line comment${left === 1 ? '' : 's'} of this review did not fit: read them on the pull request.)`);
  parts.push(ending);
  return parts.join('\n\n');
}
