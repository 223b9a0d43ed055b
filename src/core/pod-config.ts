// zod/mini: the same validation as zod's classic API at a small fraction of the code to
// load, which every `cldpd` command pays at start-up. Every message here is written out.
import * as z from 'zod/mini';
import { ISOLATED_NETWORK } from './runner.js';
import { parseEgressEntry, type EgressRule } from '../gateway/rules.js';
import { AGENT_NAMES, type AgentName, type TokenPrices } from './agents/agent.js';
import { AGENTS, agentNamed } from './agents/agents.js';
import { CLAUDE_COMMAND } from './agents/claude-agent.js';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MEMORY = /^(\d+(?:\.\d+)?)([bkmg]?)$/i;

const envName = z.string().check(z.regex(ENV_NAME, 'must be an environment variable name like MY_VAR'));
const absolutePath = z.string().check(z.refine((p) => p.startsWith('/'), 'must be an absolute path inside the container (start with "/")'));
const argv = z.array(z.string()).check(z.minLength(1, 'must name at least the program to run'));
const positiveSeconds = z.number().check(z.positive('must be a number of seconds greater than 0'), z.maximum(7 * 24 * 3600, 'must be at most one week (604800 seconds)'));

/** The Linux capabilities, by name without `CAP_` (capabilities(7)), in kernel order. */
export const LINUX_CAPABILITIES: readonly string[] = Object.freeze([
  'CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID', 'SETPCAP',
  'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE',
  'SYS_RESOURCE', 'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP',
  'MAC_OVERRIDE', 'MAC_ADMIN', 'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF',
  'CHECKPOINT_RESTORE',
]);

/** A capability as written in pod.json ("net_raw", "CAP_NET_RAW") in Docker's form ("NET_RAW"). */
function capabilityName(text: string): string {
  return text.toUpperCase().replace(/^CAP_/, '');
}

const capability = z.string().check(z.refine((c) => LINUX_CAPABILITIES.includes(capabilityName(c)), {
  error: (issue) => capabilityName(String(issue.input)) === 'ALL'
    ? 'must name each capability the pod needs: "ALL" would give the container every one'
    : `must be a Linux capability name like "NET_RAW" or "SYS_PTRACE", not ${JSON.stringify(issue.input)} (see "man 7 capabilities"; "CAP_" may be left out)`,
}));

/** Claude Code's start command, the default when a pod names no agent (see core/agents/claude-agent.ts). */
export const DEFAULT_COMMAND: readonly string[] = CLAUDE_COMMAND;

/** The default start command continuing the captured Claude session: the default resume command. */
export const DEFAULT_RESUME_COMMAND: readonly string[] = Object.freeze([...DEFAULT_COMMAND, '--resume', '{claudeSessionId}']);

const price = z.number().check(z.minimum(0, 'must be 0 or more US dollars per million tokens'), z.maximum(100_000, 'must be at most 100000 US dollars per million tokens'));

/**
 * The repository permissions of a GitHub App installation token, by GitHub's names
 * ("Create an installation access token for an app", `permissions`).
 */
export const GITHUB_PERMISSIONS: readonly string[] = Object.freeze([
  'actions', 'administration', 'checks', 'contents', 'deployments', 'discussions', 'environments', 'issues', 'metadata',
  'packages', 'pages', 'pull_requests', 'repository_hooks', 'repository_projects', 'secret_scanning_alerts', 'secrets',
  'security_events', 'statuses', 'vulnerability_alerts', 'workflows',
]);

const githubPermissions = z.record(
  z.string().check(z.refine((name) => GITHUB_PERMISSIONS.includes(name), {
    error: (issue) => `is not a GitHub repository permission: use one of ${GITHUB_PERMISSIONS.join(', ')} (not ${JSON.stringify(issue.input)})`,
  })),
  z.enum(['read', 'write'], 'must be "read" or "write"'),
);

const setupStep = z.union([
  argv,
  z.strictObject({ run: argv, user: z.optional(z.literal('root', 'must be "root" (leave it out to run as the image\'s user)')) }),
], 'must be an argv array like ["npm", "ci"] or {"run": [...], "user": "root"}');

/**
 * Capabilities a gated pod may not take back: with them a container could change its routes,
 * neighbours or packets (NET_ADMIN, NET_RAW), or its namespaces and kernel (SYS_ADMIN, BPF,
 * SYS_MODULE), and so reach past its gateway.
 */
