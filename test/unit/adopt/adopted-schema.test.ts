/**
 * The schema model's adopted tables (src/schema/define-schema.ts): an existing table described as
 * it is, with its own tenant column, composite primary keys and database defaults. Tables without
 * `adopted: true` behave exactly as before, and every new option is an error on them.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { isDomicileError } from '../../../src/errors.js'
import { defineSchema, type TableDef } from '../../../src/schema/define-schema.js'

const invalidAt = (path: string) => (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === path
const def = (t: Record<string, unknown>): TableDef => t as unknown as TableDef

const contacts = (extra: Record<string, unknown> = {}): TableDef => def({
  scope: 'tenant',
  adopted: true,
  tenantColumn: { name: 'company_id', type: 'bigint' },
  primaryKey: ['company_id', 'id'],
  columns: { id: { type: 'bigint', default: true }, email: { type: 'text' } },
  ...extra,
})

describe('defineSchema: adopted tables', () => {
  test('an adopted tenant table resolves its tenant column, whole key and single key', () => {
    const t = defineSchema({ contacts: contacts() }).table('contacts')
    assert.equal(t.adopted, true)
    assert.deepEqual(t.tenantColumn, { name: 'company_id', type: 'bigint' })
    assert.deepEqual(t.primaryKeyColumns, ['company_id', 'id'])
    assert.equal(t.primaryKey, 'id', 'the key without the tenant column, when that leaves one column')
    assert.equal(t.columns.has('company_id'), false)
    assert.equal(t.columns.get('id')!.hasDefault, true)
    assert.equal(t.columns.get('email')!.hasDefault, false)
    const given = ['company_id', 'id']
    assert.deepEqual(defineSchema({ contacts: contacts({ primaryKey: given }) }).table('contacts').primaryKeyColumns, given)
    assert.equal(Object.isFrozen(given), false, 'the caller\'s list is copied, not frozen')
  })

  test('Precondition: a composite key is the tenant column and one more column (a row\'s key within its tenant).', () => {
    for (const primaryKey of [['company_id', 'order_id', 'id'], ['order_id', 'id']]) {
      assert.throws(() => defineSchema({ lines: contacts({ primaryKey, columns: { order_id: { type: 'bigint' }, id: { type: 'bigint' } } }) }),
        (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === 'tables.lines.primaryKey', primaryKey.join(','))
    }
    assert.throws(() => defineSchema({ pairs: def({ scope: 'global', adopted: true, primaryKey: ['a', 'b'], columns: { a: { type: 'text' }, b: { type: 'text' } } }) }),
      (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID') && e.path === 'tables.pairs.primaryKey')
    const t = defineSchema({ lines: contacts({ primaryKey: ['id', 'company_id'], columns: { id: { type: 'bigint' } } }) }).table('lines')
    assert.equal(t.primaryKey, 'id')
  })

  test('the tenants table is keyed by the tenant column alone, and may have no other column', () => {
    const t = defineSchema({ companies: def({ scope: 'tenant', adopted: true, tenantColumn: { name: 'id', type: 'bigint' }, primaryKey: 'id', columns: {} }) }).table('companies')
    assert.equal(t.primaryKey, 'id')
    assert.deepEqual(t.primaryKeyColumns, ['id'])
    assert.equal(t.columns.size, 0)
  })

  test('an adopted table may use tenant_id as its tenant column, of any tenant-column type', () => {
    for (const type of ['text', 'integer', 'bigint', 'uuid']) {
      const t = defineSchema({ orders: def({ scope: 'tenant', adopted: true, tenantColumn: { name: 'tenant_id', type }, primaryKey: 'id', columns: { id: { type: 'uuid' } } }) }).table('orders')
      assert.equal(t.tenantColumn!.type, type)
    }
  })

  test('tables without adopted keep their behaviour: implicit tenant_id text, one key column', () => {
    const s = defineSchema({
      customers: def({ scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' } } }),
      plans: def({ scope: 'global', primaryKey: 'id', adopted: false, columns: { id: { type: 'text' } } }),
    })
    const c = s.table('customers')
    assert.equal(c.adopted, false)
    assert.deepEqual(c.tenantColumn, { name: 'tenant_id', type: 'text' })
    assert.deepEqual(c.primaryKeyColumns, ['id'])
    assert.equal(c.primaryKey, 'id')
    assert.equal(c.columns.get('id')!.hasDefault, false)
    assert.equal(s.table('plans').tenantColumn, null)
    assert.throws(() => defineSchema({ customers: def({ scope: 'tenant', primaryKey: 'id', columns: {} }) }), invalidAt('tables.customers.columns'))
  })

  test('Precondition: only an adopted table names its tenant column; a created one has tenant_id (text).', () => {
    assert.throws(() => defineSchema({ t: def({ scope: 'tenant', tenantColumn: { name: 'org_id', type: 'text' }, primaryKey: 'id', columns: { id: { type: 'text' } } }) }), invalidAt('tables.t.tenantColumn'))
  })

  test('Precondition: a composite primary key describes an existing table.', () => {
    assert.throws(() => defineSchema({ t: def({ scope: 'tenant', primaryKey: ['a', 'id'], columns: { a: { type: 'text' }, id: { type: 'text' } } }) }), invalidAt('tables.t.primaryKey'))
  })

  test('Precondition: only an adopted table has database defaults (Domicile creates none).', () => {
    assert.throws(() => defineSchema({ t: def({ scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'bigint', default: true } } }) }), invalidAt('tables.t.columns.id.default'))
  })

  test('Precondition: a sensitive column has no database default (the database would write plaintext).', () => {
    assert.throws(() => defineSchema({ c: contacts({ columns: { id: { type: 'bigint' }, email: { type: 'text', default: true, sensitive: true } } }) }), invalidAt('tables.c.columns.email.default'))
  })

  test('Precondition: the tenant column is declared once, in tenantColumn, never again in columns.', () => {
    assert.throws(() => defineSchema({ c: contacts({ columns: { company_id: { type: 'bigint' }, id: { type: 'bigint' } } }) }), invalidAt('tables.c.columns.company_id'))
  })

  test('Precondition: an adopted tenant table names its tenant column.', () => {
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: undefined, primaryKey: 'id' }) }), invalidAt('tables.c.tenantColumn'))
  })

  test('Precondition: a global table has no tenant column.', () => {
    assert.throws(() => defineSchema({ p: def({ scope: 'global', adopted: true, tenantColumn: { name: 'company_id', type: 'bigint' }, primaryKey: 'id', columns: { id: { type: 'text' } } }) }), invalidAt('tables.p.tenantColumn'))
  })

  test('typos and wrong values in the new options are errors, with their path', () => {
    assert.throws(() => defineSchema({ c: contacts({ adopted: 'yes' }) }), invalidAt('tables.c.adopted'))
    assert.throws(() => defineSchema({ c: contacts({ adpoted: true }) }), invalidAt('tables.c.adpoted'))
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: { name: 'company_id', typ: 'bigint' } }) }), invalidAt('tables.c.tenantColumn.typ'))
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: { name: 'company_id', type: 'numeric' } }) }), invalidAt('tables.c.tenantColumn.type'))
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: { name: 'Company', type: 'bigint' } }) }), invalidAt('tables.c.tenantColumn.name'))
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: { name: 'ctid', type: 'bigint' } }) }), invalidAt('tables.c.tenantColumn.name'))
    assert.throws(() => defineSchema({ c: contacts({ tenantColumn: 'company_id' }) }), invalidAt('tables.c.tenantColumn'))
    assert.throws(() => defineSchema({ c: contacts({ columns: { id: { type: 'bigint', defualt: true } } }) }), invalidAt('tables.c.columns.id.defualt'))
    assert.throws(() => defineSchema({ c: contacts({ columns: { id: { type: 'bigint', default: 'nextval' } } }) }), invalidAt('tables.c.columns.id.default'))
  })

  test('primary key entries are the table\'s columns or its tenant column, distinct, not sensitive or nullable', () => {
    assert.throws(() => defineSchema({ c: contacts({ primaryKey: ['company_id', 'nope'] }) }), invalidAt('tables.c.primaryKey'))
    assert.throws(() => defineSchema({ c: contacts({ primaryKey: ['id', 'id'] }) }), invalidAt('tables.c.primaryKey'))
    assert.throws(() => defineSchema({ c: contacts({ primaryKey: [] }) }), invalidAt('tables.c.primaryKey'))
    assert.throws(() => defineSchema({ c: contacts({ primaryKey: ['company_id', 'email'], columns: { email: { type: 'text', sensitive: true } } }) }), invalidAt('tables.c.primaryKey'))
    assert.throws(() => defineSchema({ c: contacts({ primaryKey: ['company_id', 'id'], columns: { id: { type: 'bigint', nullable: true } } }) }), invalidAt('tables.c.primaryKey'))
    assert.throws(() => defineSchema({ p: def({ scope: 'global', adopted: true, primaryKey: ['company_id'], columns: { id: { type: 'text' } } }) }), invalidAt('tables.p.primaryKey'))
  })
})
