/**
 * Resolves as `work` does, or rejects once `ms` have passed: with `late()`, or "did not
 * answer within `ms` ms" by default. The timer never keeps the process alive. `work` is not
 * cancelled: it is only no longer waited for.
 */
export async function within<T>(ms: number, work: Promise<T>, late: () => Error = () => new Error(`did not answer within ${ms} ms`)): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(late()), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
