/**
 * Data-key rotation (issue #10, item 1): new writes seal under the new key at once, the background
 * job re-encrypts every stored value in batches while a writer and a reader keep going, a SIGKILL
 * mid-job is resumed from the journal's checkpoint, and retiring the old key is refused while any
 * stored value still names it (checked against the data). Real PostgreSQL, two roles.
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import type { Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { readKeyNumber } from '../../src/fields/field-codec.js'
import { retireDataKey, rotateDataKey } from '../../src/ops/rotate-data-key.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { loop, REGION, startRotationCluster, type RotationCluster } from '../support/rotation-cluster.js'
import { rejectsWithCode } from '../support/domicile-fixture.js'

const missing = postgresUnavailable()
type Plain = { email: string | null; tax_id: string | null }

/** Key numbers in the headers of every stored sealed value of the tenant, read on the owner's login. */
async function headerKeyNumbers(rc: RotationCluster, tenant: string): Promise<Map<number, number>> {
  const r = await rc.su.query<{ email: Buffer | null; tax_id: Buffer | null }>('SELECT email, tax_id FROM customers WHERE tenant_id = $1', [tenant])
  const out = new Map<number, number>()
  for (const row of r.rows) {
    for (const v of [row.email, row.tax_id]) if (v) out.set(readKeyNumber(v), (out.get(readKeyNumber(v)) ?? 0) + 1)
  }
  return out
}

async function contentOf(d: Domicile, tenant: string): Promise<Map<string, Plain>> {
  const got = new Map<string, Plain>()
  await d.withTenant(tenant, async (s) => {
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await s.table('customers').list({ limit: 1000, ...(cursor ? { cursor } : {}) })
      for (const r of await s.revealRows(page.rows, { purpose: 'rotation test' })) got.set(String(r.id), { email: r.email as string | null, tax_id: r.tax_id as string | null })
      cursor = page.nextCursor
    }
  })
  return got
}

