/** Token shapes that are secrets wherever they appear. */
const TOKEN_PATTERNS: readonly RegExp[] = [
  /\bgh[pousr]_[A-Za-z0-9]{30,}\b/g, // GitHub tokens
  /\bgithub_pat_[A-Za-z0-9_]{30,}\b/g,
  /\bsk-ant-[A-Za-z0-9_-]{20,}/g, // Anthropic keys
  /\bsk-[A-Za-z0-9]{32,}\b/g,
  /\bAKIA[0-9A-Z]{16}\b/g, // AWS access key ids
  /-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?(?:-----END [A-Z ]*PRIVATE KEY-----|$)/g,
];

/** Shorter values are too likely to be ordinary words to hunt for. */
const MIN_SECRET_LENGTH = 6;

/** What may stand between two characters of a secret on its way to a comment: whitespace, as it is or JSON-escaped. */
const GAP = String.raw`(?:\s|\\[nrt])*`;

/**
 * A pattern that finds `value` however it was broken or wrapped: its characters in order
 * (each as it is or JSON-escaped, as in a stream-json line or an error's JSON) with any
 * whitespace between them, line breaks included, and its own whitespace optional.
 * A value of fewer other characters than MIN_SECRET_LENGTH is found only as it is.
 */
function patternOf(value: string): RegExp {
  const chars = [...value].filter((c) => !/\s/.test(c));
  if (chars.length >= MIN_SECRET_LENGTH) return new RegExp(chars.map(charPattern).join(GAP), 'g');
  // Mostly whitespace: only the value itself, as it is or JSON-escaped, is distinctive enough.
  return new RegExp([value, JSON.stringify(value).slice(1, -1)].map(escapeRegExp).join('|'), 'g');
}

/** One character of a secret: as it is, or as JSON escapes it. */
function charPattern(char: string): string {
  const escaped = JSON.stringify(char).slice(1, -1);
  return escaped === char ? escapeRegExp(char) : `(?:${escapeRegExp(char)}|${escapeRegExp(escaped)})`;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/-]/g, '\\$&');
}

/**
 * Returns a function that replaces every known secret value, and anything shaped like a
 * token, with `[redacted]`. A value is found however whitespace or line breaks split it
 * (the agent's own wrapping, a line cut in pieces and joined again, a one-line display)
 * and JSON-escaped. Longer values are replaced first, so one that contains another is
 * not half-revealed. Each value costs one linear scan of the text.
 */
export function createRedactor(secrets: Iterable<string>): (text: string) => string {
  const values = [...new Set([...secrets].filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  const patterns = values.map(patternOf);
  return (text: string): string => {
    let result = text;
    for (const pattern of patterns) result = result.replace(pattern, '[redacted]');
    for (const pattern of TOKEN_PATTERNS) result = result.replace(pattern, '[redacted]');
    return result;
  };
}

/** `text` with each of `secrets` replaced by `[redacted]`: exactly as they are, nothing else (see createRedactor for what leaves the host). */
export function hideSecrets(text: string, secrets: readonly string[]): string {
  let result = text;
  for (const secret of secrets) if (secret && result.includes(secret)) result = result.split(secret).join('[redacted]');
  return result;
}

/** Folders of this host whose paths are not shown where anyone can read them (see hideHostPaths). */
export interface HostPlaces {
  /** The pods folder: shown as `<pods>`. */
  readonly podsDir: string;
  /** cldpd's home: shown as `<cldpd home>`. */
  readonly home: string;
  /** The user's home folder: shown as `~`. */
  readonly userHome: string;
}

/**
 * Error messages name files of this host (the pods folder, cldpd's home) so the operator
 * at the terminal can act on them; on an issue anyone can read they become placeholders.
 */
export function hideHostPaths(text: string, places: HostPlaces): string {
  let result = text;
  for (const [path, name] of [[places.podsDir, '<pods>'], [places.home, '<cldpd home>'], [places.userHome, '~']] as const) {
    if (path.length > 1) result = result.split(path).join(name);
  }
  return result;
}
