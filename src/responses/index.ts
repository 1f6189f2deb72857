/**
 * Stored responses, for the Responses API's `previous_response_id`, `GET /v1/responses/{id}`,
 * its input items, and `DELETE`. One record per response: the response object as it was answered,
 * the input items of that turn (with ids), and the id of the response it continued. A continuation
 * walks that chain back, so each turn (and each image in it) is stored once, not once per later turn.
 *
 * In memory (an LRU bounded by bytes, with a time to live) or, with --redis-url, in Redis so that
 * every instance behind a balancer can continue any conversation. Reading a record renews its time
 * to live, so a conversation in use keeps its whole history. A record belongs to the API key that
 * made it: another key's lookup finds nothing, exactly as for an id that never existed.
 */
import { LRUCache } from 'lru-cache';
import { Redis } from 'ioredis';
import { GlimpseError } from '../core/index.js';

/** One stored turn. `input` and `response.output` are the Responses API's own item shapes. */
export interface StoredResponse {
  /** The API key id that made it (null without keys). */
  owner: string | null;
  /** The response it continued, if any. */
  previousId: string | null;
  /** This turn's input items, each with an id (as input_items lists them). */
  input: Array<Record<string, unknown>>;
  /** The response object as the client got it. */
  response: Record<string, unknown> & { id: string; output: unknown[] };
}

export interface ResponseStore {
  readonly backend: 'memory' | 'redis';
  /** The record, or undefined when there is none for this caller (never existed, expired, deleted, or another key's). */
  get(id: string, owner: string | null): Promise<StoredResponse | undefined>;
  /** Keeps the record; false when it is too large to keep (memory: over a quarter of the budget). */
  put(record: StoredResponse): Promise<boolean>;
  /**
   * Items of this caller's stored responses by item id (input items and output items alike), for
   * the Responses API's item_reference; ids not found (or another key's) are absent from the map.
   */
  items(ids: string[], owner: string | null): Promise<Map<string, Record<string, unknown>>>;
  /** True when a record of this caller was removed. */
  delete(id: string, owner: string | null): Promise<boolean>;
  /**
   * The items of every earlier turn, oldest first (each turn's input, then its output), for a
   * response that continues `id`; throws previous_response_not_found when `id` or an ancestor is gone.
   */
  history(id: string, owner: string | null, maxTurns: number): Promise<Array<Record<string, unknown>>>;
  close(): Promise<void>;
}

export interface ResponseStoreOptions {
  maxBytes: number;
  ttlSeconds: number;
  redisUrl?: string;
}

const unavailable = (err: unknown) =>
  new GlimpseError(
    'responses_store_unavailable',
    'The store of responses (Redis) cannot be reached; try again shortly, or send the whole conversation as input.',
    { retryAfterSeconds: 5, cause: err },
  );

/** The ids of a record's items, each indexed to the record for item_reference. */
const itemIds = (r: StoredResponse): string[] =>
  turnItems(r).flatMap((it) => (typeof it.id === 'string' ? [it.id] : []));

/** The items a later turn sees from this one: what was asked, then what was answered. */
function turnItems(r: StoredResponse): Array<Record<string, unknown>> {
  return [...r.input, ...(r.response.output as Array<Record<string, unknown>>)];
}

/** What a backend does with the raw records; owner checks and the history walk are built on it once. */
interface RecordBackend {
  backend: ResponseStore['backend'];
  read(id: string): Promise<StoredResponse | undefined>;
  /** Keeps the record and indexes its items' ids to it. */
  write(record: StoredResponse): Promise<boolean>;
  /** The response an item id was indexed to (the record itself may be gone since). */
  responseOf(itemId: string): Promise<string | undefined>;
  remove(id: string): Promise<boolean>;
  close(): Promise<void>;
}