export const GATE_BREAKERS: readonly string[] = Object.freeze(['NET_ADMIN', 'NET_RAW', 'SYS_ADMIN', 'BPF', 'SYS_MODULE']);

/** At most this many egress entries in one list: an allow-list is a short list of names. */
export const MAX_EGRESS_ENTRIES = 200;

const egressEntry = z.string().check(z.refine((entry) => !('error' in parseEgressEntry(entry)), {
  error: (issue) => {
    const parsed = parseEgressEntry(String(issue.input));
    return 'error' in parsed ? parsed.error : 'must be a host name';
  },
}));

const egress = z.union([
  z.literal('open'),
  z.array(egressEntry),
], 'must be "open" or a list of hosts like ["registry.npmjs.org", "*.pythonhosted.org", "github.com:443"]');

const mount = z.strictObject({
  source: z.string().check(z.minLength(1, 'must be a host path (absolute, or starting with "~/")')),
  target: absolutePath,
  readOnly: z.optional(z.boolean()),
});

/** The schema of pod.json. Unknown keys are errors, so a typo never silently does nothing. */
export const podJsonSchema = z.strictObject({
  image: z.optional(z.string().check(z.regex(/^[a-z0-9][a-z0-9._\-/:@]*$/, 'must be a Docker image reference in lowercase, like "my-pod:latest"'))),
  env: z.optional(z.record(envName, z.string())),
  inheritEnv: z.optional(z.array(envName)),
  buildArgs: z.optional(z.record(z.string().check(z.minLength(1, 'must not be empty')), z.string())),
  workdir: z.optional(absolutePath),
  mounts: z.optional(z.array(mount)),
  command: z.optional(argv),
  resumeCommand: z.optional(argv),
  persist: z.optional(z.array(z.string().check(z.refine((p) => p.startsWith('/') || p === '~' || p.startsWith('~/'), 'must be an absolute container path or start with "~/" (the container user\'s home)')))),
  timeoutSeconds: z.optional(positiveSeconds),
  buildTimeoutSeconds: z.optional(positiveSeconds),
  stopGraceSeconds: z.optional(z.number().check(z.minimum(0, 'must be 0 or more seconds'), z.maximum(3600, 'must be at most 3600 seconds'))),
  memory: z.optional(z.string().check(z.regex(MEMORY, 'must be a size like "512m" or "4g"'))),
  cpus: z.optional(z.number().check(z.positive('must be greater than 0'), z.maximum(1024, 'must be at most 1024'))),
  pids: z.optional(z.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.positive('must be greater than 0'))),
  network: z.optional(z.string().check(z.minLength(1, `must be a Docker network mode such as "none", "host" or a network name (leave it out to reach only what "egress" lists)`))),
  egress: z.optional(egress),
  capAdd: z.optional(z.array(capability)),
  github: z.optional(githubPermissions),
  checkout: z.optional(z.boolean()),
  setup: z.optional(z.array(setupStep)),
  maxTurns: z.optional(z.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.minimum(1, 'must be at least 1'), z.maximum(10_000, 'must be at most 10000'))),
  maxBudgetUsd: z.optional(z.number().check(z.minimum(0.01, 'must be at least 0.01 (US dollars)'), z.maximum(100_000, 'must be at most 100000 (US dollars)'))),
  agent: z.optional(z.enum(AGENT_NAMES, `must be one of ${AGENT_NAMES.map((n) => `"${n}"`).join(', ')} (leave it out for Claude Code)`)),
  prices: z.optional(z.strictObject({ input: price, output: price, cachedInput: z.optional(price) })),
}).check(
  z.refine((pod) => !pod.checkout || pod.github?.contents !== undefined, {
    path: ['checkout'],
    error: 'clones with the run\'s token: add "github": {"contents": "read"} (or "write", to push)',
  }),
  z.refine((pod) => !(pod.network !== undefined && Array.isArray(pod.egress)), {
    path: ['egress'],
    error: 'is enforced on a network of cldpd\'s own: leave "network" out to use the list, or set "egress": "open" to run on the pod\'s network as Docker gives it',
  }),
  (ctx) => {
    // A gated container must not rebuild the way out its network leaves out.
    const gated = ctx.value.egress !== 'open' && ctx.value.network === undefined;
    const widening = (ctx.value.capAdd ?? []).map(capabilityName).filter((c) => GATE_BREAKERS.includes(c));
    if (gated && widening.length > 0) {
      ctx.issues.push({ code: 'custom', input: ctx.value.capAdd, path: ['capAdd'], message: `gives ${widening.join(', ')}, with which a container could route around its egress gateway (to this host, for one): set "egress": "open" to give ${widening.length > 1 ? 'them' : 'it'} to an open pod` });
    }
  },
  z.refine((pod) => !Array.isArray(pod.egress) || pod.egress.length <= MAX_EGRESS_ENTRIES, {
    path: ['egress'],
    error: `must list at most ${MAX_EGRESS_ENTRIES} hosts (use "*.example.com" for many names under one domain)`,
  }),
  (ctx) => {
    // A limit the agent's CLI cannot take would bound nothing: refused, not ignored.
    const agent = agentNamed(ctx.value.agent);
    if (ctx.value.prices !== undefined && agent.name === 'claude') {
      ctx.issues.push({ code: 'custom', input: ctx.value.prices, path: ['prices'], message: 'prices a CLI that reports tokens only: Claude Code reports its own cost, so leave "prices" out' });
    }
    for (const limit of ['maxTurns', 'maxBudgetUsd'] as const) {
      const via = agent.limits[limit];
      if (ctx.value[limit] !== undefined && via?.via === 'setting' && (ctx.value.env?.[via.env] !== undefined || ctx.value.inheritEnv?.includes(via.env))) {
        ctx.issues.push({ code: 'custom', input: ctx.value[limit], path: [limit], message: `reaches ${agent.title} as its setting ${via.name}, in the file cldpd names in ${via.env}, which the pod sets itself: leave ${via.env} out, or "${limit}" (and set ${via.name} in your own settings)` });
      }
      if (ctx.value[limit] !== undefined && agent.limits[limit] === undefined) {
        ctx.issues.push({ code: 'custom', input: ctx.value[limit], path: [limit], message: `cannot bound ${agent.title}, which has no ${limit === 'maxTurns' ? 'turn limit' : 'spending limit'} of its own: leave "${limit}" out${limit === 'maxBudgetUsd' ? ' (the daily spending limits of .github/cldpd.yml still count its runs when pod.json gives "prices")' : ' (timeoutSeconds bounds its time)'}` });
      }
    }
    for (const field of ['command', 'resumeCommand'] as const) {
      for (const limit of ['maxTurns', 'maxBudgetUsd'] as const) {
        const own = ctx.value[field];
        const uses = (own ?? []).some((arg) => arg.includes(`{${limit}}`));
        if (ctx.value[limit] === undefined && uses) {
          ctx.issues.push({ code: 'custom', input: own, path: [field], message: `uses {${limit}}, but pod.json sets no "${limit}": set it, or leave the placeholder out` });
        }
        // A limit a pod's own command never passes on would bound nothing, silently (one the agent takes as a setting reaches it whatever the command).
        const via = agent.limits[limit];
        if (ctx.value[limit] !== undefined && own !== undefined && !uses && via?.via === 'option') {
          ctx.issues.push({ code: 'custom', input: own, path: [field], message: `has no {${limit}}, so the pod's "${limit}" would not reach the agent: add it where the agent takes that limit (${agent.title}: "${via.name}", "{${limit}}"), or leave "${field}" out to use the default` });
        }
      }
    }
  },
);

