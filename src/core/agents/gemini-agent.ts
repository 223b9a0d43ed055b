import type { Agent } from './agent.js';

/** Options every Gemini run takes: stream-json out, every tool call approved (the container is the sandbox). */
const RUN: readonly string[] = Object.freeze(['gemini', '--output-format', 'stream-json', '--yolo']);

/**
 * Google's Gemini CLI (`@google/gemini-cli`): `gemini -p … --output-format stream-json`,
 * resumed after exit with `--resume <session id>`, its state in `~/.gemini`.
 */
export const geminiAgent: Agent = Object.freeze<Agent>({
  name: 'gemini',
  title: 'Gemini CLI',
  program: 'gemini',
  commands: () => ({ command: [...RUN, '--prompt={prompt}'], resumeCommand: [...RUN, '--resume', '{agentSessionId}', '--prompt={prompt}'] }),
  limits: { maxTurns: undefined, maxBudgetUsd: undefined },
  takesLiveInput: false,
  persist: Object.freeze(['~/.gemini']),
  reader: () => ({ line: () => [] }),
  provider: Object.freeze({
    urlVar: 'GOOGLE_GEMINI_BASE_URL',
    defaultUrl: 'https://generativelanguage.googleapis.com',
    keys: Object.freeze([{ name: 'GEMINI_API_KEY', header: 'x-goog-api-key' }]),
  }),
  env: () => ({}),
  quietEnv: Object.freeze({}),
});
