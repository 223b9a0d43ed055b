import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { validatePodJson } from '../../src/core/index.js';

const example = (file: string) => readFile(new URL(`../../examples/pods/claude/${file}`, import.meta.url), 'utf8');

describe('examples/pods/claude', () => {
  it('installs the Claude Code version the real-CLI suite runs', async () => {
    const pinned = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { claudeCodeVersion: string } }).config.claudeCodeVersion;
    expect(await example('Dockerfile')).toContain(`ARG CLAUDE_CODE_VERSION=${pinned}`);
  });

  it('is on Node 22 or newer, runs as a non-root user, and has bash and git', async () => {
    const dockerfile = await example('Dockerfile');
    const node = /^FROM node:(\d+)/m.exec(dockerfile);
    expect(Number(node?.[1])).toBeGreaterThanOrEqual(22);
    expect(dockerfile).toMatch(/^USER agent$/m);
    expect(dockerfile).toMatch(/install .*\bgit\b.*\bbash\b/);
  });

  it('has a valid pod.json that persists Claude\'s state and the workspace', async () => {
    const checked = validatePodJson(JSON.parse(await example('pod.json')));
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.value.persist).toEqual(['~/.claude', '/workspace']);
  });
});
