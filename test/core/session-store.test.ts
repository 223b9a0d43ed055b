import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SessionStore, type SessionRecord } from '../../src/core/index.js';
import { SessionLog } from '../../src/core/session-log.js';
import { tempDir } from '../fakes/pods.js';

const modeOf = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

const record = (id: string): SessionRecord => ({
  id, pod: 'web', image: 'cldpd-web:latest', imageId: 'sha256:abc', hostId: 'host-a', containerName: `cldpd-${id}`,
  createdAt: 1, updatedAt: 1, runs: 1, volumes: [],
});

describe('SessionStore and SessionLog file modes', () => {
  it('hardening: save writes session.json 0600 in a 0700 session directory', async () => {
    const store = new SessionStore(join(await tempDir(), 'sessions'));
    await store.save(record('web-00112233'));
    const dir = store.sessionDir('web-00112233');
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(join(dir, 'session.json'))).toBe(0o600);
    expect(await modeOf(store.dir)).toBe(0o700);
  });

  it('hardening: save and update tighten a session written world-readable by an older cldpd', async () => {
    const store = new SessionStore(join(await tempDir(), 'sessions'));
    const dir = store.sessionDir('web-00aabbcc');
    await mkdir(dir, { recursive: true, mode: 0o755 });
    await chmod(dir, 0o755);
    await writeFile(join(dir, 'session.json'), JSON.stringify(record('web-00aabbcc')), { mode: 0o644 });
    await chmod(join(dir, 'session.json'), 0o644);
    await store.update('web-00aabbcc', { runs: 2 });
    expect(await modeOf(dir)).toBe(0o700);
    expect(await modeOf(join(dir, 'session.json'))).toBe(0o600);
    expect((await store.load('web-00aabbcc')).runs).toBe(2);
  });

  it('hardening: volume owner records are 0600 in a 0700 directory', async () => {
    const store = new SessionStore(join(await tempDir(), 'sessions'));
    await store.setVolumeOwner('cldpd-web-1-00112233', 'agent');
    const file = join(store.dir, '.volume-owners', 'cldpd-web-1-00112233');
    expect(await modeOf(dirname(file))).toBe(0o700);
    expect(await modeOf(file)).toBe(0o600);
    expect(await store.volumeOwner('cldpd-web-1-00112233')).toBe('agent');
  });

  it('hardening: SessionLog.open creates the log 0600 in a 0700 directory', async () => {
    const store = new SessionStore(join(await tempDir(), 'sessions'));
    const path = store.logPath('web-00112233');
    const log = await SessionLog.open(path);
    await log.append([{ type: 'output', at: 1, stream: 'stdout', line: 'hi' }]);
    await log.close();
    expect(await modeOf(dirname(path))).toBe(0o700);
    expect(await modeOf(path)).toBe(0o600);
  });

  it('hardening: SessionLog.open tightens an existing 0644 log in a 0755 directory and keeps its lines', async () => {
    const store = new SessionStore(join(await tempDir(), 'sessions'));
    const path = store.logPath('web-00112233');
    await mkdir(dirname(path), { recursive: true, mode: 0o755 });
    await chmod(dirname(path), 0o755);
    await writeFile(path, '{"type":"output","at":1,"stream":"stdout","line":"old"}\n', { mode: 0o644 });
    await chmod(path, 0o644);
    const log = await SessionLog.open(path);
    await log.close();
    expect(await modeOf(dirname(path))).toBe(0o700);
    expect(await modeOf(path)).toBe(0o600);
    expect((await stat(path)).size).toBeGreaterThan(0);
  });
});
