import { describe, expect, it } from 'vitest';
import { buildStartPrompt, parseIssueUrl, renderCommand, repositoryBrief } from '../../src/core/index.js';
import { MAX_PROMPT_BYTES } from '../../src/core/prompt.js';

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
    expect(() => renderCommand(['claude', '--resume', '{claudeSessionId}'], { prompt: 'p', sessionId: 's' })).toThrow(/no conversation id of its agent recorded/);
  });
});

describe('repositoryBrief', () => {
  const issue = parseIssueUrl('https://github.com/acme/web/issues/12');
  it('offers what the token allows and no more', () => {
    const push = repositoryBrief(issue, { contents: 'write', pull_requests: 'write' });
    expect(push).toContain('acme/web');
    expect(push).toContain('fetch and push it over HTTPS');
    expect(push).toContain('on the branch cldpd/issue-12 and push it there');
    expect(push).toContain('gh pr create');
    const read = repositoryBrief(issue, { contents: 'read' });
    expect(read).toContain('set up to fetch it over HTTPS');
    expect(read).not.toMatch(/push|pull request/);
    expect(repositoryBrief(issue, { contents: 'write' })).not.toContain('pull request from');
  });

  it('is in the start prompt only when the run gets a token', () => {
    const withToken = buildStartPrompt(undefined, { issueUrl: issue.url, github: { contents: 'write' } });
    expect(withToken).toMatch(/Work on this GitHub issue: https:\/\/github.com\/acme\/web\/issues\/12\n\nThe issue's repository is acme\/web/);
    expect(buildStartPrompt(undefined, { issueUrl: issue.url, github: {} })).not.toContain('repository is');
    expect(buildStartPrompt(undefined, { issueUrl: issue.url })).not.toContain('repository is');
  });

  it('fills {modelUrl} and {agentSessionId} in the same pass as the prompt: a prompt naming them stays as written', () => {
    const cmd = renderCommand(['codex', '-c', 'openai_base_url={modelUrl}', 'resume', '{agentSessionId}', '--', '{prompt}'], { prompt: 'use {modelUrl} and {agentSessionId}', sessionId: 's', claudeSessionId: 't-1', modelUrl: 'http://10.213.0.2:3128/abc' });
    expect(cmd).toEqual(['codex', '-c', 'openai_base_url=http://10.213.0.2:3128/abc', 'resume', 't-1', '--', 'use {modelUrl} and {agentSessionId}']);
    expect(() => renderCommand(['x', '{modelUrl}'], { prompt: 'p', sessionId: 's' })).toThrow(/uses \{modelUrl\}/);
  });

  it('a conversation id the agent reported is taken into argv only when it is an id: never an option, never spaced', () => {
    const resume = ['codex', 'exec', 'resume', '{agentSessionId}', '--', '{prompt}'];
    expect(renderCommand(resume, { prompt: 'p', sessionId: 's', claudeSessionId: '0199a7e2-1c3b-7d4e-9f00-123456789abc' })[3]).toBe('0199a7e2-1c3b-7d4e-9f00-123456789abc');
    for (const forged of ['-cmodel_provider=x', '--help', 'a b', 'x'.repeat(200), '../../etc/passwd']) {
      expect(() => renderCommand(resume, { prompt: 'p', sessionId: 's', claudeSessionId: forged }), forged).toThrow(/no id/);
    }
  });
});
