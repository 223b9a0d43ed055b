import { describe, expect, it } from 'vitest';
import { DEFAULT_COMMAND, DEFAULT_RESUME_COMMAND, POD_DEFAULTS, resolvePodConfig, validatePodJson } from '../../src/core/index.js';
import { LINUX_CAPABILITIES, expandHome, parseMemory } from '../../src/core/pod-config.js';
import { AGENT_CAPABILITIES, ISOLATED_NETWORK } from '../../src/core/runner.js';

const every = {
  image: 'registry.local/team/agent:1.2',
  env: { MODE: 'ci', EMPTY: '' },
  inheritEnv: ['ANTHROPIC_API_KEY'],
  buildArgs: { NODE_VERSION: '20' },
  workdir: '/workspace',
  mounts: [{ source: '~/src', target: '/src', readOnly: true }, { source: '/opt/cache', target: '/cache' }],
  command: ['my-agent', '--task', '{prompt}'],
  resumeCommand: ['my-agent', '--continue', '{claudeSessionId}', '{prompt}'],
  persist: ['~/.claude', '/workspace'],
  timeoutSeconds: 600,
  buildTimeoutSeconds: 120,
  stopGraceSeconds: 5,
  memory: '512m',
  cpus: 1.5,
  pids: 256,
  network: 'none',
  egress: 'open',
  capAdd: ['NET_RAW'],
  github: { contents: 'write', pull_requests: 'write' },
  checkout: true,
  setup: [['npm', 'ci'], { run: ['apt-get', 'install', '-y', 'jq'], user: 'root' }],
  agent: 'codex',
  prices: { input: 1.25, output: 10, cachedInput: 0.125 },
};

