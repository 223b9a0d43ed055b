import { describe, expect, it } from 'vitest';
import type { OctokitLike } from '../../src/github/comments-api.js';
import { repoReader, repoVisibility } from '../../src/github/repo-access.js';

/** An installation Octokit that answers every request with `answer`, or fails with its status. */
const octokitFor = (answer: { data: unknown } | { status: number }) => async (): Promise<OctokitLike> => ({
  request: async () => {
    if ('status' in answer) throw Object.assign(new Error(`HTTP ${answer.status}`), { status: answer.status });
    return answer;
  },
});

describe('repoVisibility', () => {
  it.each([
    [{ private: false, visibility: 'public' }, 'public'],
    [{ private: false }, 'public'],
    [{ private: false, visibility: 'internal' }, 'private'],
    [{ private: true, visibility: 'private' }, 'private'],
    [{}, 'private'],
  ])('%j is %s', async (data, expected) => {
    await expect(repoVisibility(octokitFor({ data }))(1, 'acme', 'web')).resolves.toBe(expected);
  });

  it('rejects when GitHub does not answer', async () => {
    await expect(repoVisibility(octokitFor({ status: 500 }))(1, 'acme', 'web')).rejects.toThrow('HTTP 500');
  });
});

describe('repoReader', () => {
  it.each([
    [{ data: { permission: 'read' } }, true],
    [{ data: { permission: 'admin' } }, true],
    [{ data: { permission: 'none' } }, false],
    [{ status: 404 }, false],
  ] as const)('%j reads: %s', async (answer, expected) => {
    await expect(repoReader(octokitFor(answer))(1, 'acme', 'web', 'alice')).resolves.toBe(expected);
  });

  it('rejects on any other failure: never taken for a "no"', async () => {
    await expect(repoReader(octokitFor({ status: 403 }))(1, 'acme', 'web', 'alice')).rejects.toThrow('HTTP 403');
  });
});
