import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCommand, USAGE, UsageError } from '../src/cli/args.js';
import { podJsonSchema } from '../src/core/pod-config.js';

// The documents promise what the code does: every command and option in docs/cli.md is one
// cldpd takes (and every one it takes is there), every pod.json field in docs/pods.md is one
// the schema accepts (and every one it accepts is there), and every relative link lands.

const ROOT = resolve(import.meta.dirname, '..');
const read = (path: string): string => readFileSync(join(ROOT, path), 'utf8');

/** Markdown outside fenced code blocks (links and tables there are examples, not the page's). */
function prose(markdown: string): string {
  return markdown.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, '');
}

/** The fenced code block right after `heading`. */
function blockAfter(markdown: string, heading: string): string {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no "${heading}" heading`);
  const block = /```[^\n]*\n([\s\S]*?)\n```/.exec(markdown.slice(at));
  if (!block) throw new Error(`no code block after "${heading}"`);
  return block[1] as string;
}

/** The rows of the first table after `heading`, as cells. */
function tableAfter(markdown: string, heading: string): string[][] {
  const at = markdown.indexOf(`\n${heading}\n`);
  if (at < 0) throw new Error(`no "${heading}" heading`);
  const lines = markdown.slice(at).split('\n');
  const first = lines.findIndex((l) => l.startsWith('|'));
  const rows: string[][] = [];
  for (const line of lines.slice(first + 2)) {
    if (!line.startsWith('|')) break;
    rows.push(line.slice(1, -1).split(/(?<!\\)\|/).map((c) => c.trim()));
  }
  return rows;
}

/** `a`, `b` → [a, b]: the code spans of a table cell. */
const codeSpans = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1] as string);

const sorted = (items: Iterable<string>): string[] => [...new Set(items)].sort();

/** What the code has that the page lacks, and what the page has that the code lacks. */
function difference(page: Iterable<string>, code: Iterable<string>): { undocumented: string[]; notInCode: string[] } {
  const onPage = new Set(page);
  const inCode = new Set(code);
  return { undocumented: sorted([...inCode].filter((x) => !onPage.has(x))), notInCode: sorted([...onPage].filter((x) => !inCode.has(x))) };
}
const NONE = { undocumented: [], notInCode: [] };

describe('docs/cli.md', () => {
  const doc = read('docs/cli.md');
  const synopsis = blockAfter(doc, '## Commands').split('\n').filter((l) => l.startsWith('cldpd '));
  const documented = sorted(synopsis.map((l) => l.split(/\s+/)[1] as string));
  const options = tableAfter(doc, '## Options');
  const source = read('src/cli/args.ts');

  /** The names of an object literal's keys in args.ts (`const NAME ... = { key: ... }`). */
  const keysOf = (name: string): string[] => {
    const body = new RegExp(`const ${name}\\b[^=]*=\\s*\\{([\\s\\S]*?)\\n\\}`).exec(source)?.[1];
    if (body === undefined) throw new Error(`args.ts has no ${name}`);
    return [...body.matchAll(/^\s+'?([\w-]+)'?:/gm)].map((m) => m[1] as string);
  };
  const terminalCommands = keysOf('ALLOWED');
  const serviceCommands = [...(/SERVICE_COMMANDS = \[([^\]]*)\]/.exec(source)?.[1] ?? '').matchAll(/'([\w-]+)'/g)].map((m) => m[1] as string);
  const usageCommands = [...(USAGE.split('\nOptions:')[0] as string).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1] as string);
  const usageFlags = (command: string): string[] => {
    const line = USAGE.split('\n').find((l) => l.startsWith(`  ${command} `)) ?? '';
    return [...line.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)].map((m) => m[1] as string);
  };

  /** Each documented option row: its spellings (`--all`, `-a`) and the commands it is for. */
  const rows = options.map(([spelling = '', commands = '']) => {
    const spellings = codeSpans(spelling).map((s) => s.split(' ')[0] as string);
    const long = spellings.find((s) => s.startsWith('--'));
    if (!long) throw new Error(`option row without a --name: ${spelling}`);
    const all = [...terminalCommands, ...serviceCommands];
    const list = /^every command/.test(commands) ? all : /^none\b/.test(commands) ? [] : commands.split(',').map((c) => c.trim());
    return { name: long.slice(2), spellings, commands: list };
  });

  it('documents every command cldpd knows, and no other', () => {
    expect(difference(documented, [...terminalCommands, ...serviceCommands, ...usageCommands, 'help'])).toEqual(NONE);
  });

  it('documents commands the parser takes', () => {
    for (const command of documented) {
      if (serviceCommands.includes(command)) continue;
      let message = '';
      try {
        parseCommand([command]);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message, command).not.toMatch(/Unknown command/);
    }
    // The service commands are named to the parser too (a typo of them is answered).
    for (const command of serviceCommands) expect(() => parseCommand([command.slice(0, -1) + 'x'])).toThrow(new RegExp(`"${command}"`));
  });

  it('documents every option, with the commands that take it, and no other', () => {
    const sourceOptions = keysOf('OPTIONS');
    expect(difference(rows.map((r) => r.name), sourceOptions)).toEqual(NONE);
    for (const option of sourceOptions) {
      const row = rows.find((r) => r.name === option);
      const short = new RegExp(`'${option}':?\\s*\\{[^}]*short: '(\\w)'`).exec(source) ?? new RegExp(`\\b${option}: \\{[^}]*short: '(\\w)'`).exec(source);
      expect(sorted(row?.spellings ?? []), option).toEqual(sorted([`--${option}`, ...(short ? [`-${short[1]}`] : [])]));
    }
    for (const command of terminalCommands) {
      for (const option of sourceOptions) {
        if (option === 'help' || option === 'version') continue;
        const value = /prompt|issue|dir|older-than|^out$/.test(option) ? ['30d'] : [];
        let refused = false;
        try {
          parseCommand([command, `--${option}`, ...value]);
        } catch (err) {
          refused = err instanceof UsageError && /takes no --|Unknown option/.test(err.message);
        }
        const listed = rows.find((r) => r.name === option)?.commands.includes(command) ?? false;
        expect(listed, `--${option} for "cldpd ${command}": documented ${listed}, taken ${!refused}`).toBe(!refused);
      }
    }
    for (const command of serviceCommands) {
      const documentedFlags = rows.filter((r) => r.name !== 'help' && r.commands.includes(command)).map((r) => `--${r.name}`);
      expect(sorted(documentedFlags), command).toEqual(sorted(usageFlags(command)));
    }
  });

  it('shows in each synopsis only options of that command', () => {
    for (const line of synopsis) {
      const command = line.split(/\s+/)[1] as string;
      const used = [...line.split(/ {3,}/)[0]!.matchAll(/(?<![\w-])(--?[a-z][\w-]*)/g)].map((m) => m[1] as string);
      for (const flag of used) {
        const row = rows.find((r) => r.spellings.includes(flag));
        expect(row?.commands.includes(command) || command === 'help', `${flag} in "${line}"`).toBe(true);
      }
    }
  });

  // dist/ is what `npm test` builds first; a run of this file alone before any build skips
  // this one, never CI (CI=true), where a missing build is a failure.
  it.skipIf(!existsSync(join(ROOT, 'dist/main/cldpd.js')) && process.env.CI !== 'true')('lists the commands "cldpd help" lists', () => {
    const help = spawnSync(process.execPath, [join(ROOT, 'dist/main/cldpd.js'), 'help'], { encoding: 'utf8', timeout: 30_000 });
    expect(help.status).toBe(0);
    const listed = [...(help.stdout.split('\nOptions:')[0] as string).matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1] as string);
    expect(difference(documented, [...listed, 'help'])).toEqual(NONE);
  });
});

describe('docs/pods.md', () => {
  const doc = read('docs/pods.md');
  const table = tableAfter(doc, '## pod.json reference');
  const fields = table.map(([field = '']) => codeSpans(field)[0] ?? field);

  it('documents every pod.json field the schema accepts, and no other', () => {
    expect(difference(fields, Object.keys(podJsonSchema.shape))).toEqual(NONE);
    expect(fields.length).toBe(new Set(fields).size);
  });

  it('documents the fields of a mount and of a setup step', () => {
    const cell = (name: string): string => table.find(([f = '']) => f === `\`${name}\``)?.[1] ?? '';
    const mountShape = podJsonSchema.shape.mounts.def.innerType.def.element.def.shape;
    const written = /\{([^}]*)\}/.exec(cell('mounts'))?.[1]?.split(',').map((k) => k.trim().replace(/\?$/, '')) ?? [];
    expect(difference(written, Object.keys(mountShape))).toEqual(NONE);
    for (const key of ['run', 'user']) expect(cell('setup')).toContain(`"${key}"`);
  });

  it('accepts each documented field with a value of its documented kind', () => {
    const examples: Record<string, unknown> = {
      image: 'my-pod:latest', env: { A: 'b' }, inheritEnv: ['A'], buildArgs: { A: 'b' }, workdir: '/w', mounts: [{ source: '/tmp', target: '/t', readOnly: true }],
      command: ['sh'], resumeCommand: ['sh'], persist: ['~/.x'], timeoutSeconds: 1, buildTimeoutSeconds: 1, stopGraceSeconds: 0, memory: '512m',
      cpus: 1, pids: 1, network: 'none', capAdd: ['SYS_PTRACE'], github: { contents: 'read' }, checkout: true, setup: [['true'], { run: ['true'], user: 'root' }],
      maxTurns: 1, maxBudgetUsd: 1, egress: ['registry.npmjs.org', '*.pythonhosted.org'], agent: 'gemini', prices: { input: 1, output: 2 },
    };
    for (const field of fields) {
      expect(Object.hasOwn(examples, field), `an example value for ${field}`).toBe(true);
      const pod = { [field]: examples[field], ...(field === 'checkout' ? { github: { contents: 'read' } } : {}), ...(field === 'prices' ? { agent: 'gemini' } : {}) };
      const parsed = podJsonSchema.safeParse(pod);
      const fieldIssues = parsed.success ? [] : parsed.error.issues.filter((i) => i.path[0] === field || i.code === 'unrecognized_keys');
      expect(fieldIssues, field).toEqual([]);
    }
  });
});

