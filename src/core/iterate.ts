/**
 * Pass-throughs over an event stream for the wrappers every request's events go through (metrics,
 * quotas, the answer cache, admission). Each is a plain iterator whose next() is one reaction on
 * the source's promise, not an async generator of its own: a generator costs several promises and
 * objects per event, and five of them in a row made a sixth of a proxied request's allocations.
 * Each forwards return() to its source, as `for await` and `yield*` do, and throws what it throws.
 */

const DONE: IteratorReturnResult<undefined> = { done: true, value: undefined };

function returnOf<T>(it: AsyncIterator<T> | undefined, value?: unknown): Promise<IteratorResult<T>> {
  return it?.return ? it.return(value) : Promise.resolve(DONE);
}

/**
 * The source's values, each shown to `each` as it passes; `end` is called once when the stream
 * stops for any reason: finished, failed, or left early by its reader.
 */
export function tap<T>(source: AsyncIterable<T>, each: (value: T) => void, end?: () => void): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const it = source[Symbol.asyncIterator]();
      let ended = false;
      const finish = () => {
        if (ended) return;
        ended = true;
        end?.();
      };
      const seen = (r: IteratorResult<T>): IteratorResult<T> => {
        if (r.done) finish();
        else {
          try {
            each(r.value);
          } catch (err) {
            finish();
            void returnOf(it).catch(() => {});
            throw err;
          }
        }
        return r;
      };
      const failed = (err: unknown): never => {
        finish();
        throw err;
      };
      return {
        next: () => it.next().then(seen, failed),
        return: (value?: unknown) => {
          finish();
          return returnOf(it, value);
        },
      };
    },
  };
}

/** `first`, then the source's values (the source is started only when its first value is asked for). */
export function prepend<T>(first: T, source: AsyncIterable<T>): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      let it: AsyncIterator<T> | undefined;
      let given = false;
      let closed = false;
      return {
        next: () => {
          if (closed) return Promise.resolve(DONE);
          if (given) return (it ??= source[Symbol.asyncIterator]()).next();
          given = true;
          return Promise.resolve({ done: false, value: first });
        },
        return: (value?: unknown) => {
          closed = true;
          return returnOf(it, value);
        },
      };
    },
  };
}

/** The source's values that `keep` accepts; the others are handed to `aside`. */
export function sift<T, K extends T>(
  source: AsyncIterable<T>,
  keep: (value: T) => value is K,
  aside?: (value: Exclude<T, K>) => void,
): AsyncIterable<K> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<K> {
      const it = source[Symbol.asyncIterator]();
      const seen = (r: IteratorResult<T>): IteratorResult<K> | Promise<IteratorResult<K>> => {
        if (r.done || keep(r.value)) return r as IteratorResult<K>;
        try {
          aside?.(r.value as Exclude<T, K>);
        } catch (err) {
          void returnOf(it).catch(() => {});
          throw err;
        }
        return next();
      };
      const next = (): Promise<IteratorResult<K>> => it.next().then(seen);
      return { next, return: (value?: unknown) => returnOf(it, value) as Promise<IteratorResult<K>> };
    },
  };
}
