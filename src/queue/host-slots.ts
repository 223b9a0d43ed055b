/**
 * The run slots of one host (`CLDPD_CONCURRENCY`): how many runs it takes at once, from the
 * shared queue and its own together. A turn that finds them all taken waits a moment for one
 * (handed over in order of asking), then goes back to its queue, where any host may take it.
 */
export class HostSlots {
  private used = 0;
  private readonly waiting: Array<(got: boolean) => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a host needs at least one run slot, not ${size}`);
  }

  /** Slots taken now. */
  get taken(): number {
    return this.used;
  }

  /** Takes a slot, waiting up to `waitMs` for one; false when none came free in time. */
  take(waitMs = 0): Promise<boolean> {
    if (this.used < this.size) {
      this.used += 1;
      return Promise.resolve(true);
    }
    if (waitMs <= 0) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiter = (got: boolean) => {
        clearTimeout(timer);
        resolve(got);
      };
      const timer = setTimeout(() => {
        const at = this.waiting.indexOf(waiter);
        if (at >= 0) this.waiting.splice(at, 1);
        resolve(false);
      }, waitMs);
      this.waiting.push(waiter);
    });
  }

  /** Gives a slot back: to the turn waiting longest, if one waits. */
  give(): void {
    const next = this.waiting.shift();
    if (next) next(true);
    else if (this.used > 0) this.used -= 1;
  }
}
