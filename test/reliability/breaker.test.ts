import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from '../../src/engines/upstream/index.js';

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

test('the breaker opens after threshold consecutive failures and refuses requests during the cooldown', () => {
  const c = clock();
  const b = new CircuitBreaker({ threshold: 3, cooldownMs: 1000, now: c.now });
  b.onFailure();
  b.onFailure();
  assert.equal(b.current, 'closed');
  b.onSuccess();
  b.onFailure();
  b.onFailure();
  assert.equal(b.current, 'closed', 'a success resets the count');
  b.onFailure();
  assert.equal(b.current, 'open');
  assert.equal(b.available(), false);
  assert.equal(b.tryAcquire(), false);
  c.advance(999);
  assert.equal(b.tryAcquire(), false);
});

test('after the cooldown exactly one probe goes; its success closes the breaker', () => {
  const c = clock();
  const b = new CircuitBreaker({ threshold: 1, cooldownMs: 100, now: c.now });
  b.onFailure();
  c.advance(100);
  assert.equal(b.current, 'half_open');
  assert.equal(b.tryAcquire(), true);
  assert.equal(b.tryAcquire(), false, 'only one probe at a time');
  b.onSuccess();
  assert.equal(b.current, 'closed');
  assert.equal(b.tryAcquire(), true);
});

test('a failed probe opens the breaker for another cooldown; a cancelled probe frees the probe slot', () => {
  const c = clock();
  const b = new CircuitBreaker({ threshold: 5, cooldownMs: 100, now: c.now });
  for (let i = 0; i < 5; i++) b.onFailure();
  c.advance(100);
  assert.equal(b.tryAcquire(), true);
  b.onNeutral();
  assert.equal(b.tryAcquire(), true, 'the probe was given back');
  b.onFailure();
  assert.equal(b.current, 'open');
  c.advance(50);
  assert.equal(b.available(), false);
  c.advance(50);
  assert.equal(b.available(), true);
});
