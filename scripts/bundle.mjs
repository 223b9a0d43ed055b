// Bundles the `cldpd` command (dist/main/cli.js and the terminal commands it loads) into
// one file, dist/main/cldpd.js. One file is what makes `cldpd start` start fast: Node
// resolves, reads and links ≈ 400 modules otherwise, which costs more than running them.
// The long-running services stay unbundled (`./services.js`, loaded only by serve/worker/up;
// `./hosts-command.js`, the operator's `cldpd hosts`, which needs Redis and the GitHub App;
// `./gc-retirer.js`, what `cldpd gc` asks Redis about issues),
// and so do the modules dockerode loads only for features cldpd does not use by default
// (ssh2, gRPC, protobufjs: see src/main/defer-modules.ts) and pino (loaded when logging).
import { build } from 'esbuild';

await build({
  entryPoints: ['dist/main/cli.js'],
  outfile: 'dist/main/cldpd.js',
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  external: ['./services.js', './hosts-command.js', './gc-retirer.js', 'ssh2', 'cpu-features', '@grpc/grpc-js', '@grpc/proto-loader', 'protobufjs', 'pino'],
  // The CommonJS dependencies inside the bundle call require(); give them Node's.
  banner: { js: "import { createRequire as cldpdCreateRequire } from 'node:module'; const require = cldpdCreateRequire(import.meta.url);" },
  logLevel: 'warning',
});

// The egress gateway (src/gateway), one file its container runs with Node alone: `node gateway.mjs`.
await build({
  entryPoints: ['dist/gateway/main.js'],
  outfile: 'dist/gateway/gateway.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  logLevel: 'warning',
});
