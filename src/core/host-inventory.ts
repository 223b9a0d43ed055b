import { CldpdError } from './errors.js';
import { LABELS } from './labels.js';
import type { ContainerInfo, Runner, VolumeInfo } from './runner.js';
import { isSessionId, type SessionRecord, type SessionStore } from './session-store.js';
import { holdsSession, isTakeover } from './session-takeover.js';

/** What a {@link HostInventory} reads and removes through: the same as the Dispatcher's. */
export interface HostInventoryOptions {
  readonly runner: Runner;
  readonly store: SessionStore;
  /** The host whose sessions, containers and volumes are listed (their `dev.cldpd.host` label). */
  readonly hostId: string;
}

/** A session container as found on the Docker host. */
export interface SessionContainer {
  readonly sessionId: string;
  readonly pod: string;
  readonly issueUrl: string | undefined;
  readonly container: ContainerInfo;
}

/** A persisted volume of this host, as `cldpd volumes` lists it. */
export interface VolumeRow {
  readonly name: string;
  readonly pod: string;
  /** The issue whose sessions share it; undefined for a volume of one session alone (see `sessionId`). */
  readonly issueUrl: string | undefined;
  /** The session that created it (its label): the volume's owner when it belongs to no issue. */
  readonly sessionId: string;
  /** Sessions of this host whose records say they used it, newest first. */
  readonly sessions: readonly string[];
  /** Where the session's container mounts it. */
  readonly path: string;
  /** Bytes it holds; undefined when the engine does not report it. */
  readonly sizeBytes: number | undefined;
  /** Epoch ms; undefined when the engine does not say. */
  readonly createdAt: number | undefined;
  /** Whether a running container of this host mounts it. */
  readonly inUse: boolean;
}

/** A volume {@link HostInventory.removeVolumes} removed, or found already gone. */
export interface RemovedVolume {
  readonly name: string;
  /** Where sessions mounted it; undefined when that is not known (a volume already gone). */
  readonly path: string | undefined;
  /** False when there was no such volume: removed before, which is as good. */
  readonly existed: boolean;
  /**
   * The other sessions that used it (all finished, or it would have been refused): what
   * they persisted there went with it. For a volume named directly, every session that used it.
   */
  readonly sharedWith: readonly string[];
}

/** A volume {@link HostInventory.removeVolumes} kept: why, and what to do about it. */
export interface RefusedVolume {
  readonly name: string;
  readonly path: string | undefined;
  readonly reason: string;
}

/** One session {@link HostInventory.removeSessions} removed (or, in a dry run, would remove). */
export interface RemovedSession {
  readonly sessionId: string;
  readonly issueUrl: string | undefined;
  readonly containers: number;
  readonly volumes: readonly string[];
  /** What it freed: its record and log, and its volumes' sizes as the engine reports them. */
  readonly bytes: number;
  /** When it last changed (its record), if it has one. */
  readonly lastActive: number | undefined;
}

/** What {@link HostInventory.removeSessions} did: the sessions removed, and those kept with why. */
export interface SessionRemoval {
  readonly removed: readonly RemovedSession[];
  readonly kept: ReadonlyArray<{ readonly sessionId: string; readonly reason: string }>;
}

/** What {@link HostInventory.removeVolumes} did, volume by volume. */
export interface VolumeRemoval {
  readonly removed: readonly RemovedVolume[];
  readonly refused: readonly RefusedVolume[];
}

/** Labels every persisted volume cldpd creates carries (see volumeLabels): what tells it from a foreign one. */
const PERSISTED_VOLUME = Object.freeze({ [LABELS.path]: undefined, [LABELS.pod]: undefined, [LABELS.session]: undefined });

function isCldpdVolume(volume: VolumeInfo): boolean {
  return Object.keys(PERSISTED_VOLUME).every((label) => Boolean(volume.labels[label]));
}

/** What removing volumes needs to know once: who used each volume, and what runs now. */
interface RemovalContext {
  readonly sessions: ReadonlyMap<string, readonly string[]>;
  readonly running: readonly ContainerInfo[];
}

/** What happened to one volume. */
type VolumeOutcome = { readonly removed: RemovedVolume } | { readonly refused: RefusedVolume };

function removal(outcomes: readonly VolumeOutcome[]): VolumeRemoval {
  return {
    removed: outcomes.flatMap((o) => ('removed' in o ? [o.removed] : [])),
    refused: outcomes.flatMap((o) => ('refused' in o ? [o.refused] : [])),
  };
}

