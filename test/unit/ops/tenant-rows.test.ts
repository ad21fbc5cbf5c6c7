/**
 * How the operations address a tenant's rows in an adopted table (issue #13): the sweep parameter
 * (a tenant id the column cannot hold matches no row), the tenant column read back as the tenant
 * id, the row key's SQL type (the tenant column's for a table keyed by it alone), the indexes
 * encrypt-in-place builds, and analytics refusing the tenant column under any name. A table
 * Domicile creates keeps `"tenant_id" = $1` with no cast.
 */
import { strict as assert } from 'node:assert'
import { describe, test } from 'node:test'
import { validateAnalyticsQuery } from '../../../src/analytics/analytics-query.js'
import { isDomicileError } from '../../../src/errors.js'
import { ensurePendingIndex, pkSqlType } from '../../../src/ops/encrypt-column-ddl.js'
import { rowKeyCast, rowKeySqlType, tenantIdSql, tenantSweepParam } from '../../../src/ops/tenant-rows.js'
import type { StoreSession } from '../../../src/regions/store-driver.js'
import { defineSchema } from '../../../src/schema/define-schema.js'
import { tenantMatch } from '../../../src/schema/tenant-column.js'

const schema = defineSchema({
  notes: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, note: { type: 'text', sensitive: { searchable: true } }, status: { type: 'text' } } },
  accounts: { scope: 'tenant', adopted: true, tenantColumn: { name: 'id', type: 'bigint' }, primaryKey: 'id', columns: { name: { type: 'text', sensitive: true }, plan: { type: 'text' } } },
  contacts: {
    scope: 'tenant', adopted: true, tenantColumn: { name: 'company_id', type: 'bigint' }, primaryKey: ['company_id', 'id'],
    columns: { id: { type: 'bigint', default: true }, email: { type: 'text', sensitive: { searchable: true } }, status: { type: 'text' }, score: { type: 'integer' } },
  },
  members: { scope: 'tenant', adopted: true, tenantColumn: { name: 'org', type: 'uuid' }, primaryKey: 'id', columns: { id: { type: 'integer' }, role: { type: 'text' } } },
})
const notes = schema.table('notes')
const accounts = schema.table('accounts')
const contacts = schema.table('contacts')
const members = schema.table('members')

/** A session that records statements and answers "no such index". */
function recorder(): { session: StoreSession; sql: string[] } {
  const sql: string[] = []
  const session = {
    async query(s: string) {
      sql.push(s)
      return { rows: [], rowCount: 0 }
    },
    async exec() {
      return []
    },
    discard() {},
  } as unknown as StoreSession
  return { session, sql }
}

describe('tenant rows of adopted tables', () => {
  test('a created table keeps its filter: "tenant_id" = $1, no cast, the id as given', () => {
    assert.equal(tenantMatch(notes, '$1'), '"tenant_id" = $1')
    assert.equal(tenantSweepParam(notes, 'acme'), 'acme')
    assert.equal(tenantIdSql(notes), '"tenant_id"')
    assert.equal(rowKeySqlType(notes), 'text')
    assert.equal(rowKeyCast(notes), '')
  })

  test('a sweep over a tenant\'s rows matches none where the column cannot hold the id', () => {
    assert.equal(tenantMatch(contacts, '$1', 't'), 't."company_id" = $1::bigint')
    assert.equal(tenantSweepParam(contacts, '7'), '7')
    for (const id of ['acme', '007', '-1', '9223372036854775808', '7 ']) assert.equal(tenantSweepParam(contacts, id), null, id)
    assert.equal(tenantSweepParam(members, '5f0c1e2a-7d1b-4c1e-9a8e-0123456789ab'), '5f0c1e2a-7d1b-4c1e-9a8e-0123456789ab')
    assert.equal(tenantSweepParam(members, '5F0C1E2A-7D1B-4C1E-9A8E-0123456789AB'), null, 'not the canonical (lower-case) form')
  })

  test('the tenant column reads back as the tenant id (text)', () => {
    assert.equal(tenantIdSql(contacts), '"company_id"::text')
    assert.equal(tenantIdSql(accounts, 't'), 't."id"::text')
  })

  test('the row key\'s type: the key column\'s, or the tenant column\'s for a table keyed by it alone', () => {
    assert.equal(rowKeySqlType(contacts), 'bigint')
    assert.equal(rowKeySqlType(accounts), 'bigint')
    assert.equal(rowKeySqlType(members), 'integer')
    assert.equal(pkSqlType(accounts), 'bigint')
    assert.equal(rowKeyCast(contacts), '::bigint')
  })

  test('encrypt-in-place indexes lead with the table\'s tenant column', async () => {
    const created = recorder()
    await ensurePendingIndex(created.session, notes, notes.columns.get('note')!, 'encrypt', 'note')
    assert.match(created.sql[0]!, /^CREATE INDEX IF NOT EXISTS "notes_note__bidx" ON "notes" \("tenant_id", "note__bidx"\)$/)
    assert.match(created.sql.at(-1)!, /ON "notes" \("tenant_id", "id"\) WHERE "note" IS NOT NULL$/)
    const adopted = recorder()
    await ensurePendingIndex(adopted.session, contacts, contacts.columns.get('email')!, 'encrypt', 'email')
    assert.match(adopted.sql[0]!, /ON "contacts" \("company_id", "email__bidx"\)$/)
    assert.match(adopted.sql.at(-1)!, /ON "contacts" \("company_id", "id"\) WHERE "email" IS NOT NULL$/)
    const keyedByTenant = recorder()
    await ensurePendingIndex(keyedByTenant.session, accounts, accounts.columns.get('name')!, 'encrypt', 'name')
    assert.match(keyedByTenant.sql.at(-1)!, /ON "accounts" \("id"\) WHERE "name" IS NOT NULL$/)
  })

  test('Precondition: no query groups by, measures or filters on the tenant id (per-tenant figures must not leave a region).', () => {
    const refused = (e: unknown) => isDomicileError(e, 'ERR_QUERY_UNSUPPORTED') && /tenant id/.test(e.message)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'contacts', groupBy: ['company_id'], measures: ['count'] }), refused)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'contacts', measures: ['max:company_id'] }), refused)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'contacts', measures: ['count'], where: { company_id: 7 } }), refused)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'accounts', groupBy: ['id'], measures: ['count'] }), refused)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'members', groupBy: ['org'], measures: ['count'] }), refused)
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'notes', groupBy: ['tenant_id'], measures: ['count'] }), refused)
    // The key within the tenant is a row identifier as before; other columns group as before.
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'contacts', groupBy: ['id'], measures: ['count'] }), (e: unknown) => isDomicileError(e, 'ERR_QUERY_UNSUPPORTED') && /primary key/.test(e.message))
    assert.throws(() => validateAnalyticsQuery(schema, { table: 'contacts', measures: ['max:id'] }), (e: unknown) => isDomicileError(e, 'ERR_QUERY_UNSUPPORTED') && /row identifier/.test(e.message))
    assert.deepEqual(validateAnalyticsQuery(schema, { table: 'contacts', groupBy: ['status'], measures: ['count', 'avg:score'] }).groupBy, [{ name: 'status', type: 'text' }])
  })
})
