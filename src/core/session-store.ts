import type { AgentName } from './agents/agent.js';
import { chmod, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { CldpdError } from './errors.js';

/** `<pod>-<16 hex>` (64 random or hashed bits); `<pod>-<8 hex>` is what cldpd made before, still read. */
const SESSION_ID = /^[a-z0-9][a-z0-9._-]*-(?:[0-9a-f]{16}|[0-9a-f]{8})$/;

/** Hex digits of a new session id's suffix: 64 bits, so two issues' ids do not meet by chance. */
export const SESSION_SUFFIX_HEX = 16;

/** A persisted path of a session and the named volume that holds it. */
export interface PersistedVolume {
  readonly path: string;
  readonly volume: string;
}

/** What this host remembers of a session between runs; the file `session.json`. */
export interface SessionRecord {
  readonly id: string;
  readonly pod: string;
  readonly image: string;
  readonly imageId: string;
  readonly issueUrl?: string;
  readonly hostId: string;
  readonly containerName: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly runs: number;
  readonly volumes: readonly PersistedVolume[];
  /** The agent's conversation id (Claude Code's session, Codex's thread, Gemini's session): what its resume command continues. */
  readonly claudeSessionId?: string;
  /** The agent the session was started with (pod.json `agent`); Claude Code for a record that names none (written before agents had names). */
  readonly agent?: AgentName;
  /**
   * Set while a run is being started (its image built, its volumes prepared, its container
   * not created yet): until this time (epoch ms) the session is in use although no
   * container shows it, so a removal leaves its volumes and record alone. Cleared once the
   * container exists; a process that dies meanwhile leaves it to run out.
   */
  readonly startingUntil?: number;
  /** When a stop was asked for while the session was starting (see startingUntil): the start then starts nothing. */
  readonly stopAskedAt?: number;
  /** What the Claude session has cost in all runs, as the agent last reported it. */
  readonly costUsd?: number;
  /** Turns the agent took in all runs. */
  readonly turns?: number;
  /**
   * The repository's narrower egress list the last run was given (`.github/cldpd.yml`), as
   * written there: a person's terminal on the session (cldpd attach) reaches no more.
   */
  readonly egressNarrowed?: readonly string[];
  readonly last?: {
    readonly exitCode?: number;
    readonly reason?: string;
    readonly error?: string;
    readonly endedAt: number;
    /** What the last run cost, and its turns. */
    readonly costUsd?: number;
    readonly turns?: number;
  };
}

/**
 * Modes of what cldpd writes about sessions: prompts, agent output and issue URLs are the
 * host user's alone.
 */
export const PRIVATE_DIR_MODE = 0o700;
export const PRIVATE_FILE_MODE = 0o600;

/**
 * Creates `dir` (and missing parents) readable by its owner only; an existing one, which an
 * older cldpd may have left open to all, is tightened.
 */
export async function privateDir(dir: string): Promise<void> {
  const first = await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) await chmod(dir, PRIVATE_DIR_MODE);
}

/** True for ids of the form `<pod>-<16 hex>`, or `<pod>-<8 hex>` (sessions of an older cldpd). */
export function isSessionId(id: string): boolean {
  return SESSION_ID.test(id);
}

/**
 * Session records and logs under one directory: `<dir>/<session id>/session.json` and
 * `log.jsonl`. Records are replaced atomically (write, then rename). Session directories are
 * 0700 and files 0600 (see PRIVATE_DIR_MODE); saving tightens what an older cldpd left.
 */
export class SessionStore {
  private readonly pending = new Map<string, Promise<unknown>>();

  constructor(readonly dir: string) {}

  /** The directory of one session; throws `SessionNotFound` for a malformed id. */
  sessionDir(id: string): string {
    if (!isSessionId(id)) {
      throw new CldpdError('SessionNotFound', `"${id}" is not a session id (they look like my-pod-1a2b3c4d5e6f7a8b, or my-pod-1a2b3c4d from an older cldpd). List sessions with "cldpd ps --all".`);
    }
    return join(this.dir, id);
  }

  /** Path of the session's event log. */
  logPath(id: string): string {
    return join(this.sessionDir(id), 'log.jsonl');
  }

