/**
 * A bounded single-consumer queue that takes items in batches and hands them out one by one.
 * `push` resolves once the batch is queued and waits while `capacity` items are waiting:
 * the producer is slowed to the consumer's pace, nothing is dropped. Batches keep the cost
 * per item low (one wake-up per batch, not per item), which matters at millions of lines.
 */
export class Channel<T> {
  private readonly batches: T[][] = [];
  private current: T[] = [];
  private index = 0;
  private waiting = 0;
  private closed = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducers: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

  /** Queues `items` in order, waiting for room. Throws when the channel is closed. */
  async push(items: readonly T[]): Promise<void> {
    while (this.waiting >= this.capacity) {
      if (this.closed) throw new Error('channel closed');
      await new Promise<void>((resolve) => this.wakeProducers.push(resolve));
    }
    if (this.closed) throw new Error('channel closed');
    if (items.length === 0) return;
    this.batches.push(items as T[]);
    this.waiting += items.length;
    const wake = this.wakeConsumer;
    this.wakeConsumer = undefined;
    wake?.();
  }

  /** No more items will come; the consumer drains what is queued, then ends. */
  close(): void {
    this.closed = true;
    const wake = this.wakeConsumer;
    this.wakeConsumer = undefined;
    wake?.();
    this.releaseProducers();
  }

  private releaseProducers(): void {
    const waiting = this.wakeProducers;
    this.wakeProducers = [];
    for (const wake of waiting) wake();
  }

  /** The next item; resolved at once (no async frame) when one is waiting. */
  private next(): Promise<IteratorResult<T>> {
    if (this.index < this.current.length) {
      const value = this.current[this.index] as T;
      this.index += 1;
      this.waiting -= 1;
      if (this.wakeProducers.length > 0 && this.waiting < this.capacity) this.releaseProducers();
      return Promise.resolve({ value, done: false });
    }
    return this.nextSlow();
  }

  private async nextSlow(): Promise<IteratorResult<T>> {
    for (;;) {
      if (this.index < this.current.length) {
        const value = this.current[this.index] as T;
        this.index += 1;
        this.waiting -= 1;
        if (this.wakeProducers.length > 0 && this.waiting < this.capacity) this.releaseProducers();
        return { value, done: false };
      }
      const batch = this.batches.shift();
      if (batch) {
        this.current = batch;
        this.index = 0;
        continue;
      }
      if (this.closed) return { value: undefined, done: true };
      await new Promise<void>((resolve) => {
        this.wakeConsumer = resolve;
      });
    }
  }

  [Symbol.asyncIterator](): AsyncIterator<T> {
    return { next: () => this.next() };
  }
}
