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
