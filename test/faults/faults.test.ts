import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { CldpdProcess } from '../e2e/processes.js';
import { describeWithDocker, until } from '../integration/harness.js';
import { describeWithRedis } from '../integration/redis-harness.js';
import { FaultWorld, numbered, printLines } from './fault-world.js';

describeWithDocker('faults: nothing lost, duplicated, orphaned or silent', () => {
  describeWithRedis('serve + worker processes, own Redis (AOF), Docker through a cuttable proxy, fake GitHub', () => {
    const f = new FaultWorld();
    const nonce = randomUUID();

    beforeAll(async () => {
      await f.start();
      await f.world.pod('slow', { command: printLines(60) });
      await f.world.pod('short', { command: printLines(3, 0) });
      await f.world.pod('fc'); // the fake claude: can be resumed
      await f.world.pod('short3', { command: printLines(3, 1) });
      await f.world.pod('slowbuild', { command: printLines(5, 0), buildArgs: { NONCE: nonce } }, 'ARG NONCE\nRUN ["/bin/sh", "-c", "echo building $NONCE; sleep 4"]');
      await f.world.pod('stubborn', { command: ['sh', '-c', "trap '' TERM; i=1; while true; do echo \"line $i\"; i=$((i+1)); sleep 0.2; done"], stopGraceSeconds: 4 });
    });

    afterAll(async () => {
      await f.close();
    });

    const running = (n: number) => until(`#${n} to run`, () => f.statusComments(n).some((c) => c.body.includes('cldpd: running')), 60_000);
    const linesLogged = (sessionId: string, count: number) =>
      until(`${count} lines in the log`, async () => (await f.events(sessionId)).filter((e) => e.type === 'output').length >= count, 60_000);

    it('1. worker SIGKILLed mid-run, restarted: re-attaches, no line lost or doubled, one container, one final comment', async () => {
      const n = f.nextIssue();
      await f.label(n, 'slow');
      await running(n);
      const session = f.sessionOf(n);
      await linesLogged(session, 10);
      await f.worker?.stop('SIGKILL');
      f.startWorker();
      const [status] = await f.finals(n);
      expect(status?.body).toContain('exit code 0');
      await f.expectIntact(n, session, numbered(60));
    });

    it('2a. worker SIGKILLed while building: the build starts over, one container, one final comment', async () => {
      const n = f.nextIssue();
      await f.label(n, 'slowbuild');
      await until('the build to be under way', () => f.statusComments(n).some((c) => c.body.includes('building')), 60_000);
      const session = f.sessionOf(n);
      await until('the slow step', async () => (await f.events(session)).some((e) => e.type === 'build.output' && e.line.includes('building')), 30_000);
      await f.worker?.stop('SIGKILL');
      f.startWorker();
      const [status] = await f.finals(n);
      expect(status?.body).toContain('exit code 0');
      await f.expectIntact(n, session, numbered(5));
    });

    it('2b. worker SIGKILLed while stopping a container that ignores SIGTERM: it is still killed, reported once, removed', async () => {
      const n = f.nextIssue();
      await f.label(n, 'stubborn');
      await running(n);
      const session = f.sessionOf(n);
      await linesLogged(session, 3);
      await f.comment(n, '/cldpd stop');
      await until('the stop reply', () => f.github.commentsOn(f.ref(n)).some((c) => c.body.startsWith('Stopping session')), 20_000);
      await f.worker?.stop('SIGKILL'); // inside the 4 s grace period
      f.startWorker();
      const [status] = await f.finals(n);
      expect(status?.body).toMatch(/exit code 137|stopped on request/);
      const events = await f.events(session);
      const lines = events.flatMap((e) => (e.type === 'output' ? [e.line] : []));
      expect(lines).toEqual(numbered(lines.length)); // every line the container printed, once, in order
      expect(events.filter((e) => e.type === 'container.started')).toHaveLength(1);
      await until('no container left', async () => (await f.world.containersOf(session)).length === 0, 15_000);
      expect(f.statusComments(n)).toHaveLength(1);
    });

    it('2c. worker SIGKILLed between two runs of one issue: the second runs once, the first is not repeated', async () => {
      const n = f.nextIssue();
      await f.label(n, 'fc');
      await until('the session id', () => f.statusComments(n).length === 1, 20_000);
      await f.comment(n, '/cldpd resume again');
      await f.finals(n, 1);
      await f.worker?.stop('SIGKILL');
      f.startWorker();
      const comments = await f.finals(n, 2);
      expect(comments).toHaveLength(2);
      expect(comments.map((c) => /cldpd: finished/.test(c.body))).toEqual([true, true]);
      const session = f.sessionOf(n);
      const events = await f.events(session);
      expect(events.filter((e) => e.type === 'container.started').map((e) => (e.type === 'container.started' ? e.run : 0))).toEqual([1, 2]);
      expect(events.filter((e) => e.type === 'container.exited' || e.type === 'error')).toHaveLength(2);
      expect(await f.world.containersOf(session)).toEqual([]);
    });

    it('2d. the container finishes while no worker is attached: the restarted worker reads its end from Docker', async () => {
      const n = f.nextIssue();
      await f.label(n, 'short3');
      await running(n);
      const session = f.sessionOf(n);
      await until('the container to have started', async () => (await f.events(session)).some((e) => e.type === 'container.started'), 30_000);
      await f.worker?.stop('SIGKILL');
      try {
        await until('the container to exit on its own', async () => (await f.world.containersOf(session)).every((c) => c.State === 'exited'), 20_000);
      } finally {
        f.startWorker();
      }
      const [status] = await f.finals(n);
      expect(status?.body).toContain('exit code 0');
      await f.expectIntact(n, session, numbered(3));
    });

    it('3. Redis restarted mid-run (AOF): no job lost, processes reconnect by themselves', async () => {
      const n = f.nextIssue();
      await f.label(n, 'slow');
      await running(n);
      const session = f.sessionOf(n);
      await linesLogged(session, 10);
      await f.redis.restart(1000);
      const m = f.nextIssue();
      await until('the server to take webhooks again', async () => (await f.label(m, 'short').catch(() => 0)) === 200, 30_000);
      await f.finals(n);
      await f.finals(m);
      await f.expectIntact(n, session, numbered(60));
      await f.expectIntact(m, f.sessionOf(m), numbered(3));
    });

    it('4a. Docker engine unavailable at job time: a clear error in the status comment, the job does not hang', async () => {
      await f.proxy.cut();
      try {
        const n = f.nextIssue();
        await f.label(n, 'short');
        const [status] = await f.finals(n, 1, 60_000);
        expect(status?.body).toContain('cldpd: failed');
        expect(status?.body).toMatch(/The Docker engine does not answer \((ECONNREFUSED|ENOENT)\)/);
      } finally {
        await f.proxy.open();
      }
    });

    it('4b. Docker engine stops answering mid-run: a clear error at once; once it answers again the container is removed', async () => {
      const n = f.nextIssue();
      await f.label(n, 'slow');
      await running(n);
      const session = f.sessionOf(n);
      await linesLogged(session, 5);
      await f.proxy.cut();
      try {
        const [status] = await f.finals(n, 1, 60_000);
        expect(status?.body).toContain('cldpd: failed');
        expect(status?.body).toMatch(/Docker engine does not answer|Docker stream ended|Docker refused/);
      } finally {
        await f.proxy.open();
      }
      // The periodic reconcile finds the container whose run already ended and removes it.
      await until('no container left', async () => (await f.world.containersOf(session)).length === 0, 30_000);
      const lines = (await f.events(session)).flatMap((e) => (e.type === 'output' ? [e.line] : []));
      expect(lines).toEqual(numbered(lines.length)); // what was logged is whole and in order
      expect(f.statusComments(n)).toHaveLength(1);
    });

    it('6. the same delivery to two server processes at once: one run, one status comment', async () => {
      const port2 = await import('../e2e/processes.js').then((m) => m.freePort());
      const second = new CldpdProcess('serve', { ...f.env, PORT: String(port2) }, join(f.world.home, 'server2.log'));
      f.servers.push(second);
      await f.waitForServer(port2);
      const n = f.nextIssue();
      const id = randomUUID();
      const codes = await Promise.all([f.label(n, 'short', f.port, id), f.label(n, 'short', port2, id), f.label(n, 'short', f.port, id), f.label(n, 'short', port2, id)]);
      expect(codes).toEqual([200, 200, 200, 200]);
      await f.finals(n);
      await new Promise((r) => setTimeout(r, 1500));
      await f.expectIntact(n, f.sessionOf(n), numbered(3));
    });
  });
});
