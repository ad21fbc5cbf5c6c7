/** The query-builder guard refuses plaintext writes and predicates on sensitive columns. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { kyselyForSession } from '../../../src/data/session-dialect.js'
import { sensitiveColumnGuard } from '../../../src/data/sensitive-column-guard.js'
import { defineSchema } from '../../../src/schema/define-schema.js'
import { isDomicileError } from '../../../src/errors.js'
import type { StoreSession } from '../../../src/regions/store-driver.js'

const schema = defineSchema({
  customers: {
    scope: 'tenant', primaryKey: 'id',
    columns: { id: { type: 'text' }, name: { type: 'text' }, email: { type: 'text', sensitive: { searchable: true } }, tax_id: { type: 'text', sensitive: true } },
  },
  notes: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, email: { type: 'text' } } },
})

const sent: string[] = []
const session: StoreSession = {
  async query<R>(sql: string) {
    sent.push(sql)
    return { rows: [] as R[], rowCount: 0 }
  },
  async exec() {
    return []
  },
  discard() {},
}
const db = kyselyForSession<any>(session, [sensitiveColumnGuard(schema)])
const refused = (e: unknown) => isDomicileError(e, 'ERR_QUERY_UNSUPPORTED') && !/ada@/.test((e as Error).message)

test('refuses writing plaintext into a sensitive column or its blind index', async () => {
  await assert.rejects(db.insertInto('customers').values({ tenant_id: 'a', id: '1', name: 'n', email: 'ada@x' }).execute(), refused)
  await assert.rejects(db.updateTable('customers').set({ tax_id: 'DE1' }).execute(), refused)
  await assert.rejects(db.updateTable('customers').set({ email__bidx: new Uint8Array(4) }).execute(), refused)
})

test('refuses filtering, ordering and grouping on a sensitive column', async () => {
  await assert.rejects(db.selectFrom('customers').selectAll().where('email', '=', 'ada@x').execute(), refused)
  await assert.rejects(db.selectFrom('customers').selectAll().where('email', 'like', '%@x').execute(), refused)
  await assert.rejects(db.selectFrom('customers').select('id').orderBy('tax_id').execute(), refused)
  await assert.rejects(db.selectFrom('customers').select('id').groupBy('email').execute(), refused)
  await assert.rejects(db.deleteFrom('customers').where('tax_id', '=', 'x').execute(), refused)
})

test('allows plain columns, selecting ciphertext, and same-named plain columns of other tables', async () => {
  sent.length = 0
  await db.selectFrom('customers').select(['id', 'email']).where('name', '=', 'n').orderBy('id').execute()
  await db.updateTable('customers').set({ name: 'm' }).where('id', '=', '1').execute()
  await db.selectFrom('notes').selectAll().where('email', '=', 'x').execute()
  await db.insertInto('notes').values({ tenant_id: 'a', id: '1', email: 'x' }).execute()
  assert.equal(sent.length, 4)
})
