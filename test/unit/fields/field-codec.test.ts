import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import fc from 'fast-check'
import {
  encodeFieldAad, openField, prepareColumn, readKeyNumber, sealField, SEALED_FIELD_OVERHEAD,
  type FieldContext, type FieldPlain,
} from '../../../src/fields/field-codec.js'
import { aesGcmDecrypt, aesGcmEncrypt } from '../../../src/crypto/aead.js'
import { manageKey, readyCount, retireKey } from '../../../src/crypto/context-reserve.js'
import { SealedValue } from '../../../src/fields/sealed-value.js'
import { DecryptionFailedError, isDomicileError } from '../../../src/errors.js'

const key = randomBytes(32)
const ctx: FieldContext = { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }
const OPAQUE_MESSAGE = new DecryptionFailedError().message

/** The one opaque failure: right code, fixed message, no cause, nothing else attached. */
function isOpaqueFailure(e: unknown): boolean {
  return isDomicileError(e, 'ERR_DECRYPTION_FAILED') && (e as Error).message === OPAQUE_MESSAGE &&
    (e as Error).cause === undefined && (e as { path?: string }).path === undefined
}
const isInputInvalid = (e: unknown) => isDomicileError(e, 'ERR_INPUT_INVALID')

describe('sealed field v1: round trips', () => {
  test('arbitrary strings (unicode, empty) come back as the same string', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.constant('')), fc.integer({ min: 1, max: 0x7fff_ffff }), (s, kn) => {
      const sealed = sealField(key, kn, ctx, s)
      assert.equal(sealed.length, Buffer.byteLength(s) + SEALED_FIELD_OVERHEAD)
      assert.equal(readKeyNumber(sealed), kn)
      assert.equal(openField(key, ctx, sealed), s)
    }), { numRuns: 300 })
  })

  test('arbitrary byte arrays come back as a plain Uint8Array with the same bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), (b) => {
      const out = openField(key, ctx, sealField(key, 3, ctx, b))
      assert.ok(out instanceof Uint8Array)
      assert.equal(Object.getPrototypeOf(out), Uint8Array.prototype)
      assert.deepEqual(out, new Uint8Array(b))
    }), { numRuns: 200 })
  })

  test('JSON values come back as JSON.parse(JSON.stringify(v))', () => {
    fc.assert(fc.property(fc.jsonValue(), (v) => {
      fc.pre(typeof v !== 'string') // strings take the string path (covered above)
      assert.deepEqual(openField(key, ctx, sealField(key, 3, ctx, v as FieldPlain)), JSON.parse(JSON.stringify(v)))
    }), { numRuns: 200 })
    for (const v of [0, -1.5, true, false, null, [], {}, { a: [1, 'x', null] }]) {
      assert.deepEqual(openField(key, ctx, sealField(key, 3, ctx, v)), v)
    }
  })

  test('values longer than the internal scratch buffer round-trip', () => {
    const s = 'é'.repeat(10_000)
    assert.equal(openField(key, ctx, sealField(key, 1, ctx, s)), s)
    const b = randomBytes(20_000)
    assert.deepEqual(Buffer.from(openField(key, ctx, sealField(key, 1, ctx, b)) as Uint8Array), b)
    const o = { text: 'x'.repeat(9000) }
    assert.deepEqual(openField(key, ctx, sealField(key, 1, ctx, o)), o)
  })

  test('row keys: numbers and bigints bind as their decimal string; long and unicode keys work', () => {
    const sealed = sealField(key, 1, { ...ctx, rowKey: 42 }, 'v')
    assert.equal(openField(key, { ...ctx, rowKey: '42' }, sealed), 'v')
    assert.equal(openField(key, { ...ctx, rowKey: 42n }, sealed), 'v')
    for (const rowKey of ['k'.repeat(129), 'ключ-😀'.repeat(40), '']) {
      const s = sealField(key, 1, { ...ctx, rowKey }, 'v')
      assert.equal(openField(key, { ...ctx, rowKey }, s), 'v')
      assert.throws(() => openField(key, { ...ctx, rowKey: rowKey + 'x' }, s), isOpaqueFailure)
    }
  })

  test('a prepared column and sealField produce the same bytes for the same nonce', () => {
    const nonce = randomBytes(12)
    const col = prepareColumn(ctx)
    assert.deepEqual(col.seal(key, 9, ctx.rowKey, 'same', { nonce }), sealField(key, 9, ctx, 'same', nonce))
    assert.equal(col.open(key, ctx.rowKey, sealField(key, 9, ctx, 'same')), 'same')
    assert.equal(prepareColumn(col), col)
  })

  test('the fast path equals AES-256-GCM over [type][value] with encodeFieldAad as AAD', () => {
    fc.assert(fc.property(fc.string(), fc.string({ minLength: 1 }), fc.integer({ min: 1, max: 0x7fff_ffff }), (value, rowKey, kn) => {
      const c = { ...ctx, rowKey }
      const nonce = randomBytes(12)
      const sealed = sealField(key, kn, c, value, nonce)
      const body = aesGcmEncrypt(key, nonce, Buffer.concat([Buffer.of(1), Buffer.from(value)]), encodeFieldAad(c, kn))
      assert.deepEqual(sealed.subarray(17), body)
      assert.deepEqual(sealed.subarray(5, 17), nonce)
    }), { numRuns: 100 })
  })

  test('many distinct columns (beyond the memo bound) keep working', () => {
    for (let i = 0; i < 1100; i++) {
      const c = { tenantId: `t${i % 7}`, table: 'tbl', column: `c${i}`, rowKey: 'r' }
      assert.equal(openField(key, c, sealField(key, 1, c, `v${i}`)), `v${i}`)
    }
  })

  test('a toJSON that seals into the same column while being sealed does not corrupt either value', () => {
    const col = prepareColumn(ctx)
    let inner: Buffer | undefined
    const value = { toJSON: () => { inner = col.seal(key, 1, 'other-row', 'inner value'); return { outer: true } } }
    const outer = col.seal(key, 1, ctx.rowKey, value)
    assert.deepEqual(col.open(key, ctx.rowKey, outer), { outer: true })
    assert.equal(col.open(key, 'other-row', inner!), 'inner value')
  })
})

