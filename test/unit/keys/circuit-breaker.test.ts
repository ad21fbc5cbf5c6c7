/** CircuitBreaker: closed -> open after consecutive failures, half-open with one trial, stale results ignored. */

import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { CircuitBreaker } from '../../../src/keys/circuit-breaker.js'
import { isDomicileError } from '../../../src/errors.js'

function clock(): { now: () => number; advance(ms: number): void } {
  let t = 0
  return { now: () => t, advance: (ms) => { t += ms } }
}

function fail(b: CircuitBreaker, times: number): void {
  for (let i = 0; i < times; i++) {
    const p = b.tryAcquire()
    assert.ok(p, 'expected the call to be admitted')
    b.settle(p, 'failure')
  }
}

describe('CircuitBreaker', () => {
  test('opens after failureThreshold consecutive failures and fails fast', () => {
    const c = clock()
    const b = new CircuitBreaker({ failureThreshold: 3, cooldownMs: 1000, now: c.now })
    fail(b, 2)
    assert.equal(b.state, 'closed')
    fail(b, 1)
    assert.equal(b.state, 'open')
    assert.equal(b.tryAcquire(), undefined)
  })

  test('a success resets the consecutive count', () => {
    const b = new CircuitBreaker({ failureThreshold: 3 })
    fail(b, 2)
    b.settle(b.tryAcquire()!, 'success')
    fail(b, 2)
    assert.equal(b.state, 'closed')
    assert.equal(b.consecutiveFailures, 2)
  })

  test('neutral outcomes do not count', () => {
    const b = new CircuitBreaker({ failureThreshold: 2 })
    for (let i = 0; i < 5; i++) b.settle(b.tryAcquire()!, 'neutral')
    assert.equal(b.state, 'closed')
  })

  test('half-open admits exactly one trial; its success closes the circuit', () => {
    const c = clock()
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: c.now })
    fail(b, 1)
    c.advance(999)
    assert.equal(b.state, 'open')
    c.advance(1)
    assert.equal(b.state, 'half-open')
    const trial = b.tryAcquire()
    assert.ok(trial?.trial)
    assert.equal(b.tryAcquire(), undefined, 'only one trial at a time')
    b.settle(trial, 'success')
    assert.equal(b.state, 'closed')
    assert.ok(b.tryAcquire())
  })

  test('a failed trial opens the circuit for another cooldown', () => {
    const c = clock()
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: c.now })
    fail(b, 1)
    c.advance(1000)
    b.settle(b.tryAcquire()!, 'failure')
    assert.equal(b.state, 'open')
    c.advance(500)
    assert.equal(b.tryAcquire(), undefined)
    c.advance(500)
    assert.equal(b.state, 'half-open')
  })

  test('a neutral trial frees the trial slot without deciding', () => {
    const c = clock()
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 10, now: c.now })
    fail(b, 1)
    c.advance(10)
    b.settle(b.tryAcquire()!, 'neutral')
    assert.equal(b.state, 'half-open')
    assert.ok(b.tryAcquire()?.trial)
  })

  test('results of calls admitted before the circuit opened are ignored', () => {
    const c = clock()
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 1000, now: c.now })
    const early = b.tryAcquire()!
    fail(b, 1)
    b.settle(early, 'success')
    assert.equal(b.state, 'open')
  })

  test('Precondition: failureThreshold is a positive integer.', () => {
    assert.throws(() => new CircuitBreaker({ failureThreshold: 0 }), (e) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
  })
})
