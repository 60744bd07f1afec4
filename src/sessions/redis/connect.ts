/**
 * The client adapters by name (`sessions.redis.client`). Each adapter
 * imports its library on first use, so `import 'cohort'` loads neither.
 */
import type { RedisClientName } from './config.js';
import type { RedisPortFactory } from './port.js';

export const redisPortFactories: Readonly<Record<RedisClientName, RedisPortFactory>> = {
  'node-redis': async (o) => (await import('./client-node-redis.js')).nodeRedisPort(o),
  ioredis: async (o) => (await import('./client-ioredis.js')).ioredisPort(o),
};