/** Volume name → the sessions whose records list it, in the records' order (newest first). */
function sessionsByVolume(records: readonly SessionRecord[]): Map<string, string[]> {
  const sessions = new Map<string, string[]>();
  for (const r of records) {
    for (const v of r.volumes) {
      const ids = sessions.get(v.volume) ?? [];
      if (!ids.includes(r.id)) ids.push(r.id);
      sessions.set(v.volume, ids);
    }
  }
  return sessions;
}

/** True when the record says its session is being started (see SessionRecord `startingUntil`). */
function isStarting(record: SessionRecord | undefined): boolean {
  return (record?.startingUntil ?? 0) > Date.now();
}

/**
 * What this Docker host holds of cldpd: its session containers, persisted volumes and
 * session records, found by their labels; and their removal for good, which never touches
 * a session that runs or is being started. Stateless between calls, like the Dispatcher.
 */
export class HostInventory {
  constructor(private readonly options: HostInventoryOptions) {}

  /** Session containers of this host, newest first; with `all` false only running ones. */
  async containers(all = false): Promise<SessionContainer[]> {
    const found = await this.options.runner.list({ [LABELS.session]: undefined, [LABELS.host]: this.options.hostId });
    return found
      .filter((c) => all || c.state === 'running')
      .sort((a, b) => b.createdAt - a.createdAt)
      .map((c) => ({
        sessionId: c.labels[LABELS.session] ?? '',
        pod: c.labels[LABELS.pod] ?? '',
        issueUrl: c.labels[LABELS.issue] || undefined,
        container: c,
      }));
  }

