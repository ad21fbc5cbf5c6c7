/**
 * Schema validation: typos are errors (a misspelt `sensitive` would otherwise store plaintext),
 * and no table may take a name PostgreSQL resolves to a system catalog.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { defineSchema, type TableDef } from '../../../src/schema/define-schema.js'
import { isDomicileError } from '../../../src/errors.js'

const invalidAt = (path: string) => (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === path
const table = (columns: Record<string, unknown>, extra: Record<string, unknown> = {}): TableDef =>
  ({ scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, ...columns }, ...extra }) as unknown as TableDef

describe('defineSchema', () => {
  test('a valid schema resolves its sensitive and searchable columns', () => {
    const s = defineSchema({ customers: table({ email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['lower'] } } }) })
    const email = s.table('customers').columns.get('email')!
    assert.equal(email.indexColumn, 'email__bidx')
    assert.deepEqual(email.sensitive && email.sensitive.normalize, ['lower'])
  })

  test('unknown column options are errors, with the path of the typo', () => {
    assert.throws(() => defineSchema({ customers: table({ tax_id: { type: 'text', sensitve: true } }) }), invalidAt('tables.customers.columns.tax_id.sensitve'))
    assert.throws(() => defineSchema({ customers: table({ email: { type: 'text', sensitive: { serchable: true } } }) }), invalidAt('tables.customers.columns.email.sensitive.serchable'))
    assert.throws(() => defineSchema({ customers: table({}, { primarykey: 'id' }) }), invalidAt('tables.customers.primarykey'))
  })

  test('option values of the wrong type are errors', () => {
    assert.throws(() => defineSchema({ customers: table({ tax_id: { type: 'text', sensitive: 'yes' } }) }), invalidAt('tables.customers.columns.tax_id.sensitive'))
    assert.throws(() => defineSchema({ customers: table({ tax_id: { type: 'text', nullable: 'true' } }) }), invalidAt('tables.customers.columns.tax_id.nullable'))
    assert.throws(() => defineSchema({ customers: table({ email: { type: 'text', sensitive: { searchable: 'true' } } }) }), invalidAt('tables.customers.columns.email.sensitive.searchable'))
    assert.throws(() => defineSchema({ customers: table({ email: { type: 'text', sensitive: { normalize: 'lower' } } }) }), invalidAt('tables.customers.columns.email.sensitive.normalize'))
    assert.throws(() => defineSchema({ customers: table({}, { indexes: 'id' }) }), invalidAt('tables.customers.indexes'))
  })

  test('Precondition: table names are lower-case identifiers, not internal, and not named like a system catalog.', () => {
    for (const name of ['pg_class', 'pg_anything', 'domicile_audit', 'Customers', '1x']) {
      assert.throws(() => defineSchema({ [name]: table({}) }), invalidAt(`tables.${name}`), name)
    }
  })
})

test('Precondition: column names are lower-case identifiers that cannot collide with Domicile\'s own columns.', () => {
  for (const name of ['note__shadow', 'note__bidx', 'tenant_id', 'Note']) {
    assert.throws(() => defineSchema({ t: table({ [name]: { type: 'text' } }) }),
      (e: unknown) => isDomicileError(e) && e.code === 'ERR_SCHEMA_INVALID', name)
  }
})
