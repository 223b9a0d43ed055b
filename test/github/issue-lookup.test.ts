import { describe, expect, it } from 'vitest';
import type { OctokitLike } from '../../src/github/comments-api.js';
import { issueLookup } from '../../src/github/issue-lookup.js';

const issue = { installationId: 7, owner: 'acme', repo: 'web', number: 3, url: 'https://github.com/acme/web/issues/3' };

/** An installation Octokit that answers every request with `answer` (or fails with it), and notes what was asked. */
function octokit(answer: { data: unknown } | { status: number }) {
  const asked: Array<{ installationId: number; route: string; parameters?: Record<string, unknown> }> = [];
  const octokitFor = async (installationId: number): Promise<OctokitLike> => ({
    request: async (route, parameters) => {
      asked.push({ installationId, route, ...(parameters ? { parameters } : {}) });
      if ('status' in answer) throw Object.assign(new Error(`HTTP ${answer.status}`), { status: answer.status });
      return answer;
    },
  });
  return { octokitFor, asked };
}

describe('issueLookup', () => {
  it.each([
    ['open', { data: { state: 'open', closed_at: null } }, { state: 'open' }],
    ['closed, with when', { data: { state: 'closed', closed_at: '2026-11-23T08:55:00Z' } }, { state: 'closed', closedAt: Date.parse('2026-11-23T08:55:00Z') }],
    ['closed, without a readable when', { data: { state: 'closed', closed_at: 'yesterday' } }, { state: 'closed', closedAt: undefined }],
    ['deleted (404)', { status: 404 }, { state: 'unknown' }],
    ['gone (410)', { status: 410 }, { state: 'unknown' }],
  ] as const)('%s', async (_, answer, expected) => {
    const { octokitFor, asked } = octokit(answer);
    await expect(issueLookup(octokitFor)(issue)).resolves.toEqual(expected);
    expect(asked).toEqual([{ installationId: 7, route: 'GET /repos/{owner}/{repo}/issues/{issue_number}', parameters: { owner: 'acme', repo: 'web', issue_number: 3 } }]);
  });

  it('rejects on any other failure, so nothing is decided on it', async () => {
    await expect(issueLookup(octokit({ status: 502 }).octokitFor)(issue)).rejects.toThrow('HTTP 502');
  });
});
