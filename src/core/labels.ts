/** The label keys cldpd puts on every container, image and volume it creates. */
export const LABELS = Object.freeze({
  session: 'dev.cldpd.session',
  pod: 'dev.cldpd.pod',
  issue: 'dev.cldpd.issue',
  host: 'dev.cldpd.host',
  run: 'dev.cldpd.run',
  path: 'dev.cldpd.path',
  /** On images: the digest of what they were built from (see contextDigest). */
  context: 'dev.cldpd.context',
  /**
   * On a container where a person took a session over (`cldpd attach`): it is the session's
   * (busy while it exists) but no run's, so recovery never adopts or ends it as one.
   */
  attach: 'dev.cldpd.attach',
  /**
   * On a run's egress gateway container and its internal network: the session it serves.
   * Never the session label, so nothing that lists a session's containers takes it for the agent's.
   */
  gateway: 'dev.cldpd.gateway',
  /** On a gateway container and network: the host whose worker runs it (see LABELS.host). */
  gatewayHost: 'dev.cldpd.gateway-host',
  /** On short-lived helper containers (setting volume owners, looking into an image). */
  helper: 'dev.cldpd.helper',
});

/** Labels of everything belonging to one session. */
export function sessionLabels(input: { sessionId: string; pod: string; hostId: string; issueUrl?: string | undefined }): Record<string, string> {
  return {
    [LABELS.session]: input.sessionId,
    [LABELS.pod]: input.pod,
    [LABELS.host]: input.hostId,
    [LABELS.issue]: input.issueUrl ?? '',
  };
}