  /** Writes the record (0600, in a 0700 directory), creating the session directory when needed. */
  async save(record: SessionRecord): Promise<void> {
    const dir = this.sessionDir(record.id);
    await privateDir(dir);
    const tmp = join(dir, `.session.json.${process.pid}.tmp`);
    // A temporary file a crash left keeps its mode: set it, not only at creation.
    await writeFile(tmp, `${JSON.stringify(record, null, 2)}\n`, { mode: PRIVATE_FILE_MODE });
    await chmod(tmp, PRIVATE_FILE_MODE);
    await rename(tmp, join(dir, 'session.json'));
  }

  /**
   * Saves the record of a new session, only if no session of that id exists on this host (the
   * session's directory is made exclusively): false when one does, and nothing is written.
   */
  async create(record: SessionRecord): Promise<boolean> {
    const dir = this.sessionDir(record.id);
    await mkdir(this.dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    try {
      await mkdir(dir, { mode: PRIVATE_DIR_MODE });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    }
    await this.save(record);
    return true;
  }

  /** Reads a record; throws `SessionNotFound` when there is none. */
  async load(id: string): Promise<SessionRecord> {
    const file = join(this.sessionDir(id), 'session.json');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new CldpdError('SessionNotFound', `No session "${id}" on this host. List sessions with "cldpd ps --all".`);
      }
      throw err;
    }
    return JSON.parse(text) as SessionRecord;
  }

  /** Updates a record with `change`, keeping the rest. */
  update(id: string, change: Partial<Omit<SessionRecord, 'id'>>): Promise<SessionRecord> {
    // Updates of one session run one after another, so none overwrites another's change.
    const previous = this.pending.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(async () => {
      const record = { ...(await this.load(id)), ...change, updatedAt: Date.now() };
      await this.save(record);
      return record;
    });
    this.pending.set(id, next);
    void next.finally(() => {
      if (this.pending.get(id) === next) this.pending.delete(id);
    }).catch(() => undefined);
    return next;
  }

  /**
   * The user a persisted volume was last given to on this host (see Dispatcher), or
   * undefined when cldpd never did (a new volume, or one a run that died half-way left).
   */
  async volumeOwner(volume: string): Promise<string | undefined> {
    return readFile(join(this.dir, '.volume-owners', encodeURIComponent(volume)), 'utf8').catch(() => undefined);
  }

  /** Records that `volume` now belongs to `user`. */
  async setVolumeOwner(volume: string, user: string): Promise<void> {
    const dir = join(this.dir, '.volume-owners');
    await privateDir(dir);
    const file = join(dir, encodeURIComponent(volume));
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, user, { mode: PRIVATE_FILE_MODE });
    await chmod(tmp, PRIVATE_FILE_MODE);
    await rename(tmp, file);
  }

  /**
   * Forgets who `volume` was given to: once the volume is removed, a new one of that name
   * starts out root-owned and must be given away again. Idempotent.
   */
  async forgetVolumeOwner(volume: string): Promise<void> {
    await rm(join(this.dir, '.volume-owners', encodeURIComponent(volume)), { force: true });
  }

  /** Removes a session's record and log (its whole directory); resolves with the bytes that freed. Idempotent. */
  async remove(id: string): Promise<number> {
    if (!isSessionId(id)) throw new Error(`not a session id: ${id}`);
    const dir = this.sessionDir(id);
    const bytes = await dirBytes(dir);
    await rm(dir, { recursive: true, force: true });
    return bytes;
  }

  /** The bytes a session's record and log take on disk. */
  async size(id: string): Promise<number> {
    return dirBytes(this.sessionDir(id));
  }

  /** Every record, newest first. Unreadable entries are skipped. */
  async list(): Promise<SessionRecord[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    const records = await Promise.all(names.filter(isSessionId).map((id) => this.load(id).catch(() => undefined)));
    return records.filter((r): r is SessionRecord => r !== undefined).sort((a, b) => b.createdAt - a.createdAt);
  }
}

/** The bytes of the files in `dir` (not recursing further: a session directory is flat); 0 when it is gone. */
async function dirBytes(dir: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return 0;
  }
  const sizes = await Promise.all(names.map((name) => stat(join(dir, name)).then((s) => (s.isFile() ? s.size : 0), () => 0)));
  return sizes.reduce((a, b) => a + b, 0);
}
