import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { validatePodJson } from '../../src/core/index.js';

const example = (file: string) => readFile(new URL(`../../examples/pods/gemini/${file}`, import.meta.url), 'utf8');

describe('examples/pods/gemini', () => {
  it('installs the Gemini CLI version the real-CLI suite runs', async () => {
    const pinned = (JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { config: { geminiCliVersion: string } }).config.geminiCliVersion;
    expect(await example('Dockerfile')).toContain(`ARG GEMINI_CLI_VERSION=${pinned}`);
  });

  it('is on Node 20 or newer, runs as a non-root user, and has bash and git', async () => {
    const dockerfile = await example('Dockerfile');
    const node = /^FROM node:(\d+)/m.exec(dockerfile);
    expect(Number(node?.[1])).toBeGreaterThanOrEqual(20);
    expect(dockerfile).toMatch(/^USER agent$/m);
    expect(dockerfile).toMatch(/install .*\bgit\b.*\bbash\b/);
  });

  it('gives the CLI system settings after its install: the API key\'s auth, no usage statistics, the turn limit from the environment', async () => {
    const dockerfile = await example('Dockerfile');
    const install = dockerfile.indexOf('npm install -g @google/gemini-cli');
    const printf = dockerfile.indexOf("printf '%s\\n'");
    const settings = dockerfile.indexOf('>/etc/gemini-cli/settings.json', printf);
    expect(install).toBeGreaterThan(0);
    expect(printf).toBeGreaterThan(install);
    const json = [...dockerfile.slice(printf + "printf '%s\\n'".length, settings).matchAll(/'([^']*)'/g)].map((m) => m[1]).join('\n');
    expect(JSON.parse(json)).toEqual({
      security: { auth: { selectedType: 'gemini-api-key' } },
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
      model: { maxSessionTurns: '${GEMINI_MAX_SESSION_TURNS:--1}' },
    });
  });

  it('has a valid pod.json that names its agent and persists Gemini\'s state and the workspace', async () => {
    const checked = validatePodJson(JSON.parse(await example('pod.json')));
    expect(checked.ok).toBe(true);
    if (checked.ok) {
      expect(checked.value.agent).toBe('gemini');
      expect(checked.value.persist).toEqual(['~/.gemini', '/workspace']);
    }
  });
});