describe('data-key rotation (real PostgreSQL, two roles)', { skip: missing }, () => {
  let rc: RotationCluster
  let d: Domicile
  const ROWS = 2000

  before(async () => {
    rc = await startRotationCluster('datakey')
    d = await rc.open()
    for (const t of ['dk', 'dk-retire']) {
      const p = await d.keys.provision(t, { custody: 'kms' })
      await d.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
    }
  })

  after(async () => {
    await d?.close()
    await rc?.close()
  })

  test('re-encryption with a concurrent writer and reader, SIGKILLed mid-job and resumed: every value ends on the new key with the same content', async () => {
    const tenant = 'dk'
    const expected = new Map<string, Plain>()
    await d.withTenant(tenant, async (s) => {
      for (let i = 0; i < ROWS; i++) {
        const id = `r-${String(i).padStart(5, '0')}`
        const v = { email: `u${i}@dk.example`, tax_id: i % 10 === 0 ? null : `TAX-${i}` }
        await s.table('customers').insert({ id, name: `n${i}`, ...v })
        expected.set(id, v)
      }
    })
    assert.deepEqual([...(await headerKeyNumbers(rc, tenant)).keys()], [1])
    const ids = [...expected.keys()]
    // The writer: inserts and updates; a write it was told succeeded must be there at the end.
    const writer = loop(async (i) => {
      if (i % 2 === 0) {
        const id = `w-${String(i).padStart(6, '0')}`
        const v = { email: `w${i}@dk.example`, tax_id: `W-${i}` }
        await d.tenant(tenant).table('customers').insert({ id, name: 'w', ...v })
        expected.set(id, v)
      } else {
        const id = ids[(i * 37) % ids.length]!
        const tax = `U-${i}`
        await d.tenant(tenant).table('customers').update(id, { tax_id: tax })
        expected.set(id, { ...expected.get(id)!, tax_id: tax })
      }
    })
    // The reader: every value it reads opens, whatever key number it names.
    const reader = loop(async (i) => {
      await d.withTenant(tenant, async (s) => {
        const page = await s.table('customers').list({ limit: 50, cursor: Buffer.from(JSON.stringify({ k: ids[(i * 53) % (ids.length - 60)] })).toString('base64url') })
        await s.revealRows(page.rows, { purpose: 'rotation reader' })
      })
    })

    const killed = await rc.runWorker('data', tenant, { DOMICILE_TEST_KILL_AT: 'data-key-rotate:batch:3', ROTATION_BATCH: '200', ROTATION_PROPAGATION_MS: '500' })
    assert.equal(killed.signal, 'SIGKILL', killed.stderr.slice(-800))
    const op = await internalsOf(d).journal!.running<{ newKey: number; rows: number }>(tenant)
    assert.equal(op?.state, 'reencrypt')
    assert.equal(op!.checkpoint.newKey, 2)
    assert.ok(op!.checkpoint.rows >= 200 && op!.checkpoint.rows < ROWS, `checkpoint after batch 2: ${op!.checkpoint.rows} rows`)
    const mixed = await headerKeyNumbers(rc, tenant)
    assert.ok((mixed.get(1) ?? 0) > 0 && (mixed.get(2) ?? 0) > 0, 'mid-job the stored values name both keys')
    // New writes already seal under the new key (the worker announced it before it died).
    await d.tenant(tenant).table('customers').insert({ id: 'probe-new', name: 'p', email: 'probe@dk.example', tax_id: 'P' })
    expected.set('probe-new', { email: 'probe@dk.example', tax_id: 'P' })
    const probe = await rc.su.query<{ email: Buffer }>("SELECT email FROM customers WHERE tenant_id = $1 AND id = 'probe-new'", [tenant])
    assert.equal(readKeyNumber(probe.rows[0]!.email), 2)

    const r = await rotateDataKey(d, tenant, { staleAfterMs: 0, propagationMs: 300, batchSize: 200, actor: 'dk-test' })
    await writer.stop()
    await reader.stop()
    assert.deepEqual(writer.errors, [], 'every write succeeded')
    assert.deepEqual(reader.errors, [], 'every read succeeded, on mixed key numbers')
    assert.ok(writer.ok > 20 && reader.ok > 20, `writer ${writer.ok}, reader ${reader.ok}`)
    assert.equal(r.resumed, true)
    assert.equal(r.newKeyNumber, 2)
    assert.ok(r.values > 0)

    assert.deepEqual([...(await headerKeyNumbers(rc, tenant)).keys()], [2], 'every stored value names the new key')
    const got = await contentOf(d, tenant)
    assert.equal(got.size, expected.size)
    for (const [id, v] of expected) assert.deepEqual(got.get(id), v, `row ${id}`)
    const keys = await rc.su.query("SELECT key_number, status FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' ORDER BY key_number", [tenant])
    assert.deepEqual(keys.rows, [{ key_number: 1, status: 'retired' }, { key_number: 2, status: 'active' }])
    const audit = await rc.su.query<{ type: string }>("SELECT type FROM domicile_audit WHERE tenant_id = $1 AND type LIKE 'operation.%' ORDER BY id", [tenant])
    const types = audit.rows.map((a) => a.type)
    assert.equal(types[0], 'operation.start')
    assert.ok(types.includes('operation.resume') && types.includes('operation.checkpoint'))
    assert.equal(types.at(-1), 'operation.end')
  })

  test('Precondition: no stored value names the key.', async () => {
    const tenant = 'dk-retire'
    await d.withTenant(tenant, async (s) => {
      for (let i = 0; i < 20; i++) await s.table('customers').insert({ id: `x${i}`, name: 'x', email: `x${i}@r.example`, tax_id: `T${i}` })
    })
    const before = await contentOf(d, tenant)
    const oldCipher = (await rc.su.query<{ tax_id: Buffer }>("SELECT tax_id FROM customers WHERE tenant_id = $1 AND id = 'x7'", [tenant])).rows[0]!.tax_id
    const r = await rotateDataKey(d, tenant, { propagationMs: 100 })
    assert.equal(r.newKeyNumber, 2)
    const newCipher = (await rc.su.query<{ tax_id: Buffer }>("SELECT tax_id FROM customers WHERE tenant_id = $1 AND id = 'x7'", [tenant])).rows[0]!.tax_id
    // The job says done; one stored value is put back under key 1 (as a restore from a backup would).
    await rc.su.query("UPDATE customers SET tax_id = $2 WHERE tenant_id = $1 AND id = 'x7'", [tenant, oldCipher])
    const e = await rejectsWithCode(retireDataKey(d, tenant, 1, { propagationMs: 100 }), 'ERR_CONFLICT')
    assert.match(e.message, /customers\.tax_id: 1/)
    assert.doesNotMatch(e.message, /T7/, 'no plaintext in the message')
    assert.equal((await rc.su.query("SELECT 1 FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' AND key_number = 1", [tenant])).rows.length, 1, 'key 1 kept')
    assert.deepEqual(await contentOf(d, tenant), before, 'and the value under it still opens')
    await rc.su.query("UPDATE customers SET tax_id = $2 WHERE tenant_id = $1 AND id = 'x7'", [tenant, newCipher])
    const ok = await retireDataKey(d, tenant, 1, { propagationMs: 100, actor: 'dk-test' })
    assert.equal(ok.valuesChecked, 40)
    assert.equal((await rc.su.query("SELECT 1 FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data' AND key_number = 1", [tenant])).rows.length, 0, 'key 1 deleted')
    assert.deepEqual(await contentOf(d, tenant), before, 'every value still opens')
  })

  test('Precondition: the key being retired is not the one new values are sealed under.', async () => {
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 2, { propagationMs: 100 }), 'ERR_CONFLICT')
  })

  test('Precondition: every process has seen the rotation that replaced the key (no sealing under it in flight).', async () => {
    await rotateDataKey(d, 'dk-retire', { propagationMs: 100 })
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 2, { propagationMs: 60_000 }), 'ERR_CONFLICT')
    await retireDataKey(d, 'dk-retire', 2, { propagationMs: 100 })
  })

  test('Precondition: no rotation or other operation is running for the tenant.', async () => {
    const j = internalsOf(d).journal!
    const op = await j.start({ kind: 'data-key-rotate', tenantId: 'dk-retire', target: 'dk-retire', state: 'reencrypt', checkpoint: {} })
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 1, { propagationMs: 100 }), 'ERR_OPERATION_RUNNING')
    await j.finish(op.id, 'aborted', 'reencrypt')
  })

  test('Precondition: the key number to retire is an integer from 1 to 2^31-1.', async () => {
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 0), 'ERR_INPUT_INVALID')
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 1.5), 'ERR_INPUT_INVALID')
  })

  test('Precondition: a batch holds 1 to 10000 rows (or key rows).', async () => {
    await rejectsWithCode(rotateDataKey(d, 'dk-retire', { batchSize: 10_001 }), 'ERR_INPUT_INVALID')
  })

  test('Precondition: no column migration is running.', async () => {
    const j = internalsOf(d).journal!
    const op = await j.start({ kind: 'encrypt-column', tenantId: null, target: 'customers.plan', state: 'convert', checkpoint: {} })
    await rejectsWithCode(rotateDataKey(d, 'dk-retire', { propagationMs: 100 }), 'ERR_OPERATION_RUNNING')
    await rejectsWithCode(retireDataKey(d, 'dk-retire', 1, { propagationMs: 100 }), 'ERR_OPERATION_RUNNING')
    await j.finish(op.id, 'aborted', 'convert')
  })

  test('Precondition: a rate limit is a positive number of rows per second.', async () => {
    await rejectsWithCode(rotateDataKey(d, 'dk-retire', { maxRowsPerSecond: 0 }), 'ERR_INPUT_INVALID')
  })
})
