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

/**
 * The forms a secret value can take on its way to a comment: as it is, JSON-escaped (a
 * stream-json line, an error's JSON), whitespace-folded (one-line display), and both.
 */
function formsOf(value: string): string[] {
  const folded = value.replace(/\s+/g, ' ');
  return [value, folded].flatMap((form) => [form, JSON.stringify(form).slice(1, -1)]);
}

/**
 * Returns a function that replaces every known secret value, and anything shaped like a
 * token, with `[redacted]`. Each value is also found JSON-escaped and with its whitespace
 * folded, forms at least as long as the shortest secret hunted. Longer forms are replaced
 * first, so one that contains another is not half-revealed.
 */
export function createRedactor(secrets: Iterable<string>): (text: string) => string {
  const values = [...secrets].filter((s) => typeof s === 'string' && s.length >= MIN_SECRET_LENGTH);
  const forms = [...new Set(values.flatMap(formsOf))].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
  return (text: string): string => {
    let result = text;
    for (const form of forms) {
      if (result.includes(form)) result = result.split(form).join('[redacted]');
    }
    for (const pattern of TOKEN_PATTERNS) result = result.replace(pattern, '[redacted]');
    return result;
  };
}