/** pod.json as written by the user, before defaults. */
export type PodJson = z.infer<typeof podJsonSchema>;

/** A bind mount from the host into the container; `source` is absolute after `~` expansion. */
export interface PodMount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
}

/** A pod's configuration with every default applied. */
export interface PodConfig {
  /** Image tag to build and run; default `cldpd-<pod>:latest`. */
  readonly image: string;
  readonly env: Readonly<Record<string, string>>;
  /** Host variables copied into the container when set on the host; unset ones are skipped. */
  readonly inheritEnv: readonly string[];
  readonly buildArgs: Readonly<Record<string, string>>;
  readonly workdir: string | undefined;
  readonly mounts: readonly PodMount[];
  readonly command: readonly string[];
  readonly resumeCommand: readonly string[];
  /** Container paths kept in named volumes per issue; `~` is the container user's home. */
  readonly persist: readonly string[];
  readonly timeoutSeconds: number;
  readonly buildTimeoutSeconds: number;
  readonly stopGraceSeconds: number;
  /** Memory limit in bytes. */
  readonly memoryBytes: number;
  readonly cpus: number;
  readonly pids: number;
  /**
   * Docker network mode or name of an open pod (see `egress`); by default {@link ISOLATED_NETWORK},
   * where containers do not reach each other. A gated pod's runs each get a network of their own.
   */
  readonly network: string;
  /**
   * What the pod's containers reach. Gated (the default): only the hosts in `rules`, plus the
   * model provider and the issue's GitHub hosts, through the run's gateway, with no route to
   * anything else, the host included. Open: Docker's `network`, as it gives it. A pod that
   * names a `network` and no `egress` is open.
   */
  readonly egress: { readonly open: true } | { readonly open: false; readonly rules: readonly EgressRule[] };
  /** Linux capabilities (Docker's names, like `NET_RAW`) added to the agent's set; each once. */
  readonly capAdd: readonly string[];
  /**
   * The permissions of the GitHub token each run gets for its issue's repository (GitHub's
   * names and levels, like `contents: write`); empty: no token.
   */
  readonly github: Readonly<Record<string, 'read' | 'write'>>;
  /** Clone the issue's repository into the workdir (fetch, when it is there) before the agent starts. */
  readonly checkout: boolean;
  /** Commands run in the container before the agent, in order: as the image's user, or as root. */
  readonly setup: ReadonlyArray<{ readonly run: readonly string[]; readonly root: boolean }>;
  /** The agent's turns per run at most (Claude Code's `--max-turns`); no limit when absent. */
  readonly maxTurns: number | undefined;
  /** What one run of the agent may spend, in US dollars (Claude Code's `--max-budget-usd`); no limit when absent. */
  readonly maxBudgetUsd: number | undefined;
  /**
   * The agent's CLI (see core/agents): what its output means, its default commands and
   * persisted paths, where its model key goes. Claude Code when pod.json names none.
   */
  readonly agent: AgentName;
  /** What the agent's tokens cost, for a CLI that reports no cost of its own; none: its runs are counted by tokens only. */
  readonly prices: TokenPrices | undefined;
}

