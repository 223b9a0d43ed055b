/**
 * A token bucket for GitHub writes (comments posted or edited) of one process: at most
 * `perMinute` a minute, refilled continuously. It starts empty, so even a burst of runs
 * starting together (whose "queued" comments the server posted) stays inside a minute's
 * budget. Progress edits take a token only when one is free; final edits wait for one.
 */
export class WriteBudget {
  private tokens: number;
  private last: number;

  constructor(private readonly perMinute: number, private readonly now: () => number = Date.now) {
    this.tokens = 0;
    this.last = now();
  }

  private refill(): void {
    const t = this.now();
    this.tokens = Math.min(this.perMinute, this.tokens + ((t - this.last) * this.perMinute) / 60_000);
    this.last = t;
  }

  /** Takes a token if one is free. */
  tryTake(): boolean {
    this.refill();
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** Waits for a token, then takes it. */
  async take(): Promise<void> {
    while (!this.tryTake()) {
      const wait = Math.ceil(((1 - this.tokens) * 60_000) / this.perMinute);
      await new Promise((resolve) => setTimeout(resolve, Math.max(wait, 10)));
    }
  }
}
