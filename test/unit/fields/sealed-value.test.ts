import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { inspect, format } from 'node:util'
import { adoptSealed, isSealedValue, SealedValue, sealedBytes, sealedLocation } from '../../../src/fields/sealed-value.js'
import { isDomicileError } from '../../../src/errors.js'

const loc = { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }
const bytes = Buffer.from('0100000001aabbccddeeff00112233445566778899', 'hex')

describe('SealedValue', () => {
  test('shows "[sealed]" through every accidental path', () => {
    const v = new SealedValue(bytes, loc)
    assert.equal(String(v), '[sealed]')
    assert.equal(`${v}`, '[sealed]')
    assert.equal('' + v, '[sealed]')
    assert.equal(v.toString(), '[sealed]')
    assert.equal(JSON.stringify({ a: v }), '{"a":"[sealed]"}')
    assert.equal(inspect(v), '[sealed]')
    assert.equal(inspect({ nested: { v } }, { depth: 5, showHidden: true }), '{ nested: { v: [sealed] } }')
    assert.equal(format('%s %o %O %j', v, v, v, v), '[sealed] [sealed] [sealed] "[sealed]"')
  })

  test('console.log prints "[sealed]" and nothing of the bytes or location', async () => {
    const { Console } = await import('node:console')
    const { PassThrough } = await import('node:stream')
    const out = new PassThrough()
    let text = ''
    out.on('data', (c) => { text += c })
    new Console(out).log(new SealedValue(bytes, loc), { v: new SealedValue(bytes, loc) })
    assert.equal(text, "[sealed] { v: [sealed] }\n")
  })

  test('has no enumerable or own string-keyed properties to walk', () => {
    const v = new SealedValue(bytes, loc)
    assert.deepEqual(Object.keys(v), [])
    assert.deepEqual(Object.getOwnPropertyNames(v), [])
    assert.deepEqual({ ...v }, {})
    assert.ok(Object.isFrozen(v))
  })

  test('the data layer reads bytes and location through module functions; bytes are copied on construction', () => {
    const input = Buffer.from(bytes)
    const v = new SealedValue(input, loc)
    input[0] = 0xff
    assert.deepEqual(Buffer.from(sealedBytes(v)), bytes)
    assert.deepEqual(sealedLocation(v), loc)
    assert.ok(Object.isFrozen(sealedLocation(v)))
  })

  test('adoptSealed (the data layer, for bytes it owns) wraps without copying and behaves the same', () => {
    const owned = Buffer.from(bytes)
    const column = Object.freeze({ tenantId: 'acme', table: 'customers', column: 'email' })
    const v = adoptSealed(owned, column, 'cust-42')
    assert.equal(sealedBytes(v), owned)
    assert.deepEqual(sealedLocation(v), loc)
    assert.ok(Object.isFrozen(sealedLocation(v)) && Object.isFrozen(v))
    assert.equal(String(v), '[sealed]')
    assert.deepEqual(Object.getOwnPropertyNames(v), [])
    // The next public construction copies again (the adopt path does not leak into it).
    const w = new SealedValue(owned, loc)
    assert.notEqual(sealedBytes(w), owned)
  })

  test('isSealedValue checks the Symbol.for brand (works across package copies)', () => {
    const v = new SealedValue(bytes, loc)
    assert.equal(isSealedValue(v), true)
    assert.equal(isSealedValue({}), false)
    assert.equal(isSealedValue(null), false)
    assert.equal(isSealedValue('[sealed]'), false)
    const foreign = Object.defineProperty({}, Symbol.for('domicile.sealed-value'), { value: true })
    assert.equal(isSealedValue(foreign), true)
  })

  test('Precondition: the value is a SealedValue of this copy of the package.', () => {
    const foreign = Object.defineProperty({}, Symbol.for('domicile.sealed-value'), { value: true })
    assert.throws(() => sealedBytes(foreign as SealedValue), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    assert.throws(() => sealedLocation({} as SealedValue), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
    const hollow = Object.create(SealedValue.prototype) as SealedValue // passes instanceof, has no contents
    assert.throws(() => sealedBytes(hollow), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })

  test('Precondition: sealed bytes are a Uint8Array.', () => {
    assert.throws(() => new SealedValue('abc' as unknown as Uint8Array, loc), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })

  test('Precondition: the location names tenant, table, column and row key.', () => {
    assert.throws(() => new SealedValue(bytes, { ...loc, rowKey: undefined } as unknown as typeof loc), (e) => isDomicileError(e, 'ERR_INPUT_INVALID'))
  })
})
