import { closest } from '../core/index.js';
import { parseArgs } from 'node:util';

/** A command line that could not be understood; the CLI prints it with the command's usage and exits 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';

  /** `command` is the command the line was for, when known. */
  constructor(message: string, readonly command?: string) {
    super(message);
  }
}

/** What the user asked for. */
export type Command =
  | { readonly name: 'start'; readonly pod: string; readonly issueUrl?: string; readonly prompt?: string; readonly promptFile?: string; readonly json: boolean; readonly verbose: boolean; readonly podsDir?: string }
  | { readonly name: 'resume'; readonly session: string; readonly prompt?: string; readonly promptFile?: string; readonly json: boolean; readonly verbose: boolean; readonly podsDir?: string }
  | { readonly name: 'stop'; readonly session: string; readonly podsDir?: string }
  | { readonly name: 'attach'; readonly session: string; readonly podsDir?: string }
  | { readonly name: 'export'; readonly session: string; readonly out?: string; readonly portable: boolean; readonly podsDir?: string }
  | { readonly name: 'ps'; readonly all: boolean; readonly json: boolean }
  | { readonly name: 'logs'; readonly session: string; readonly follow: boolean; readonly json: boolean; readonly verbose: boolean }
  | { readonly name: 'volumes'; readonly json: boolean }
  | { readonly name: 'volumes rm'; readonly targets: readonly string[] }
  | { readonly name: 'pods'; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'doctor'; readonly json: boolean; readonly podsDir?: string }
  | { readonly name: 'gc'; readonly dryRun: boolean; readonly olderThanMs: number; readonly json: boolean }
  | { readonly name: 'help' }
  | { readonly name: 'version' };

/** Each command's synopsis, as the usage text and its errors show it. */
const SYNOPSIS: Record<string, string> = {
  start: 'start <pod> --issue <url> | --prompt <text>',
  resume: 'resume <session> --prompt <text>',
  stop: 'stop <session>',
  attach: 'attach <session>',
  export: 'export <session> [--out <dir>] [--portable]',
  ps: 'ps [--all]',
  logs: 'logs <session> [-f]',
  volumes: 'volumes [rm <session|volume>...]',
  pods: 'pods',
  doctor: 'doctor',
  gc: 'gc [--dry-run] [--older-than 30d]',
};

/** The usage text. */
export const USAGE = `Usage: cldpd <command> [options]

Commands:
  ${SYNOPSIS.start}   build the pod, run its agent, stream its output
  ${SYNOPSIS.resume}             continue a finished session in a new container, with its history
  ${SYNOPSIS.stop}                               stop a session's container (SIGTERM, grace, SIGKILL)
  ${SYNOPSIS.attach}                             take over: Claude Code's own terminal UI on the session's conversation
                                               (a new container with its volumes; removed when you leave)
  ${SYNOPSIS.export}  the conversation's transcript where Claude Code finds it for <dir>,
                                               the branch to check out and the commands, in <dir>/CLDPD-EXPORT.md
  ${SYNOPSIS.ps}                                   sessions on this host, running (--all: finished ones too)
  ${SYNOPSIS.logs}                          a session's whole log on stdout (-f: follow until it ends)
  ${SYNOPSIS.volumes}            the volumes sessions keep (rm: a session's, or one by name)
  ${SYNOPSIS.pods}                                         the pods and whether each is valid
  ${SYNOPSIS.doctor}                                       which engine (Docker or Podman) and what it lacks, the pods directory, every pod
  ${SYNOPSIS.gc}                  remove this host's finished sessions that old: terminal ones, and closed issues' (--json, --dry-run)

  up                                           the GitHub App: webhook server and worker in one process (npm start)
  serve                                        the webhook server only (no Docker)
  worker                                       a worker for this Docker host only (REDIS_URL shared with the server)
  hosts [forget <host>] [--json]               the worker hosts Redis knows, when each was last seen, its issues;
                                               forget: release a decommissioned host's issues (an operator action)

Options:
  --prompt-file <f>  read the prompt from a file ("-": standard input) instead of --prompt
  --pods-dir <dir>   pods directory (default $CLDPD_PODS_DIR or ~/.cldpd/pods)
  --out <dir>        export: the directory to go on in (default ./cldpd-<session>)
  --portable         export: the transcript into <dir>/.cldpd-export, to carry to another machine
  -v, --verbose      the whole image build output (start, resume, logs)
  --json             machine-readable output (one JSON object per line)
  -h, --help         this text
  --version          the version

Colour on a terminal; none with NO_COLOR set or when output is piped.
The exit code of start and resume is the container's.`;

/** Where to look after an error: the command's synopsis, or the whole usage. */
export function usageHint(command: string | undefined): string {
  const synopsis = command && Object.hasOwn(SYNOPSIS, command) ? SYNOPSIS[command] : undefined;
  return synopsis ? `Usage: cldpd ${synopsis}\nRun "cldpd --help" for all commands and options.` : 'Run "cldpd --help" for the commands and options.';
}

