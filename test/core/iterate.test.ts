import { test } from 'node:test';
import assert from 'node:assert/strict';
import { prepend, sift, tap } from '../../src/core/iterate.js';

/** A source that records how it was used: values read, whether it finished, was returned, or failed. */
function source<T>(values: T[], opts: { failAfter?: number } = {}) {
  const log = { read: 0, finished: false, returned: false, started: false };
  const iterable: AsyncIterable<T> = {
    async *[Symbol.asyncIterator]() {
      log.started = true;
      try {
        for (const v of values) {
          if (opts.failAfter !== undefined && log.read >= opts.failAfter) throw new Error('source broke');
          log.read++;
          yield v;
        }
        log.finished = true;
      } finally {
        if (!log.finished) log.returned = true;
      }
    },
  };
  return { iterable, log };
}

async function all<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const v of it) out.push(v);
  return out;
}

test('tap passes every value through, shows each, and ends once when the source finishes', async () => {
  const { iterable } = source([1, 2, 3]);
  const seen: number[] = [];
  let ends = 0;
  assert.deepEqual(
    await all(
      tap(
        iterable,
        (v) => seen.push(v),
        () => ends++,
      ),
    ),
    [1, 2, 3],
  );
  assert.deepEqual(seen, [1, 2, 3]);
  assert.equal(ends, 1);
});

test('tap ends once and stops the source when its reader leaves early', async () => {
  const { iterable, log } = source([1, 2, 3, 4]);
  let ends = 0;
  for await (const v of tap(
    iterable,
    () => {},
    () => ends++,
  ))
    if (v === 2) break;
  assert.equal(ends, 1);
  assert.equal(log.returned, true, 'the source was told to stop');
  assert.equal(log.read, 2);
});

test('tap ends once and passes the error on when the source fails', async () => {
  const { iterable } = source([1, 2, 3], { failAfter: 1 });
  let ends = 0;
  const seen: number[] = [];
  await assert.rejects(
    all(
      tap(
        iterable,
        (v) => seen.push(v),
        () => ends++,
      ),
    ),
    /source broke/,
  );
  assert.deepEqual(seen, [1]);
  assert.equal(ends, 1);
});

test('a value tap cannot take stops the source, ends once and is thrown to the reader', async () => {
  const { iterable, log } = source([1, 2, 3]);
  let ends = 0;
  const each = (v: number) => {
    if (v === 2) throw new Error('bad value');
  };
  await assert.rejects(all(tap(iterable, each, () => ends++)), /bad value/);
  assert.equal(ends, 1);
  await new Promise((r) => setImmediate(r));
  assert.equal(log.returned, true);
});

test('prepend gives its value first, then the source; the source starts only when read', async () => {
  const { iterable, log } = source(['b', 'c']);
  assert.deepEqual(await all(prepend('a', iterable)), ['a', 'b', 'c']);
  const second = source(['b']);
  for await (const v of prepend('a', second.iterable)) {
    assert.equal(v, 'a');
    break;
  }
  assert.equal(second.log.started, false, 'leaving after the first value never started the source');
  const third = source(['b']);
  const it = prepend('a', third.iterable)[Symbol.asyncIterator]();
  await it.next();
  await it.return!();
  assert.deepEqual(await it.next(), { done: true, value: undefined }, 'done once left');
  assert.equal(third.log.started, false);
  assert.equal(log.finished, true);
});

test('prepend forwards an early leave to a started source', async () => {
  const { iterable, log } = source([1, 2, 3]);
  for await (const v of prepend(0, iterable)) if (v === 1) break;
  assert.equal(log.returned, true);
});

test('sift keeps what it is told to, hands the rest aside in order, and forwards an early leave', async () => {
  const { iterable } = source([1, 2, 3, 4, 5, 6]);
  const aside: number[] = [];
  const even = (v: number): v is number => v % 2 === 0;
  assert.deepEqual(await all(sift(iterable, even, (v) => aside.push(v))), [2, 4, 6]);
  assert.deepEqual(aside, [1, 3, 5]);
  const second = source([2, 3, 4, 5]);
  for await (const v of sift(second.iterable, even)) if (v === 2) break;
  assert.equal(second.log.returned, true);
  // A long run of values set aside is read without growing the stack.
  const many = source(Array.from({ length: 100_000 }, (_, i) => (i === 99_999 ? 0 : 1)));
  assert.deepEqual(await all(sift(many.iterable, (v): v is 0 => v === 0)), [0]);
});
