import { describe, expect, it } from 'vitest';
import { buildStartPrompt, parseIssueUrl, renderCommand } from '../../src/core/index.js';
import { MAX_PROMPT_BYTES, issueKey } from '../../src/core/prompt.js';

describe('parseIssueUrl', () => {
  it.each([
    ['https://github.com/acme/web/issues/12', { owner: 'acme', repo: 'web', number: 12 }],
    ['https://ghe.corp.example/team/api/issues/3/', { owner: 'team', repo: 'api', number: 3 }],
    [' https://github.com/a/b/issues/1 ', { owner: 'a', repo: 'b', number: 1 }],
  ])('%s', (url, expected) => {
    expect(parseIssueUrl(url)).toMatchObject(expected);
  });

  it.each(['github.com/a/b/issues/1', 'https://github.com/a/b/pull/1', 'https://github.com/a/b/issues/x', 'https://github.com/a/issues/1', ''])('refuses %j', (url) => {
    expect(() => parseIssueUrl(url)).toThrow(/is not an issue URL/);
  });

  it('makes a Docker-safe key', () => {
    expect(issueKey(parseIssueUrl('https://github.com/Acme/Web.App/issues/7'))).toBe('acme-web.app-7');
  });
});

describe('buildStartPrompt', () => {
  it.each([
    [undefined, { issueUrl: 'https://github.com/a/b/issues/1' }, 'Work on this GitHub issue: https://github.com/a/b/issues/1'],
    ['Be brief.\n', { issueUrl: 'https://github.com/a/b/issues/1' }, 'Be brief.\n\nWork on this GitHub issue: https://github.com/a/b/issues/1'],
    ['Be brief.', { prompt: 'Fix the tests' }, 'Be brief.\n\nFix the tests'],
    [undefined, { issueUrl: 'https://github.com/a/b/issues/1', prompt: 'Start with the parser' }, 'Work on this GitHub issue: https://github.com/a/b/issues/1\n\nStart with the parser'],
  ])('template %j with %j', (template, input, expected) => {
    expect(buildStartPrompt(template, input)).toBe(expected);
  });

  it('refuses an empty request and an over-long prompt', () => {
    expect(() => buildStartPrompt('T', {})).toThrow(/Nothing to do/);
    expect(() => buildStartPrompt('T', { prompt: '   ' })).toThrow(/Nothing to do/);
    expect(() => buildStartPrompt(undefined, { prompt: 'x'.repeat(MAX_PROMPT_BYTES + 1) })).toThrow(/the limit is 102400/);
  });
});

describe('renderCommand', () => {
  const values = { prompt: 'do {sessionId} $(rm -rf /)', sessionId: 'web-0011aabb', claudeSessionId: 'c-1', issueUrl: 'https://github.com/a/b/issues/1' };

  it.each([
    [['claude', '-p', '{prompt}'], ['claude', '-p', 'do {sessionId} $(rm -rf /)']],
    [['x', '--resume={claudeSessionId}'], ['x', '--resume=c-1']],
    [['x', '{sessionId}', '{issueUrl}'], ['x', 'web-0011aabb', 'https://github.com/a/b/issues/1']],
    [['x', '{unknown}'], ['x', '{unknown}']],
  ])('%j', (template, expected) => {
    expect(renderCommand(template, values)).toEqual(expected);
  });

  it('says why a resume without a captured Claude session cannot continue', () => {
    expect(() => renderCommand(['claude', '--resume', '{claudeSessionId}'], { prompt: 'p', sessionId: 's' })).toThrow(/no Claude session id recorded/);
  });
});
