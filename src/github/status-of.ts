/** The HTTP status a failed GitHub request carries (Octokit's `RequestError.status`); undefined for a failure without one. */
export function statusOf(err: unknown): number | undefined {
  return (err as { status?: number }).status;
}
