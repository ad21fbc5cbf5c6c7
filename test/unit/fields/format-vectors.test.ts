/**
 * Checks test/vectors/*.json three ways: against an independent re-implementation written from
 * docs/FORMAT.md alone (raw node:crypto, no project code), against the codec, and by opening.
 */
import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createHmac, hkdfSync } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { encodeFieldAad, openField, readKeyNumber, sealField, type FieldPlain } from '../../../src/fields/field-codec.js'
import { blindIndex, deriveColumnIndexKey, type IndexNormalization } from '../../../src/fields/blind-index.js'
import { DecryptionFailedError, isDomicileError } from '../../../src/errors.js'

type V = { type: 'string'; value: string } | { type: 'bytes'; hex: string } | { type: 'json'; value: unknown }
const load = (name: string) => JSON.parse(readFileSync(new URL(`../../vectors/${name}`, import.meta.url), 'utf8'))
const hex = (s: string) => Buffer.from(s, 'hex')

// --- spec-only re-implementation (docs/FORMAT.md) ---
function lp(x: string | Buffer): Buffer {
  const b = typeof x === 'string' ? Buffer.from(x, 'utf8') : x
  const len = Buffer.alloc(4)
  len.writeUInt32BE(b.length)
  return Buffer.concat([len, b])
}
function specSeal(key: Buffer, keyNumber: number, nonce: Buffer, ctx: { tenantId: string; table: string; column: string; rowKey: string }, v: V) {
  const header = Buffer.alloc(5)
  header[0] = 0x01
  header.writeUInt32BE(keyNumber, 1)
  const aad = Buffer.concat([lp('domicile/sealed-field'), lp(ctx.tenantId), lp(ctx.table), lp(ctx.column), lp(header), lp(ctx.rowKey)])
  const body = v.type === 'string' ? Buffer.concat([Buffer.of(1), Buffer.from(v.value, 'utf8')])
    : v.type === 'bytes' ? Buffer.concat([Buffer.of(2), hex(v.hex)])
    : Buffer.concat([Buffer.of(3), Buffer.from(JSON.stringify(v.value), 'utf8')])
  const c = createCipheriv('aes-256-gcm', key, nonce)
  c.setAAD(aad)
  const ct = Buffer.concat([c.update(body), c.final()])
  return { aad, sealed: Buffer.concat([header, nonce, ct, c.getAuthTag()]) }
}
/** docs/FORMAT.md, "Opening" step 1: at least 34 bytes, version 0x01, key number 1..2^31-1. */
function specHeaderValid(b: Buffer): boolean {
  if (b.length < 34 || b[0] !== 0x01) return false
  const n = b.readUInt32BE(1)
  return n >= 1 && n <= 0x7fffffff
}
function specColumnKey(root: Buffer, c: { tenantId: string; table: string; column: string }): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.from('domicile/blind-index/v1'), Buffer.concat([lp('column'), lp(c.tenantId), lp(c.table), lp(c.column)]), 32))
}
function specIndex(columnKey: Buffer, v: V, normalize: string[], bytes: number): Buffer {
  let data: Buffer
  if (v.type === 'bytes') data = Buffer.concat([Buffer.of(2), hex(v.hex)])
  else {
    let s = v.value as string
    if (normalize.includes('nfkc')) s = s.normalize('NFKC')
    if (normalize.includes('lower')) s = s.toLowerCase()
    if (normalize.includes('trim')) s = s.trim()
    data = Buffer.concat([Buffer.of(1), Buffer.from(s, 'utf8')])
  }
  return createHmac('sha256', columnKey).update(data).digest().subarray(0, bytes)
}

describe('sealed field v1 test vectors (test/vectors/field-v1.json)', () => {
  const file = load('field-v1.json')
  const key = hex(file.key)

  test('the file has vectors for every value type', () => {
    const types = new Set(file.vectors.map((v: { value: V }) => v.value.type))
    assert.deepEqual([...types].sort(), ['bytes', 'json', 'string'])
  })

  for (const vec of file.vectors) {
    test(`vector: ${vec.name}`, () => {
      const spec = specSeal(key, vec.keyNumber, hex(vec.nonce), vec.context, vec.value)
      assert.equal(spec.aad.toString('hex'), vec.aad, 'AAD per spec')
      assert.equal(spec.sealed.toString('hex'), vec.sealed, 'sealed bytes per spec')
      assert.equal(encodeFieldAad(vec.context, vec.keyNumber).toString('hex'), vec.aad, 'encodeFieldAad')
      const plain: FieldPlain = vec.value.type === 'bytes' ? hex(vec.value.hex) : vec.value.value
      assert.equal(sealField(key, vec.keyNumber, vec.context, plain, hex(vec.nonce)).toString('hex'), vec.sealed, 'codec seal')
      assert.equal(readKeyNumber(hex(vec.sealed)), vec.keyNumber)
      const opened = openField(key, vec.context, hex(vec.sealed))
      if (vec.value.type === 'bytes') assert.equal(Buffer.from(opened as Uint8Array).toString('hex'), vec.value.hex)
      else assert.deepEqual(opened, vec.value.value)
    })
  }
})

describe('sealed field v1 rejection vectors (field-v1.json "rejected")', () => {
  const file = load('field-v1.json')
  const key = hex(file.key)
  const ctx = file.vectors[0].context
  const opaque = new DecryptionFailedError().message
  const isOpaque = (e: unknown) => isDomicileError(e, 'ERR_DECRYPTION_FAILED') && (e as Error).message === opaque && (e as Error).cause === undefined

  test('the file lists out-of-range versions, key numbers and lengths', () => {
    assert.equal(file.rejected.length, 8)
  })

  for (const r of file.rejected as { name: string; sealed: string }[]) {
    test(`rejected: ${r.name}`, () => {
      assert.equal(specHeaderValid(hex(r.sealed)), false, 'per spec')
      assert.throws(() => readKeyNumber(hex(r.sealed)), isOpaque)
      assert.throws(() => openField(key, ctx, hex(r.sealed)), isOpaque)
    })
  }

  test('the accepted vectors pass the same header rules', () => {
    for (const v of file.vectors) assert.equal(specHeaderValid(hex(v.sealed)), true, v.name)
  })
})

describe('blind index v1 test vectors (test/vectors/blind-index-v1.json)', () => {
  const file = load('blind-index-v1.json')
  const root = hex(file.indexRootKey)

  test('column keys per spec and per implementation', () => {
    for (const c of file.columns) {
      assert.equal(specColumnKey(root, c).toString('hex'), c.columnKey)
      assert.equal(Buffer.from(deriveColumnIndexKey(root, c)).toString('hex'), c.columnKey)
    }
  })

  test('indexes per spec and per implementation', () => {
    for (const v of file.vectors as { column: number; value: V; normalize: IndexNormalization[]; bytes: number; index: string }[]) {
      const ck = hex(file.columns[v.column].columnKey)
      assert.equal(specIndex(ck, v.value, v.normalize, v.bytes).toString('hex'), v.index)
      const value = v.value.type === 'bytes' ? hex(v.value.hex) : (v.value.value as string)
      assert.equal(blindIndex(ck, value, { normalize: v.normalize, bytes: v.bytes }).toString('hex'), v.index)
    }
  })
})
