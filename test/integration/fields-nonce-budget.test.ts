/**
 * The AES-GCM nonce bound through the data layer: with random 96-bit nonces a data key may seal at
 * most `keys.maxEncryptionsPerKey` values. Here the bound is 10 and a process reserves 4 at a time,
 * so a few dozen inserts must rotate through several data keys: each key's reserved counter stays
 * within its budget, spent keys are retired but kept for decryption, and no key number appears in
 * more stored values than the bound, also after a scope that reserved budget rolled back.
 *
 * Cross-process reservation (two processes drawing from one key's counter) needs two Domicile
 * instances on one store; PGlite stores cannot be shared between instances, so that part is
 * covered by the PostgreSQL tests elsewhere.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import type { Row } from '../../src/index.js'
import { createDomicileFixture, type DomicileFixture } from '../support/domicile-fixture.js'

const REGION = 'eu-west-1'
const MAX = 10
const BLOCK = 4

interface KeyRow {
  key_number: number
  status: string
  reserved: number
  max: number
}

describe('data-key nonce budget', { concurrency: false }, () => {
  let fx: DomicileFixture

  before(async () => {
    fx = await createDomicileFixture({ regions: [REGION], keys: { maxEncryptionsPerKey: MAX, reservationBlock: BLOCK } })
  })
  after(async () => {
    await fx?.close()
  })

  async function dataKeys(tenant: string): Promise<KeyRow[]> {
    const r = await fx.regionAdmin(REGION, (s) => s.query<{ key_number: number; status: string; reserved: string; max: string }>(
      `SELECT key_number, status, encryptions_reserved::text AS reserved, max_encryptions::text AS max
       FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' ORDER BY key_number`, [tenant]))
    return r.rows.map((x) => ({ key_number: Number(x.key_number), status: x.status, reserved: Number(x.reserved), max: Number(x.max) }))
  }

  /** Stored sealed values per data-key number (header bytes 1..4, uint32 big-endian). */
  async function valuesPerKey(tenant: string): Promise<Map<number, number>> {
    const rows = await fx.regionAdmin(REGION, (s) => s.query<{ email: Uint8Array | null; tax_id: Uint8Array | null }>(
      'SELECT email, tax_id FROM customers WHERE tenant_id = $1', [tenant]))
    const out = new Map<number, number>()
    for (const r of rows.rows) {
      for (const v of [r.email, r.tax_id]) {
        if (v === null) continue
        const n = Buffer.from(v).readUInt32BE(1)
        out.set(n, (out.get(n) ?? 0) + 1)
      }
    }
    return out
  }

  /** The invariant: no key seals more values than its store counter allows, nor than the bound. */
  function assertWithinBudget(keys: readonly KeyRow[], perKey: ReadonlyMap<number, number>): void {
    for (const [n, count] of perKey) {
      const k = keys.find((x) => x.key_number === n)
      assert.ok(k, `sealed values name data key ${n}, which has no row in domicile_data_keys`)
      assert.ok(count <= MAX, `data key ${n} sealed ${count} values; the bound is ${MAX}`)
      assert.ok(count <= k.reserved, `data key ${n} sealed ${count} values but only ${k.reserved} were reserved`)
    }
    for (const k of keys) {
      assert.equal(k.max, MAX)
      assert.ok(k.reserved <= k.max, `data key ${k.key_number}: reserved ${k.reserved} > max ${k.max}`)
    }
  }

  test('25 sealed values rotate through several data keys, each within its budget; all still reveal', async () => {
    const tenant = 'budget-a'
    await fx.addTenant(tenant, { region: REGION })
    const N = 25
    // A mix of transaction sizes: single inserts and a batch in one scope.
    for (let i = 0; i < 13; i++) {
      await fx.domicile.withTenant(tenant, (s) => s.table('customers').insert({ id: `c${String(i).padStart(2, '0')}`, name: `n${i}`, email: null, tax_id: `TAX-${i}` }))
    }
    await fx.domicile.withTenant(tenant, async (s) => {
      for (let i = 13; i < N; i++) await s.table('customers').insert({ id: `c${String(i).padStart(2, '0')}`, name: `n${i}`, email: null, tax_id: `TAX-${i}` })
    })

    const keys = await dataKeys(tenant)
    const perKey = await valuesPerKey(tenant)
    assert.ok(keys.length >= Math.ceil(N / MAX), `expected at least ${Math.ceil(N / MAX)} data keys, got ${keys.length}`)
    assert.deepEqual(keys.map((k) => k.key_number), keys.map((_, i) => i + 1), 'data keys are numbered 1, 2, 3, ...')
    assert.deepEqual(keys.slice(0, -1).map((k) => k.status), keys.slice(0, -1).map(() => 'retired'), 'all but the newest are retired')
    assert.equal(keys.at(-1)!.status, 'active')
    const sealed = [...perKey.values()].reduce((a, b) => a + b, 0)
    assert.equal(sealed, N)
    assert.ok(keys.reduce((a, k) => a + k.reserved, 0) >= sealed, 'the store counters cover every sealed value')
    assertWithinBudget(keys, perKey)
    assert.ok(perKey.size >= 3, `values are spread over ${perKey.size} keys`)

    // Every value still reveals: retired keys are kept for decryption.
    const open = await fx.domicile.withTenant(tenant, async (s) => {
      const page = await s.table('customers').list({ limit: 100 })
      return s.revealRows(page.rows, { purpose: 'test: nonce budget' })
    })
    assert.equal(open.length, N)
    for (const r of open) assert.equal(r.tax_id, `TAX-${String(r.name).slice(1)}`)
  })

  test('a scope that reserved budget and rolled back leaves no stale reservation behind', async () => {
    const tenant = 'budget-rb'
    await fx.addTenant(tenant, { region: REGION })
    const insert = (s: { table(n: string): { insert(r: Row): Promise<Row> } }, id: string) =>
      s.table('customers').insert({ id, name: id, email: null, tax_id: `TAX-${id}` })

    // One full block, committed: key 1 reserved 4, all used.
    await fx.domicile.withTenant(tenant, async (s) => {
      for (let i = 0; i < BLOCK; i++) await insert(s, `a${i}`)
    })
    assert.deepEqual((await dataKeys(tenant)).map((k) => [k.key_number, k.reserved]), [[1, BLOCK]])

    // The next seal reserves a new block in a scope that then fails: the reservation rolls back.
    await assert.rejects(fx.domicile.withTenant(tenant, async (s) => {
      await insert(s, 'rolled-back')
      throw new Error('boom after sealing')
    }), /boom after sealing/)
    assert.deepEqual((await dataKeys(tenant)).map((k) => [k.key_number, k.reserved]), [[1, BLOCK]], 'the reservation vanished with the rollback')

    // Also a rollback in the scope that creates a new data key (the first seal of a fresh tenant).
    const fresh = 'budget-rb-fresh'
    await fx.addTenant(fresh, { region: REGION })
    await assert.rejects(fx.domicile.withTenant(fresh, async (s) => {
      await insert(s, 'x')
      throw new Error('boom in the first scope')
    }), /boom in the first scope/)
    assert.deepEqual(await dataKeys(fresh), [], 'the new data key vanished with the rollback')

    // Ten more seals in each: counts per key number stay within what the store reserved.
    for (const t of [tenant, fresh]) {
      for (let i = 0; i < 10; i++) await fx.domicile.withTenant(t, (s) => insert(s, `b${i}`))
      const keys = await dataKeys(t)
      const perKey = await valuesPerKey(t)
      assertWithinBudget(keys, perKey)
      assert.equal([...perKey.values()].reduce((a, b) => a + b, 0), t === tenant ? BLOCK + 10 : 10)
      const open = await fx.domicile.withTenant(t, async (s) => s.revealRows((await s.table('customers').list({ limit: 100 })).rows, { purpose: 'test' }))
      for (const r of open) assert.equal(r.tax_id, `TAX-${String(r.id)}`)
    }
  })
})
