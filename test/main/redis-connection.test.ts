import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { reconnectOnFailover, sharedRedis } from '../../src/main/redis-connection.js';

const problems = (env: Record<string, string>): string => {
  try {
    loadConfig({ HOME: '/h', ...env });
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  return '';
};

describe('the Redis settings', () => {
  it.each([
    ['s1:26380,s2,[::1]:26381', [{ host: 's1', port: 26380 }, { host: 's2', port: 26379 }, { host: '::1', port: 26381 }]],
    [' 10.0.0.1:26379 , 10.0.0.2:26379 ,', [{ host: '10.0.0.1', port: 26379 }, { host: '10.0.0.2', port: 26379 }]],
  ])('REDIS_SENTINELS=%s lists the sentinels, port 26379 when left out', (list, sentinels) => {
    const c = loadConfig({ HOME: '/h', REDIS_SENTINELS: list, REDIS_SENTINEL_NAME: 'main', REDIS_SENTINEL_PASSWORD: 'sp', REDIS_PASSWORD: 'rp' });
    expect(c.redisSentinel).toEqual({ sentinels, name: 'main', sentinelPassword: 'sp', password: 'rp' });
    expect(c.redisUrl).toBeUndefined();
    expect(Object.isFrozen(c.redisSentinel)).toBe(true);
  });

  it.each([
    [{ REDIS_SENTINELS: 's1:26379' }, 'REDIS_SENTINELS is set without REDIS_SENTINEL_NAME'],
    [{ REDIS_SENTINEL_NAME: 'main' }, 'REDIS_SENTINEL_NAME is set without REDIS_SENTINELS'],
    [{ REDIS_SENTINELS: 's1:26379', REDIS_SENTINEL_NAME: 'main', REDIS_URL: 'redis://r:6379' }, 'REDIS_URL and REDIS_SENTINELS are both set'],
    [{ REDIS_SENTINELS: 's1:26379,redis://s2:26379', REDIS_SENTINEL_NAME: 'main' }, 'REDIS_SENTINELS has "redis://s2:26379"'],
    [{ REDIS_SENTINELS: 's1:70000', REDIS_SENTINEL_NAME: 'main' }, 'REDIS_SENTINELS has "s1:70000"'],
  ])('%j is refused, naming the setting', (env, message) => {
    expect(problems(env)).toContain(message);
  });

  it('builds one connection for REDIS_URL or the sentinels, and none without either', () => {
    expect(sharedRedis(loadConfig({ HOME: '/h' }))).toBeUndefined();
    expect(sharedRedis(loadConfig({ HOME: '/h', REDIS_URL: 'redis://:pw@r:6379/2' }))).toMatchObject({ where: 'redis://***@r:6379/2', setting: 'REDIS_URL' });
    const through = sharedRedis(loadConfig({ HOME: '/h', REDIS_SENTINELS: 's1:26379,s2:26380', REDIS_SENTINEL_NAME: 'main', REDIS_PASSWORD: 'pw' }));
    expect(through).toMatchObject({ where: 'the primary "main" of the sentinels s1:26379,s2:26380', setting: 'REDIS_SENTINELS' });
    const redis = through?.open({ lazyConnect: true });
    expect(redis?.options).toMatchObject({ sentinels: [{ host: 's1', port: 26379 }, { host: 's2', port: 26380 }], name: 'main', password: 'pw', failoverDetector: true, lazyConnect: true });
    expect(redis?.options.reconnectOnError).toBe(reconnectOnFailover);
    // BullMQ's own connections are copies: they keep the sentinels and the reconnecting.
    expect(redis?.duplicate().options).toMatchObject({ name: 'main', reconnectOnError: reconnectOnFailover });
    redis?.disconnect();
  });

  it.each([
    ['READONLY You can\'t write against a read only replica.', 2],
    ['UNBLOCKED force unblock from blocking operation, instance state changed (master -> replica?)', 2],
    ['ERR unknown command', false],
    ['NOREPLICAS Not enough good replicas to write.', false],
  ])('an error "%s" reconnects (and sends the command again): %s', (message, answer) => {
    expect(reconnectOnFailover(new Error(message))).toBe(answer);
  });
});
