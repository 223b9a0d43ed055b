import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { FakeGitHub } from '../fakes/fake-github.js';
import { tempDir } from '../fakes/pods.js';
import { GatedWorld, describeWithDocker, until } from '../integration/harness.js';
import { CLI, CldpdProcess, deliver, freePort, processEnv, serverUp, webhookPayload } from './processes.js';
import { PRIMARY_NAME, RedisProcess, SentinelSet } from './redis-failover.js';
import { loadConfig } from '../../src/config.js';
import { issueKeyName } from '../../src/queue/issue-keys.js';
import { sharedRedis, type SharedRedis } from '../../src/main/redis-connection.js';

const run = promisify(execFile);
const SECRET = 'e2e-sentinel-secret';
const OWNER = 'acme';
const REPO = 'failover';

describeWithDocker('Redis behind Sentinel: the primary dies mid-run', () => {
  const world = new GatedWorld();
  const github = new FakeGitHub();
  let redisDir: string;
  let set: SentinelSet | undefined;
  let restarted: RedisProcess | undefined;
  let server: CldpdProcess | undefined;
  let worker: CldpdProcess | undefined;
  let port: number;
  let record: string;
  let env: NodeJS.ProcessEnv;

  const issue = (n: number) => `${OWNER}/${REPO}#${n}`;
  const statuses = (n: number) => github.commentsOn(issue(n)).filter((c) => c.body.startsWith('<!-- cldpd:status'));
  const phaseOf = (n: number) => /cldpd: (\w+)/.exec(statuses(n)[0]?.body ?? '')?.[1];
  const label = (n: number, pod = 'hold') => deliver(port, 'issues', webhookPayload('issues', 'labeled', { owner: OWNER, repo: REPO, installation: 5151, issue: n, body: 'Work.', label: `cldpd:${pod}` }), { id: randomUUID(), secret: SECRET });
  /** The sessions the fake agent was started for, one line per start (a re-attach starts nothing). */
  const starts = async () => (await readFile(join(record, 'starts'), 'utf8').catch(() => '')).split('\n').filter(Boolean);

  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    redisDir = await tempDir('cldpd-sentinel-');
    set = new SentinelSet(redisDir);
    await set.start();
    record = join(world.home, 'record');
    await mkdir(record, { recursive: true });
    await chmod(record, 0o777);
    // The agent says it started (a line per start), then works until the test lets it finish.
    await world.pod('hold', {
      command: ['sh', '-c', 'echo "$CLDPD_SESSION_ID" >> /record/starts; echo working; while [ ! -f /record/go ]; do sleep 0.2; done; echo "work done"'],
      mounts: [{ source: record, target: '/record' }], stopGraceSeconds: 1,
    });
    await world.pod('hold2', {
      command: ['sh', '-c', 'echo "$CLDPD_SESSION_ID" >> /record/starts; echo working; while [ ! -f /record/go2 ]; do sleep 0.2; done; echo "work done"'],
      mounts: [{ source: record, target: '/record' }], stopGraceSeconds: 1,
    });
    await github.start();
    github.roles.set('alice', 'write');
    port = await freePort();
    env = processEnv({
      world, github, port, redisUrl: '', secret: SECRET,
      extra: { REDIS_URL: undefined, REDIS_SENTINELS: set.setting, REDIS_SENTINEL_NAME: PRIMARY_NAME, CLDPD_CONCURRENCY: '2', CLDPD_JOB_LOCK_SECONDS: '8' },
    });
    server = new CldpdProcess('serve', env, join(world.home, 'server.log'));
    worker = new CldpdProcess('worker', env, join(world.home, 'worker.log'));
    await serverUp(port);
  }, 90_000);

  const cldpd = (environment: NodeJS.ProcessEnv, ...args: string[]) => run(process.execPath, [CLI, ...args], { env: environment }).catch((err: { stdout: string; stderr: string; code: number }) => err);

  afterAll(async () => {
    await writeFile(join(record ?? world.home, 'go'), '').catch(() => undefined);
    await worker?.stop();
    await server?.stop();
    await github.close();
    await restarted?.stop('SIGKILL');
    await set?.stop();
    await world.close();
  });

  it('the running runs go on and finish, the queued ones each run once, every issue has one status comment, and serve and worker follow the new primary by themselves', async () => {
    // Four labels on a host of two slots: two run, two wait for a slot.
    for (const n of [1, 2, 3, 4]) expect(await label(n)).toBe(200);
    await until('two runs running and two queued', async () => {
      const phases = [1, 2, 3, 4].map(phaseOf);
      return phases.filter((p) => p === 'running').length === 2 && phases.filter((p) => p === 'queued').length === 2 && (await starts()).length === 2;
    }, 90_000);
    const sentinels = set as SentinelSet;
    const oldPrimary = sentinels.primary.port;
    // What makes the four deliveries survive the primary's death: each was answered only once the replica had its job (WAIT).
    expect(await readFile(join(world.home, 'server.log'), 'utf8')).not.toContain('no Redis replica confirmed');

    // The primary dies as a crash does: whatever it took but had not yet sent to the replica is gone.
    await sentinels.primary.stop('SIGKILL');
    await until('the sentinels to promote the replica', async () => (await sentinels.primaryPort()) === sentinels.replica.port, 30_000);
    expect(await sentinels.replica.ask('ROLE').then((r) => (r as string[])[0])).toBe('master');
    // The old primary comes back (empty, as a crashed server without persistence does), as a replica of the new one.
    restarted = new RedisProcess(oldPrimary, [...SentinelSet.dataNodeArgs(oldPrimary, join(redisDir, 'primary')), '--replicaof', '127.0.0.1', String(sentinels.replica.port)], join(redisDir, 'primary-again.log'));

    // The job lock (8 s) outlasts the failover (2 s to call the primary down, then the election): the
    // runs go on with the worker that has them. Were it shorter they would be taken over and re-attached.
    // The agents finish: the two running runs report, then the two queued ones run, each once.
    await writeFile(join(record, 'go'), '');
    await until('four finished status comments', () => [1, 2, 3, 4].every((n) => phaseOf(n) === 'finished'), 120_000);

    // A label after the failover: the server takes it on the new primary, the worker runs it.
    expect(await label(5)).toBe(200);
    await until('the fifth run to finish', () => phaseOf(5) === 'finished', 90_000);

    for (const n of [1, 2, 3, 4, 5]) {
      const own = statuses(n);
      expect(own, `status comments of #${n}`).toHaveLength(1);
      expect(own[0]?.body).toMatch(/cldpd: finished \(pod `hold`\)/);
      expect(own[0]?.body).toContain('work done');
    }
    const started = await starts();
    const sessions = [1, 2, 3, 4, 5].map((n) => /session `(hold-[0-9a-f]{16})`/.exec(statuses(n)[0]?.body ?? '')?.[1]);
    expect(sessions.every(Boolean)).toBe(true);
    // Every session started exactly once: none lost, none run twice.
    expect([...started].sort()).toEqual([...sessions].sort());
    for (const n of [1, 2, 3, 4, 5]) expect(github.commentsOn(issue(n)).filter((c) => !c.body.startsWith('<!-- cldpd:status'))).toEqual([]);
    const workerLog = await readFile(join(world.home, 'worker.log'), 'utf8');
    expect(workerLog).toContain('redis connection error');
  });

  it('a primary demoted while connections stay on it (a switch-over): a write there is refused READONLY, reconnects to the new primary and goes through; a worker whose REDIS_URL names the demoted server stops, saying so; runs go on', async () => {
    const sentinels = set as SentinelSet;
    const from = sentinels.replica.port;
    const to = restarted?.port as number;
    // cldpd's own connection, without the sentinels' word of the switch: it stays on the demoted server.
    const shared = sharedRedis(loadConfig({ REDIS_SENTINELS: sentinels.setting, REDIS_SENTINEL_NAME: PRIMARY_NAME }));
    const redis = (shared as SharedRedis).open({ maxRetriesPerRequest: null, failoverDetector: false });
    redis.on('error', () => undefined);
    try {
      const servingPort = async () => Number(((await redis.call('CONFIG', 'GET', 'port')) as string[])[1]);
      await redis.set('before', '1');
      expect(await servingPort()).toBe(from);
      await until('the old primary to serve as a replica', async () => {
        const role = (await restarted?.ask('ROLE').catch(() => undefined)) as unknown[] | undefined;
        return role?.[0] === 'slave' && Number(role[2]) === from && role[3] === 'connected';
      }, 30_000);
      await until('the sentinels to see the returned server as a healthy replica', async () => {
        const replicas = (await sentinels.sentinels[0]?.ask('SENTINEL', 'REPLICAS', PRIMARY_NAME).catch(() => [])) as string[][];
        return replicas.some((r) => r[r.indexOf('port') + 1] === String(to) && r[r.indexOf('flags') + 1] === 'slave' && r[r.indexOf('master-link-status') + 1] === 'ok');
      }, 30_000);
      expect(await sentinels.sentinels[0]?.ask('SENTINEL', 'FAILOVER', PRIMARY_NAME)).toBe('OK');
      await until('the switch-over', async () => (await sentinels.primaryPort()) === to, 30_000);
      await until('the old primary to be a replica', async () => ((await sentinels.replica.ask('ROLE')) as string[])[0] === 'slave', 30_000);
      await redis.set('after', '2');
      expect(await servingPort()).toBe(to);
      expect(await restarted?.ask('GET', 'after')).toBe('2');
    } finally {
      redis.disconnect();
    }
    // Pointed at the demoted server by REDIS_URL, a worker stops at once and says why.
    const log = join(world.home, 'worker-replica.log');
    const refused = new CldpdProcess('worker', { ...env, REDIS_SENTINELS: undefined, REDIS_SENTINEL_NAME: undefined, REDIS_URL: `redis://127.0.0.1:${from}` }, log);
    expect(await refused.exited).toBe(1);
    expect(await readFile(log, 'utf8')).toContain(`Redis at redis://127.0.0.1:${from} is a replica (of 127.0.0.1:${to}), which takes no writes. Point REDIS_URL at the primary`);
    // serve and worker follow too: a label after the switch-over runs to its end.
    expect(await label(6)).toBe(200);
    await until('the sixth run to finish', () => phaseOf(6) === 'finished', 90_000);
    expect(statuses(6)).toHaveLength(1);
    expect((await starts()).filter((s) => statuses(6)[0]?.body.includes(s))).toHaveLength(1);
  });

  it('writes the primary took but no replica had are lost with it: cldpd recovers as from a crash at that instant, with no run started twice and no second status comment', async () => {
    const sentinels = set as SentinelSet;
    const primary = restarted as RedisProcess;
    const replica = sentinels.replica;
    for (const n of [7, 8, 9]) expect(await label(n, 'hold2')).toBe(200);
    await until('two runs running and one queued', async () => {
      const phases = [7, 8, 9].map(phaseOf);
      return phases.filter((p) => p === 'running').length === 2 && phases.filter((p) => p === 'queued').length === 1 && (await starts()).filter((s) => s.startsWith('hold2-')).length === 2;
    }, 90_000);
    await until('the replica to have every write so far', async () => {
      const info = String(await primary.ask('INFO', 'replication'));
      const offset = /master_repl_offset:(\d+)/.exec(info)?.[1];
      return offset !== undefined && new RegExp(`slave0:.*,offset=${offset},`).test(info);
    }, 15_000);
    // The replica is cut off (its replication user turned off, its link closed); the runs end meanwhile, on the primary alone.
    await primary.ask('ACL', 'SETUSER', 'repl', 'off');
    await primary.ask('CLIENT', 'KILL', 'TYPE', 'replica');
    await until('the replica to lose its link', async () => ((await replica.ask('ROLE')) as string[])[3] !== 'connected', 15_000);
    await writeFile(join(record, 'go2'), '');
    await until('three finished status comments', () => [7, 8, 9].every((n) => phaseOf(n) === 'finished'), 90_000);
    expect((await starts()).filter((s) => s.startsWith('hold2-'))).toHaveLength(3);
    // The primary dies; the replica is promoted without those writes: there the runs are running and queued again.
    await primary.stop('SIGKILL');
    await until('the sentinels to promote the replica', async () => (await sentinels.primaryPort()) === replica.port, 30_000);
    const redis = replica.client();
    try {
      await redis.connect();
      await until('every run of the three to be done again on the new primary', async () => {
        const running = await Promise.all([7, 8, 9].map((n) => redis.hget(issueKeyName(`${OWNER}.${REPO}-${n}`), 'running')));
        const queued = await Promise.all([7, 8, 9].map((n) => redis.llen(issueKeyName(`${OWNER}.${REPO}-${n}`, 'runs'))));
        return running.every((r) => !r || r === '0') && queued.every((q) => q === 0);
      }, 60_000);
    } finally {
      redis.disconnect();
    }
    for (const n of [7, 8, 9]) {
      expect(statuses(n), `status comments of #${n}`).toHaveLength(1);
      expect(statuses(n)[0]?.body).toMatch(/cldpd: finished \(pod `hold2`\)/);
    }
    const sessions = [7, 8, 9].map((n) => /session `(hold2-[0-9a-f]{16})`/.exec(statuses(n)[0]?.body ?? '')?.[1] as string);
    const started = await starts();
    for (const id of sessions) expect(started.filter((s) => s === id), id).toHaveLength(1);
  });

  it('the operator\'s commands read Redis through the sentinels too; sentinels that do not answer, and a primary name they do not know, are errors that name the setting', async () => {
    expect((await cldpd(env, 'hosts')).stdout).toMatch(new RegExp(`^${world.hostId}\\s+alive\\s`, 'm'));

    const unknown = await cldpd({ ...env, REDIS_SENTINEL_NAME: 'elsewhere' }, 'hosts');
    expect(unknown.stderr).toContain(`know no primary named "elsewhere" (they know "${PRIMARY_NAME}"). Set REDIS_SENTINEL_NAME to the name of their "sentinel monitor <name> …" line.`);
    const nobody = `127.0.0.1:${await freePort()}`;
    const silent = await cldpd({ ...env, REDIS_SENTINELS: nobody }, 'hosts');
    expect(silent.stderr).toContain(`No sentinel of REDIS_SENTINELS answers: ${nobody} (`);
    expect(silent.stderr).toContain('Start them, or fix REDIS_SENTINELS');

    // A worker (and serve) with a name the sentinels do not know stops at once, saying so.
    const log = join(world.home, 'worker-unknown.log');
    const refused = new CldpdProcess('worker', { ...env, REDIS_SENTINEL_NAME: 'elsewhere' }, log);
    expect(await refused.exited).toBe(1);
    expect(await readFile(log, 'utf8')).toContain('know no primary named \\"elsewhere\\"');
  });
});