describe('sealed field v1: format', () => {
  test('layout: version 0x01, key number uint32 BE (1..2^31-1), 12-byte nonce, ciphertext, 16-byte tag; 34 bytes overhead', () => {
    const value = '0123456789abcdef' // 16 bytes
    const sealed = sealField(key, 0x01020304, ctx, value)
    assert.equal(sealed.length - 16, 34)
    assert.ok(sealed.length - 16 <= 40)
    assert.equal(sealed[0], 0x01)
    assert.deepEqual([...sealed.subarray(1, 5)], [1, 2, 3, 4])
    assert.equal(readKeyNumber(sealed), 0x01020304)
  })

  test('nonces are fresh per seal', () => {
    const nonces = new Set<string>()
    for (let i = 0; i < 2000; i++) nonces.add(sealField(key, 1, ctx, 'x').subarray(5, 17).toString('hex'))
    assert.equal(nonces.size, 2000)
  })
})

describe('sealed field v1: every failure is the same opaque error', () => {
  test('any single-bit flip anywhere in the sealed bytes fails (exhaustive on a 16-byte value)', () => {
    const sealed = sealField(key, 5, ctx, 'sixteen bytes!!!')
    for (let bit = 0; bit < sealed.length * 8; bit++) {
      const t = Buffer.from(sealed)
      t[bit >> 3]! ^= 1 << (bit & 7)
      assert.throws(() => openField(key, ctx, t), isOpaqueFailure, `bit ${bit}`)
    }
  })

  test('property: a random bit flip in a random value fails', () => {
    fc.assert(fc.property(fc.oneof(fc.string(), fc.uint8Array(), fc.jsonValue()), fc.nat(), (v, r) => {
      const sealed = sealField(key, 1, ctx, v as FieldPlain)
      const bit = r % (sealed.length * 8)
      sealed[bit >> 3]! ^= 1 << (bit & 7)
      assert.throws(() => openField(key, ctx, sealed), isOpaqueFailure)
    }), { numRuns: 300 })
  })

  test('moving a value to another row, column, table or tenant fails', () => {
    fc.assert(fc.property(fc.string(), fc.constantFrom('tenantId', 'table', 'column', 'rowKey'), fc.string({ minLength: 1 }), (v, field, other) => {
      fc.pre(other !== ctx[field])
      const sealed = sealField(key, 1, ctx, v)
      assert.throws(() => openField(key, { ...ctx, [field]: other }, sealed), isOpaqueFailure)
    }), { numRuns: 200 })
  })

  test('a different key, or a relabelled key number, fails', () => {
    const sealed = sealField(key, 1, ctx, 'v')
    assert.throws(() => openField(randomBytes(32), ctx, sealed), isOpaqueFailure)
    const relabelled = Buffer.from(sealed)
    relabelled[4] = 2
    assert.throws(() => openField(key, ctx, relabelled), isOpaqueFailure)
  })

  test('every truncation fails, and so does an extension', () => {
    const sealed = sealField(key, 1, ctx, 'a value')
    for (let n = 0; n < sealed.length; n++) assert.throws(() => openField(key, ctx, sealed.subarray(0, n)), isOpaqueFailure, `length ${n}`)
    assert.throws(() => openField(key, ctx, Buffer.concat([sealed, Buffer.of(0)])), isOpaqueFailure)
  })

  test('unknown versions fail, in openField and readKeyNumber alike', () => {
    const sealed = sealField(key, 1, ctx, 'v')
    for (const v of [0x00, 0x02, 0x7f, 0xff]) {
      const t = Buffer.from(sealed)
      t[0] = v
      assert.throws(() => openField(key, ctx, t), isOpaqueFailure)
      assert.throws(() => readKeyNumber(t), isOpaqueFailure)
    }
    assert.throws(() => readKeyNumber(sealed.subarray(0, 33)), isOpaqueFailure)
  })

  test('an unknown type tag inside an authenticated ciphertext fails opaquely', () => {
    const nonce = randomBytes(12)
    const header = Buffer.from([1, 0, 0, 0, 1])
    const body = aesGcmEncrypt(key, nonce, Buffer.from([0x09, 0x41]), encodeFieldAad(ctx, 1))
    assert.throws(() => openField(key, ctx, Buffer.concat([header, nonce, body])), isOpaqueFailure)
  })
})

