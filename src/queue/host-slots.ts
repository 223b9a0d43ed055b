/**
 * The run slots of one host (`CLDPD_CONCURRENCY`): how many runs it takes at once, from the
 * shared queue and its own together. `full` is called when the last slot is taken, `free`
 * when one is given back after that, so the queues are not asked for turns no slot can take.
 */
export class HostSlots {
  private used = 0;

  constructor(readonly size: number, private readonly on: { full(): void; free(): void }) {
    if (!Number.isInteger(size) || size < 1) throw new Error(`a host needs at least one run slot, not ${size}`);
  }

  /** Slots taken now. */
  get taken(): number {
    return this.used;
  }

  /** Takes a slot; false when all are taken. */
  take(): boolean {
    if (this.used >= this.size) return false;
    this.used += 1;
    if (this.used === this.size) this.on.full();
    return true;
  }

  /** Gives a slot back. */
  give(): void {
    if (this.used === 0) return;
    const wasFull = this.used === this.size;
    this.used -= 1;
    if (wasFull) this.on.free();
  }
}
