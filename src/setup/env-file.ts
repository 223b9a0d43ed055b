import { randomBytes } from 'node:crypto';
import { access, chmod, constants, readFile, realpath, rename, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseEnv } from 'node:util';

/**
 * The `.env` the setup writes the app's credentials to, in the format Node's reader
 * (`process.loadEnvFile`, `util.parseEnv`) gives back unchanged: one value formatted, a file's
 * text merged, the file written at once and readable by its owner only.
 */

/** A value `.env` cannot hold so that Node's reader gives it back unchanged. */
export class EnvFileError extends Error {
  override readonly name = 'EnvFileError';
}

/**
 * One `.env` value as Node's reader (`process.loadEnvFile`, `util.parseEnv`) reads it back:
 * bare when plain, a PEM double-quoted with `\n` for its newlines (as .env.example says),
 * otherwise in the first quote it does not contain.
 * @throws EnvFileError when no quoting gives the value back exactly.
 */
export function formatEnvValue(key: string, value: string): string {
  let formatted: string | undefined;
  if (value.includes('\n')) {
    if (!value.includes('"') && !value.includes('\\n')) formatted = `"${value.replace(/\n/g, '\\n')}"`;
  } else if (/^[\w.\/+=:@,-]*$/.test(value)) {
    formatted = value;
  } else {
    const quote = ["'", '`', '"'].find((q) => !value.includes(q) && !(q === '"' && value.includes('\\n')));
    if (quote) formatted = `${quote}${value}${quote}`;
  }
  if (formatted === undefined || parseEnv(`${key}=${formatted}\n`)[key] !== value) {
    throw new EnvFileError(`${key} has characters .env cannot hold as they are (quotes of every kind, or a "\\n" beside a newline); choose a value without them.`);
  }
  return formatted;
}

const ASSIGNMENT = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/;

/** The quote a value opens and does not close on its first line, if any: the lines up to its closing one belong to it. */
function unclosedQuote(value: string): string | undefined {
  const quote = value[0];
  if (quote !== '"' && quote !== "'" && quote !== '`') return undefined;
  return value.indexOf(quote, 1) === -1 ? quote : undefined;
}

/**
 * `.env` text with `values` set: each key's first assignment replaced in place, any later one
 * (and the lines of a multi-line value) removed, new keys appended; every other line kept as it was.
 */
export function mergeEnvFile(existing: string, values: Readonly<Record<string, string>>): string {
  const lines = existing.replace(/\r\n/g, '\n').split('\n');
  if (lines.at(-1) === '') lines.pop();
  const out: string[] = [];
  const placed = new Set<string>();
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const match = ASSIGNMENT.exec(line);
    let end = i;
    const quote = match ? unclosedQuote(match[2] ?? '') : undefined;
    if (quote) {
      while (end + 1 < lines.length && !(lines[end + 1] as string).includes(quote)) end++;
      if (end + 1 < lines.length) end++;
    }
    const key = match?.[1];
    if (key !== undefined && Object.hasOwn(values, key)) {
      if (!placed.has(key)) out.push(`${key}=${formatEnvValue(key, values[key] as string)}`);
      placed.add(key);
    } else {
      out.push(...lines.slice(i, end + 1));
    }
    i = end;
  }
  const added = Object.keys(values).filter((k) => !placed.has(k));
  if (added.length > 0) {
    if (out.length > 0 && out.at(-1) !== '') out.push('');
    out.push('# The GitHub App, written by cldpd\'s setup page.');
    for (const key of added) out.push(`${key}=${formatEnvValue(key, values[key] as string)}`);
  }
  return `${out.join('\n')}\n`;
}

/** Throws (with the file system's code) unless `.env` can be created or replaced at `path`. */
export async function checkWritable(path: string): Promise<void> {
  await access(dirname(path), constants.W_OK);
  await access(path, constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

/**
 * Writes `values` into the `.env` at `path`, keeping its other lines, readable by its owner only
 * (0600), and replaced at once (a new file renamed over it), so a crash leaves the old or the new.
 * Checks that Node reads each value back unchanged before anything is written.
 */
export async function writeEnvFile(path: string, values: Readonly<Record<string, string>>): Promise<void> {
  const target = await realpath(path).catch(() => path);
  const existing = await readFile(target, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return '';
    throw err;
  });
  const text = mergeEnvFile(existing, values);
  const readBack = parseEnv(text);
  for (const [key, value] of Object.entries(values)) {
    if (readBack[key] !== value) throw new EnvFileError(`${key} would not read back from .env as written; another line of ${target} may break it. Fix or remove that file and try again.`);
  }
  const temporary = `${target}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, text, { mode: 0o600, flag: 'wx' });
    await chmod(temporary, 0o600);
    await rename(temporary, target);
  } catch (err) {
    await unlink(temporary).catch(() => undefined);
    throw err;
  }
}