const OPTIONS = {
  issue: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  'pods-dir': { type: 'string' },
  json: { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
  all: { type: 'boolean', short: 'a', default: false },
  follow: { type: 'boolean', short: 'f', default: false },
  help: { type: 'boolean', short: 'h', default: false },
  version: { type: 'boolean', default: false },
  'dry-run': { type: 'boolean', default: false },
  'older-than': { type: 'string' },
  out: { type: 'string' },
  portable: { type: 'boolean', default: false },
} as const;

type Values = ReturnType<typeof parse>['values'];

/** Option spellings, so a prompt that merely starts with "-" can be told from a forgotten value. */
const OPTION_NAMES = new Set(Object.entries(OPTIONS).flatMap(([name, o]) => ['--' + name, ...('short' in o ? ['-' + o.short] : [])]));

/** Options whose value may start with "-": a prompt's list, a mistyped duration ("-1d", refused by its own parser). */
const DASH_VALUES = new Set(['--prompt', '--older-than']);

/**
 * `--prompt "- a list"` is a prompt, not an option: the value after --prompt (or
 * --older-than) is joined to it (`--prompt=…`) unless it is one of cldpd's own options,
 * which means the value was forgotten.
 */
function joinDashValues(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const next = argv[i + 1];
    if (DASH_VALUES.has(arg) && next !== undefined && next.startsWith('-') && !OPTION_NAMES.has(next.split('=')[0] as string)) {
      out.push(`${arg}=${next}`);
      i++;
    } else {
      out.push(arg);
    }
  }
  return out;
}

function parse(argv: readonly string[]) {
  return parseArgs({ args: joinDashValues(argv), options: OPTIONS, allowPositionals: true, strict: true });
}

const ALLOWED: Record<string, readonly (keyof Values)[]> = {
  start: ['issue', 'prompt', 'prompt-file', 'pods-dir', 'json', 'verbose'],
  resume: ['prompt', 'prompt-file', 'pods-dir', 'json', 'verbose'],
  stop: ['pods-dir'],
  attach: ['pods-dir'],
  export: ['out', 'portable', 'pods-dir'],
  ps: ['all', 'json'],
  logs: ['follow', 'json', 'verbose'],
  volumes: ['json'],
  pods: ['pods-dir', 'json'],
  doctor: ['pods-dir', 'json'],
  gc: ['dry-run', 'older-than', 'json'],
};

/** A duration like "30d", "12h", "45m", "90s" (or a bare number of days), in ms; undefined for anything else, or too long to count. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)([dhms]?)$/.exec(text.trim());
  if (!m) return undefined;
  const unit = m[2] === 'h' ? 3600_000 : m[2] === 'm' ? 60_000 : m[2] === 's' ? 1000 : 86_400_000;
  const ms = Number(m[1]) * unit;
  return Number.isFinite(ms) ? ms : undefined;
}

/** The commands the services entry point runs; named here so a typo of them is caught too. */
const SERVICE_COMMANDS = ['up', 'serve', 'worker', 'hosts'];

function promptOf(values: Values, name: string): { prompt: string } | { promptFile: string } | undefined {
  if (values.prompt !== undefined && values['prompt-file'] !== undefined) throw new UsageError(`"cldpd ${name}" takes --prompt or --prompt-file, not both.`, name);
  if (values.prompt !== undefined) return { prompt: values.prompt };
  if (values['prompt-file'] !== undefined) return { promptFile: values['prompt-file'] };
  return undefined;
}

/** ` Did you mean "x"?` when one of `candidates` is close to `word`, else nothing. */
function suggest(word: string, candidates: readonly string[]): string {
  const near = closest(word, candidates);
  return near ? ` Did you mean ${near.startsWith('-') ? near : `"${near}"`}?` : '';
}

/** The spellings of `command`'s options (every option when the command is not known). */
function optionSpellings(command: string | undefined): string[] {
  const names = (command && Object.hasOwn(ALLOWED, command) && ALLOWED[command]) || (Object.keys(OPTIONS) as (keyof Values)[]);
  return [...names, 'help'].map((n) => `--${n}`);
}

