import { parseArgs } from 'node:util';

/** A command line that could not be understood; the CLI prints it with the usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What the user asked for. */
export type Command =
  | { readonly name: 'start'; readonly pod: string; readonly issueUrl?: string; readonly prompt?: string; readonly promptFile?: string; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'resume'; readonly session: string; readonly prompt?: string; readonly promptFile?: string; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'stop'; readonly session: string; readonly podsDir?: string }
  | { readonly name: 'ps'; readonly all: boolean; readonly json: boolean }
  | { readonly name: 'logs'; readonly session: string; readonly follow: boolean; readonly json: boolean }
  | { readonly name: 'pods'; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'doctor'; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'help' }
  | { readonly name: 'version' };

/** The usage text. */
export const USAGE = `Usage: cldpd <command> [options]

Commands:
  start <pod> --issue <url> | --prompt <text>   build the pod, run its agent, stream its output
  resume <session> --prompt <text>             continue a finished session in a new container, with its history
  stop <session>                               stop a session's container (SIGTERM, grace, SIGKILL)
  ps [--all]                                   running sessions on this host (--all: finished ones too)
  logs <session> [-f]                          a session's log (-f: follow until it ends)
  pods                                         the pods and whether each is valid
  doctor                                       check Docker, the pods directory and every pod

  up                                           the GitHub App: webhook server and worker in one process (npm start)
  serve                                        the webhook server only (no Docker)
  worker                                       a worker for this Docker host only (REDIS_URL shared with the server)

Options:
  --prompt-file <f>  read the prompt from a file ("-": standard input) instead of --prompt
  --pods-dir <dir>   pods directory (default $CLDPD_PODS_DIR or ~/.cldpd/pods)
  --json             machine-readable output (one JSON object per line)
  -h, --help         this text
  --version          the version

The exit code of start and resume is the container's.`;

const OPTIONS = {
  issue: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  'pods-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  all: { type: 'boolean', short: 'a', default: false },
  follow: { type: 'boolean', short: 'f', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parse>['values'];

/** Option spellings, so a prompt that merely starts with "-" can be told from a forgotten value. */
const OPTION_NAMES = new Set(Object.entries(OPTIONS).flatMap(([name, o]) => ['--' + name, ...('short' in o ? ['-' + o.short] : [])]));

/**
 * `--prompt "- a list"` is a prompt, not an option: the value after --prompt is joined to
 * it (`--prompt=…`) unless it is one of cldpd's own options, which means the value was forgotten.
 */
function joinPromptValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (arg === '--prompt' && next !== undefined && next.startsWith('-') && !OPTION_NAMES.has(next.split('=')[0] as string)) {
      out.push(`--prompt=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: joinPromptValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
}

const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  start: ['issue', 'prompt', 'prompt-file', 'pods-dir', 'json'],
  resume: ['prompt', 'prompt-file', 'pods-dir', 'json'],
  stop: ['pods-dir'],
  ps: ['all', 'json'],
  logs: ['follow', 'json'],
  pods: ['pods-dir', 'json'],
  doctor: ['pods-dir', 'json'],
};

function promptOf(values: Values, name: string): { prompt: string } | { promptFile: string } | undefined {
  if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new UsageError(`"cldpd ${name}" takes --prompt or --prompt-file, not both.`);
  if (values.prompt !== undefined) return { prompt: values.prompt };
  if (values['prompt-file'] !== undefined) return { promptFile: values['prompt-file'] };
  return undefined;
}

/**
 * Parses the arguments after `cldpd`. Options may come anywhere on the line. Throws
 * {@link UsageError} naming the problem for anything it does not understand.
 */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ''));
  }
  const { values, positionals } = parsed;
  if (values.version) return { name: 'version' };
  const [name, ...rest] = positionals;
  if (values.help || name === undefined || name === 'help') return { name: 'help' };
  const allowed = ALLOWED[name];
  if (!allowed) throw new UsageError(`Unknown command "${name}".`);
  for (const [key, value] of Object.entries(values)) {
    if (key === 'help' || key === 'version' || value === false || value === undefined) continue;
    if (!allowed.includes(key as keyof Values)) throw new UsageError(`"cldpd ${name}" takes no --${key} option.`);
  }
  const podsDir = values['pods-dir'] !== undefined ? { podsDir: values['pods-dir'] } : {};
  const one = (what: string): string => {
    if (rest.length !== 1 || !rest[0]) throw new UsageError(`"cldpd ${name}" needs exactly one ${what}${rest.length > 1 ? `, got ${rest.length}: ${rest.join(' ')}` : ''}.`);
    return rest[0];
  };
  const none = (): void => {
    if (rest.length > 0) throw new UsageError(`"cldpd ${name}" takes no arguments, got: ${rest.join(' ')}.`);
  };
  switch (name) {
    case 'start': {
      const pod = one('pod name');
      const prompt = promptOf(values, name);
      if (values.issue === undefined && !prompt) throw new UsageError('"cldpd start" needs --issue <url> or --prompt <text> (or --prompt-file <file>).');
      return { name, pod, json: values.json, ...podsDir, ...(values.issue !== undefined ? { issueUrl: values.issue } : {}), ...prompt };
    }
    case 'resume': {
      const session = one('session id');
      const prompt = promptOf(values, name);
      if (!prompt) throw new UsageError('"cldpd resume" needs --prompt <text> (or --prompt-file <file>).');
      return { name, session, json: values.json, ...podsDir, ...prompt };
    }
    case 'stop':
      return { name, session: one('session id'), ...podsDir };
    case 'ps':
      none();
      return { name, all: values.all, json: values.json };
    case 'logs':
      return { name, session: one('session id'), follow: values.follow, json: values.json };
    case 'pods':
      none();
      return { name, json: values.json, ...podsDir };
    default:
      none();
      return { name: 'doctor', json: values.json, ...podsDir };
  }
}
