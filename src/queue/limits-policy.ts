import * as z from 'zod/mini';

/** Limits of one scope (a repository, or one person in it); an absent one does not apply. */
export interface Limits {
  /** Runs (starts and resumes) asked for per UTC day. */
  readonly runsPerDay?: number;
  /** What runs may spend in a UTC day together, in US dollars, counted as they spend it (see UsageLimits.spend). */
  readonly spendPerDayUsd?: number;
  /** Sessions with a run queued or running at once. */
  readonly sessionsAtOnce?: number;
}

/** A repository's limits: for all its runs together, and for each person's. */
export interface RepoLimits {
  readonly repository: Limits;
  readonly perPerson: Limits;
}

/** No limits at all. */
export const NO_LIMITS: RepoLimits = Object.freeze({ repository: Object.freeze({}), perPerson: Object.freeze({}) });

const count = z.number().check(z.refine(Number.isInteger, 'must be a whole number'), z.minimum(0, 'must be 0 or more'));
const scopeSchema = z.strictObject({
  runsPerDay: z.optional(count),
  spendPerDayUsd: z.optional(z.number().check(z.minimum(0, 'must be 0 or more (US dollars)'))),
  sessionsAtOnce: z.optional(count),
});

/** The `limits` setting, in `.github/cldpd.yml` and in `CLDPD_LIMITS`: `repository` and `perPerson`, each with any of the three limits. */
export const limitsSchema = z.strictObject({ repository: z.optional(scopeSchema), perPerson: z.optional(scopeSchema) });

/** Checks a parsed `limits` value; throws an Error naming each field that is wrong, prefixed by `where`. */
export function parseLimits(raw: unknown, where: string): Partial<RepoLimits> {
  const result = limitsSchema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const at = [where, ...i.path.map(String)].join('.');
    if (i.code === 'unrecognized_keys') return `${at}: unknown key ${i.keys.map((k) => `"${k}"`).join(', ')} (known: ${i.path.length === 0 ? 'repository, perPerson' : 'runsPerDay, spendPerDayUsd, sessionsAtOnce'})`;
    if (i.code === 'invalid_type') return `${at} must be ${i.path.length <= 1 ? 'a mapping like "runsPerDay: 20"' : 'a number'}`;
    return `${at} ${i.message}`;
  });
  throw new Error(problems.join('; '));
}

/**
 * The limits that apply: `base` (the installation's, CLDPD_LIMITS) with `over` (a
 * repository's `.github/cldpd.yml`), limit by limit, the lower where both set one. A
 * repository may add limits and lower the installation's, never raise them: anyone who can
 * push to it could otherwise lift the limits meant for them.
 */
export function mergeLimits(base: RepoLimits, over: Partial<RepoLimits> | undefined): RepoLimits {
  const lower = (a: Limits, b: Limits | undefined): Limits => {
    const out: Record<string, number> = { ...a };
    for (const [name, value] of Object.entries(b ?? {})) {
      if (typeof value === 'number') out[name] = out[name] === undefined ? value : Math.min(out[name] as number, value);
    }
    return Object.freeze(out);
  };
  return Object.freeze({ repository: lower(base.repository, over?.repository), perPerson: lower(base.perPerson, over?.perPerson) });
}

/** Today's figures of one scope. */
export interface Usage {
  readonly runs: number;
  readonly spendUsd: number;
  readonly sessions: number;
}

/** Which limit refused a run, with its figures. */
export interface LimitHit {
  readonly scope: 'repository' | 'person';
  readonly limit: keyof Limits;
  readonly value: number;
  readonly used: number;
}

/** The UTC day of `at` as `YYYY-MM-DD`: days, and so daily limits, turn at 00:00 UTC. */
export function utcDay(at: number): string {
  return new Date(at).toISOString().slice(0, 10);
}

/** When the UTC day of `at` ends (ms since the epoch). */
export function dayEnds(at: number): number {
  const d = new Date(at);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1);
}
