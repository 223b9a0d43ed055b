import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

/** Loads `.env` from the working directory into the environment, as Probot does; the long-running processes and the operator's commands read the same settings. */
export function loadDotEnv(): void {
  const file = resolve('.env');
  if (existsSync(file)) process.loadEnvFile(file);
}
