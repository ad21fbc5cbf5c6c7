import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { RandomNonceSource } from '../../../src/crypto/nonce-source.js'
import { isDomicileError } from '../../../src/errors.js'

describe('RandomNonceSource', () => {
  test('hands out 12-byte nonces, all distinct, across several refills', () => {
    const src = new RandomNonceSource({ poolNonces: 16 })
    const seen = new Set<string>()
    for (let i = 0; i < 16 * 10 + 3; i++) {
      const n = src.next()
      assert.equal(n.length, 12)
      seen.add(n.toString('hex'))
    }
    assert.equal(seen.size, 163)
  })

  test('a nonce already handed out never changes when the pool refills', () => {
    const src = new RandomNonceSource({ poolNonces: 2 })
    const first = src.next()
    const copy = Buffer.from(first)
    for (let i = 0; i < 50; i++) src.next()
    assert.deepEqual(first, copy)
    assert.notEqual(src.next().buffer, first.buffer, 'refill must allocate a new pool')
  })

  test('nextInto writes 12 fresh bytes at the offset and nothing else', () => {
    const src = new RandomNonceSource({ poolNonces: 4 })
    const target = Buffer.alloc(20, 0xaa)
    src.nextInto(target, 4)
    assert.deepEqual(target.subarray(0, 4), Buffer.alloc(4, 0xaa))
    assert.deepEqual(target.subarray(16), Buffer.alloc(4, 0xaa))
    const seen = new Set<string>()
    for (let i = 0; i < 40; i++) { src.nextInto(target, 4); seen.add(target.subarray(4, 16).toString('hex')) }
    assert.equal(seen.size, 40)
  })

  test('Precondition: the pool holds between 1 and 2^16 nonces.', () => {
    for (const n of [0, -1, 1.5, 65537]) {
      assert.throws(() => new RandomNonceSource({ poolNonces: n }), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    }
  })

  test('is cheaper per nonce than randomBytes(12)', async () => {
    const { randomBytes } = await import('node:crypto')
    const src = new RandomNonceSource()
    const N = 50_000
    const time = (f: () => unknown) => {
      let best = Infinity
      for (let r = 0; r < 3; r++) {
        const t0 = process.hrtime.bigint()
        for (let i = 0; i < N; i++) f()
        best = Math.min(best, Number(process.hrtime.bigint() - t0))
      }
      return best
    }
    const pooled = time(() => src.next())
    const direct = time(() => randomBytes(12))
    assert.ok(pooled < direct, `pooled ${pooled}ns vs randomBytes ${direct}ns for ${N} nonces`)
  })
})
