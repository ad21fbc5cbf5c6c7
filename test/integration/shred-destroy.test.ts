/**
 * `key destroy` and `key delete-material` (issue #10 item 4) on a real Domicile (PGlite stores, the
 * local key provider on a real keystore directory): the key file is overwritten and removed, every
 * wrapped copy of the tenant's keys leaves every region, the key state becomes 'destroyed' together
 * with its audit record, nothing can undo it, no scope can open or seal the tenant's data, a bystander
 * is untouched, an operation running for the tenant blocks it, and an interrupted destruction
 * resumes; and on a SoftHSM2 token (PKCS#11) the key object leaves the token (checked through a
 * separate PKCS#11 session, not the code under test). Real PostgreSQL: shred-postgres.test.ts.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { internalsOf } from '../../src/domicile-internals.js'
import { isDomicileError } from '../../src/errors.js'
import { destroyTenantKey, inventory } from '../../src/ops/shred-destroy.js'
import type { ProgressEvent } from '../../src/ops/progress.js'
import { Pkcs11Session } from '../../src/pkcs11/pkcs11-session.js'
import { verifyShred } from '../../src/ops/shred-verify.js'
import { createDomicileFixture, importByokMaterial, newKeyMaterial, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'
import { createSoftHsmToken, softHsmSkip, type SoftHsmToken } from '../support/softhsm.js'

const REGION = 'eu-west-1'
const PIN_ENV = 'DOMICILE_TEST_SHRED_HSM_PIN'
const hsmSkip = softHsmSkip()

describe('key destroy and key delete-material (PGlite, local provider)', { concurrency: false }, () => {
  let fx: DomicileFixture
  let token: SoftHsmToken | undefined
  let inspector: Pkcs11Session | undefined

  before(async () => {
    let providers = {}
    if (hsmSkip === false) {
      const pin = `user-${randomBytes(4).toString('hex')}`
      token = await createSoftHsmToken({ label: 'shred-hsm', pin, soPin: `so-${randomBytes(4).toString('hex')}` })
      process.env[PIN_ENV] = pin
      providers = { hsm: { kind: 'pkcs11', library: token.library, tokenLabel: token.label, pinEnv: PIN_ENV } }
      inspector = await Pkcs11Session.open({ library: token.library, tokenLabel: token.label, pin })
    }
    fx = await createDomicileFixture({ regions: ['us-east-1', REGION], providers })
  })
  after(async () => {
    await inspector?.close()
    await fx?.close()
    delete process.env[PIN_ENV]
    await token?.cleanup()
  })

  async function seed(tenant: string, opts: Parameters<DomicileFixture['addTenant']>[1] = {}): Promise<void> {
    await fx.addTenant(tenant, { region: REGION, ...opts })
    await fx.domicile.withTenant(tenant, async (s) => {
      await s.table('customers').insert({ id: 'c1', name: `Ada of ${tenant}`, email: `ada@${tenant}.example`, tax_id: `TAX-${tenant}-1`, plan: 'pro' })
      await s.table('customers').insert({ id: 'c2', name: `Bob of ${tenant}`, email: `bob@${tenant}.example`, tax_id: `TAX-${tenant}-2`, plan: 'free' })
      // Warm this process's key cache: destruction must reach cached keys too.
      assert.equal(await s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test' }), `TAX-${tenant}-1`)
    })
  }

  const keyFile = (keyId: string) => join(fx.keysDir, `${keyId}.json`)
  const keyRows = (tenant: string, region = REGION) =>
    fx.regionAdmin(region, async (s) => Number((await s.query<{ n: string | number }>('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1', [tenant])).rows[0]!.n))

  test('destroy (kms): key file gone, every wrapped copy deleted, key state destroyed with its audit record', async () => {
    await seed('acme')
    await seed('bystander')
    const before = await fx.domicile.getTenant('acme')
    const keyId = before.key!.keyId
    assert.ok(existsSync(keyFile(keyId)))
    assert.equal(await keyRows('acme'), 2, 'a data key and the index key')
    const events: ProgressEvent[] = []
    const r = await destroyTenantKey(fx.domicile, 'acme', { actor: 'test-operator', progress: { update: (e) => events.push(e), note() {} } })
    assert.equal(r.resumed, false)
    assert.deepEqual(r.keks.map((k) => [k.provider, k.keyId, k.outcome]), [['local', keyId, 'destroyed']])
    assert.deepEqual(r.wrappedKeys.map((w) => [w.region, w.purpose, w.keyNumber]).sort(), [[REGION, 'data', 1], [REGION, 'index', 1]])
    assert.deepEqual(r.deleted, [{ region: 'us-east-1', rows: 0 }, { region: REGION, rows: 2 }])
    assert.ok(events.some((e) => e.state === 'delete-copies'), 'progress reported')

    assert.equal(existsSync(keyFile(keyId)), false, 'the key file is removed')
    await rejectsWithCode(fx.localKeystore().keyStatus(keyId), 'ERR_KEY_NOT_FOUND', 'the keystore no longer knows the key')
    assert.equal(await keyRows('acme'), 0)
    const after = await fx.domicile.getTenant('acme')
    assert.equal(after.keyState, 'destroyed')
    // The state change and its audit record: one control-plane transaction, the record's time is the destruction time.
    const audit = await internalsOf(fx.domicile).controlPlane.withSession((s) => s.query<{ type: string; actor: string; at: Date | string; detail: Record<string, unknown> }>(
      "SELECT type, actor, at, detail FROM domicile_control_audit WHERE tenant_id = 'acme' AND type LIKE 'key.destroy%' ORDER BY id"), { role: 'owner' })
    assert.deepEqual(audit.rows.map((a) => a.type), ['key.destroy', 'key.destroy.complete'])
    assert.equal(audit.rows[0]!.actor, 'test-operator')
    assert.equal(audit.rows[0]!.detail.operation, r.operationId)
    assert.equal(new Date(audit.rows[0]!.at).toISOString(), r.destroyedAt)
    // The operation is journaled and audited in the tenant's region (start, checkpoint, end, who).
    const op = await internalsOf(fx.domicile).journal!.get(r.operationId)
    assert.deepEqual([op.kind, op.status, op.target, op.actor], ['key-destroy', 'done', 'acme', 'test-operator'])
    const regionAudit = await fx.regionAdmin(REGION, (s) => s.query<{ type: string; actor: string }>(
      "SELECT type, actor FROM domicile_audit WHERE tenant_id = 'acme' AND type LIKE 'key.destroy%' ORDER BY id"))
    assert.deepEqual(regionAudit.rows.map((a) => [a.type, a.actor]), [['key.destroy.start', 'test-operator'], ['key.destroy.checkpoint', 'test-operator'], ['key.destroy.end', 'test-operator']])
    // The bystander in the same region is untouched.
    assert.equal(await keyRows('bystander'), 2)
    await fx.domicile.withTenant('bystander', async (s) => {
      assert.equal(await s.reveal((await s.table('customers').get('c2'))!.tax_id, { purpose: 'test' }), 'TAX-bystander-2')
      assert.deepEqual((await s.table('customers').find({ email: 'ada@bystander.example' })).map((x) => x.id), ['c1'])
    })
  })

  test('Precondition: the tenant\'s key is not destroyed. (restore, revoke, import and delete-material refuse; destroying again too)', async () => {
    await rejectsWithCode(fx.domicile.keys.restore('acme', 'test-operator'), 'ERR_KEY_DESTROYED', 'restore')
    await rejectsWithCode(fx.domicile.keys.revoke('acme', 'test-operator'), 'ERR_KEY_DESTROYED', 'revoke')
    await rejectsWithCode(destroyTenantKey(fx.domicile, 'acme'), 'ERR_KEY_DESTROYED', 'destroy twice')
    assert.equal((await fx.domicile.getTenant('acme')).keyState, 'destroyed')
    assert.equal((await fx.domicile.keys.status('acme')).state, 'destroyed')
  })

  test('after destroy, plain columns still read and no scope can open or seal the tenant\'s data', async () => {
    await fx.domicile.withTenant('acme', async (s) => {
      const row = await s.table('customers').get('c1')
      assert.equal(row?.name, 'Ada of acme', 'plain columns are not erased')
      for (const attempt of [
        () => s.reveal(row!.tax_id, { purpose: 'test' }),
        () => s.table('customers').find({ email: 'ada@acme.example' }),
      ]) {
        await assert.rejects(attempt(), (e: unknown) => isDomicileError(e) && ['ERR_KEY_DESTROYED', 'ERR_KEY_REVOKED'].includes(e.code))
      }
    })
    await assert.rejects(fx.domicile.withTenant('acme', (s) => s.table('customers').insert({ id: 'c3', name: 'New', tax_id: 'NEW' })),
      (e: unknown) => isDomicileError(e) && ['ERR_KEY_DESTROYED', 'ERR_KEY_REVOKED'].includes(e.code))
    assert.equal(await keyRows('acme'), 0, 'no new data key was made for the destroyed tenant')
  })

  test('Precondition: no other operation (move, rotation, migration) runs for the tenant.', async () => {
    await seed('busy')
    const { journal } = internalsOf(fx.domicile)
    const rotation = await journal!.start({ kind: 'key-rotate', tenantId: 'busy', target: 'busy', state: 'rewrap', checkpoint: {} })
    try {
      const e = await rejectsWithCode(destroyTenantKey(fx.domicile, 'busy', { actor: 'test-operator' }), 'ERR_OPERATION_RUNNING', 'destroy during a rotation')
      assert.match(e.message, /key-rotate/)
      const t = await fx.domicile.getTenant('busy')
      assert.equal(t.keyState, 'enabled', 'nothing changed')
      assert.ok(existsSync(keyFile(t.key!.keyId)))
      assert.equal(await keyRows('busy'), 2)
    } finally {
      await journal!.finish(rotation.id, 'done', 'done')
    }
    // A move is journaled on the tenant as well; an operation naming the tenant under another target counts too.
    const move = await journal!.start({ kind: 'tenant-move', tenantId: 'busy', target: 'busy-move', state: 'copy', checkpoint: {} })
    try {
      await rejectsWithCode(destroyTenantKey(fx.domicile, 'busy'), 'ERR_OPERATION_RUNNING', 'destroy during a move')
    } finally {
      await journal!.finish(move.id, 'aborted', 'aborted')
    }
    // And while the destruction runs, nothing else can start on the tenant.
    const r = await destroyTenantKey(fx.domicile, 'busy')
    assert.equal((await journal!.get(r.operationId)).status, 'done')
  })

  test('an interrupted destruction resumes where it stopped (after the kill switch; after the KEK)', async () => {
    const { journal, keys } = internalsOf(fx.domicile)
    // Killed right after the journal entry: the next run does everything.
    await seed('crash-a')
    const a = await fx.domicile.getTenant('crash-a')
    const opA = await journal!.start({ kind: 'key-destroy', tenantId: 'crash-a', target: 'crash-a', state: 'kill-switch', checkpoint: { binding: { ...a.key! } }, actor: 'first-run' })
    const ra = await destroyTenantKey(fx.domicile, 'crash-a', { actor: 'second-run' })
    assert.equal(ra.resumed, true)
    assert.equal(ra.operationId, opA.id)
    assert.equal(existsSync(keyFile(a.key!.keyId)), false)
    assert.equal(await keyRows('crash-a'), 0)

    // Killed after destroying the KEK, before the journal said so: the key is already gone, the copies are deleted.
    await seed('crash-b')
    const b = await fx.domicile.getTenant('crash-b')
    const opB = await journal!.start({ kind: 'key-destroy', tenantId: 'crash-b', target: 'crash-b', state: 'kill-switch', checkpoint: { binding: { ...b.key! } } })
    const rec = await keys!.markDestroyed('crash-b', undefined, { operation: opB.id })
    const wrappedKeys = await inventory(fx.domicile, 'crash-b')
    await journal!.advance(opB.id, 'destroy-kek', { binding: { ...b.key! }, destroyedAt: rec.updatedAt.toISOString(), wrappedKeys })
    await fx.localKeystore().destroyKey(b.key!.keyId)
    const rb = await destroyTenantKey(fx.domicile, 'crash-b')
    assert.equal(rb.resumed, true)
    assert.deepEqual(rb.keks.map((k) => k.outcome), ['already-gone'])
    assert.equal(rb.wrappedKeys.length, 2)
    assert.equal(await keyRows('crash-b'), 0)
    assert.equal((await journal!.get(opB.id)).status, 'done')
  })

  test('destroy (byok): the imported material is destroyed; even the same material cannot come back', async () => {
    const material = newKeyMaterial()
    await seed('byok-d', { custody: 'byok', byokMaterial: material })
    const keyId = (await fx.domicile.getTenant('byok-d')).key!.keyId
    const r = await destroyTenantKey(fx.domicile, 'byok-d')
    assert.deepEqual(r.keks.map((k) => k.outcome), ['destroyed'])
    assert.equal(existsSync(keyFile(keyId)), false)
    await rejectsWithCode(importByokMaterial(fx.domicile, 'byok-d', material), 'ERR_KEY_DESTROYED', 're-import after destroy')
  })

  test('a key-encryption key another tenant is bound to is kept; only this tenant\'s wrapped keys are destroyed', async () => {
    await seed('share-a')
    const shared = (await fx.domicile.getTenant('share-a')).key!
    await seed('share-b', { keyId: shared.keyId })
    const r = await destroyTenantKey(fx.domicile, 'share-a')
    assert.deepEqual(r.keks.map((k) => [k.outcome, k.sharedWith]), [['shared', 1]])
    assert.ok(existsSync(keyFile(shared.keyId)))
    assert.equal(await keyRows('share-a'), 0)
    await fx.domicile.withTenant('share-b', async (s) => {
      assert.equal(await s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test' }), 'TAX-share-b-1')
    })
  })

  test('delete-material (byok): key stays, material gone, state pending-import; only the same material restores', async () => {
    const material = newKeyMaterial()
    await seed('byok-m', { custody: 'byok', byokMaterial: material })
    const keyId = (await fx.domicile.getTenant('byok-m')).key!.keyId
    const t = await fx.domicile.keys.deleteMaterial('byok-m', 'customer-admin')
    assert.equal(t.keyState, 'pending-import')
    assert.equal((await fx.localKeystore().keyStatus(keyId)).state, 'deleted')
    assert.equal(await keyRows('byok-m'), 2, 'the wrapped keys stay')
    await fx.domicile.withTenant('byok-m', async (s) => {
      await rejectsWithCode(s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test' }), 'ERR_KEY_PENDING_IMPORT', 'reveal after delete-material')
    })
    const audit = await internalsOf(fx.domicile).controlPlane.withSession((s) => s.query<{ actor: string }>(
      "SELECT actor FROM domicile_control_audit WHERE tenant_id = 'byok-m' AND type = 'key.delete-material'"), { role: 'owner' })
    assert.deepEqual(audit.rows.map((a) => a.actor), ['customer-admin'])
    await rejectsWithCode(importByokMaterial(fx.domicile, 'byok-m', newKeyMaterial()), 'ERR_KEY_IMPORT_INVALID', 'other material')
    assert.equal((await importByokMaterial(fx.domicile, 'byok-m', material)).keyState, 'enabled')
    await fx.domicile.withTenant('byok-m', async (s) => {
      assert.equal(await s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test' }), 'TAX-byok-m-1')
    })
  })

  test('delete-material applies to BYOK tenants only', async () => {
    await seed('kms-m')
    await rejectsWithCode(fx.domicile.keys.deleteMaterial('kms-m'), 'ERR_INPUT_INVALID', 'delete-material on a kms tenant')
    assert.equal((await fx.domicile.getTenant('kms-m')).keyState, 'enabled')
  })
  test('destroy (pkcs11): the key object leaves the token, the certificate says erased', { skip: hsmSkip }, async () => {
    for (const t of ['hsm-a', 'hsm-b']) await seed(t, { custody: 'kms', provider: 'hsm' })
    const keyId = (await fx.domicile.getTenant('hsm-a')).key!.keyId
    assert.deepEqual(await inspector!.keyInfo(keyId), { exists: true, enabled: true, label: 'hsm-a' })
    const r = await destroyTenantKey(fx.domicile, 'hsm-a', { actor: 'test-operator' })
    assert.deepEqual(r.keks.map((k) => [k.providerKind, k.keyId, k.outcome]), [['pkcs11', keyId, 'destroyed']])
    assert.equal((await inspector!.keyInfo(keyId)).exists, false, 'C_DestroyObject removed the key from the token')
    await rejectsWithCode(inspector!.encryptGcm(keyId, Buffer.alloc(32), Buffer.alloc(0)), 'ERR_KEY_NOT_FOUND', 'the token no longer has the key')
    await rejectsWithCode(fx.domicile.keys.restore('hsm-a'), 'ERR_KEY_DESTROYED', 'restore')
    const p = await verifyShred(fx.domicile, 'hsm-a', { sampleSize: 1 })
    assert.equal(p.verdict, 'erased', JSON.stringify(p.checks.filter((c) => c.status === 'fail')))
    assert.deepEqual([p.key.providerKind, p.key.providerState, p.erase.reversible], ['pkcs11', 'not-found', false])
    assert.equal(p.checks.find((c) => c.id === 'kek-destroyed')?.status, 'pass')
    // The other tenant's key on the same token is untouched.
    const other = (await fx.domicile.getTenant('hsm-b')).key!.keyId
    assert.deepEqual(await inspector!.keyInfo(other), { exists: true, enabled: true, label: 'hsm-b' })
    await fx.domicile.withTenant('hsm-b', async (s) => {
      assert.equal(await s.reveal((await s.table('customers').get('c1'))!.tax_id, { purpose: 'test' }), 'TAX-hsm-b-1')
    })
  })
})
