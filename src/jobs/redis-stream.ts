/**
 * The Redis side of the job queue (./redis.ts): the Lua scripts for state changes that race, the
 * connection they are defined on, and the consumer group's read of the next stream entry.
 */
import { Redis } from 'ioredis';
import { GlimpseError, isGlimpseError } from '../core/index.js';
import type { Log } from './types.js';

export const GROUP = 'workers';
// KEYS[1] job hash. ARGV: field, value pairs. Sets them only while the job still exists (a job
// whose result expired during a long delivery is not brought back without its expiry).
const SET_IF_EXISTS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1`;

// KEYS[1] job hash. ARGV: now, ttl. Queued → cancelled; running → cancelling (its worker stops it).
const CANCEL = `
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'queued' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
elseif s == 'running' then
  redis.call('HSET', KEYS[1], 'status', 'cancelling')
end
return s`;

// KEYS[1] job hash. ARGV: now, worker, maxAttempts, ttl, the error of a job out of attempts. Returns the attempt number, 0 when the
// job is not to run (gone, ended, cancelled), -1 when it has used its attempts (now failed).
const START = `
local s = redis.call('HGET', KEYS[1], 'status')
if s == 'cancelling' then
  redis.call('HSET', KEYS[1], 'status', 'cancelled', 'finished_at', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return 0
end
if s ~= 'queued' and s ~= 'running' then return 0 end
local n = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
if n > tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'status', 'failed', 'finished_at', ARGV[1], 'error', ARGV[5])
  redis.call('EXPIRE', KEYS[1], ARGV[4])
  return -1
end
redis.call('HSET', KEYS[1], 'status', 'running', 'started_at', ARGV[1], 'worker', ARGV[2])
return n`;

export type Scripted = Redis & {
  jobCancel(key: string, now: number, ttl: number): Promise<string | null>;
  jobStart(key: string, now: number, worker: string, maxAttempts: number, ttl: number, error: string): Promise<number>;
  jobSetIfExists(key: string, ...fieldsAndValues: string[]): Promise<number>;
};

/** The queue's main connection, with the scripts above defined on it. */
export function connectScripted(url: string, log: Log): Scripted {
  const client = new Redis(url, { maxRetriesPerRequest: 2, connectTimeout: 2000 }) as Scripted;
  client.on('error', (err: Error) => log.warn({ err: err.message }, 'job queue: Redis error'));
  client.defineCommand('jobCancel', { numberOfKeys: 1, lua: CANCEL });
  client.defineCommand('jobStart', { numberOfKeys: 1, lua: START });
  client.defineCommand('jobSetIfExists', { numberOfKeys: 1, lua: SET_IF_EXISTS });
  return client;
}

/** Create the consumer group (and its stream) unless it exists. */
export function createGroup(client: Redis, stream: string): Promise<void> {
  return client.xgroup('CREATE', stream, GROUP, '0', 'MKSTREAM').then(
    () => undefined,
    (err: Error) => {
      if (!/BUSYGROUP/.test(err.message)) throw err;
    },
  );
}

/**
 * The next stream entry for `consumer`: first one whose worker died (idle past `idleMs`), then a
 * new one, waiting up to a second for it on the blocking connection `conn`.
 */
export async function nextEntry(
  client: Redis,
  conn: Redis,
  stream: string,
  consumer: string,
  idleMs: number,
): Promise<[string, string[]] | undefined> {
  const claimed = (await client.xautoclaim(stream, GROUP, consumer, idleMs, '0-0', 'COUNT', 1)) as [
    string,
    Array<[string, string[]]>,
  ];
  const entry: [string, string[]] | undefined = claimed[1][0];
  if (entry) return entry;
  const read = (await conn.xreadgroup(
    'GROUP',
    GROUP,
    consumer,
    'COUNT',
    1,
    'BLOCK',
    1000,
    'STREAMS',
    stream,
    '>',
  )) as Array<[string, Array<[string, string[]]>]> | null;
  return read?.[0]?.[1][0];
}

/** Redis work for a client's request: Redis unreachable is jobs_unavailable (retry), not a 500. */
export async function unavailable<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (isGlimpseError(err)) throw err;
    throw new GlimpseError('jobs_unavailable', 'The job store (Redis) cannot be reached; try again shortly.', {
      retryAfterSeconds: 5,
      cause: err,
    });
  }
}