function ownedStore(b: RecordBackend): ResponseStore {
  const get = async (id: string, owner: string | null) => {
    const r = await b.read(id);
    return r && r.owner === owner ? r : undefined;
  };
  return {
    backend: b.backend,
    get,
    put: (record) => b.write(record),
    items: async (ids, owner) => {
      const out = new Map<string, Record<string, unknown>>();
      for (const itemId of ids) {
        const responseId = await b.responseOf(itemId);
        const r = responseId === undefined ? undefined : await get(responseId, owner);
        const item = r && turnItems(r).find((it) => it.id === itemId);
        if (item) out.set(itemId, item);
      }
      return out;
    },
    delete: async (id, owner) => ((await get(id, owner)) ? b.remove(id) : false),
    history: async (id, owner, maxTurns) => {
      const turns: StoredResponse[] = [];
      for (let next: string | null = id; next;) {
        const r: StoredResponse | undefined = await get(next, owner);
        if (!r) {
          const what =
            next === id
              ? `Previous response '${id}' is not stored here`
              : `An earlier turn of the conversation ('${next}') is no longer stored`;
          throw new GlimpseError(
            'previous_response_not_found',
            `${what} (never stored, expired, deleted, or made with another API key); send the whole conversation as input instead.`,
            { param: 'previous_response_id' },
          );
        }
        turns.push(r);
        if (turns.length > maxTurns) {
          throw new GlimpseError(
            'invalid_request',
            `The conversation behind '${id}' is over ${maxTurns} turns; start a new one, or send the turns that matter as input.`,
            { param: 'previous_response_id' },
          );
        }
        next = r.previousId;
      }
      return turns.reverse().flatMap(turnItems);
    },
    close: () => b.close(),
  };
}

function memoryBackend(opts: ResponseStoreOptions): RecordBackend {
  // UTF-16: about two bytes a character. One conversation may not push out everyone else's: a
  // record over a quarter of the budget is not kept.
  const size = (raw: string, id: string) => 2 * (raw.length + id.length);
  const maxRecord = Math.floor(opts.maxBytes / 4);
  const records = new LRUCache<string, string>({
    maxSize: Math.max(1, opts.maxBytes),
    sizeCalculation: (raw, id) => size(raw, id),
    ttl: opts.ttlSeconds > 0 ? opts.ttlSeconds * 1000 : undefined,
    updateAgeOnGet: true,
  });
  // Item id → response id. Bounded apart from the records (an eighth of the budget); an entry
  // whose record has gone simply finds nothing.
  const index = new LRUCache<string, string>({
    maxSize: Math.max(1, Math.floor(opts.maxBytes / 8)),
    sizeCalculation: (responseId, itemId) => 2 * (responseId.length + itemId.length),
    ttl: opts.ttlSeconds > 0 ? opts.ttlSeconds * 1000 : undefined,
  });
  return {
    backend: 'memory',
    responseOf: async (itemId) => index.get(itemId),
    read: async (id) => {
      const raw = records.get(id);
      return raw === undefined ? undefined : (JSON.parse(raw) as StoredResponse);
    },
    write: async (record) => {
      const raw = JSON.stringify(record);
      if (size(raw, record.response.id) > maxRecord) return false;
      records.set(record.response.id, raw);
      for (const itemId of itemIds(record)) index.set(itemId, record.response.id);
      return true;
    },
    remove: async (id) => records.delete(id),
    close: async () => records.clear(),
  };
}

function redisBackend(opts: ResponseStoreOptions & { redisUrl: string }, onError: (err: Error) => void): RecordBackend {
  const prefix = 'glimpse:response:';
  const itemPrefix = 'glimpse:response-item:';
  const client = new Redis(opts.redisUrl, {
    enableOfflineQueue: false,
    commandTimeout: 1000,
    maxRetriesPerRequest: 1,
    connectTimeout: 2000,
  });
  client.on('error', onError);
  const ttl = opts.ttlSeconds;
  const call = async <T>(fn: () => Promise<T>): Promise<T> => {
    try {
      return await fn();
    } catch (err) {
      throw unavailable(err);
    }
  };
  return {
    backend: 'redis',
    read: (id) =>
      call(async () => {
        // Reading renews the time to live: a conversation in use keeps its history.
        const raw = ttl > 0 ? await client.getex(prefix + id, 'EX', ttl) : await client.get(prefix + id);
        return raw == null ? undefined : (JSON.parse(raw) as StoredResponse);
      }),
    write: (record) =>
      call(async () => {
        const raw = JSON.stringify(record);
        const id = record.response.id;
        const batch = client.multi();
        for (const [key, value] of [
          [prefix + id, raw],
          ...itemIds(record).map((itemId) => [itemPrefix + itemId, id]),
        ] as const) {
          if (ttl > 0) batch.set(key, value, 'EX', ttl);
          else batch.set(key, value);
        }
        await batch.exec();
        return true;
      }),
    responseOf: (itemId) => call(async () => (await client.get(itemPrefix + itemId)) ?? undefined),
    remove: (id) => call(async () => (await client.del(prefix + id)) > 0),
    close: async () => {
      client.disconnect();
    },
  };
}

export function createResponseStore(
  opts: ResponseStoreOptions,
  onError: (err: Error) => void = () => {},
): ResponseStore {
  return ownedStore(opts.redisUrl ? redisBackend({ ...opts, redisUrl: opts.redisUrl }, onError) : memoryBackend(opts));
}
