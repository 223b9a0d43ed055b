/** The cldpd core library: pods, the Runner seam, sessions and the Dispatcher. */
export { CldpdError, isCldpdError, messageOf, type ErrorCode } from './errors.js';
export { assertPodName } from './pod-name.js';
export { loadPod, listPods, type Pod, type PodListing, type PodSource } from './pod.js';
export { POD_DEFAULTS, DEFAULT_COMMAND, DEFAULT_RESUME_COMMAND, validatePodJson, resolvePodConfig, type PodConfig, type PodJson, type PodMount } from './pod-config.js';
export { isTerminal, type AgentEvent, type ExitReason, type SessionEvent } from './events.js';
export type { Runner, ContainerSpec, ProcessHandle, ProcessInput, OutputChunk, BuildRequest, ImageInfo, ContainerInfo, MountSpec, VolumeInfo } from './runner.js';
export { DockerRunner, toCreateOptions } from './docker-runner.js';
export { Session, type AgentSummary, type SessionOptions } from './session.js';
export { SessionStore, isSessionId, type SessionRecord, type PersistedVolume } from './session-store.js';
export { parseLogLine } from './session-log.js';
export { Dispatcher, type DispatcherOptions, type StartInput, type StartOptions, type Recovery, type SessionContainer, type VolumeRow, type VolumeRemoval, type RemovedVolume, type RefusedVolume } from './dispatcher.js';
export { scanRun, type RunLogState } from './log-scan.js';
export type { ScanRunOptions } from './log-scan.js';
export { AgentSummaryAccumulator, type SpentBefore } from './agent-summary.js';
export { MAX_PROMPT_BYTES, issueKey, parseIssueUrl, buildStartPrompt, renderCommand, promptChannel, type IssueRef, type PromptChannel } from './prompt.js';
export { LABELS } from './labels.js';
export { imageWarnings, rootProblem } from './claude-pod.js';
export { keepStart, keepEnd, shorten, isWellFormed, toWellFormed, stripEscapes, closest } from './text.js';