describe('validatePodJson and resolvePodConfig', () => {
  it('accepts every field and applies none of the defaults it overrides', () => {
    const checked = validatePodJson(every);
    expect(checked.ok).toBe(true);
    if (!checked.ok) return;
    const config = resolvePodConfig('agent', checked.value, '/home/me');
    expect(config).toEqual({
      image: 'registry.local/team/agent:1.2',
      env: { MODE: 'ci', EMPTY: '' },
      inheritEnv: ['ANTHROPIC_API_KEY'],
      buildArgs: { NODE_VERSION: '20' },
      workdir: '/workspace',
      mounts: [
        { source: '/home/me/src', target: '/src', readOnly: true },
        { source: '/opt/cache', target: '/cache', readOnly: false },
      ],
      command: ['my-agent', '--task', '{prompt}'],
      resumeCommand: ['my-agent', '--continue', '{claudeSessionId}', '{prompt}'],
      persist: ['~/.claude', '/workspace'],
      timeoutSeconds: 600,
      buildTimeoutSeconds: 120,
      stopGraceSeconds: 5,
      memoryBytes: 512 * 1024 * 1024,
      cpus: 1.5,
      pids: 256,
      network: 'none',
      egress: { open: true },
      capAdd: ['NET_RAW'],
      github: { contents: 'write', pull_requests: 'write' },
      checkout: true,
      setup: [{ run: ['npm', 'ci'], root: false }, { run: ['apt-get', 'install', '-y', 'jq'], root: true }],
      agent: 'codex',
      prices: { input: 1.25, output: 10, cachedInput: 0.125 },
    });
    expect(Object.isFrozen(config)).toBe(true);
  });

  it('a pod naming its agent gets that CLI\'s commands and persisted state; one naming none runs Claude Code', () => {
    const resolve = (json: Record<string, unknown>) => {
      const checked = validatePodJson(json);
      if (!checked.ok) throw new Error(checked.problems.join());
      return resolvePodConfig('p', checked.value, '/home/me');
    };
    const codex = resolve({ agent: 'codex', workdir: '/workspace' });
    expect(codex.command[0]).toBe('codex');
    expect(codex.command).toContain('{prompt}');
    expect(codex.resumeCommand.join(' ')).toMatch(/\{agentSessionId\}/);
    expect(codex.persist).toEqual(['~/.codex', '/workspace']);
    const gemini = resolve({ agent: 'gemini' });
    expect(gemini.command[0]).toBe('gemini');
    expect(gemini.persist).toEqual(['~/.gemini']);
    expect(resolve({}).agent).toBe('claude');
    expect(resolve({}).command).toEqual(DEFAULT_COMMAND);
    expect(resolve({ agent: 'claude', maxTurns: 3 }).command).toEqual([...DEFAULT_COMMAND, '--max-turns', '3']);
  });

  it('refuses an unknown agent, and a limit the agent\'s CLI cannot take, rather than ignore it', () => {
    const problems = (json: Record<string, unknown>) => {
      const checked = validatePodJson(json);
      return checked.ok ? [] : checked.problems;
    };
    expect(problems({ agent: 'copilot' })).toEqual(['field "agent" must be one of "claude", "codex", "gemini" (leave it out for Claude Code)']);
    expect(problems({ agent: 'codex', maxBudgetUsd: 5 }).join()).toMatch(/"maxBudgetUsd" cannot bound Codex CLI, which has no spending limit/);
    expect(problems({ agent: 'codex', maxTurns: 5 }).join()).toMatch(/"maxTurns" cannot bound Codex CLI, which has no turn limit/);
    // Gemini CLI takes a turn limit as a setting cldpd writes, whatever its command: no {maxTurns} needed.
    expect(problems({ agent: 'gemini', maxTurns: 5, command: ['gemini', '--prompt={prompt}'] })).toEqual([]);
    expect(problems({ agent: 'gemini', maxBudgetUsd: 5 }).join()).toMatch(/"maxBudgetUsd" cannot bound Gemini CLI/);
    // …unless the pod points the CLI at settings of its own, which would take the limit away.
    expect(problems({ agent: 'gemini', maxTurns: 5, env: { GEMINI_CLI_SYSTEM_DEFAULTS_PATH: '/x' } }).join()).toMatch(/"maxTurns" reaches Gemini CLI as its setting model.maxSessionTurns.*leave GEMINI_CLI_SYSTEM_DEFAULTS_PATH out/);
    expect(problems({ agent: 'gemini', maxTurns: 5, inheritEnv: ['GEMINI_CLI_SYSTEM_DEFAULTS_PATH'] })).toHaveLength(1);
    expect(problems({ prices: { input: 1, output: 2 } }).join()).toMatch(/"prices" prices a CLI that reports tokens only: Claude Code reports its own cost/);
    // Claude Code takes it as an option: a pod's own command must pass it on.
    expect(problems({ maxTurns: 5, command: ['claude', '-p', '{prompt}'] }).join()).toMatch(/has no \{maxTurns\}.*Claude Code: "--max-turns"/);
    expect(problems({ prices: { input: -1, output: 1 } }).join()).toMatch(/prices.input" must be 0 or more/);
    expect(problems({ prices: { input: 1 } }).join()).toMatch(/prices.output/);
  });

  it('gives an empty pod.json safe defaults', () => {
    const checked = validatePodJson({});
    if (!checked.ok) throw new Error(checked.problems.join());
    const config = resolvePodConfig('web', checked.value, '/home/me');
    expect(config.image).toBe('cldpd-web:latest');
    expect(config.command).toEqual(DEFAULT_COMMAND);
    expect(config.resumeCommand).toEqual(DEFAULT_RESUME_COMMAND);
    expect(config.command).toContain('stream-json');
    expect(config.persist).toEqual(['~/.claude']);
    expect(config.timeoutSeconds).toBe(POD_DEFAULTS.timeoutSeconds);
    expect(config.stopGraceSeconds).toBe(POD_DEFAULTS.stopGraceSeconds);
    expect(config.memoryBytes).toBe(4 * 1024 ** 3);
    expect(config.cpus).toBe(2);
    expect(config.pids).toBe(1024);
    expect(config.network).toBe('cldpd');
    expect(config.capAdd).toEqual([]);
  });

  it('limits: maxTurns and maxBudgetUsd become Claude Code\'s flags on the default commands, before --resume', () => {
    const checked = validatePodJson({ maxTurns: 30, maxBudgetUsd: 2.5 });
    if (!checked.ok) throw new Error(checked.problems.join());
    const config = resolvePodConfig('web', checked.value, '/home/me');
    expect(config.command).toEqual([...DEFAULT_COMMAND, '--max-turns', '30', '--max-budget-usd', '2.5']);
    expect(config.resumeCommand).toEqual([...DEFAULT_COMMAND, '--max-turns', '30', '--max-budget-usd', '2.5', '--resume', '{claudeSessionId}']);
    expect(config).toMatchObject({ maxTurns: 30, maxBudgetUsd: 2.5 });
  });

  it('limits: a pod\'s own command gets them only where it says {maxTurns} / {maxBudgetUsd}', () => {
    const checked = validatePodJson({ maxTurns: 3, command: ['agent', '--turns={maxTurns}'] });
    if (!checked.ok) throw new Error(checked.problems.join());
    const config = resolvePodConfig('web', checked.value, '/home/me');
    expect(config.command).toEqual(['agent', '--turns={maxTurns}']);
    expect(config.resumeCommand).toEqual([...DEFAULT_COMMAND, '--max-turns', '3', '--resume', '{claudeSessionId}']);
    // A limit its own command would never pass on is refused, not ignored.
    const silent = validatePodJson({ maxBudgetUsd: 1, command: ['agent', '--max-turns', '5'] });
    expect(silent.ok).toBe(false);
    if (!silent.ok) expect(silent.problems).toEqual([expect.stringMatching(/^field "command" has no \{maxBudgetUsd\}, so the pod's "maxBudgetUsd" would not reach the agent/)]);
  });

  it.each([
    [{ maxTurns: 0 }, 'field "maxTurns" must be at least 1'],
    [{ maxTurns: 2.5 }, 'field "maxTurns" must be a whole number'],
    [{ maxTurns: '5' }, 'field "maxTurns" must be of type number'],
    [{ maxBudgetUsd: 0 }, 'field "maxBudgetUsd" must be at least 0.01 (US dollars)'],
    [{ maxBudgetUsd: 1e9 }, 'field "maxBudgetUsd" must be at most 100000 (US dollars)'],
    [{ command: ['a', '{maxTurns}'] }, 'field "command" uses {maxTurns}, but pod.json sets no "maxTurns": set it, or leave the placeholder out'],
    [{ resumeCommand: ['a', '--budget', '{maxBudgetUsd}'] }, 'field "resumeCommand" uses {maxBudgetUsd}, but pod.json sets no "maxBudgetUsd": set it, or leave the placeholder out'],
  ])('limits: refuses %j', (json, problem) => {
    const checked = validatePodJson(json);
    expect(checked.ok).toBe(false);
    if (!checked.ok) expect(checked.problems).toContain(problem);
  });

  it('hardening: an empty pod.json runs on cldpd\'s isolated network, not Docker\'s shared bridge', () => {
    const checked = validatePodJson({});
    if (!checked.ok) throw new Error(checked.problems.join());
    expect(resolvePodConfig('web', checked.value, '/h').network).toBe(ISOLATED_NETWORK);
    expect(ISOLATED_NETWORK).toBe('cldpd');
    expect(POD_DEFAULTS.network).toBe(ISOLATED_NETWORK);
  });

  it('hardening: capAdd takes Linux capability names, with or without CAP_, in any case, once each', () => {
    const checked = validatePodJson({ capAdd: ['net_raw', 'CAP_SYS_PTRACE', 'NET_RAW', 'CHOWN'], egress: 'open' });
    if (!checked.ok) throw new Error(checked.problems.join());
    expect(resolvePodConfig('web', checked.value, '/h').capAdd).toEqual(['NET_RAW', 'SYS_PTRACE', 'CHOWN']);
    expect(LINUX_CAPABILITIES).toHaveLength(41);
    for (const name of AGENT_CAPABILITIES) expect(LINUX_CAPABILITIES).toContain(name);
  });

  it('hardening: a gated pod cannot take back what would route around its gateway; an open pod can', () => {
    for (const cap of ['NET_ADMIN', 'net_raw', 'CAP_SYS_ADMIN', 'BPF', 'SYS_MODULE']) {
      const checked = validatePodJson({ capAdd: [cap, 'SYS_PTRACE'] });
      expect(checked.ok, cap).toBe(false);
      if (!checked.ok) expect(checked.problems.join('\n')).toMatch(/field "capAdd" gives [A-Z_]+, with which a container could route around its egress gateway .*"egress": "open"/);
      expect(validatePodJson({ capAdd: [cap], egress: 'open' }).ok).toBe(true);
      expect(validatePodJson({ capAdd: [cap], network: 'bridge' }).ok).toBe(true);
    }
    expect(validatePodJson({ capAdd: ['SYS_PTRACE'], egress: ['pypi.org'] }).ok).toBe(true);
  });

  it.each([
    [{ github: { content: 'write' } }, 'field "github.content": the name is not a GitHub repository permission: use one of actions,'],
    [{ github: { contents: 'admin' } }, 'field "github.contents" must be "read" or "write"'],
    [{ github: ['contents'] }, 'field "github" must be of type record'],
    [{ checkout: true }, 'field "checkout" clones with the run\'s token: add "github": {"contents": "read"} (or "write", to push)'],
    [{ checkout: true, github: { pull_requests: 'write' } }, 'field "checkout" clones with the run\'s token'],
    [{ setup: [[]] }, 'field "setup[0]" must name at least the program to run'],
    [{ setup: [{ run: ['x'], user: 'admin' }] }, 'field "setup[0]" must be an argv array'],
    [{ setup: 'npm ci' }, 'field "setup" must be of type array'],
    [{ capAdd: ['NET_RAWW'] }, 'field "capAdd[0]" must be a Linux capability name like "NET_RAW" or "SYS_PTRACE", not "NET_RAWW"'],
    [{ capAdd: ['CHOWN', 'sys admin'] }, 'field "capAdd[1]" must be a Linux capability name like "NET_RAW" or "SYS_PTRACE", not "sys admin"'],
    [{ capAdd: ['ALL'] }, 'field "capAdd[0]" must name each capability the pod needs: "ALL" would give the container every one'],
    [{ capAdd: 'NET_RAW' }, 'field "capAdd" must be of type array'],
    [{ capAdd: [13] }, 'field "capAdd[0]" must be of type string'],
  ])('hardening: refuses %j: %s', (json, message) => {
    const checked = validatePodJson(json);
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.join('; ')).toContain(message);
  });

  it('persists the workdir by default when one is set', () => {
    const checked = validatePodJson({ workdir: '/work' });
    if (!checked.ok) throw new Error();
    expect(resolvePodConfig('p', checked.value, '/h').persist).toEqual(['~/.claude', '/work']);
  });

  it.each([
    [[], 'field "(top level)" must be a JSON object'],
    ['x', 'field "(top level)" must be a JSON object'],
    [null, 'field "(top level)" must be a JSON object'],
    [{ imgae: 'x' }, 'unknown field "imgae"; the known fields are: image, env'],
    [{ image: 42 }, 'field "image" must be of type string'],
    [{ image: 'Upper/Case' }, 'field "image" must be a Docker image reference'],
    [{ env: [] }, 'field "env" must be of type record'],
    [{ env: { A: 1 } }, 'field "env.A" must be of type string'],
    [{ env: { 'BAD-NAME': 'x' } }, 'must be an environment variable name'],
    [{ inheritEnv: 'HOME' }, 'field "inheritEnv" must be of type array'],
    [{ inheritEnv: ['1X'] }, 'field "inheritEnv[0]" must be an environment variable name'],
    [{ buildArgs: { V: true } }, 'field "buildArgs.V" must be of type string'],
    [{ workdir: 'relative/dir' }, 'field "workdir" must be an absolute path'],
    [{ mounts: {} }, 'field "mounts" must be of type array'],
    [{ mounts: [{ source: '/a' }] }, 'field "mounts[0].target" must be of type string'],
    [{ mounts: [{ source: '/a', target: 'rel' }] }, 'field "mounts[0].target" must be an absolute path'],
    [{ mounts: [{ source: '', target: '/x' }] }, 'field "mounts[0].source" must be a host path'],
    [{ mounts: [{ source: '/a', target: '/b', ro: true }] }, 'field "mounts[0]" has unknown key "ro"'],
    [{ mounts: [{ source: '/a', target: '/b', readOnly: 'yes' }] }, 'field "mounts[0].readOnly" must be of type boolean'],
    [{ command: [] }, 'field "command" must name at least the program'],
    [{ command: 'claude -p' }, 'field "command" must be of type array'],
    [{ resumeCommand: [1] }, 'field "resumeCommand[0]" must be of type string'],
    [{ persist: ['relative'] }, 'field "persist[0]" must be an absolute container path'],
    [{ timeoutSeconds: -1 }, 'field "timeoutSeconds" must be a number of seconds greater than 0'],
    [{ timeoutSeconds: 0 }, 'field "timeoutSeconds" must be a number of seconds greater than 0'],
    [{ timeoutSeconds: '60' }, 'field "timeoutSeconds" must be of type number'],
    [{ timeoutSeconds: 10 ** 9 }, 'field "timeoutSeconds" must be at most one week'],
    [{ buildTimeoutSeconds: -5 }, 'field "buildTimeoutSeconds" must be a number of seconds greater than 0'],
    [{ stopGraceSeconds: -1 }, 'field "stopGraceSeconds" must be 0 or more seconds'],
    [{ memory: '-1g' }, 'field "memory" must be a size like "512m"'],
    [{ memory: 512 }, 'field "memory" must be of type string'],
    [{ memory: '4 gigs' }, 'field "memory" must be a size'],
    [{ cpus: 0 }, 'field "cpus" must be greater than 0'],
    [{ cpus: -2 }, 'field "cpus" must be greater than 0'],
    [{ pids: 0 }, 'field "pids" must be greater than 0'],
    [{ pids: 1.5 }, 'field "pids" must be a whole number'],
    [{ network: '' }, 'field "network" must be a Docker network mode'],
    [{ network: 1 }, 'field "network" must be of type string'],
  ])('refuses %j: %s', (json, message) => {
    const checked = validatePodJson(json);
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems.join('; ')).toContain(message);
  });

  it('reports every problem at once', () => {
    const checked = validatePodJson({ cpus: -1, pids: -1, extra: 1 });
    expect(checked.ok).toBe(false);
    if (checked.ok) return;
    expect(checked.problems).toHaveLength(3);
  });
});

describe('parseMemory', () => {
  it.each([
    ['1024', 1024],
    ['1k', 1024],
    ['512m', 512 * 1024 ** 2],
    ['4g', 4 * 1024 ** 3],
    ['1.5G', 1.5 * 1024 ** 3],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseMemory(text)).toBe(bytes);
  });
});

describe('expandHome', () => {
  it.each([
    ['~', '/home/me'],
    ['~/src', '/home/me/src'],
    ['/abs', '/abs'],
    ['~other/x', '~other/x'],
  ])('%s → %s', (input, expected) => {
    expect(expandHome(input, '/home/me')).toBe(expected);
  });
});
