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
