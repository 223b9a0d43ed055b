#!/usr/bin/env node
import { deferHeavyModules } from './defer-modules.js';

// Before anything imports dockerode: see deferHeavyModules.
deferHeavyModules();

const SERVICES = new Set(['serve', 'worker', 'up']);
const argv = process.argv.slice(2);
const [first] = argv;

// The long-running processes load probot and bullmq; the terminal commands never do.
// gc, attach and export act on this host's worker's sessions: they read its settings (.env) as `cldpd hosts` does.
if (first === 'gc' || first === 'attach' || first === 'export') (await import('./dot-env.js')).loadDotEnv();

const code = first && SERVICES.has(first)
  ? await (await import('./services.js')).runServices(first as 'serve' | 'worker' | 'up')
  : first === 'hosts'
    ? await (await import('./hosts-command.js')).runHosts(argv.slice(1), process.env, process.stdout, process.stderr)
    : await (await import('./terminal.js')).runTerminal(argv);
process.exit(code);