/** Node's parser messages, said plainly: which option, what is wrong, what was meant. */
function parseError(err: NodeJS.ErrnoException, argv: readonly string[]): UsageError {
  const command = argv.find((a) => Object.hasOwn(ALLOWED, a));
  const option = /'(-{1,2}[^' =]+)/.exec(err.message)?.[1];
  switch (err.code) {
    case 'ERR_PARSE_ARGS_UNKNOWN_OPTION': {
      const hint = option ? suggest(option, optionSpellings(command)) : '';
      return new UsageError(`Unknown option ${option ?? ''}${command ? ` for "cldpd ${command}"` : ''}.${hint || ' An argument that starts with "-" goes after "--".'}`, command);
    }
    case 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE':
      if (/argument missing/.test(err.message)) return new UsageError(`Option ${option} needs a value: ${option} <value>.`, command);
      if (/forget to specify/.test(err.message)) return new UsageError(`Option ${option} needs a value, but the next word is an option. Did you forget to specify the option argument?`, command);
      return new UsageError(`Option ${option} takes no value.`, command);
    default:
      return new UsageError(err.message.replace(/^TypeError \[[A-Z_]+\]: /, ''), command);
  }
}

/**
 * Parses the arguments after `cldpd`. Options may come anywhere on the line. Throws
 * {@link UsageError} naming the problem, and what was probably meant, for anything it does
 * not understand.
 */
export function parseCommand(argv: readonly string[]): Command {
  let parsed;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw parseError(err as NodeJS.ErrnoException, argv);
  }
  const { values, positionals } = parsed;
  if (values.version) return { name: 'version' };
  const [name, ...rest] = positionals;
  if (values.help || name === undefined || name === 'help') return { name: 'help' };
  const allowed = Object.hasOwn(ALLOWED, name) ? ALLOWED[name] : undefined;
  if (!allowed) throw new UsageError(`Unknown command "${name}".${suggest(name, [...Object.keys(ALLOWED), ...SERVICE_COMMANDS, 'help'])}`);
  for (const [key, value] of Object.entries(values)) {
    if (key === 'help' || key === 'version' || value === false || value === undefined) continue;
    if (!allowed.includes(key as keyof Values)) throw new UsageError(`"cldpd ${name}" takes no --${key} option.`, name);
  }
  const podsDir = values['pods-dir'] !== undefined ? { podsDir: values['pods-dir'] } : {};
  const one = (what: string): string => {
    if (rest.length !== 1 || !rest[0]) throw new UsageError(`"cldpd ${name}" needs exactly one ${what}${rest.length > 1 ? `, got ${rest.length}: ${rest.join(' ')}` : ''}.`, name);
    return rest[0];
  };
  const none = (): void => {
    if (rest.length > 0) throw new UsageError(`"cldpd ${name}" takes no arguments, got: ${rest.join(' ')}.`, name);
  };
  switch (name) {
    case 'start': {
      const pod = one('pod name');
      const prompt = promptOf(values, name);
      if (values.issue === undefined && !prompt) throw new UsageError('"cldpd start" needs --issue <url> or --prompt <text> (or --prompt-file <file>).', name);
      return { name, pod, json: values.json, verbose: values.verbose, ...podsDir, ...(values.issue !== undefined ? { issueUrl: values.issue } : {}), ...prompt };
    }
    case 'resume': {
      const session = one('session id');
      const prompt = promptOf(values, name);
      if (!prompt) throw new UsageError('"cldpd resume" needs --prompt <text> (or --prompt-file <file>).', name);
      return { name, session, json: values.json, verbose: values.verbose, ...podsDir, ...prompt };
    }
    case 'stop':
    case 'attach':
      return { name, session: one('session id'), ...podsDir };
    case 'export': {
      const session = one('session id');
      if (values.out !== undefined && !values.out.trim()) throw new UsageError('"cldpd export --out" needs a directory.', name);
      return { name, session, portable: values.portable, ...podsDir, ...(values.out !== undefined ? { out: values.out } : {}) };
    }
    case 'ps':
      none();
      return { name, all: values.all, json: values.json };
    case 'logs':
      return { name, session: one('session id'), follow: values.follow, json: values.json, verbose: values.verbose };
    case 'volumes': {
      const [sub, ...targets] = rest;
      if (sub === undefined) return { name, json: values.json };
      if (sub !== 'rm') throw new UsageError(`"cldpd volumes" takes "rm <session|volume>..." or nothing, got: ${sub}.${suggest(sub, ['rm'])}`, name);
      if (targets.length === 0) throw new UsageError('"cldpd volumes rm" needs a session id or a volume name ("cldpd volumes" lists them).', name);
      if (values.json) throw new UsageError('"cldpd volumes rm" takes no --json option.', name);
      return { name: 'volumes rm', targets };
    }
    case 'pods':
      none();
      return { name, json: values.json, ...podsDir };
    case 'gc': {
      none();
      const raw = values['older-than'] ?? '30d';
      const olderThanMs = parseDuration(raw);
      if (olderThanMs === undefined) throw new UsageError(`"cldpd gc --older-than" takes a duration like 30d, 12h, 45m or 90s, not "${raw}".`, name);
      return { name, dryRun: values['dry-run'], olderThanMs, json: values.json };
    }
    default:
      none();
      return { name: 'doctor', json: values.json, ...podsDir };
  }
}
