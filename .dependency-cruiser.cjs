/** The dependency rules of cldpd: the core library stands alone, and nothing is circular. */
module.exports = {
  forbidden: [
    {
      name: 'core-stands-alone',
      comment: 'src/core is the library: it must not import the queue, the GitHub app, the CLI or the composition roots.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(queue|github|cli|main)/' },
    },
    {
      name: 'core-has-no-front-ends',
      comment: 'The web pages and the first-run setup are front ends beside the library, never parts of it.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/(web|setup)/' },
    },
    {
      name: 'core-reads-no-config',
      comment: 'Configuration is parsed once in src/config.ts and passed in; core never reads it.',
      severity: 'error',
      from: { path: '^src/core/' },
      to: { path: '^src/config\\.ts$' },
    },
    {
      name: 'cli-has-no-queue-or-github',
      comment: 'The terminal front end needs neither Redis nor GitHub.',
      severity: 'error',
      from: { path: '^src/cli/' },
      to: { path: '^src/(queue|github)/' },
    },
    {
      name: 'queue-knows-no-github',
      comment: 'The queue owns the job contract and the Reporter interface; the GitHub side implements them, not the reverse.',
      severity: 'error',
      from: { path: '^src/queue/' },
      to: { path: '^src/(github|cli|main)/' },
    },
    {
      name: 'github-runs-no-jobs',
      comment: 'The GitHub side may use the job contract, never the BullMQ worker that runs containers.',
      severity: 'error',
      from: { path: '^src/github/' },
      to: { path: '^src/(queue/run-worker|cli|main)' },
    },
    {
      name: 'queue-parts-below-run-worker',
      comment: 'RunWorker composes the queue\'s parts (drain, one command\'s run, waits, delivery, orphans, retirement); none of them imports it.',
      severity: 'error',
      from: { path: '^src/queue/', pathNot: '^src/queue/run-worker\\.ts$' },
      to: { path: '^src/queue/run-worker\\.ts$' },
    },
    {
      name: 'github-serves-no-pages',
      comment: 'The GitHub side knows GitHub only; the web front end may use it, not the reverse.',
      severity: 'error',
      from: { path: '^src/github/' },
      to: { path: '^src/web/' },
    },
    {
      name: 'setup-stands-alone',
      comment: 'The first-run setup runs while no GitHub App exists: it needs the configuration and nothing else of cldpd.',
      severity: 'error',
      from: { path: '^src/setup/' },
      to: { path: '^src/(?!setup/|config\\.ts$)' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
