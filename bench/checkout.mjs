// 7. Checkout and setup: what cloning the issue's repository (through the credential helper
// and a token file, from a real git smart-HTTP server) and a setup step add to a start on a
// cached image. In one process (the worker's path), the three variants taking turns.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Docker from 'dockerode';
import { build } from 'esbuild';
import { Dispatcher, DockerRunner, SessionStore } from '../dist/core/index.js';
import { ROOT, benchHome, stats } from './lib.mjs';

const DEBIAN_IMAGE = 'cldpd-test/debian:bookworm';

/** The test suite's git server (test/fakes/git-server.ts), bundled for this run. */
async function loadGitServer() {
  // Inside the project, so the bundle's imports (dockerode) resolve from its node_modules.
  const dir = join(ROOT, 'node_modules', '.cache', 'cldpd-bench');
  mkdirSync(dir, { recursive: true });
  const out = join(dir, 'git-server.mjs');
  await build({ entryPoints: [join(ROOT, 'test/fakes/git-server.ts')], bundle: true, platform: 'node', format: 'esm', packages: 'external', outfile: out, logLevel: 'error' });
  return import(out);
}

export async function benchCheckout({ runs = 7, files = 300 } = {}) {
  const docker = new Docker();
  await docker.getImage(DEBIAN_IMAGE).inspect().catch(() => {
    throw new Error(`${DEBIAN_IMAGE} is missing: bash scripts/real-claude.sh makes it`);
  });
  const { GitServer, dockerGateway } = await loadGitServer();
  const git = await new GitServer().start();
  const home = benchHome();
  const pod = (name, json) => {
    const dir = join(home, 'pods', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'Dockerfile'), `FROM ${DEBIAN_IMAGE}\nRUN useradd --create-home agent && mkdir /workspace && chown agent /workspace\nUSER agent\nWORKDIR /workspace\n`);
    writeFileSync(join(dir, 'pod.json'), JSON.stringify({ command: ['true'], workdir: '/workspace', persist: [], memory: '512m', ...json }));
  };
  pod('bench-plain', {});
  pod('bench-checkout', { github: { contents: 'read' }, checkout: true });
  pod('bench-setup', { github: { contents: 'read' }, checkout: true, setup: [['git', '-C', '/workspace', 'log', '--oneline', '-1']] });
  const runner = new DockerRunner(docker);
  const dispatcher = new Dispatcher({ runner, pods: { podsDir: join(home, 'pods'), homeDir: home }, store: new SessionStore(join(home, 'sessions')), hostId: 'bench', hostEnv: {} });
  try {
    // The isolated network exists after a first run; its gateway is how the pods reach the server.
    await (await dispatcher.start('bench-plain', { prompt: 'x' })).wait();
    const gateway = await dockerGateway('cldpd');
    const sourceFiles = Object.fromEntries(Array.from({ length: files }, (_, i) => [`src/file-${i}.txt`, `${'line\n'.repeat(20)}${i}\n`]));
    await git.createRepo('bench', 'web', { files: sourceFiles });
    let n = 0;
    const source = {
      fullName: 'bench/web',
      repository: async () => ({ fullName: 'bench/web', cloneUrl: git.repoUrl('bench', 'web', gateway), defaultBranch: 'main' }),
      mint: async () => {
        const token = `ghs_bench${++n}${'x'.repeat(30)}`;
        git.allow(token, { repo: 'bench/web' });
        return { token, expiresAt: Date.now() + 3600_000 };
      },
    };
    const issueUrl = 'https://github.com/bench/web/issues/1';
    const once = async (name) => {
      const started = process.hrtime.bigint();
      const session = await dispatcher.start(name, { issueUrl }, { github: source });
      const code = await session.wait();
      if (code !== 0) throw new Error(`${name} exited ${code}`);
      return Number(process.hrtime.bigint() - started) / 1e6;
    };
    const names = ['bench-plain', 'bench-checkout', 'bench-setup'];
    for (const name of names) await once(name); // builds the images: every measured run is on a cached one
    const times = Object.fromEntries(names.map((name) => [name, []]));
    for (let i = 0; i < runs; i++) {
      for (let k = 0; k < names.length; k++) {
        const name = names[(i + k) % names.length];
        times[name].push(await once(name));
      }
    }
    const [plain, checkout, setup] = names.map((name) => stats(times[name]));
    const repoKiB = Math.round(Number(execFileSync('du', ['-sk', git.repoDir('bench', 'web')]).toString().split('\t')[0]));
    return { plain, checkout, setup, files, repoKiB, checkoutAdds: checkout.median - plain.median, setupAdds: setup.median - checkout.median };
  } finally {
    await git.close();
    for (const c of await docker.listContainers({ all: true, filters: { label: ['dev.cldpd.host=bench'] } })) await docker.getContainer(c.Id).remove({ force: true }).catch(() => undefined);
  }
}