  /**
   * The persisted volumes of this host (cldpd's labels, this host's id), newest first: whose
   * they are, the sessions whose records list them, their size when the engine reports it,
   * and whether a running container of this host mounts them.
   */
  async volumes(): Promise<VolumeRow[]> {
    const { runner, store, hostId } = this.options;
    const [found, records, containers] = await Promise.all([
      runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.host]: hostId }),
      store.list(),
      runner.list({ [LABELS.session]: undefined, [LABELS.host]: hostId }),
    ]);
    const sessions = sessionsByVolume(records);
    const mounted = new Set(containers.filter((c) => c.state === 'running').flatMap((c) => c.volumes ?? []));
    return found
      .filter(isCldpdVolume)
      .map((v) => ({
        name: v.name,
        pod: v.labels[LABELS.pod] ?? '',
        issueUrl: v.labels[LABELS.issue] || undefined,
        sessionId: v.labels[LABELS.session] ?? '',
        sessions: sessions.get(v.name) ?? [],
        path: v.labels[LABELS.path] ?? '',
        sizeBytes: v.sizeBytes,
        createdAt: v.createdAt,
        inUse: mounted.has(v.name),
      }))
      .sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0) || a.name.localeCompare(b.name));
  }

  /** The sessions of this host that belong to the issue at `issueUrl`: from their records, containers and volumes. */
  async sessionsOfIssue(issueUrl: string): Promise<string[]> {
    const { runner, store, hostId } = this.options;
    const [records, containers, volumes] = await Promise.all([
      store.list(),
      runner.list({ [LABELS.session]: undefined, [LABELS.host]: hostId, [LABELS.issue]: issueUrl }),
      runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.host]: hostId, [LABELS.issue]: issueUrl }, { sizes: false }),
    ]);
    return [...new Set([
      ...records.filter((r) => r.issueUrl === issueUrl).map((r) => r.id),
      ...containers.map((c) => c.labels[LABELS.session] ?? '').filter(isSessionId),
      ...volumes.map((v) => v.labels[LABELS.session] ?? '').filter(isSessionId),
    ])];
  }

  /** When the session was made (its record's), if this host has its record. */
  async createdAt(sessionId: string): Promise<number | undefined> {
    return (await this.options.store.load(sessionId).catch(() => undefined))?.createdAt;
  }

  /** When any of these sessions was last used (its record last changed); undefined when none has a record here. */
  async lastActive(sessionIds: readonly string[]): Promise<number | undefined> {
    let last: number | undefined;
    for (const id of sessionIds) {
      const record = await this.options.store.load(id).catch(() => undefined);
      if (record && (last === undefined || record.updatedAt > last)) last = record.updatedAt;
    }
    return last;
  }

  /**
   * Removes finished sessions of this host for good: their containers, the volumes their
   * records list or that carry their label (a volume an issue's running session still
   * mounts is kept), and their records and logs. A session with a running container is
   * never touched (it is in `kept`). With `dryRun`, only says what it would remove. What it
   * frees is counted from the volumes' sizes as the engine reports them and the files'.
   */
  async removeSessions(sessionIds: readonly string[], options: { dryRun?: boolean } = {}): Promise<SessionRemoval> {
    const { runner, store } = this.options;
    if (sessionIds.length === 0) return { removed: [], kept: [] };
    // The engine's disk-usage call is slow: asked once, and only when there is something to remove.
    const sizes = new Map((await this.volumes()).map((v) => [v.name, v.sizeBytes ?? 0]));
    const removal: { removed: RemovedSession[]; kept: Array<{ sessionId: string; reason: string }> } = { removed: [], kept: [] };
    for (const sessionId of [...new Set(sessionIds)]) {
      const containers = await this.containersOf(sessionId);
      // Only a container that has ended may go, or one created long ago that never started: any
      // other (being created, running, paused, restarting) is in use.
      const busy = containers.find((c) => c.state !== 'exited' && c.state !== 'dead' && !(c.state === 'created' && c.createdAt < Date.now() - 3600_000));
      if (busy) {
        removal.kept.push({ sessionId, reason: busy.state === 'running' ? `it is running (stop it first: cldpd stop ${sessionId})` : `its container is ${busy.state}` });
        continue;
      }
      const record = await store.load(sessionId).catch(() => undefined);
      if (isStarting(record)) {
        removal.kept.push({ sessionId, reason: `it is starting (its container is not created yet; stop it first: cldpd stop ${sessionId})` });
        continue;
      }
      const labelled = (await runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.session]: sessionId }, { sizes: false })).filter(isCldpdVolume).map((v) => v.name);
      const volumes = [...new Set([...(record?.volumes ?? []).map((v) => v.volume), ...labelled])];
      if (!record && containers.length === 0 && volumes.length === 0) continue; // nothing of it on this host
      const recordBytes = await store.size(sessionId);
      let bytes = recordBytes + volumes.reduce((sum, v) => sum + (sizes.get(v) ?? 0), 0);
      let removedVolumes = volumes;
      if (!options.dryRun) {
        for (const c of containers) await runner.remove(c.id).catch(() => undefined);
        const outcome = await this.removeVolumes(sessionId);
        removedVolumes = outcome.removed.filter((v) => v.existed).map((v) => v.name);
        for (const refused of outcome.refused) bytes -= sizes.get(refused.name) ?? 0;
        await store.remove(sessionId);
      }
      removal.removed.push({ sessionId, issueUrl: record?.issueUrl, containers: containers.length, volumes: removedVolumes, bytes, lastActive: record?.updatedAt });
    }
    return removal;
  }

  /**
   * Removes persisted volumes, and forgets who this host gave them to. `target` is a session
   * id (the volumes its record lists, and any labelled with it) or a volume's name.
   *
   * Refused, each volume with its reason, never thrown: every volume of a running session
   * ("Session X is running; stop it first: cldpd stop X"); a volume a running container of
   * another session mounts (the issue's sessions share theirs); one that is not cldpd's (no
   * labels); one Docker will not remove (a stopped container still holds it). A volume
   * shared with finished sessions is removed, and `sharedWith` names them. Idempotent: a
   * volume already gone is in `removed` with `existed` false.
   *
   * Throws `InvalidInput` when `target` names a volume that exists but is not cldpd's: cldpd
   * never removes a foreign volume. Throws `DockerUnavailable` when the engine does not answer.
   */
  async removeVolumes(target: string): Promise<VolumeRemoval> {
    const { runner, store } = this.options;
    const records = await store.list();
    const context: RemovalContext = {
      sessions: sessionsByVolume(records),
      // Any session container of this engine, whichever host started it: Docker would refuse anyway.
      running: (await runner.list({ [LABELS.session]: undefined })).filter((c) => c.state === 'running'),
    };
    if (isSessionId(target)) {
      const record = records.find((r) => r.id === target);
      const labelled = (await runner.listVolumes({ ...PERSISTED_VOLUME, [LABELS.session]: target }, { sizes: false })).filter(isCldpdVolume);
      const containers = await this.containersOf(target);
      if (record || labelled.length > 0 || containers.length > 0) {
        const volumes = new Map<string, string | undefined>();
        for (const v of record?.volumes ?? []) volumes.set(v.volume, v.path);
        for (const v of labelled) if (!volumes.has(v.name)) volumes.set(v.name, v.labels[LABELS.path]);
        if (containers.some((c) => c.state === 'running') || isStarting(record)) {
          const reason = `Session ${target} is ${isStarting(record) ? 'starting' : 'running'}; stop it first: cldpd stop ${target}`;
          return { removed: [], refused: [...volumes].map(([name, path]) => ({ name, path, reason })) };
        }
        const outcomes: VolumeOutcome[] = [];
        for (const [name, path] of volumes) {
          outcomes.push(await this.removeVolume(name, path, await runner.inspectVolume(name), target, context));
        }
        return removal(outcomes);
      }
    }
    const info = await runner.inspectVolume(target);
    if (info && !isCldpdVolume(info)) {
      throw new CldpdError('InvalidInput', `The volume "${target}" is not cldpd's (it has none of the dev.cldpd.* labels of a persisted path): cldpd removes only volumes it created. Remove it with "docker volume rm ${target}" if you mean to; "cldpd volumes" lists cldpd's.`);
    }
    return removal([await this.removeVolume(target, info?.labels[LABELS.path], info, undefined, context)]);
  }

  /**
   * Removes one persisted volume (`info` undefined: it is gone already) unless it is not
   * cldpd's, a running session container mounts it, or Docker refuses; `forSession` is the
   * session whose volumes are being removed, if any.
   */
  private async removeVolume(name: string, path: string | undefined, info: VolumeInfo | undefined, forSession: string | undefined, context: RemovalContext): Promise<VolumeOutcome> {
    const refused = (reason: string): VolumeOutcome => ({ refused: { name, path, reason } });
    if (info && !isCldpdVolume(info)) {
      return refused(`A volume named ${name} exists but is not cldpd's (it has no dev.cldpd.* labels), so cldpd keeps it. Remove it with "docker volume rm ${name}" if you mean to.`);
    }
    const users = [...new Set(context.running.filter((c) => (c.volumes ?? []).includes(name)).map((c) => c.labels[LABELS.session] || c.name))];
    if (info && users.length > 0) {
      const many = users.length > 1;
      const stop = `stop ${many ? 'them' : 'it'} first: ${users.map((u) => `cldpd stop ${u}`).join('; ')}`;
      const who = users.map((u) => `session ${u}`).join(', ');
      return refused(forSession ? `Shared with ${who} of the same issue, which ${many ? 'are' : 'is'} running; ${stop}` : `In use by running ${who}; ${stop}`);
    }
    if (info) {
      try {
        await this.options.runner.removeVolume(name);
      } catch (err) {
        // Docker's refusal (a stopped container still holds it) says which container and what to do.
        if (err instanceof CldpdError && err.code === 'ContainerFailed') return refused(err.message);
        throw err;
      }
    }
    await this.options.store.forgetVolumeOwner(name);
    return { removed: { name, path, existed: info !== undefined, sharedWith: (context.sessions.get(name) ?? []).filter((s) => s !== forSession) } };
  }

  /**
   * Removes this host's takeover containers (cldpd attach) that hold their session no more: a
   * terminal lost past its lifetime, or one created and never started. Says which.
   */
  async sweepTakeovers(now = Date.now()): Promise<string[]> {
    const removed: string[] = [];
    for (const c of await this.options.runner.list({ [LABELS.host]: this.options.hostId })) {
      if (!isTakeover(c) || holdsSession(c, now)) continue;
      await this.options.runner.remove(c.id).catch(() => undefined);
      removed.push(c.name);
    }
    return removed;
  }

  /**
   * Removes what a process which died left behind on this engine: helper containers, and
   * this host's egress gateways (with their networks) whose run's container is gone or has
   * ended, sparing a session this host is starting. Resolves with how many containers and networks went.
   */
  async sweepHelpers(): Promise<number> {
    const starting = async (sessionId: string): Promise<boolean> => isSessionId(sessionId) && isStarting(await this.options.store.load(sessionId).catch(() => undefined));
    const [helpers, gateways] = await Promise.all([
      this.options.runner.removeHelpers(10 * 60_000),
      this.options.runner.removeStrayGateways(this.options.hostId, 10 * 60_000, starting),
    ]);
    return helpers + gateways.length;
  }

  private containersOf(sessionId: string): Promise<ContainerInfo[]> {
    return this.options.runner.list({ [LABELS.session]: sessionId });
  }
}
