import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { AGENTS, validatePodJson } from '../../src/core/index.js';
import { GEMINI_DEFAULTS_PATH } from '../../src/core/agents/gemini-agent.js';

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

  it('needs no settings of its own: cldpd writes the CLI\'s system defaults (the key\'s sign-in, no usage statistics, no update checks, the pod\'s turn limit)', async () => {
    const dockerfile = await example('Dockerfile');
    expect(dockerfile).not.toMatch(/^RUN .*gemini-cli\/settings\.json/m);
    const files = AGENTS.gemini.files?.({ podEnv: { GEMINI_API_KEY: 'k' }, limits: { maxTurns: 7 } }) ?? [];
    expect(files.map((f) => f.path)).toEqual([GEMINI_DEFAULTS_PATH]);
    expect(JSON.parse(files[0]?.content ?? '')).toEqual({
      security: { auth: { selectedType: 'gemini-api-key' } },
      privacy: { usageStatisticsEnabled: false },
      general: { enableAutoUpdate: false, enableAutoUpdateNotification: false },
      model: { maxSessionTurns: 7 },
    });
    expect(AGENTS.gemini.env({ podEnv: {}, persisted: [], home: '/home/agent' })).toMatchObject({ GEMINI_CLI_SYSTEM_DEFAULTS_PATH: GEMINI_DEFAULTS_PATH });
    // No key of its own (a Vertex AI sign-in, say): no sign-in chosen for it; a pod that names its own defaults gets none of cldpd's.
    expect(JSON.parse(AGENTS.gemini.files?.({ podEnv: {}, limits: {} })[0]?.content ?? '')).not.toHaveProperty('security');
    expect(AGENTS.gemini.files?.({ podEnv: { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: '/mine.json' }, limits: {} })).toEqual([]);
    expect(AGENTS.gemini.env({ podEnv: { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: '/mine.json' }, persisted: [], home: '/h' })).not.toHaveProperty('GEMINI_CLI_SYSTEM_DEFAULTS_PATH');
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
