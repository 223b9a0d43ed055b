/**
 * A bounded single-consumer queue. `push` resolves once the item is queued and waits while
 * the queue is full: the producer is slowed to the consumer's pace, nothing is dropped.
 */
export class Channel<T> {
  private readonly items: T[] = [];
  private head = 0;
  private closed = false;
  private wakeConsumer: (() => void) | undefined;
  private wakeProducers: Array<() => void> = [];

  constructor(private readonly capacity: number) {}

  /** Queues `item`, waiting for room. Throws when the channel is closed. */
  async push(item: T): Promise<void> {
    while (this.items.length - this.head >= this.capacity) {
      if (this.closed) throw new Error('channel closed');
      await new Promise<void>((resolve) => this.wakeProducers.push(resolve));
    }
    if (this.closed) throw new Error('channel closed');
    this.items.push(item);
    this.wakeConsumer?.();
  }

  /** No more items will come; the consumer drains what is queued, then ends. */
  close(): void {
    this.closed = true;
    this.wakeConsumer?.();
    this.releaseProducers();
  }

  private releaseProducers(): void {
    const waiting = this.wakeProducers;
    this.wakeProducers = [];
    for (const wake of waiting) wake();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      if (this.head < this.items.length) {
        const item = this.items[this.head] as T;
        this.head += 1;
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head);
          this.head = 0;
        }
        if (this.wakeProducers.length > 0) this.releaseProducers();
        yield item;
        continue;
      }
      if (this.closed) return;
      await new Promise<void>((resolve) => {
        this.wakeConsumer = resolve;
      });
      this.wakeConsumer = undefined;
    }
  }
}
