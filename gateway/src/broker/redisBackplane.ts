import { createRequire } from 'node:module';
import type { EventEmitter } from 'node:events';
import { Readable } from 'node:stream';
import mqemitterRedis from 'mqemitter-redis';
import type { Logger } from 'pino';

const require = createRequire(import.meta.url);
/**
 * aedes 1.2 wants a persistence whose `setup` is an async function; the package's main entry wraps
 * the async class in the callback adapter of older aedes, so the class itself is loaded.
 */
const AsyncRedisPersistence = require('aedes-persistence-redis/asyncPersistence.js') as new (opts: { conn: unknown }) => RedisPersistence;

interface RedisPersistence {
  createRetainedStreamCombi(patterns: string[]): AsyncIterable<unknown> | Readable;
}

type Emitter = ReturnType<typeof mqemitterRedis> & { state: EventEmitter; pubConn: { duplicate(): RedisConnection } };
type RedisConnection = EventEmitter & { disconnect(): void };

/** What aedes takes (`mq`, `persistence`) to share one broker across instances, and how to let go of it. */
export interface RedisBackplane {
  mq: unknown;
  persistence: unknown;
  /** After aedes has closed (it closes `mq`): lets go of the persistence's connection. */
  close(): Promise<void>;
}

/**
 * Region mode (contract §8): the instances' aedes brokers joined through Redis with aedes' own
 * parts. mqemitter-redis carries every publish to every instance (each delivers to its own
 * subscribers); aedes-persistence-redis keeps retained messages, sessions (subscriptions and
 * QoS 1 messages queued for offline clean-session=false clients) and wills where any instance
 * finds them. Both connect lazily and queue commands until Redis answers (ioredis).
 */
export function redisBackplane(url: string, logger: Logger): RedisBackplane {
  // matchEmptyLevels as aedes' default emitter: `a/#` also matches `a` (MQTT-4.7.1-2).
  const mq = mqemitterRedis({ connectionString: url, matchEmptyLevels: true, concurrency: 100 }) as Emitter;
  // mqemitter-redis reports connection errors on `state`; unheard, an EventEmitter 'error' throws.
  mq.state.on('error', (err: Error) => logger.error({ err: err.message }, 'redis (broker emitter) error; ioredis reconnects'));
  const conn = mq.pubConn.duplicate();
  conn.on('error', (err: Error) => logger.error({ err: err.message }, 'redis (broker persistence) error; ioredis reconnects'));
  const persistence = new AsyncRedisPersistence({ conn });
  // aedes 1.2 pipes the retained messages for a new subscription (`stream.pipe`), as aedes'
  // in-memory persistence gives them; aedes-persistence-redis 11 yields an async generator.
  const retained = persistence.createRetainedStreamCombi.bind(persistence);
  persistence.createRetainedStreamCombi = (patterns) => Readable.from(retained(patterns));
  let closed = false;
  return {
    mq,
    persistence,
    async close() {
      if (closed) return;
      closed = true;
      // destroy() would unsubscribe through the emitter aedes has already closed; the connection is all that is left.
      conn.disconnect();
    },
  };
}
