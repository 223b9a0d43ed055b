import { CldpdError } from './errors.js';
import { streamJsonUserMessage } from './prompt.js';
import type { ProcessInput } from './runner.js';

/** A message held for sending (see {@link AgentInput.reserve}). */
export interface InputReservation {
  /** Sends the message (once), tagged so {@link AgentInput.whenTaken} can tell when it is taken; resolves once the engine has it. */
  send(prompt: string, tag?: string): Promise<void>;
  /** Gives the reservation back unused; nothing is sent. */
  cancel(): void;
}

/**
 * The live input of one run whose agent reads stream-json user messages on its standard
 * input: the first prompt, then messages sent while it runs. The agent echoes each message
 * it takes and ends each answer with a result; the input closes once every message sent
 * was taken and answered and none is reserved, so the agent can finish. Ordering: the first
 * prompt is written before any later message; {@link end} settles every wait, after which
 * nothing more is written.
 */
export class AgentInput {
  private input: ProcessInput | undefined;
  /** Resolves with the input once the first prompt is written (undefined when the run never got that far). */
  private readonly ready: Promise<ProcessInput | undefined>;
  private resolveReady: (input: ProcessInput | undefined) => void = () => undefined;
  /** Messages written, messages the CLI echoed as taken, reservations not yet sent. */
  private sent = 0;
  private taken = 0;
  private reserved = 0;
  private isOpen: boolean;
  /** The tags of the messages sent after the first prompt, in the order they were written. */
  private readonly sentTags: string[] = [];
  /** Tags the agent has taken, and callers waiting to hear whether it takes theirs. */
  private readonly takenTags = new Set<string>();
  private readonly takenWaiters = new Map<string, Array<(taken: boolean) => void>>();
  /** Set once the run has ended: nothing more can be written. */
  private ended = false;
  private answeredSinceTaken = false;

  /**
   * `open`: whether the run takes live input at all (a live stream-json channel, not a
   * re-attached run); `onSent` is told of each message sent after the first prompt.
   */
  constructor(private readonly sessionId: string, open: boolean, private readonly onSent: () => void) {
    this.isOpen = open;
    this.ready = new Promise((resolve) => (this.resolveReady = resolve));
  }

  /** Whether the input is still open (it closes once every message sent has been answered). */
  get open(): boolean {
    return this.isOpen;
  }

  /**
   * Holds the input open for one message to come: returns its reservation, or undefined
   * when the input is closed. A caller that must first record the message elsewhere
   * reserves, records, then sends, so the input cannot close in between.
   */
  reserve(): InputReservation | undefined {
    if (!this.isOpen) return undefined;
    this.reserved++;
    let used = false;
    return {
      send: async (prompt: string, tag = '') => {
        if (used) throw new Error('this reservation was used already');
        used = true;
        this.sent++;
        this.reserved--;
        // The first prompt goes first: a message reserved while the run was starting waits for it.
        const input = await this.ready;
        if (!input || this.ended) {
          this.sent--;
          throw new CldpdError('Stopped', `Session ${this.sessionId} ended before the message could be delivered.`);
        }
        this.onSent();
        this.sentTags.push(tag);
        await input.write(streamJsonUserMessage(prompt));
      },
      cancel: () => {
        if (used) return;
        used = true;
        this.reserved--;
        this.closeIfAnswered();
      },
    };
  }

  /** Writes the run's first prompt; `live` keeps the input open for more, else it is closed after it. */
  async begin(input: ProcessInput, prompt: string, live: boolean): Promise<void> {
    this.input = input;
    this.sent++;
    await input.write(streamJsonUserMessage(prompt));
    if (!live) input.end();
    this.resolveReady(input);
  }

  /**
   * Resolves true once the agent has taken the message sent with `tag`, false when the run
   * ends without taking it. Ask before sending, or any time after: an echo is never missed.
   */
  whenTaken(tag: string): Promise<boolean> {
    if (this.takenTags.has(tag)) return Promise.resolve(true);
    if (this.ended) return Promise.resolve(false);
    return new Promise((resolve) => {
      const waiting = this.takenWaiters.get(tag) ?? [];
      waiting.push(resolve);
      this.takenWaiters.set(tag, waiting);
    });
  }

  /** The tags of the messages sent that the agent has not taken, oldest first. */
  untaken(): string[] {
    return this.sentTags.slice(Math.max(0, this.taken - 1));
  }

  /** The agent echoed a message: it took the next one (the first echo is the run's own prompt). */
  echoed(): void {
    this.taken++;
    const tag = this.taken >= 2 ? this.sentTags[this.taken - 2] : undefined;
    if (tag !== undefined) this.settle(tag, true);
    this.answeredSinceTaken = false;
  }

  /** The agent gave a result: the input closes if that answered every message sent. */
  answered(): void {
    this.answeredSinceTaken = true;
    this.closeIfAnswered();
  }

  /** The run has ended: the input is closed, a send waiting for the first prompt fails, and every message not taken is settled as not taken. */
  end(): void {
    this.isOpen = false;
    this.ended = true;
    this.resolveReady(undefined);
    for (const tag of [...this.takenWaiters.keys()]) this.settle(tag, false);
  }

  private settle(tag: string, taken: boolean): void {
    if (taken) this.takenTags.add(tag);
    for (const resolve of this.takenWaiters.get(tag) ?? []) resolve(taken);
    this.takenWaiters.delete(tag);
  }

  /** Closes the input once every message sent was taken by the agent and answered, and none is on its way. */
  private closeIfAnswered(): void {
    if (!this.isOpen || this.reserved > 0 || this.taken < this.sent || !this.answeredSinceTaken) return;
    this.isOpen = false;
    this.input?.end();
  }
}
