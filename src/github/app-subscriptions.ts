/** What a registered app lacks of what cldpd asks in app.yml. */
export interface MissingSubscriptions {
  /** Events it is not sent. */
  readonly events: readonly string[];
  /** Permissions it has not, or has only `read` of where `write` is asked. */
  readonly permissions: readonly string[];
}

/**
 * What app `app` (GitHub's `GET /app`: its `events` and `permissions`) lacks of `wanted` (app.yml's
 * events and permissions). An app registered before cldpd asked for an event keeps working
 * without it; this says what it does not see.
 */
export function missingSubscriptions(app: { events?: unknown; permissions?: unknown }, wanted: { events: readonly string[]; permissions: Readonly<Record<string, string>> }): MissingSubscriptions {
  const has = new Set(Array.isArray(app.events) ? app.events.filter((e): e is string => typeof e === 'string') : []);
  const granted = (typeof app.permissions === 'object' && app.permissions !== null ? app.permissions : {}) as Record<string, unknown>;
  const events = wanted.events.filter((e) => !has.has(e));
  const permissions = Object.entries(wanted.permissions).filter(([name, level]) => {
    const given = granted[name];
    return given !== level && !(given === 'write' && level === 'read');
  }).map(([name, level]) => `${name}: ${level}`);
  return { events, permissions };
}

/** The log line for what an app lacks, or undefined when it lacks nothing. */
export function missingSubscriptionsMessage(missing: MissingSubscriptions): string | undefined {
  if (missing.events.length === 0 && missing.permissions.length === 0) return undefined;
  const parts = [
    missing.events.length > 0 ? `is not sent the events ${missing.events.join(', ')}` : undefined,
    missing.permissions.length > 0 ? `lacks the permissions ${missing.permissions.join(', ')}` : undefined,
  ].filter(Boolean);
  return `The GitHub App ${parts.join(' and ')} that cldpd uses (reviews, pull request comments and failing checks need them); it works without them on issues. Add them in the app's settings on GitHub (Permissions & events), then accept the new permissions on each installation.`;
}
