/** DataKeyCache: single flight, TTL, CLOCK-LRU bound, zeroing of dropped keys, tenant invalidation, hit-path cost. */

import { describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { setImmediate as tick } from 'node:timers/promises'
import { DataKeyCache } from '../../../src/keys/data-key-cache.js'
import { isDomicileError } from '../../../src/errors.js'

const key = (): Uint8Array => new Uint8Array(randomBytes(32))
const allZero = (k: Uint8Array): boolean => k.every((b) => b === 0)

function clock(start = 1_000_000): { now: () => number; advance(ms: number): void } {
  let t = start
  return { now: () => t, advance: (ms) => { t += ms } }
}

describe('DataKeyCache', () => {
  test('single flight: 10 concurrent misses share one loader call', async () => {
    const cache = new DataKeyCache()
    let loads = 0
    let release!: (k: Uint8Array) => void
    const loader = () => { loads += 1; return new Promise<Uint8Array>((r) => { release = r }) }
    const waiters = Array.from({ length: 10 }, () => cache.get('dk1', 't1', 60_000, loader))
    await tick()
    const k = key()
    const bytes = Buffer.from(k)
    release(k)
    const got = await Promise.all(waiters)
    assert.equal(loads, 1)
    for (const g of got) assert.equal(g, got[0], 'every waiter gets the one cached key')
    assert.equal(cache.peek('dk1'), got[0])
    assert.deepEqual(Buffer.from(got[0]!), bytes)
  })

  test('the cache keeps its own copy in its own memory and zeroes the buffer the loader handed over', async () => {
    const cache = new DataKeyCache()
    const pooled = Buffer.from(key()) // a slice of Node's shared 8 KiB Buffer pool
    assert.ok(pooled.buffer.byteLength > 32, 'precondition: the loader result shares a pool slab')
    const bytes = Buffer.from(pooled)
    const got = await cache.load('dk-own', 't1', 60_000, async () => pooled)
    assert.notEqual(got, pooled)
    assert.equal(got.buffer.byteLength, 32, 'the cached key has an ArrayBuffer of its own')
    assert.deepEqual(Buffer.from(got), bytes)
    assert.ok(allZero(pooled), "the loader's buffer is zeroed")
  })

  test('single flight also with ttl 0, and nothing is kept', async () => {
    const cache = new DataKeyCache()
    let loads = 0
    const loader = async () => { loads += 1; await tick(); return key() }
    const got = await Promise.all(Array.from({ length: 10 }, () => cache.load('dk0', 't1', 0, loader)))
    assert.equal(loads, 1)
    assert.ok(got.every((g) => g === got[0]))
    assert.ok(!allZero(got[0]!), 'usable right after the await')
    assert.equal(cache.size, 0)
    assert.equal(cache.peek('dk0'), undefined)
    await tick()
    assert.ok(allZero(got[0]!), 'a ttl-0 key is zeroed once its waiters have resumed')
  })

  test('TTL expiry: a hit before, a miss (and zeroed key) after', async () => {
    const c = clock()
    const cache = new DataKeyCache({ now: c.now })
    const k = await cache.load('dk', 't1', 1000, async () => key())
    c.advance(999)
    assert.equal(cache.peek('dk'), k)
    c.advance(1)
    assert.equal(cache.peek('dk'), undefined)
    assert.ok(allZero(k))
    assert.equal(cache.size, 0)
  })

  test('LRU bound: the least recently used key is evicted and zeroed', async () => {
    const cache = new DataKeyCache({ maxEntries: 3 })
    const a = await cache.load('a', 't', 60_000, async () => key())
    const b = await cache.load('b', 't', 60_000, async () => key())
    await cache.load('c', 't', 60_000, async () => key())
    assert.equal(cache.peek('a'), a) // a is now most recent; b is the oldest
    await cache.load('d', 't', 60_000, async () => key())
    assert.equal(cache.size, 3)
    assert.equal(cache.peek('b'), undefined)
    assert.ok(allZero(b), 'evicted key held by a caller is zeroed')
    assert.equal(cache.peek('a'), a)
    assert.ok(!allZero(a))
  })

  test('LRU bound when every entry was hit: the bound holds and the least recently hit goes', async () => {
    const cache = new DataKeyCache({ maxEntries: 2 })
    const a = await cache.load('a', 't', 60_000, async () => key())
    const b = await cache.load('b', 't', 60_000, async () => key())
    cache.peek('a')
    cache.peek('b')
    await cache.load('c', 't', 60_000, async () => key())
    assert.equal(cache.size, 2)
    assert.ok(allZero(a))
    assert.equal(cache.peek('b'), b)
  })

  test('sweep zeroes expired entries that nobody asks for again', async () => {
    const c = clock()
    const cache = new DataKeyCache({ now: c.now, sweepIntervalMs: 500 })
    const old = await cache.load('old', 't', 100, async () => key())
    c.advance(600)
    await cache.load('new', 't', 60_000, async () => key()) // triggers the periodic sweep
    assert.ok(allZero(old))
    assert.equal(cache.size, 1)
  })

  test('invalidateTenant drops and zeroes only that tenant', async () => {
    const cache = new DataKeyCache()
    const a1 = await cache.load('a1', 'acme', 60_000, async () => key())
    const a2 = await cache.load('a2', 'acme', 60_000, async () => key())
    const g1 = await cache.load('g1', 'globex', 60_000, async () => key())
    cache.invalidateTenant('acme')
    assert.equal(cache.peek('a1'), undefined)
    assert.equal(cache.peek('a2'), undefined)
    assert.ok(allZero(a1) && allZero(a2))
    assert.equal(cache.peek('g1'), g1)
    assert.ok(!allZero(g1))
  })

  test('invalidate during a load: waiters get the key, the cache does not keep it', async () => {
    const cache = new DataKeyCache()
    let release!: (k: Uint8Array) => void
    const p = cache.load('x', 'acme', 60_000, () => new Promise<Uint8Array>((r) => { release = r }))
    cache.invalidateTenant('acme')
    release(key())
    const k = await p
    assert.equal(k.length, 32)
    assert.equal(cache.peek('x'), undefined)
    await tick()
    assert.ok(allZero(k))
  })

  test('invalidate(id) and clear() zero what they drop', async () => {
    const cache = new DataKeyCache()
    const a = await cache.load('a', 't', 60_000, async () => key())
    const b = await cache.load('b', 't', 60_000, async () => key())
    cache.invalidate('a')
    assert.ok(allZero(a))
    assert.equal(cache.peek('b'), b)
    cache.clear()
    assert.ok(allZero(b))
    assert.equal(cache.size, 0)
  })

  test('a failed load is not cached and its error reaches every waiter', async () => {
    const cache = new DataKeyCache()
    let loads = 0
    const boom = new Error('provider down')
    const failing = async () => { loads += 1; await tick(); throw boom }
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => cache.load('f', 't', 60_000, failing)))
    assert.equal(loads, 1)
    for (const r of results) assert.ok(r.status === 'rejected' && r.reason === boom)
    assert.equal(cache.size, 0)
    const k = await cache.load('f', 't', 60_000, async () => { loads += 1; return key() })
    assert.equal(loads, 2, 'the next call loads again')
    assert.equal(cache.peek('f'), k)
  })

  test('a loader that throws synchronously does not wedge the id', async () => {
    const cache = new DataKeyCache()
    await assert.rejects(cache.load('s', 't', 1000, () => { throw new Error('sync') }))
    const k = await cache.load('s', 't', 1000, async () => key())
    assert.equal(cache.peek('s'), k)
  })

  test('Precondition: ttlMs is a non-negative number of milliseconds.', async () => {
    const cache = new DataKeyCache()
    await assert.rejects(cache.load('n', 't', -1, async () => key()), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    await assert.rejects(cache.load('n', 't', Number.NaN, async () => key()), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })

  test('Precondition: maxEntries is a positive integer.', () => {
    assert.throws(() => new DataKeyCache({ maxEntries: 0 }), (e) => isDomicileError(e, 'ERR_CONFIG_INVALID'))
  })

  test('peek on a hit costs well under 1 µs', async () => {
    const cache = new DataKeyCache()
    for (let i = 0; i < 10_000; i++) await cache.load(`k${i}`, 't', 60_000, async () => key())
    const ids = Array.from({ length: 1024 }, (_, i) => `k${(i * 7919) % 10_000}`)
    let hits = 0
    for (let i = 0; i < 50_000; i++) if (cache.peek(ids[i & 1023]!) !== undefined) hits++ // warm up
    // Best of 10 rounds: other test files share the 2 cores, so a single round can be preempted.
    const n = 100_000
    let perCallNs = Infinity
    for (let round = 0; round < 10; round++) {
      const t0 = process.hrtime.bigint()
      for (let i = 0; i < n; i++) if (cache.peek(ids[i & 1023]!) !== undefined) hits++
      perCallNs = Math.min(perCallNs, Number(process.hrtime.bigint() - t0) / n)
    }
    assert.equal(hits, 50_000 + 10 * n)
    assert.ok(perCallNs < 1000, `peek took ${perCallNs.toFixed(0)} ns per hit`)
  })
})
