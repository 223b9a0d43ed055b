/**
 * Every failure cldpd reports on purpose, by kind. Match on `code`, never on the message.
 * - `InvalidPodName`: a pod name outside `[a-z0-9][a-z0-9._-]*` (checked before any file access).
 * - `PodNotFound`: no such directory under the pods directory.
 * - `InvalidPod`: the pod exists but its Dockerfile is missing or its pod.json is wrong.
 * - `BuildFailed`: the image build reported an error or timed out.
 * - `SessionNotFound`: no session with that id on this host.
 * - `DockerUnavailable`: the Docker engine did not answer.
 * - `ContainerFailed`: Docker refused to create, start or exec a container.
 * - `InvalidInput`: a caller passed something unusable (empty prompt, bad issue URL, …).
 * - `Stopped`: the session was stopped before its container started.
 * - `SessionBusy`: the session's agent is running and takes new instructions only through
 *   the process that started it (its standard input).
 * - `GitHubAccess`: GitHub did not give the token a pod's `github` permissions ask for.
 * - `SetupFailed`: a setup step (the checkout, a pod.json `setup` command) failed; the agent never ran.
 */
export type ErrorCode =
  | 'InvalidPodName'
  | 'PodNotFound'
  | 'InvalidPod'
  | 'BuildFailed'
  | 'SessionNotFound'
  | 'DockerUnavailable'
  | 'ContainerFailed'
  | 'InvalidInput'
  | 'Stopped'
  | 'SessionBusy'
  | 'GitHubAccess'
  | 'SetupFailed';

/**
 * The one error class of cldpd. Its message says what went wrong and what to do about it;
 * `cause` keeps the underlying error when there is one.
 */
export class CldpdError extends Error {
  override readonly name = 'CldpdError';

  constructor(
    readonly code: ErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** True when `err` is a {@link CldpdError}, optionally of the given code. */
export function isCldpdError(err: unknown, code?: ErrorCode): err is CldpdError {
  return err instanceof CldpdError && (code === undefined || err.code === code);
}

/** The message of any thrown value, for logs and events. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
