import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { FieldEncryptor, columnReindexer, resealField } from '../../../src/fields/field-encryptor.js'
import { deriveColumnIndexKey } from '../../../src/fields/blind-index.js'
import { encodeFieldAad, openField, prepareColumn, readKeyNumber, sealedFieldLayer } from '../../../src/fields/field-codec.js'
import { defineSchema } from '../../../src/schema/define-schema.js'
import { blindIndexPredicate } from '../../../src/data/candidate-filter.js'
import type { FieldProtection } from '../../../src/data/field-protection.js'
import { isDomicileError } from '../../../src/errors.js'
import type { TenantRecord } from '../../../src/control-plane/tenant-directory.js'
import type { ColumnKeyRef, TenantKeys } from '../../../src/keys/keyring.js'
import type { TenantTransaction } from '../../../src/regions/router.js'

const schema = defineSchema({
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      email: { type: 'text', sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
      note: { type: 'jsonb', sensitive: true },
    },
  },
})
const table = schema.table('customers')
const email = table.columns.get('email')!
const note = table.columns.get('note')!
const tenant = { id: 'acme', region: 'eu-west-1', status: 'active', key: { provider: 'local', keyId: 'k', custody: 'kms' }, keyState: 'enabled' } as unknown as TenantRecord
const tx = { tenantId: 'acme', region: 'eu-west-1', onRollback: () => undefined } as unknown as TenantTransaction

/** Index root keys by number: the write key and the keys a search covers. */
function indexKeys(roots: Map<number, Uint8Array>, write: number, search: number[]): TenantKeys {
  const derive = (root: Uint8Array, ref: ColumnKeyRef) => deriveColumnIndexKey(root, { tenantId: (ref as unknown as { tenantId: string }).tenantId, table: ref.table, column: ref.column })
  return {
    withColumnIndexKey: <T>(ref: ColumnKeyRef, d: typeof derive, use: (k: Uint8Array) => T) => use(d(roots.get(write)!, ref)),
    withColumnIndexKeys: <T>(ref: ColumnKeyRef, d: typeof derive, use: (k: readonly Uint8Array[]) => T) => use(search.map((n) => d(roots.get(n)!, ref))),
  } as unknown as TenantKeys
}

describe('field encryption under key rotation', () => {
  test('resealField: the same content under the new key number, bound to the same place', () => {
    const oldKey = randomBytes(32)
    const newKey = randomBytes(32)
    const ctx = { tenantId: 'acme', table: 'customers', column: 'note', rowKey: 'c1' }
    for (const value of ['ada@example.eu', { a: [1, 2.5, null], b: 'x' }, 42, true, Uint8Array.of(1, 2, 3)]) {
      const sealed = prepareColumn(ctx).seal(oldKey, 3, 'c1', value)
      const moved = resealField(oldKey, newKey, 4, ctx, sealed)
      assert.equal(readKeyNumber(moved), 4)
      const raw = (k: Uint8Array, v: Uint8Array) => sealedFieldLayer.open(k, v, encodeFieldAad(ctx, readKeyNumber(v)))
      assert.deepEqual(raw(newKey, moved), raw(oldKey, sealed), 'the very plaintext bytes, type byte included')
      assert.deepEqual(openField(newKey, ctx, moved), value instanceof Uint8Array ? value : JSON.parse(JSON.stringify(value)))
      assert.throws(() => openField(newKey, { ...ctx, rowKey: 'c2' }, moved), (e) => isDomicileError(e, 'ERR_DECRYPTION_FAILED'), 'still bound to its row')
      assert.throws(() => resealField(newKey, newKey, 5, ctx, sealed), (e) => isDomicileError(e, 'ERR_DECRYPTION_FAILED'), 'opens only under its own key')
    }
  })

  test('columnReindexer computes exactly the index a write stores (same derivation and normalisation)', () => {
    const dataKey = randomBytes(32)
    const roots = new Map([[1, randomBytes(32)], [2, randomBytes(32)]])
    const sealed = prepareColumn({ tenantId: 'acme', table: 'customers', column: 'email' }).seal(dataKey, 1, 'c1', '  Ada@Example.EU ')
    const fe2 = new FieldEncryptor(tenant, tx, indexKeys(roots, 2, [2, 1]))
    const written = fe2.index(table, email, '  Ada@Example.EU ') as Uint8Array
    const r = columnReindexer('acme', table, email, roots.get(2)!)
    assert.deepEqual(new Uint8Array(r.indexOf(dataKey, 'c1', sealed)), new Uint8Array(written))
    r.dispose()
    const r1 = columnReindexer('acme', table, email, roots.get(1)!)
    assert.notDeepEqual(new Uint8Array(r1.indexOf(dataKey, 'c1', sealed)), new Uint8Array(written), 'another index key, another index')
    r1.dispose()
  })

  test('during a dual-read period a search probes under every index key, the write key first', () => {
    const roots = new Map([[1, randomBytes(32)], [2, randomBytes(32)]])
    const dual = new FieldEncryptor(tenant, tx, indexKeys(roots, 2, [2, 1])).indexProbes(table, email, 'ada@example.eu') as Uint8Array[]
    const only1 = new FieldEncryptor(tenant, tx, indexKeys(roots, 1, [1])).index(table, email, 'ADA@example.eu ') as Uint8Array
    const only2 = new FieldEncryptor(tenant, tx, indexKeys(roots, 2, [2])).index(table, email, 'ada@example.eu') as Uint8Array
    assert.deepEqual(dual.map((b) => Buffer.from(b).toString('hex')), [only2, only1].map((b) => Buffer.from(b).toString('hex')))
    const params: unknown[] = ['acme']
    assert.equal(blindIndexPredicate(new FieldEncryptor(tenant, tx, indexKeys(roots, 2, [2, 1])), table, email, 'ada@example.eu', params, '"email__bidx"'), '"email__bidx" IN ($2, $3)')
    assert.equal(params.length, 3)
    assert.equal(blindIndexPredicate(new FieldEncryptor(tenant, tx, indexKeys(roots, 2, [2])), table, email, 'ada@example.eu', params, '"email__bidx"'), '"email__bidx" = $4')
  })

  test('Precondition: a search covers at least one index key.', () => {
    const none = { indexProbes: () => [] } as unknown as FieldProtection
    assert.throws(() => blindIndexPredicate(none, table, email, 'x', [], '"email__bidx"'), (e) => isDomicileError(e, 'ERR_KEY_NOT_FOUND'))
  })

  test('Precondition: only searchable sensitive columns have a blind index.', () => {
    assert.throws(() => columnReindexer('acme', table, note, randomBytes(32)), (e) => isDomicileError(e, 'ERR_QUERY_UNSUPPORTED'))
  })
})
