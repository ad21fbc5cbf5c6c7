/**
 * Key-encryption-key rotation (issue #10, item 1): `rotateKek` rewraps the tenant's data and index
 * keys only. Real PostgreSQL (two roles) for the proof that no row table is read (every statement
 * the owner's login ran during the rotation, from the server's statement log), the concurrent
 * reader, and SIGKILL + resume in a child process; PGlite for the BYOK import flow and the
 * preconditions.
 */
import { strict as assert } from 'node:assert'
import { createPublicKey } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import type { Domicile } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { rsaOaepSha256Encrypt } from '../../src/crypto/rsa-oaep.js'
import { createLocalKeyProvider } from '../../src/keys/providers/local/index.js'
import { importRotationMaterial, rotateKek, rotateKeks, rotationImportJob, abortKekRotation } from '../../src/ops/rotate-kek.js'
import { rotateDataKey } from '../../src/ops/rotate-data-key.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { loop, REGION, startRotationCluster, type RotationCluster } from '../support/rotation-cluster.js'
import { createDomicileFixture, newKeyMaterial, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'

const missing = postgresUnavailable()
type Plain = { email: string; tax_id: string }

async function seed(d: Domicile, tenant: string, n: number): Promise<Map<string, Plain>> {
  const expected = new Map<string, Plain>()
  await d.withTenant(tenant, async (s) => {
    for (let i = 0; i < n; i++) {
      const row = { id: `${tenant}-${String(i).padStart(4, '0')}`, email: `user${i}@${tenant}.example`, tax_id: `TX-${tenant}-${i}` }
      await s.table('customers').insert({ ...row, name: `Customer ${i}` })
      expected.set(row.id, { email: row.email, tax_id: row.tax_id })
    }
  })
  return expected
}

/** Every row of the tenant, opened; compared with `expected` row by row. */
async function assertContent(d: Domicile, tenant: string, expected: ReadonlyMap<string, Plain>): Promise<void> {
  const got = new Map<string, Plain>()
  await d.withTenant(tenant, async (s) => {
    for (let cursor: string | undefined, first = true; first || cursor; first = false) {
      const page = await s.table('customers').list({ limit: 500, ...(cursor ? { cursor } : {}) })
      for (const r of await s.revealRows(page.rows, { purpose: 'rotation test' })) got.set(String(r.id), { email: r.email as string, tax_id: r.tax_id as string })
      cursor = page.nextCursor
    }
  })
  assert.equal(got.size, expected.size, 'row count')
  for (const [id, v] of expected) assert.deepEqual(got.get(id), v, `row ${id}`)
}

describe('KEK rotation (real PostgreSQL, two roles)', { skip: missing }, () => {
  let rc: RotationCluster
  let d: Domicile
  const expected = new Map<string, Map<string, Plain>>()
  let logFile: string

  before(async () => {
    // A budget of 10 encryptions per data key: 40 rows x 2 sealed fields make 8 data keys (+1 index key).
    rc = await startRotationCluster('kek', { maxEncryptionsPerKey: 10, reservationBlock: 5 })
    d = await rc.open()
    for (const [t, n] of [['acme', 40], ['crash-a', 10], ['crash-b', 10]] as const) {
      const p = await d.keys.provision(t, { custody: 'kms' })
      await d.addTenant(t, { region: REGION, key: p.key, keyState: p.keyState })
      expected.set(t, await seed(d, t, n))
    }
    logFile = join(rc.cluster.dataDir, '..', 'log')
  })

  after(async () => {
    await d?.close()
    await rc?.close()
  })

  const keyRows = (tenant: string) => rc.su.query<{ key_id: string; n: number }>('SELECT key_id, count(*)::int AS n FROM domicile_data_keys WHERE tenant_id = $1 GROUP BY key_id', [tenant]).then((r) => r.rows)

  test('key rotate rewraps only key rows: no owner statement names a row table, a concurrent reader never fails, the binding moves and the old key is used no more', async () => {
    const tenant = 'acme'
    const want = expected.get(tenant)!
    const old = (await d.getTenant(tenant)).key!
    // Every statement any login runs from here on is in the server log, prefixed with user@database.
    await rc.su.query("ALTER SYSTEM SET log_statement = 'all'")
    await rc.su.query("ALTER SYSTEM SET log_line_prefix = '%u@%d '")
    await rc.su.query('SELECT pg_reload_conf()')
    await delay(300)
    const from = statSync(logFile).size
    const ids = [...want.keys()]
    const reader = loop(async (i) => {
      await d.withTenant(tenant, async (s) => {
        const id = ids[i % ids.length]!
        const [hit] = await s.table('customers').find({ email: want.get(id)!.email })
        assert.equal(hit?.id, id, 'find by blind index')
        const row = await s.table('customers').get(ids[(i * 7) % ids.length]!)
        const open = await s.revealRows([row!], { purpose: 'rotation reader' })
        assert.equal(open[0]!.tax_id, want.get(String(row!.id))!.tax_id)
      })
    })
    await delay(200)
    const before = reader.ok
    const r = await rotateKek(d, tenant, { actor: 'kek-test', batchSize: 3, propagationMs: 300 })
    const during = reader.ok - before
    await reader.stop()
    await rc.su.query('ALTER SYSTEM RESET log_statement')
    await rc.su.query('SELECT pg_reload_conf()')
    const log = readFileSync(logFile, 'utf8').slice(from)

    assert.deepEqual(reader.errors, [], 'the concurrent reader never failed')
    assert.ok(during >= 3, `the reader kept working during the rotation (${during} reads)`)
    assert.equal(r.state, 'done')
    assert.equal(r.keys, 9, '8 data keys and the index key, nothing else')
    assert.notEqual(r.to.keyId, old.keyId)

    // The proof: every statement the owner's login ran on the region during the rotation.
    const entries = log.split(/\n(?=\S+@\S+ )/).filter((e) => e.startsWith('domicile_owner@eu '))
    assert.ok(entries.some((e) => /UPDATE domicile_data_keys SET wrapped/.test(e)), 'the statement log captured the rotation (else this proof proves nothing)')
    const rowTables = [...d.schema.tables.values()].filter((t) => t.scope === 'tenant').map((t) => t.name)
    for (const t of rowTables) {
      const hits = entries.filter((e) => new RegExp(`\\b${t}\\b`).test(e))
      assert.deepEqual(hits, [], `the rotation never named row table "${t}"`)
    }

    const now = await d.getTenant(tenant)
    assert.deepEqual(now.key, r.to, 'the directory binding names the new key')
    assert.deepEqual(await keyRows(tenant), [{ key_id: r.to.keyId, n: 9 }], 'every key row is wrapped under the new key')
    const control = new pg.Client({ connectionString: rc.cluster.url.replace(/\/postgres$/, '/control') })
    await control.connect()
    try {
      const a = await control.query("SELECT detail FROM domicile_control_audit WHERE tenant_id = $1 AND type = 'key.rotate'", [tenant])
      assert.equal(a.rows.length, 1)
      assert.equal(a.rows[0].detail.toKeyId, r.to.keyId)
      const op = await control.query('SELECT kind, status, state FROM domicile_operations WHERE id = $1', [r.operation])
      assert.deepEqual(op.rows[0], { kind: 'key-rotate', status: 'done', state: 'done' })
    } finally {
      await control.end()
    }
    const audit = await rc.su.query<{ type: string; actor: string }>("SELECT type, actor FROM domicile_audit WHERE tenant_id = $1 AND type LIKE 'operation.%' ORDER BY id", [tenant])
    assert.equal(audit.rows[0]?.type, 'operation.start')
    assert.equal(audit.rows.at(-1)?.type, 'operation.end')
    assert.ok(audit.rows.every((a) => a.actor === 'kek-test'))

    // The old KEK is used no more: disabled at the key holder, a fresh process still opens everything.
    const holder = createLocalKeyProvider({ dir: join(rc.dir, 'keys') })
    await holder.disableKey(old.keyId)
    await holder.close()
    const fresh = await rc.open()
    try {
      await assertContent(fresh, tenant, want)
      await fresh.withTenant(tenant, (s) => s.table('customers').insert({ id: 'after-kek', name: 'n', email: 'after@acme.example', tax_id: 'T' }))
      want.set('after-kek', { email: 'after@acme.example', tax_id: 'T' })
      await assertContent(fresh, tenant, want)
    } finally {
      await fresh.close()
    }
  })

  test('killed (SIGKILL) between batches and right after the binding changed, a rerun resumes with the same new key and finishes', async () => {
    for (const [tenant, point, state] of [['crash-a', 'key-rotate:batch:2', 'rewrap'], ['crash-b', 'key-rotate:bound', 'bind']] as const) {
      const old = (await d.getTenant(tenant)).key!
      const run = await rc.runWorker('kek', tenant, { DOMICILE_TEST_KILL_AT: point, ROTATION_BATCH: '1', ROTATION_PROPAGATION_MS: '300' })
      assert.equal(run.signal, 'SIGKILL', `${tenant}: the worker died at ${point} (${run.stderr.slice(-500)})`)
      const op = await internalsOf(d).journal!.running<{ to: { keyId: string } }>(tenant)
      assert.equal(op?.state, state, `${tenant}: journal`)
      const planned = op!.checkpoint.to.keyId
      if (point === 'key-rotate:batch:2') {
        // Batch 2 committed in the region, its checkpoint never did: the resume must cope.
        assert.deepEqual((await keyRows(tenant)).find((k) => k.key_id === planned)?.n, 2)
      }
      await assertContent(d, tenant, expected.get(tenant)!) // readable while the rotation is half done
      const r = await rotateKek(d, tenant, { staleAfterMs: 0, propagationMs: 300, batchSize: 1 })
      assert.equal(r.resumed, true)
      assert.equal(r.to.keyId, planned, `${tenant}: resumed with the key the first run minted`)
      assert.notEqual(planned, old.keyId)
      assert.deepEqual((await d.getTenant(tenant)).key?.keyId, planned)
      assert.deepEqual((await keyRows(tenant)).map((k) => k.key_id), [planned])
      await assertContent(d, tenant, expected.get(tenant)!)
    }
  })
})

describe('KEK rotation (PGlite): BYOK through the import flow, and its preconditions', () => {
  let fx: DomicileFixture
  let d: Domicile

  before(async () => {
    fx = await createDomicileFixture({ regions: ['eu-west-1'] })
    d = fx.domicile
  })
  after(async () => fx?.close())

  test('BYOK: the rotation mints a key awaiting import, the customer imports new material, the rerun finishes; the old material can then be deleted', async () => {
    await fx.addTenant('byok-1', { custody: 'byok', byokMaterial: newKeyMaterial() })
    const want = await seed(d, 'byok-1', 6)
    const old = (await d.getTenant('byok-1')).key!
    const first = await rotateKek(d, 'byok-1', { propagationMs: 50 })
    assert.equal(first.state, 'await-import')
    assert.notEqual(first.to.keyId, old.keyId)
    await assertContent(d, 'byok-1', want) // still on the old key meanwhile
    assert.equal((await rotateKek(d, 'byok-1', { propagationMs: 50 })).state, 'await-import', 'a rerun before the import keeps waiting, same key')
    const job = await rotationImportJob(d, 'byok-1')
    assert.equal(job.keyId, first.to.keyId)
    const wrapped = rsaOaepSha256Encrypt(createPublicKey(job.wrappingPublicKeyPem), newKeyMaterial())
    await importRotationMaterial(d, 'byok-1', new Uint8Array(wrapped), job.importToken)
    const done = await rotateKek(d, 'byok-1', { propagationMs: 50 })
    assert.equal(done.state, 'done')
    assert.equal(done.resumed, true)
    assert.deepEqual((await d.getTenant('byok-1')).key, { custody: 'byok', provider: old.provider, keyId: first.to.keyId })
    // The customer deletes the old material: nothing needs it any more.
    await fx.localKeystore().deleteKeyMaterial(old.keyId)
    internalsOf(d).keyring!.forgetTenant('byok-1')
    await assertContent(d, 'byok-1', want)
  })

  test('Precondition: a BYOK rotation awaits the customer\'s material.', async () => {
    await fx.addTenant('no-wait')
    await rejectsWithCode(rotationImportJob(d, 'no-wait'), 'ERR_OPERATION_NOT_FOUND')
    await rejectsWithCode(importRotationMaterial(d, 'no-wait', new Uint8Array(256), 'token'), 'ERR_OPERATION_NOT_FOUND')
  })

  test('bulk rotation: each tenant to a KEK of its own, one shared wait; a tenant that fails does not stop the others', async () => {
    for (const t of ['bulk-1', 'bulk-2', 'bulk-3']) await fx.addTenant(t)
    const want = await seed(d, 'bulk-2', 3)
    await d.keys.revoke('bulk-3')
    const before = await Promise.all(['bulk-1', 'bulk-2'].map(async (t) => (await d.getTenant(t)).key!.keyId))
    const out = await rotateKeks(d, ['bulk-1', 'bulk-2', 'bulk-3'], { propagationMs: 50, concurrency: 2 })
    assert.deepEqual(out.map((o) => ('error' in o ? o.error : o.result.state)), ['done', 'done', 'ERR_KEY_REVOKED'])
    const after = await Promise.all(['bulk-1', 'bulk-2'].map(async (t) => (await d.getTenant(t)).key!.keyId))
    assert.ok(after.every((k, i) => k !== before[i]) && after[0] !== after[1], 'a new KEK per tenant')
    await assertContent(d, 'bulk-2', want)
  })

  test('Precondition: the tenant has a key binding.', async () => {
    await fx.addTenant('no-key', { custody: 'none' })
    await rejectsWithCode(rotateKek(d, 'no-key'), 'ERR_KEY_NOT_FOUND')
  })

  test('Precondition: the tenant\'s key is usable (not revoked, destroyed or awaiting import).', async () => {
    await fx.addTenant('revoked-1')
    await d.keys.revoke('revoked-1')
    await rejectsWithCode(rotateKek(d, 'revoked-1'), 'ERR_KEY_REVOKED')
  })

  test('Precondition: a key id names a key other than the current one.', async () => {
    const t = await fx.addTenant('same-key')
    await rejectsWithCode(rotateKek(d, 'same-key', { keyId: t.key!.keyId }), 'ERR_INPUT_INVALID')
    assert.equal(await internalsOf(d).journal!.running('same-key'), undefined, 'refused before anything was journaled')
  })

  test('Precondition: the new key-encryption key is usable.', async () => {
    await fx.addTenant('disabled-new')
    const other = await fx.localKeystore().createKey({ label: 'x', origin: 'generate' })
    await fx.localKeystore().disableKey(other.keyId)
    await rejectsWithCode(rotateKek(d, 'disabled-new', { keyId: other.keyId }), 'ERR_KEY_REVOKED')
    await abortKekRotation(d, 'disabled-new')
  })

  test('batch size of a KEK rotation: 1 to 10000 key rows', async () => {
    await fx.addTenant('batchy')
    await rejectsWithCode(rotateKek(d, 'batchy', { batchSize: 0 }), 'ERR_INPUT_INVALID')
  })

  test('Precondition: one operation at a time per tenant.', async () => {
    await fx.addTenant('busy')
    await internalsOf(d).journal!.start({ kind: 'tenant-move', tenantId: 'busy', target: 'busy', state: 'copy', checkpoint: {} })
    await rejectsWithCode(rotateKek(d, 'busy'), 'ERR_OPERATION_RUNNING')
    await rejectsWithCode(rotateDataKey(d, 'busy'), 'ERR_OPERATION_RUNNING')
  })

  test('Precondition: a running operation is taken over only when no process drives it any more.', async () => {
    await fx.addTenant('alive')
    await internalsOf(d).journal!.start({ kind: 'key-rotate', tenantId: 'alive', target: 'alive', state: 'rewrap', checkpoint: {} })
    await rejectsWithCode(rotateKek(d, 'alive'), 'ERR_OPERATION_RUNNING')
  })
})
