import { describe, expect, it } from 'vitest';
import { Channel } from '../../src/core/channel.js';

describe('Channel', () => {
  it('holds the producer back while full and releases it as the consumer reads', async () => {
    const channel = new Channel<number>(2);
    const pushed: number[] = [];
    const producer = (async () => {
      for (let i = 0; i < 5; i++) {
        await channel.push([i]);
        pushed.push(i);
      }
      channel.close();
    })();
    await new Promise((r) => setTimeout(r, 20));
    expect(pushed).toEqual([0, 1]); // capacity 2: the third push waits

    const received: number[] = [];
    for await (const item of channel) received.push(item);
    await producer;
    expect(received).toEqual([0, 1, 2, 3, 4]);
  });

  it('delivers everything queued before close, in order', async () => {
    const channel = new Channel<number>(10_000);
    for (let i = 0; i < 5000; i += 10) await channel.push(Array.from({ length: 10 }, (_, k) => i + k));
    channel.close();
    const received: number[] = [];
    for await (const item of channel) received.push(item);
    expect(received).toHaveLength(5000);
    expect(received.every((v, i) => v === i)).toBe(true);
  });

  it('refuses pushes after close', async () => {
    const channel = new Channel<number>(1);
    channel.close();
    await expect(channel.push([1])).rejects.toThrow(/closed/);
  });
});