describe('links in README.md, ARCHITECTURE.md and docs/', () => {
  const pages = ['README.md', 'ARCHITECTURE.md', ...readdirSync(join(ROOT, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];

  /** GitHub's anchors of a page's headings: lowercased, punctuation dropped, spaces to "-", repeats numbered. */
  const anchorsOf = (markdown: string): Set<string> => {
    const seen = new Map<string, number>();
    const anchors = new Set<string>();
    for (const m of prose(markdown).matchAll(/^#{1,6}\s+(.+?)\s*#*$/gm)) {
      const base = (m[1] as string).toLowerCase().replace(/<[^>]+>/g, '').replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
      const n = seen.get(base) ?? 0;
      seen.set(base, n + 1);
      anchors.add(n === 0 ? base : `${base}-${n}`);
    }
    return anchors;
  };

  it.each(pages)('%s: every relative link and anchor resolves', (page) => {
    const text = prose(read(page));
    const broken: string[] = [];
    for (const m of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) {
      const target = m[1] as string;
      if (/^[a-z][a-z+.-]*:/i.test(target)) continue;
      const [path = '', anchor] = target.split('#');
      const file = path === '' ? join(ROOT, page) : resolve(dirname(join(ROOT, page)), decodeURIComponent(path));
      if (!existsSync(file)) {
        broken.push(`${target}: no ${relative(ROOT, file)}`);
        continue;
      }
      if (anchor !== undefined && !anchorsOf(readFileSync(file, 'utf8')).has(anchor)) broken.push(`${target}: no heading #${anchor} in ${relative(ROOT, file)}`);
    }
    expect(broken.join('\n'), 'broken links').toBe('');
  });

  it('README links every page of docs/ and ARCHITECTURE.md', () => {
    const readme = read('README.md');
    for (const page of pages.filter((p) => p !== 'README.md')) expect(readme, page).toContain(`](${page})`);
  });
});
