/**
 * Resolves as `work` does, or rejects with "did not answer within `ms` ms" once `ms` have
 * passed; the timer never keeps the process alive. `work` is not cancelled: it is only no
 * longer waited for.
 */
export async function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`did not answer within ${ms} ms`)), ms);
    timer.unref();
  });
  try {
    return await Promise.race([work, late]);
  } finally {
    clearTimeout(timer);
  }
}