/**
 * The default commands of the pod's agent with its limits as the CLI's options (Claude
 * Code's `--max-turns`, `--max-budget-usd`); a pod's own command takes them as `{maxTurns}`,
 * `{maxBudgetUsd}`.
 */
export function defaultCommands(pod: { readonly agent?: AgentName | undefined; readonly maxTurns?: number | undefined; readonly maxBudgetUsd?: number | undefined }): { command: string[]; resumeCommand: string[] } {
  const { command, resumeCommand } = agentNamed(pod.agent).commands(pod);
  return { command: [...command], resumeCommand: [...resumeCommand] };
}

/** Defaults a shared bot can live with: bounded time, memory, CPU and processes; a network where containers do not reach each other. */
export const POD_DEFAULTS = Object.freeze({
  timeoutSeconds: 3600,
  buildTimeoutSeconds: 900,
  stopGraceSeconds: 10,
  memory: '4g',
  cpus: 2,
  pids: 1024,
  network: ISOLATED_NETWORK,
  /** Claude Code's; a pod naming another agent persists that agent's (see Agent.persist). */
  persist: AGENTS.claude.persist,
});

/** Parses "512m" / "4g" / "1024" into bytes. The input was validated by the schema. */
export function parseMemory(text: string): number {
  const match = MEMORY.exec(text);
  if (!match) throw new Error(`not a memory size: ${text}`);
  const unit = (match[2] ?? '').toLowerCase();
  const scale = unit === 'g' ? 1024 ** 3 : unit === 'm' ? 1024 ** 2 : unit === 'k' ? 1024 : 1;
  return Math.round(Number(match[1]) * scale);
}

/** Expands a leading `~` of a host path with `homeDir`. */
export function expandHome(path: string, homeDir: string): string {
  if (path === '~') return homeDir;
  if (path.startsWith('~/')) return `${homeDir}/${path.slice(2)}`;
  return path;
}

