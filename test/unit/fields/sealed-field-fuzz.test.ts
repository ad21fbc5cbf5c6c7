/**
 * Property tests of the sealed-field parser and open path (field-codec.ts): any byte string given
 * to readKeyNumber, openField, PreparedColumn.open or the codec's AEAD layer either opens to exactly
 * the value that was sealed (only when it IS those sealed bytes) or throws the one opaque
 * DecryptionFailedError: that class, that message, no cause, no path, nothing else attached.
 * Inputs: random bytes, random headers on real bodies, and real sealed values truncated, extended,
 * bit-flipped, byte-overwritten or spliced with another value's bytes.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import {
  MAX_KEY_NUMBER, encodeFieldAad, openField, prepareColumn, readKeyNumber, sealField, sealedFieldLayer,
  type FieldContext, type FieldPlain,
} from '../../../src/fields/field-codec.js'
import { DecryptionFailedError } from '../../../src/errors.js'

const key = randomBytes(32)
const ctx: FieldContext = { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }
const column = prepareColumn(ctx)
const OPAQUE = new DecryptionFailedError().message

/** Runs `f`; returns its value, or 'opaque' for the one opaque error. Anything else fails the test. */
function outcome<T>(f: () => T): T | 'opaque' {
  try {
    return f()
  } catch (e) {
    assert.ok(e instanceof DecryptionFailedError, `not the opaque error: ${String(e)}`)
    assert.equal(Object.getPrototypeOf(e), DecryptionFailedError.prototype)
    assert.equal(e.code, 'ERR_DECRYPTION_FAILED')
    assert.equal(e.message, OPAQUE)
    assert.equal(e.cause, undefined, 'no cause')
    assert.equal(e.path, undefined, 'no path')
    for (const k of Object.keys(e)) assert.ok(['code', 'name', 'path'].includes(k), `nothing else attached (${k})`)
    return 'opaque'
  }
}

/** A sealed value and what it holds. */
const sealedArb = fc.record({
  value: fc.oneof(fc.string(), fc.uint8Array({ maxLength: 64 }), fc.jsonValue({ maxDepth: 2 })) as fc.Arbitrary<FieldPlain>,
  keyNumber: fc.integer({ min: 1, max: MAX_KEY_NUMBER }),
}).map(({ value, keyNumber }) => ({ value, keyNumber, sealed: sealField(key, keyNumber, ctx, value) }))

/** What opening returns for a sealed `value`: strings and bytes as they were, JSON values re-parsed. */
function expectedOf(value: FieldPlain): unknown {
  if (typeof value === 'string') return value
  if (value instanceof Uint8Array) return new Uint8Array(value)
  return JSON.parse(JSON.stringify(value))
}

/** Ways to damage sealed bytes (some of which leave them unchanged). */
const mutationArb = fc.oneof(
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant('overwrite' as const), at: fc.nat(), byte: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('header' as const), header: fc.uint8Array({ minLength: 5, maxLength: 5 }) }),
  fc.record({ kind: fc.constant('splice' as const), at: fc.nat(), other: fc.uint8Array({ maxLength: 80 }) }),
  fc.record({ kind: fc.constant('none' as const) }),
)
type Mutation = typeof mutationArb extends fc.Arbitrary<infer M> ? M : never

function mutate(sealed: Buffer, m: Mutation): Buffer {
  const b = Buffer.from(sealed)
  switch (m.kind) {
    case 'truncate': return b.subarray(0, m.at % b.length)
    case 'extend': return Buffer.concat([b, m.extra])
    case 'flip': b[m.at % b.length]! ^= 1 << m.bit; return b
    case 'overwrite': b[m.at % b.length] = m.byte; return b
    case 'header': return Buffer.concat([m.header, b.subarray(5)])
    case 'splice': return Buffer.concat([b.subarray(0, m.at % b.length), m.other])
    case 'none': return b
  }
}

/** Every entry point of the parser and open path on `bytes`. */
function allOutcomes(bytes: Uint8Array): { keyNumber: number | 'opaque'; field: unknown; column: unknown; layer: Buffer | 'opaque' } {
  return {
    keyNumber: outcome(() => readKeyNumber(bytes)),
    field: outcome(() => openField(key, ctx, bytes)),
    column: outcome(() => column.open(key, ctx.rowKey, bytes)),
    layer: outcome(() => {
      const n = readKeyNumber(bytes) // the layer takes the AAD, which binds the header's key number
      return sealedFieldLayer.open(key, bytes, encodeFieldAad(ctx, n))
    }),
  }
}

describe('sealed-field parser and open path: any byte string', () => {
  test('random bytes of any length: a valid key number or the opaque error; opening always fails opaquely', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 120 }), (bytes) => {
      const o = allOutcomes(bytes)
      if (o.keyNumber !== 'opaque') assert.ok(Number.isInteger(o.keyNumber) && o.keyNumber >= 1 && o.keyNumber <= MAX_KEY_NUMBER)
      // 2^-128 of forging a tag: an open of random bytes never succeeds.
      assert.deepEqual([o.field, o.column, o.layer], ['opaque', 'opaque', 'opaque'])
    }), { numRuns: 2000 })
  })

  test('random 5-byte headers on a real body: only the original header parses to its number and opens', () => {
    fc.assert(fc.property(sealedArb, fc.uint8Array({ minLength: 5, maxLength: 5 }), ({ value, keyNumber, sealed }, header) => {
      const bytes = Buffer.concat([header, sealed.subarray(5)])
      const o = allOutcomes(bytes)
      const n = Buffer.from(header).readUInt32BE(1)
      const inRange = header[0] === 0x01 && n >= 1 && n <= MAX_KEY_NUMBER
      assert.deepEqual(o.keyNumber, inRange ? n : 'opaque')
      if (Buffer.from(header).equals(sealed.subarray(0, 5))) {
        assert.equal(n, keyNumber)
        assert.deepEqual(o.field, expectedOf(value))
        assert.deepEqual(o.column, expectedOf(value))
      } else {
        assert.deepEqual([o.field, o.column, o.layer], ['opaque', 'opaque', 'opaque'])
      }
    }), { numRuns: 1000 })
  })

  test('damaged sealed values: unchanged bytes open to the sealed value, any change is the opaque error', () => {
    fc.assert(fc.property(sealedArb, mutationArb, ({ value, keyNumber, sealed }, m) => {
      const bytes = mutate(sealed, m)
      const o = allOutcomes(bytes)
      if (bytes.equals(sealed)) {
        assert.equal(o.keyNumber, keyNumber)
        assert.deepEqual(o.field, expectedOf(value))
        assert.deepEqual(o.column, expectedOf(value))
        assert.notEqual(o.layer, 'opaque')
      } else {
        assert.deepEqual([o.field, o.column, o.layer], ['opaque', 'opaque', 'opaque'], `mutation ${m.kind}`)
      }
    }), { numRuns: 3000 })
  })

  test('a value sealed for one row, column and key opens under no other', () => {
    fc.assert(fc.property(sealedArb, fc.string({ minLength: 1, maxLength: 20 }), ({ sealed }, rowKey) => {
      fc.pre(rowKey !== ctx.rowKey)
      assert.equal(outcome(() => openField(key, { ...ctx, rowKey }, sealed)), 'opaque')
      assert.equal(outcome(() => openField(key, { ...ctx, column: `${ctx.column}2` }, sealed)), 'opaque')
      assert.equal(outcome(() => openField(randomBytes(32), ctx, sealed)), 'opaque')
    }), { numRuns: 300 })
  })
})
