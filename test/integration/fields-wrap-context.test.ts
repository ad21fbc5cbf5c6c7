/**
 * The wrap context binds a wrapped data key to its region. A tenant's sealed row and its wrapped
 * data keys copied wholesale, as the store owner, from eu-west-1's store into us-east-1's, with
 * the directory entry then pointing at us-east-1: the rows are there and their plain columns read,
 * but no sealed field opens and no blind-index search runs, because the keys were wrapped for
 * eu-west-1. (Field AADs do not name the region; the wrap context is what stops this.)
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import type { Row } from '../../src/index.js'
import { createDomicileFixture, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'

const EU = 'eu-west-1'
const US = 'us-east-1'

describe('wrap context binds data keys to their region', { concurrency: false }, () => {
  let fx: DomicileFixture

  before(async () => {
    fx = await createDomicileFixture({ regions: [US, EU] })
  })
  after(async () => {
    await fx?.close()
  })

  /** Copies every row of `table` for `tenant` from one region store to another, as the owner. */
  async function copyRows(table: string, tenant: string, from: string, to: string): Promise<number> {
    const rows = await fx.regionAdmin(from, (s) => s.query<Row>(`SELECT * FROM ${table} WHERE tenant_id = $1`, [tenant]))
    await fx.regionAdmin(to, async (s) => {
      for (const r of rows.rows) {
        const cols = Object.keys(r)
        await s.query(`INSERT INTO ${table} (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`, cols.map((c) => r[c]))
      }
    })
    return rows.rows.length
  }

  test('a sealed row and its wrapped keys copied to another region do not open there', async () => {
    const tenant = 'acme'
    await fx.addTenant(tenant, { region: EU })
    await fx.domicile.withTenant(tenant, async (s) => {
      await s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@example.eu', tax_id: 'DE123' })
      // Create the index root key too, and warm this process's key cache.
      assert.equal((await s.table('customers').find({ email: 'ada@example.eu' })).length, 1)
      assert.equal(await s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test: before the copy' }), 'DE123')
    })

    assert.equal(await copyRows('customers', tenant, EU, US), 1)
    const keyRows = await copyRows('domicile_data_keys', tenant, EU, US)
    assert.ok(keyRows >= 2, `copied the data key and the index root key (${keyRows} rows)`)
    await fx.domicile.directory.update(tenant, { region: US }, 'test:move')
    assert.equal((await fx.domicile.getTenant(tenant)).region, US)

    await fx.domicile.withTenant(tenant, async (s) => {
      assert.equal(s.region, US)
      const row = await s.table('customers').get('c1')
      assert.ok(row, 'the copied row is served from us-east-1')
      assert.equal(row.name, 'Ada', 'plain columns read')
      const e1 = await rejectsWithCode(s.reveal(row.tax_id, { purpose: 'test: after the copy' }), 'ERR_DECRYPTION_FAILED', 'reveal in the wrong region')
      const e2 = await rejectsWithCode(s.reveal(row.email, { purpose: 'test: after the copy' }), 'ERR_DECRYPTION_FAILED', 'reveal in the wrong region')
      const e3 = await rejectsWithCode(s.table('customers').find({ email: 'ada@example.eu' }), 'ERR_DECRYPTION_FAILED', 'blind-index search in the wrong region')
      for (const e of [e1, e2, e3]) assert.equal(e.cause, undefined)
    })
    // The copied active data key cannot seal new values here either.
    await rejectsWithCode(fx.domicile.withTenant(tenant, (s) => s.table('customers').insert({ id: 'c2', name: 'New', tax_id: 'X' })),
      'ERR_DECRYPTION_FAILED', 'sealing with a data key wrapped for another region')

    // The bytes are intact: the very same wrapped key opens under its own region's context.
    const wrapped = await fx.regionAdmin(US, (s) => s.query<{ wrapped: Uint8Array; key_id: string }>(
      "SELECT wrapped, key_id FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' AND key_number = 1", [tenant]))
    const w = wrapped.rows[0]!
    const local = fx.localKeystore()
    const ctx = { tenantId: tenant, dataKeyId: '1', purpose: 'data' as const }
    const dk = await local.unwrapKey({ keyId: w.key_id, ciphertext: new Uint8Array(w.wrapped), context: { ...ctx, region: EU } })
    assert.equal(dk.length, 32)
    dk.fill(0)
    await rejectsWithCode(local.unwrapKey({ keyId: w.key_id, ciphertext: new Uint8Array(w.wrapped), context: { ...ctx, region: US } }), 'ERR_DECRYPTION_FAILED', 'unwrap under the us-east-1 context')

    // And back home, everything opens again.
    await fx.domicile.directory.update(tenant, { region: EU }, 'test:move-back')
    await fx.domicile.withTenant(tenant, async (s) => {
      assert.equal(s.region, EU)
      const row = await s.table('customers').get('c1')
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'test: home again' }), 'DE123')
      assert.equal((await s.table('customers').find({ email: 'ADA@example.eu' })).length, 1)
    })
  })
})
