import { describe, expect, it } from 'vitest';
import { assertPodName, isCldpdError } from '../../src/core/index.js';

describe('assertPodName', () => {
  it.each(['a', 'web', 'my-pod', 'pod_2', 'v1.2', '0day', 'a'.repeat(63)])('accepts %j', (name) => {
    expect(() => assertPodName(name)).not.toThrow();
  });

  it.each([
    ['', /No pod name/],
    ['..', /not allowed/],
    ['../etc', /not allowed/],
    ['a/b', /not allowed/],
    ['a..b', /not allowed/],
    ['Web', /not allowed/],
    ['-pod', /not allowed/],
    ['.hidden', /not allowed/],
    ['_x', /not allowed/],
    ['pöd', /not allowed/],
    ['pod name', /not allowed/],
    ['pod\n', /not allowed/],
    ['a'.repeat(64), /64 characters long; the limit is 63/],
    ['a'.repeat(300), /300 characters long/],
  ])('refuses %j', (name, message) => {
    let thrown: unknown;
    try {
      assertPodName(name);
    } catch (e) {
      thrown = e;
    }
    expect(isCldpdError(thrown, 'InvalidPodName')).toBe(true);
    expect((thrown as Error).message).toMatch(message);
  });
});
