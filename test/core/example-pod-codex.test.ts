import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { validatePodJson } from '../../src/core/index.js';

const example = (file: string) => readFile(new URL(`../../examples/pods/codex/${file}`, import.meta.url), 'utf8');

describe('examples/pods/codex', () => {
  it('installs the Codex CLI version the real-CLI suite runs', async () => {
    const pinned = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { codexVersion: string } }).config.codexVersion;
    expect(await example('Dockerfile')).toContain(`ARG CODEX_VERSION=${pinned}`);
    expect(await example('Dockerfile')).toContain('npm install -g @openai/codex@${CODEX_VERSION}');
  });

  it('runs as a non-root user owning the workspace, and has bash and git', async () => {
    const dockerfile = await example('Dockerfile');
    expect(dockerfile).toMatch(/^USER agent$/m);
    expect(dockerfile).toMatch(/chown agent:agent \/workspace/);
    expect(dockerfile).toMatch(/install .*\bgit\b.*\bbash\b/);
  });

  it('has a valid pod.json naming Codex, persisting its state and the workspace, with its keys passed on and no limit it lacks', async () => {
    const json = JSON.parse(await example('pod.json')) as Record<string, unknown>;
    const checked = validatePodJson(json);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    expect(checked.value.agent).toBe('codex');
    expect(checked.value.persist).toEqual(['~/.codex', '/workspace']);
    expect(json.inheritEnv).toEqual(expect.arrayContaining(['CODEX_API_KEY']));
    expect(json.maxTurns).toBeUndefined();
    expect(json.maxBudgetUsd).toBeUndefined();
    expect(await example('template.md')).toContain('/workspace');
  });
});
