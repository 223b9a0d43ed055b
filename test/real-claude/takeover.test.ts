import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error tar-fs ships no types; pack() is all this uses.
import tar from 'tar-fs';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LABELS, type Session } from '../../src/core/index.js';
import { lastUserText, userTexts, type MessagesBody, type Script } from '../fakes/fake-anthropic.js';
import { collect, until } from '../integration/harness.js';
import { CLAUDE_BASE_IMAGE, RealClaudeWorld, describeWithRealClaude, fakeApiEnv } from './harness.js';
import { PseudoTerminal } from './pty.js';

const CLI = fileURLToPath(new URL('../../dist/main/cldpd.js', import.meta.url));
const ISSUE = 'https://github.com/acme/web/issues/7';

/** The fake model: it notes what it was told, in words a test can find on a screen. */
const notingScript: Script = (body) => ({ blocks: [{ type: 'text', text: `Noted: ${lastUserText(body).slice(0, 60)}` }] });

const world = new RealClaudeWorld(notingScript);
let session: Session;
let conversation: string;
let env: NodeJS.ProcessEnv;

/** Every text of the conversation's user side, in one string. */
const said = (body: MessagesBody | undefined): string => userTexts(body ?? { model: '', messages: [] }).join('\n');

/** Runs the built CLI with pipes (no terminal), failing after 90 s. */
function cldpd(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`cldpd ${args.join(' ')} did not finish within 90 s; stderr: ${stderr}`));
    }, 90_000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describeWithRealClaude(`a person takes over a finished session of the real Claude Code CLI (${CLAUDE_BASE_IMAGE})`, () => {
  beforeAll(async () => {
    if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run "npm run build" first (npm test does).`);
    await world.init();
    await world.claudePod('agent');
    env = { ...process.env, CLDPD_HOME: world.home, CLDPD_HOST_ID: world.hostId, CLDPD_PODS_DIR: world.podsDir, CLAUDE_CONFIG_DIR: join(world.home, 'person-claude'), NO_COLOR: '1' };
    session = await world.dispatcher.start('agent', { issueUrl: ISSUE, prompt: 'remember the word PELICAN' });
    const events = await collect(session);
    expect(events.at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    conversation = session.agent.claudeSessionId ?? '';
    expect(conversation).toMatch(/^[0-9a-f-]{36}$/);
  });
  afterAll(async () => {
    await world.close();
  });

  it('export: the transcript, the branch and the commands; in a FRESH container of the same image, claude --resume -p with the exported transcript carries the earlier turns', async () => {
    const out = join(world.home, 'elsewhere');
    const run = await cldpd(['export', session.id, '--out', out, '--portable']);
    expect(run.code, run.stderr).toBe(0);
    const commands = run.stdout.trim().split('\n');
    expect(commands).toEqual([
      `cd ${out}`,
      'git init -q', 'git remote add origin https://github.com/acme/web.git', 'git fetch origin cldpd/issue-7', 'git checkout cldpd/issue-7',
      'mkdir -p "${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects/$(pwd | sed \'s/[^A-Za-z0-9]/-/g\')"',
      `cp .cldpd-export/${conversation}.jsonl "\${CLAUDE_CONFIG_DIR:-$HOME/.claude}/projects/$(pwd | sed 's/[^A-Za-z0-9]/-/g')"/`,
      `claude --resume ${conversation}`,
    ]);
    const readme = await readFile(join(out, 'CLDPD-EXPORT.md'), 'utf8');
    expect(readme).toContain(commands.join('\n'));
    expect(readme).toContain('`cldpd/issue-7` of acme/web');
    const transcript = await readFile(join(out, '.cldpd-export', `${conversation}.jsonl`), 'utf8');
    expect(transcript).toContain('remember the word PELICAN');
    expect(transcript.endsWith('\n')).toBe(true);

    // A fresh container of the session's image: no volume, another home directory, the
    // directory copied in. The README's commands (all but the git ones: there is no GitHub
    // here, and the cd: the directory is elsewhere now) put the transcript in place.
    const record = await world.store.load(session.id);
    const steps = commands.filter((c) => !c.startsWith('git ') && !c.startsWith('cd ') && !c.startsWith('claude '));
    const container = await world.docker.createContainer({
      Image: record.imageId,
      Cmd: ['bash', '-c', [`cd /home/agent/continue`, ...steps, `claude --resume ${conversation} -p 'what was the word?'`].join(' && ')],
      Env: Object.entries(fakeApiEnv(world.apiUrl)).map(([k, v]) => `${k}=${v}`),
      Labels: { [LABELS.host]: world.hostId },
      HostConfig: { NetworkMode: 'host' },
    });
    const before = world.api.conversation.length;
    try {
      const uid = Number((await world.docker.getImage(record.imageId).inspect()).Config?.User === 'agent' ? 1000 : 0);
      await container.putArchive(tar.pack(out, { map: (h: Record<string, unknown>) => ({ ...h, name: `continue/${h.name}`, uid, gid: uid }) }), { path: '/home/agent' });
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      const logs = (await container.logs({ stdout: true, stderr: true })).toString();
      expect(StatusCode, logs).toBe(0);
      expect(logs).toContain('Noted: what was the word?');
    } finally {
      await container.remove({ force: true });
    }
    const resumed = world.api.conversation.slice(before)[0]?.body;
    expect(lastUserText(resumed ?? { model: '', messages: [] })).toBe('what was the word?');
    expect(said(resumed)).toContain('remember the word PELICAN');
  });

  it('export: into this user\'s Claude Code state by default, where Claude Code looks for the directory; a different transcript there is never overwritten', async () => {
    const out = join(world.home, 'here');
    const run = await cldpd(['export', session.id, '--out', out]);
    expect(run.code, run.stderr).toBe(0);
    const placed = join(world.home, 'person-claude', 'projects', out.replace(/[^A-Za-z0-9]/g, '-'), `${conversation}.jsonl`);
    expect(await readFile(placed, 'utf8')).toContain('remember the word PELICAN');
    expect(run.stdout.trim().split('\n').at(-1)).toBe(`claude --resume ${conversation}`);
    expect(await readdir(out)).toEqual(['CLDPD-EXPORT.md']);
    expect(await cldpd(['export', session.id, '--out', out])).toMatchObject({ code: 0 }); // the same again: fine

    await import('node:fs/promises').then((fs) => fs.appendFile(placed, '{"type":"user","went":"on"}\n'));
    const again = await cldpd(['export', session.id, '--out', out]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/exists already, with another version of the conversation/);
  });

  it('attach: Claude Code\'s own UI on the finished session\'s conversation through a terminal; the session is busy meanwhile; the container is gone when the person leaves', async () => {
    const before = world.api.conversation.length;
    const term = new PseudoTerminal([process.execPath, CLI, 'attach', session.id], env);
    try {
      // Claude Code's own question about the workspace: the person answers it.
      await term.waitFor(/trustthisfolder/);
      const containers = await world.containersOf(session.id);
      expect(containers).toHaveLength(1);
      expect(containers[0]?.Labels).toMatchObject({ [LABELS.session]: session.id, [LABELS.issue]: ISSUE });
      expect(containers[0]?.Labels?.[LABELS.attach]).toBeTruthy();
      expect(await world.dispatcher.isBusy(session.id)).toBe(true);
      await expect(world.dispatcher.resume(session.id, 'not now')).rejects.toMatchObject({ code: 'SessionBusy' });

      // Claude Code's own questions, answered as a person would: trust the workspace, use the pod's API key.
      let shown = term.screen.length;
      await term.settle();
      term.type('\x1bOB');
      await term.waitFor(/❯Yes,Itrustthisfolder/, 30_000, shown);
      await term.settle();
      term.type('\r');
      await term.waitFor(/DetectedacustomAPIkey/, 60_000, shown);
      await term.settle();
      shown = term.screen.length;
      term.type('\x1bOA');
      await term.waitFor(/❯Yes/, 30_000, shown);
      await term.settle();
      term.type('\r');
      // The conversation so far is on the screen.
      await term.waitFor(/rememberthewordPELICAN.*●Noted:/, 60_000, shown);
      shown = term.screen.length;
      await term.settle();
      term.type('what was the word?');
      await term.settle(500);
      term.type('\r');
      await until('the API receives what the person typed', () => world.api.conversation.slice(before).some((r) => r.body && lastUserText(r.body) === 'what was the word?'), 60_000);
      const asked = world.api.conversation.slice(before).find((r) => r.body && lastUserText(r.body) === 'what was the word?')?.body;
      expect(said(asked)).toContain('remember the word PELICAN');
      await term.waitFor(/Noted:whatwastheword\?/, 60_000, shown);

      await term.settle();
      term.type('/exit');
      await term.settle(500);
      term.type('\r');
      expect(await term.exit(60_000)).toBe(0);
    } finally {
      // A terminal that goes away (its relay killed) hangs up: cldpd ends the container then.
      term.kill();
      await until('the terminal\'s container is gone', async () => (await world.containersOf(session.id)).length === 0, 30_000);
    }
    expect(term.screen).toMatch(/left session .* its container is removed/);
    expect(await world.containersOf(session.id)).toEqual([]);
    expect(await world.dispatcher.isBusy(session.id)).toBe(false);

    // The onboarding mark is in the session's Claude state, still the agent's own file.
    const record = await world.store.load(session.id);
    const settings = await world.runner.readVolumeFile(record.imageId, record.volumes, '/home/agent/.claude/.claude.json', 8 << 20);
    expect(settings).toMatchObject({ uid: 1000, gid: 1000, mode: 0o600 });
    expect(JSON.parse(settings?.content.toString() ?? '{}')).toMatchObject({ hasCompletedOnboarding: true });

    // What the person said is part of the session's conversation: the next run has it.
    const next = world.api.conversation.length;
    const resumed = await world.dispatcher.resume(session.id, 'and now?');
    expect((await collect(resumed)).at(-1)).toMatchObject({ type: 'container.exited', exitCode: 0 });
    expect(said(world.api.conversation[next]?.body)).toContain('what was the word?');
  });

  it('attach: without a terminal it is refused, saying why, and nothing is made', async () => {
    const run = await cldpd(['attach', session.id]);
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/needs a terminal/);
    expect(await world.containersOf(session.id)).toEqual([]);
  });
});
