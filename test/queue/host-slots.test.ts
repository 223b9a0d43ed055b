import { describe, expect, it } from 'vitest';
import { HostSlots } from '../../src/queue/host-slots.js';

describe('a host\'s run slots', () => {
  it('takes as many runs as it has slots, then none until one is given back', async () => {
    const slots = new HostSlots(2);
    expect(await slots.take()).toBe(true);
    expect(await slots.take()).toBe(true);
    expect(await slots.take()).toBe(false);
    slots.give();
    expect(await slots.take()).toBe(true);
    expect(slots.taken).toBe(2);
  });

  it('a turn waiting for a slot gets the next one given back, in order of asking; one that waited too long gets none and holds none', async () => {
    const slots = new HostSlots(1);
    await slots.take();
    const first = slots.take(60_000);
    const second = slots.take(60_000);
    const late = await slots.take(1);
    expect(late).toBe(false);
    slots.give();
    expect(await first).toBe(true);
    slots.give();
    expect(await second).toBe(true);
    expect(slots.taken).toBe(1);
    slots.give();
    expect(slots.taken).toBe(0);
    slots.give(); // one too many: never below zero
    expect(slots.taken).toBe(0);
  });

  it('refuses a host with no slot', () => {
    expect(() => new HostSlots(0)).toThrow(/at least one run slot/);
  });
});
