import { MAX_PROMPT_BYTES, keepEnd, keepStart } from '../core/index.js';
import type { OctokitLike } from './comments-api.js';
import { sanitizeUntrusted } from './sanitize.js';

/** A check run that failed, as the API gives it. */
export interface FailedCheck {
  readonly name: string;
  readonly conclusion: string;
  readonly title: string;
  readonly summary: string;
  /** The end of its output's text: where a failure is usually said. */
  readonly text: string;
  readonly url: string | undefined;
}

/** Conclusions of a check run that count as failed. */
const FAILED = new Set(['failure', 'timed_out', 'action_required', 'startup_failure']);
/** Check runs of one commit read at most. */
const MAX_CHECK_PAGES = 3;
/** Failed checks put in the prompt at most. */
const MAX_CHECKS = 10;

/** The failed check runs on commit `sha`, newest of each name (the API's `filter=latest`), at most MAX_CHECK_PAGES pages. */
export async function failedChecks(octokit: OctokitLike, repo: { owner: string; repo: string }, sha: string): Promise<FailedCheck[]> {
  const failed: FailedCheck[] = [];
  for (let page = 1; page <= MAX_CHECK_PAGES; page++) {
    const { data } = await octokit.request('GET /repos/{owner}/{repo}/commits/{ref}/check-runs', { owner: repo.owner, repo: repo.repo, ref: sha, filter: 'latest', per_page: 100, page });
    const runs = ((data as { check_runs?: unknown[] }).check_runs ?? []) as Array<{ name?: unknown; conclusion?: unknown; html_url?: unknown; output?: { title?: unknown; summary?: unknown; text?: unknown } | null }>;
    for (const run of runs) {
      if (typeof run?.name !== 'string' || !FAILED.has(String(run.conclusion))) continue;
      const str = (v: unknown): string => (typeof v === 'string' ? v : '');
      failed.push({ name: run.name, conclusion: String(run.conclusion), title: str(run.output?.title), summary: str(run.output?.summary), text: str(run.output?.text), url: typeof run.html_url === 'string' ? run.html_url : undefined });
    }
    if (runs.length < 100) break;
  }
  return failed;
}

function clean(text: string, max: number, end = false): string {
  const bounded = end ? keepEnd(text, max * 4) : keepStart(text, max * 4);
  const sanitized = sanitizeUntrusted(bounded).trim();
  if (sanitized.length <= max) return sanitized;
  return end ? `…${keepEnd(sanitized, max)}` : `${keepStart(sanitized, max)}…`;
}

/**
 * The message that resumes a session to fix failing checks: which checks failed on which
 * commit, each one's summary and the end of its output (untrusted: sanitised and bounded),
 * and that the agent pushes its fix to the pull request's branch; within MAX_PROMPT_BYTES
 * however the output is written (checks past it are counted, not sent).
 */
export function buildChecksPrompt(checks: readonly FailedCheck[], pull: { number: number; head: string | undefined; sha: string }, attempt: { n: number; of: number }): string {
  const head = `Checks failed on pull request #${pull.number} at commit ${pull.sha.slice(0, 12)} (the commit you pushed). Find the cause and fix it.`;
  const ending = `Push the fix to the pull request's branch${pull.head ? ` \`${clean(pull.head, 255)}\`` : ''}. This is automatic fix ${attempt.n} of at most ${attempt.of} for this pull request (\`fixChecks\` in .github/cldpd.yml).`;
  // Bytes, not characters, bound the message: each check is added only while the whole still fits.
  let bytes = Buffer.byteLength(head) + Buffer.byteLength(ending) + 200;
  const lines = [head];
  let shown = 0;
  for (const c of checks.slice(0, MAX_CHECKS)) {
    const parts = [`- ${clean(c.name, 200)}: ${c.conclusion}${c.title ? `: ${clean(c.title, 300)}` : ''}`];
    if (c.summary) parts.push(`  Summary:\n${indent(clean(c.summary, 3_000))}`);
    if (c.text) parts.push(`  End of its output:\n${indent(clean(c.text, 4_000, true))}`);
    const one = parts.join('\n');
    const size = Buffer.byteLength(one) + 2;
    if (bytes + size > MAX_PROMPT_BYTES) break;
    bytes += size;
    lines.push(one);
    shown += 1;
  }
  if (checks.length > shown) lines.push(`(${checks.length - shown} more failed checks are listed on the pull request.)`);
  if (checks.length === 0) lines.push('(The API lists no failed check run for that commit: look at the pull request\'s checks.)');
  lines.push(ending);
  return lines.join('\n\n');
}

function indent(text: string): string {
  return text.split('\n').map((l) => `    ${l}`).join('\n');
}
