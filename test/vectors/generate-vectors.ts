/**
 * Regenerates the JSON test vectors in this folder from the implementation:
 *   node --import tsx test/vectors/generate-vectors.ts
 * The vector tests (test/unit/fields/format-vectors.test.ts) check them against an independent,
 * spec-only re-implementation, so a regenerated file that drifted from docs/FORMAT.md fails there.
 */

import { writeFileSync } from 'node:fs'
import { encodeFieldAad, sealField, type FieldContext, type FieldPlain } from '../../src/fields/field-codec.js'
import { blindIndex, deriveColumnIndexKey, type IndexNormalization } from '../../src/fields/blind-index.js'

const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex')
const seq = (n: number, start = 0) => Buffer.from(Array.from({ length: n }, (_, i) => (start + i) & 0xff))

const key = seq(32) // 000102...1f
type V = { type: 'string'; value: string } | { type: 'bytes'; hex: string } | { type: 'json'; value: unknown }
const cases: { name: string; keyNumber: number; nonce: Buffer; ctx: FieldContext; v: V }[] = [
  { name: '16-byte ASCII string', keyNumber: 1, nonce: seq(12, 0xa0), ctx: { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }, v: { type: 'string', value: 'ada@example.com!' } },
  { name: 'empty string', keyNumber: 1, nonce: seq(12, 0xb0), ctx: { tenantId: 'acme', table: 'customers', column: 'email', rowKey: 'cust-42' }, v: { type: 'string', value: '' } },
  { name: 'unicode string, numeric row key, largest key number', keyNumber: 2147483647, nonce: seq(12, 0xc0), ctx: { tenantId: 'globex-eu', table: 'people', column: 'full_name', rowKey: 1001 }, v: { type: 'string', value: 'Zoë Ångström 😀' } },
  { name: 'bytes', keyNumber: 7, nonce: seq(12, 0xd0), ctx: { tenantId: 'acme', table: 'documents', column: 'scan', rowKey: '0f8b2c1e-0000-4000-8000-000000000001' }, v: { type: 'bytes', hex: '00ff10207fde' } },
  { name: 'JSON object', keyNumber: 2, nonce: seq(12, 0xe0), ctx: { tenantId: 'acme', table: 'customers', column: 'address', rowKey: 'cust-42' }, v: { type: 'json', value: { city: 'Lyon', zip: '69001', lines: ['1 rue X'] } } },
  { name: 'JSON number', keyNumber: 2, nonce: seq(12, 0xf0), ctx: { tenantId: 'acme', table: 'customers', column: 'credit_limit', rowKey: 'cust-42' }, v: { type: 'json', value: 1250.5 } },
  { name: 'JSON null', keyNumber: 3, nonce: seq(12, 0x10), ctx: { tenantId: 'acme', table: 'customers', column: 'nickname', rowKey: 'cust-42' }, v: { type: 'json', value: null } },
]

const toPlain = (v: V): FieldPlain => (v.type === 'bytes' ? Buffer.from(v.hex, 'hex') : (v.value as FieldPlain))

const field = {
  format: 'domicile sealed field v1',
  spec: 'docs/FORMAT.md',
  key: hexOf(key),
  vectors: cases.map((c) => ({
    name: c.name,
    keyNumber: c.keyNumber,
    nonce: hexOf(c.nonce),
    context: { ...c.ctx, rowKey: String(c.ctx.rowKey) },
    value: c.v,
    aad: hexOf(encodeFieldAad(c.ctx, c.keyNumber)),
    sealed: hexOf(sealField(key, c.keyNumber, c.ctx, toPlain(c.v), c.nonce)),
  })),
  // Byte strings a parser must refuse from their header alone (before any key lookup): vector 1 with
  // one header field out of range, or cut short. Each must fail exactly like a wrong tag.
  rejected: rejectedFrom(sealField(key, cases[0]!.keyNumber, cases[0]!.ctx, toPlain(cases[0]!.v), cases[0]!.nonce)),
}

function rejectedFrom(v1: Buffer): { name: string; sealed: string }[] {
  const withHeader = (h: number[]) => hexOf(Buffer.concat([Buffer.from(h), v1.subarray(5)]))
  return [
    { name: 'version 0x00', sealed: withHeader([0x00, 0, 0, 0, 1]) },
    { name: 'version 0x02', sealed: withHeader([0x02, 0, 0, 0, 1]) },
    { name: 'key number 0', sealed: withHeader([0x01, 0, 0, 0, 0]) },
    { name: 'key number 2^31', sealed: withHeader([0x01, 0x80, 0, 0, 0]) },
    { name: 'key number 2^32-1', sealed: withHeader([0x01, 0xff, 0xff, 0xff, 0xff]) },
    { name: '33 bytes (no room for the type byte)', sealed: hexOf(v1.subarray(0, 33)) },
    { name: 'header only', sealed: hexOf(v1.subarray(0, 5)) },
    { name: 'empty', sealed: '' },
  ]
}
writeFileSync(new URL('./field-v1.json', import.meta.url), JSON.stringify(field, null, 2) + '\n')

const rootKey = seq(32, 0x40)
const columns = [
  { tenantId: 'acme', table: 'customers', column: 'email' },
  { tenantId: 'globex', table: 'customers', column: 'email' },
  { tenantId: 'acme', table: 'customers', column: 'phone' },
]
const lookups: { column: number; value: V; normalize: IndexNormalization[]; bytes: number }[] = [
  { column: 0, value: { type: 'string', value: '  Ada@Example.COM ' }, normalize: ['trim', 'lower'], bytes: 8 },
  { column: 0, value: { type: 'string', value: 'ada@example.com' }, normalize: [], bytes: 8 },
  { column: 1, value: { type: 'string', value: 'ada@example.com' }, normalize: [], bytes: 8 },
  { column: 2, value: { type: 'string', value: 'ｔｅｌ＋３３' }, normalize: ['nfkc'], bytes: 4 },
  { column: 2, value: { type: 'bytes', hex: '0102030405' }, normalize: [], bytes: 32 },
]
const index = {
  format: 'domicile blind index v1',
  spec: 'docs/FORMAT.md',
  indexRootKey: hexOf(rootKey),
  columns: columns.map((c) => ({ ...c, columnKey: hexOf(deriveColumnIndexKey(rootKey, c)) })),
  vectors: lookups.map((l) => ({
    ...l,
    index: hexOf(blindIndex(deriveColumnIndexKey(rootKey, columns[l.column]!), l.value.type === 'bytes' ? Buffer.from(l.value.hex, 'hex') : (l.value.value as string), { normalize: l.normalize, bytes: l.bytes })),
  })),
}
writeFileSync(new URL('./blind-index-v1.json', import.meta.url), JSON.stringify(index, null, 2) + '\n')
console.log(`wrote ${field.vectors.length} field vectors and ${index.vectors.length} blind-index vectors`)