/**
 * Applies defaults to validated pod.json content. Pure: `homeDir` expands `~` in mount
 * sources; whether those sources exist is checked by the caller.
 */
export function resolvePodConfig(podName: string, json: PodJson, homeDir: string): PodConfig {
  const persist = json.persist ?? [...agentNamed(json.agent).persist, ...(json.workdir ? [json.workdir] : [])];
  const defaults = defaultCommands(json);
  return Object.freeze({
    image: json.image ?? `cldpd-${podName}:latest`,
    env: Object.freeze({ ...(json.env ?? {}) }),
    inheritEnv: Object.freeze([...(json.inheritEnv ?? [])]),
    buildArgs: Object.freeze({ ...(json.buildArgs ?? {}) }),
    workdir: json.workdir,
    mounts: Object.freeze(
      (json.mounts ?? []).map((m) => Object.freeze({ source: expandHome(m.source, homeDir), target: m.target, readOnly: m.readOnly ?? false })),
    ),
    command: Object.freeze([...(json.command ?? defaults.command)]),
    resumeCommand: Object.freeze([...(json.resumeCommand ?? defaults.resumeCommand)]),
    persist: Object.freeze([...new Set(persist)]),
    timeoutSeconds: json.timeoutSeconds ?? POD_DEFAULTS.timeoutSeconds,
    buildTimeoutSeconds: json.buildTimeoutSeconds ?? POD_DEFAULTS.buildTimeoutSeconds,
    stopGraceSeconds: json.stopGraceSeconds ?? POD_DEFAULTS.stopGraceSeconds,
    memoryBytes: parseMemory(json.memory ?? POD_DEFAULTS.memory),
    cpus: json.cpus ?? POD_DEFAULTS.cpus,
    pids: json.pids ?? POD_DEFAULTS.pids,
    network: json.network ?? POD_DEFAULTS.network,
    egress: Object.freeze(json.egress === 'open' || (json.egress === undefined && json.network !== undefined)
      ? { open: true as const }
      : { open: false as const, rules: Object.freeze((json.egress ?? []).map((entry) => parseEgressEntry(entry) as EgressRule)) }),
    capAdd: Object.freeze([...new Set((json.capAdd ?? []).map(capabilityName))]),
    github: Object.freeze({ ...(json.github ?? {}) }),
    checkout: json.checkout ?? false,
    setup: Object.freeze((json.setup ?? []).map((step) => Object.freeze(Array.isArray(step) ? { run: Object.freeze([...step]), root: false } : { run: Object.freeze([...step.run]), root: step.user === 'root' }))),
    maxTurns: json.maxTurns,
    maxBudgetUsd: json.maxBudgetUsd,
    agent: json.agent ?? 'claude',
    prices: json.prices ? Object.freeze({ ...json.prices }) : undefined,
  });
}

/** Renders a schema issue path such as `mounts[0].source`. */
function fieldPath(path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : acc ? `${acc}.${String(key)}` : String(key)), '');
}

/**
 * Validates parsed pod.json content. Returns the typed value or a list of problems, each
 * naming the field and what it must be.
 */
export function validatePodJson(value: unknown): { ok: true; value: PodJson } | { ok: false; problems: string[] } {
  const result = podJsonSchema.safeParse(value);
  if (result.success) return { ok: true, value: result.data };
  const known = Object.keys(podJsonSchema.shape).join(', ');
  const problems = result.error.issues.map((issue) => {
    const where = fieldPath(issue.path);
    if (issue.code === 'unrecognized_keys') {
      const keys = issue.keys.map((k) => `"${k}"`).join(', ');
      return where
        ? `field "${where}" has unknown key ${keys}`
        : `unknown field ${keys}; the known fields are: ${known}`;
    }
    if (issue.code === 'invalid_key') {
      return `field "${where}": the name ${issue.issues.map((i) => i.message).join(', ')}`;
    }
    if (issue.code === 'invalid_type' && issue.expected === 'int') return `field "${where}" must be a whole number`;
    if (issue.code === 'invalid_type') {
      return `field "${where || '(top level)'}" must be ${issue.expected === 'object' && !where ? 'a JSON object' : `of type ${issue.expected}`}`;
    }
    return `field "${where}" ${issue.message}`;
  });
  return { ok: false, problems };
}