describe('sealed field v1: preconditions', () => {
  test('Precondition: the key is exactly 32 bytes (AES-256).', () => {
    for (const k of [randomBytes(16), randomBytes(31), randomBytes(33)]) {
      assert.throws(() => sealField(k, 1, ctx, 'v'), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
      assert.throws(() => openField(k, ctx, sealField(key, 1, ctx, 'v')), (e) => isDomicileError(e, 'ERR_KEY_INVALID'))
    }
  })

  test('Precondition: the data-key number is an integer in 1..2^31-1.', () => {
    for (const kn of [0, -1, 1.5, 2 ** 31, 2 ** 32 - 1, 2 ** 32, Number.NaN]) assert.throws(() => sealField(key, kn, ctx, 'v'), isInputInvalid)
    for (const kn of [1, 2 ** 31 - 1]) assert.equal(readKeyNumber(sealField(key, kn, ctx, 'v')), kn)
  })

  test('Precondition: sealed is a v1 sealed field: a byte array of at least 34 bytes, version byte 0x01, key number 1..2^31-1.', () => {
    const sealed = sealField(key, 1, ctx, 'v')
    const withHeader = (h: number[]) => Buffer.concat([Buffer.from(h), sealed.subarray(5)])
    const bad = [
      sealed.subarray(0, 33), // shorter than header + nonce + type byte + tag
      withHeader([0x01, 0x80, 0, 0, 0]), // 2^31: would overflow the key_number integer column
      withHeader([0x01, 0xff, 0xff, 0xff, 0xff]),
      withHeader([0x01, 0, 0, 0, 0]), // key numbers start at 1
      withHeader([0x00, 0, 0, 0, 1]),
      withHeader([0x02, 0, 0, 0, 1]),
      'not bytes' as unknown as Uint8Array,
    ]
    for (const b of bad) {
      assert.throws(() => readKeyNumber(b), isOpaqueFailure)
      if (b instanceof Uint8Array) assert.throws(() => openField(key, ctx, b), isOpaqueFailure)
    }
    assert.equal(readKeyNumber(withHeader([0x01, 0x7f, 0xff, 0xff, 0xff])), 2 ** 31 - 1)
  })

  test('a value sealed with a prepared cipher (managed key) is standard AES-256-GCM over [type][value] with encodeFieldAad', async () => {
    const managed = Buffer.from(randomBytes(32))
    manageKey(managed)
    try {
      sealField(managed, 3, ctx, 'warm-up') // creates the key's reserve; the refill runs on the next turn
      await new Promise<void>((r) => setImmediate(r))
      const ready = readyCount(managed).gcm
      assert.ok(ready > 0, 'prepared ciphers are ready')
      const sealed = sealField(managed, 3, ctx, 'value')
      assert.equal(readyCount(managed).gcm, ready - 1, 'the seal used a prepared cipher')
      const pt = aesGcmDecrypt(managed, sealed.subarray(5, 17), sealed.subarray(17), encodeFieldAad(ctx, 3))
      assert.deepEqual(pt, Buffer.concat([Buffer.of(1), Buffer.from('value')]))
      assert.equal(openField(managed, ctx, sealed), 'value')
    } finally {
      retireKey(managed)
    }
  })

  test('Precondition: a fixed nonce is 12 bytes.', () => {
    assert.throws(() => sealField(key, 1, ctx, 'v', randomBytes(11)), isInputInvalid)
  })

  test('Precondition: the value is JSON-serialisable (finite numbers, no undefined/function/symbol/bigint) and not already sealed.', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    const sv = new SealedValue(sealField(key, 1, ctx, 'v'), ctx)
    for (const v of [undefined, () => 1, Symbol('s'), 1n, Number.NaN, Infinity, cyclic, sv, { a: 1n }]) {
      assert.throws(() => sealField(key, 1, ctx, v as FieldPlain), (e) => isInputInvalid(e) && (e as Error).cause === undefined)
    }
  })

  test('Precondition: a string value is well-formed UTF-16, so it round-trips exactly.', () => {
    assert.throws(() => sealField(key, 1, ctx, 'a\uD800b'), isInputInvalid)
  })

  test('Precondition: tenant id, table and column are non-empty, well-formed strings of at most 1024 bytes.', () => {
    for (const bad of [{ tenantId: '' }, { table: 'x'.repeat(1025) }, { column: 7 }, { tenantId: '\uDC00' }]) {
      assert.throws(() => sealField(key, 1, { ...ctx, ...bad } as FieldContext, 'v'), isInputInvalid)
    }
  })

  test('Precondition: a numeric row key is a safe integer.', () => {
    for (const rowKey of [1.5, 2 ** 60, Number.NaN, null, {}]) {
      assert.throws(() => sealField(key, 1, { ...ctx, rowKey } as unknown as FieldContext, 'v'), isInputInvalid)
    }
  })

  test('Precondition: a string row key is well-formed UTF-16 (no lone surrogates).', () => {
    assert.throws(() => sealField(key, 1, { ...ctx, rowKey: '\uD800' }, 'v'), isInputInvalid)
  })

  test('error messages never carry the value, key or context', () => {
    const secret = 'hunter2-secret-value'
    assert.throws(() => sealField(key, 1, { ...ctx, tenantId: '' }, secret), (e) => {
      assert.ok(isInputInvalid(e))
      assert.ok(!JSON.stringify(e).includes(secret) && !(e as Error).message.includes(secret))
      return true
    })
    const sealed = sealField(key, 1, ctx, secret)
    assert.throws(() => openField(key, { ...ctx, rowKey: 'row-zq81' }, sealed), (e) => {
      assert.ok(isOpaqueFailure(e))
      const text = (e as Error).message + (e as Error).stack + JSON.stringify(e)
      for (const s of [secret, 'row-zq81', 'cust-42', ctx.tenantId, key.toString('hex'), sealed.toString('hex')]) assert.ok(!text.includes(s), s)
      return true
    })
  })
})
