/**
 * Every reveal attempt leaves exactly one audit record, and every failure to open a sealed value is
 * the one opaque error (issue #9, item 4), on real (in-memory PGlite) region stores. Property tests
 * (fast-check) push random byte strings and tampered sealed values through `scope.reveal` and
 * `scope.revealRows` and count the tenant's `field.reveal` records in the region store directly
 * (owner session). Also: the records of a reveal in a transaction that an error aborted, and the
 * refusal of a transaction an error aborted but whose callback returned normally. Revocation
 * reaching a scope opened before it (item 3), and key-provider calls audited in a createDomicile
 * instance (item 5).
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import fc from 'fast-check'
import { DecryptionFailedError, isDomicileError } from '../../src/errors.js'
import { SealedValue, sealedBytes } from '../../src/fields/sealed-value.js'
import type { Row } from '../../src/index.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { createDomicileFixture, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'

const REGION = 'eu-west-1'
const OPAQUE = 'ERR_DECRYPTION_FAILED'

interface AuditRow { outcome: string; actor: string | null; detail: Record<string, unknown> }

describe('reveal: one audit record per attempt, one opaque failure', { concurrency: false }, () => {
  let fx: DomicileFixture

  before(async () => {
    fx = await createDomicileFixture({ regions: [REGION] })
  })
  after(async () => {
    await fx?.close()
  })

  /** The tenant's field.reveal records, read as the store owner (not through the scope). */
  const records = async (tenant: string): Promise<AuditRow[]> =>
    (await fx.regionAdmin(REGION, (s) => s.query<AuditRow>(
      "SELECT outcome, actor, detail FROM domicile_audit WHERE tenant_id = $1 AND type = 'field.reveal' ORDER BY id", [tenant]))).rows

  /** A tenant with one row c1 whose tax_id is sealed; returns the sealed bytes. */
  async function tenantWithRow(tenant: string): Promise<Uint8Array> {
    await fx.addTenant(tenant, { region: REGION })
    const row = await fx.domicile.withTenant(tenant, (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', tax_id: 'DE-SECRET-1' }))
    return Uint8Array.from(sealedBytes(row.tax_id as SealedValue))
  }

  const sealedAt = (tenant: string, bytes: Uint8Array, rowKey = 'c1') => new SealedValue(bytes, { tenantId: tenant, table: 'customers', column: 'tax_id', rowKey })

  /** Any byte string, and byte strings with a well-formed-looking header (version 1, any key number). */
  const candidateBytes = fc.oneof(
    fc.uint8Array({ minLength: 0, maxLength: 96 }),
    fc.tuple(fc.integer({ min: 0, max: 0xffff_ffff }), fc.uint8Array({ minLength: 0, maxLength: 64 })).map(([n, tail]) => {
      const b = new Uint8Array(5 + 29 + tail.length)
      b[0] = 0x01
      new DataView(b.buffer).setUint32(1, n)
      b.set(tail, 34)
      return b
    }),
  )

  /** A genuine sealed value changed: a bit flipped, cut short, extended, or its key number replaced. */
  const tampering = fc.oneof(
    fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({ kind: fc.constant('extend' as const), extra: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
    fc.record({ kind: fc.constant('keyNumber' as const), n: fc.oneof(fc.constantFrom(0, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_ffff), fc.integer({ min: 0, max: 0xffff_ffff })) }),
  )
  function tamper(sealed: Uint8Array, t: { kind: string; at?: number; bit?: number; extra?: Uint8Array; n?: number }): Uint8Array {
    const b = Uint8Array.from(sealed)
    switch (t.kind) {
      case 'flip':
        b[t.at! % b.length]! ^= 1 << t.bit!
        return b
      case 'cut':
        return b.subarray(0, t.at! % b.length)
      case 'extend':
        return Uint8Array.from([...b, ...t.extra!])
      default: {
        // Key number 1 is the real one: then the value is unchanged, so flip a body bit as well.
        new DataView(b.buffer).setUint32(1, t.n!)
        if (t.n === 1) b[b.length - 1]! ^= 1
        return b
      }
    }
  }

  test('property: any byte string revealed as a sealed value fails with the one opaque error and leaves one audit record', async () => {
    const tenant = 'fuzz-bytes'
    await tenantWithRow(tenant)
    let attempts = 0
    await fc.assert(fc.asyncProperty(candidateBytes, async (bytes) => {
      const before = (await records(tenant)).length
      await fx.domicile.withTenant(tenant, async (s) => {
        await rejectsWithCode(s.reveal(sealedAt(tenant, bytes), { purpose: 'fuzz: random bytes' }), OPAQUE)
      })
      attempts++
      const after = await records(tenant)
      assert.equal(after.length, before + 1, 'exactly one audit record for the attempt')
      const last = after.at(-1)!
      assert.equal(last.outcome, 'denied')
      assert.equal(last.detail.code, OPAQUE)
      assert.equal(last.detail.rowKey, 'c1')
    }), { numRuns: 60 })
    assert.ok(attempts >= 60)
  })

  test('property: tampered sealed values through reveal and revealRows: the one opaque error, one record per value', async () => {
    const tenant = 'fuzz-tamper'
    const genuine = await tenantWithRow(tenant)
    await fc.assert(fc.asyncProperty(fc.array(tampering, { minLength: 1, maxLength: 4 }), fc.boolean(), async (changes, viaRows) => {
      const values = changes.map((t) => sealedAt(tenant, tamper(genuine, t)))
      const before = (await records(tenant)).length
      await fx.domicile.withTenant(tenant, async (s) => {
        // Every reveal settles before the scope ends (allSettled, not all).
        const errors = viaRows
          ? [await s.revealRows(values.map((v, i) => ({ id: `r${i}`, tax_id: v }) as Row), { purpose: 'fuzz: tampered rows' }).then(() => undefined, (err: unknown) => err)]
          : (await Promise.allSettled(values.map((v) => s.reveal(v, { purpose: 'fuzz: tampered value' })))).map((r) => (r.status === 'rejected' ? r.reason : undefined))
        for (const e of errors) {
          assert.ok(isDomicileError(e, OPAQUE), `expected ${OPAQUE}, got ${String(e)}`)
          assert.equal((e as Error).message, new DecryptionFailedError().message, 'the one message')
        }
      })
      const after = await records(tenant)
      assert.equal(after.length, before + values.length, 'one audit record per value')
      for (const r of after.slice(before)) {
        assert.equal(r.outcome, 'denied')
        assert.equal(r.detail.code, OPAQUE)
      }
    }), { numRuns: 40 })
  })

  test('a key number of 2^31 or more in the header: the opaque error, no SQL error, one record', async () => {
    const tenant = 'big-key-number'
    const genuine = await tenantWithRow(tenant)
    for (const n of [0x8000_0000, 0xffff_ffff]) {
      const b = Uint8Array.from(genuine)
      new DataView(b.buffer).setUint32(1, n)
      const before = (await records(tenant)).length
      // The scope goes on after the failure: the transaction was not aborted by it.
      const name = await fx.domicile.withTenant(tenant, async (s) => {
        await rejectsWithCode(s.reveal(sealedAt(tenant, b), { purpose: 'header check' }), OPAQUE)
        return (await s.table('customers').get('c1'))?.name
      })
      assert.equal(name, 'Ada')
      assert.equal((await records(tenant)).length, before + 1)
    }
  })

  test('revealRows with good and bad values: nothing is returned, every value has its record, the opened ones say withheld', async () => {
    const tenant = 'mixed-page'
    const genuine = await tenantWithRow(tenant)
    const bad = Uint8Array.from(genuine)
    bad[20]! ^= 1
    const before = (await records(tenant)).length
    await fx.domicile.withTenant(tenant, async (s) => {
      const [row] = await s.table('customers').find({ name: 'Ada' })
      await rejectsWithCode(s.revealRows([row!, { id: 'c1', tax_id: sealedAt(tenant, bad) }, row!], { purpose: 'page', actor: 'agent-9' }), OPAQUE)
    })
    const after = (await records(tenant)).slice(before)
    assert.deepEqual(after.map((r) => [r.outcome, r.detail.code, r.detail.withheld ?? 0, r.actor]), [
      ['denied', OPAQUE, 1, 'agent-9'],
      ['denied', OPAQUE, 0, 'agent-9'],
      ['denied', OPAQUE, 1, 'agent-9'],
    ])
  })

  test('a value that is not a sealed value, and a call without purpose, are recorded too', async () => {
    const tenant = 'not-sealed'
    const genuine = await tenantWithRow(tenant)
    const before = (await records(tenant)).length
    await fx.domicile.withTenant(tenant, async (s) => {
      await rejectsWithCode(s.reveal('plain text', { purpose: 'probe' }), 'ERR_INPUT_INVALID')
      await rejectsWithCode(s.reveal(sealedAt(tenant, genuine), { purpose: '' }), 'ERR_INPUT_INVALID')
    })
    const after = (await records(tenant)).slice(before)
    assert.deepEqual(after.map((r) => [r.outcome, r.detail.code]), [['denied', 'ERR_INPUT_INVALID'], ['denied', 'ERR_INPUT_INVALID']])
    assert.equal(after[1]!.detail.purpose, undefined, 'an invalid purpose is not stored')
  })

  test('a reveal in a transaction an error aborted: the records are written after the rollback, and the scope does not report a commit', async () => {
    const tenant = 'aborted-tx'
    await tenantWithRow(tenant)
    const before = (await records(tenant)).length
    const outcome = await fx.domicile.withTenant(tenant, async (s) => {
      const [row] = await s.table('customers').find({ name: 'Ada' })
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'before the error', actor: 'a1' }), 'DE-SECRET-1')
      await s.sql('SELECT 1/0').catch(() => undefined) // the application swallows the error; the transaction is aborted
      const e = await s.reveal(row!.tax_id, { purpose: 'after the error', actor: 'a1' }).then(() => undefined, (err: unknown) => err)
      assert.ok(isDomicileError(e), 'the reveal in the aborted transaction fails')
      return 'callback returned normally'
    }).then((v) => v, (e: unknown) => (isDomicileError(e) ? e.code : String(e)))
    assert.notEqual(outcome, 'callback returned normally', 'a transaction an error aborted must not be reported as committed')
    const after = (await records(tenant)).slice(before)
    assert.equal(after.length, 2, 'one record per reveal attempt')
    assert.deepEqual(after.map((r) => [r.outcome, r.detail.purpose, r.detail.rolledBack]), [
      ['ok', 'before the error', 1],
      ['error', 'after the error', 1],
    ])
  })

  test('a revoked key: ERR_KEY_REVOKED and one record per attempt', async () => {
    const tenant = 'revoked-reveal'
    const genuine = await tenantWithRow(tenant)
    await fx.domicile.keys.revoke(tenant, 'test-operator')
    const before = (await records(tenant)).length
    await fx.domicile.withTenant(tenant, async (s) => {
      await rejectsWithCode(s.reveal(sealedAt(tenant, genuine), { purpose: 'after revoke' }), 'ERR_KEY_REVOKED')
      await rejectsWithCode(s.revealRows([{ a: sealedAt(tenant, genuine), b: sealedAt(tenant, genuine) }], { purpose: 'after revoke' }), 'ERR_KEY_REVOKED')
    })
    const after = (await records(tenant)).slice(before)
    assert.deepEqual(after.map((r) => [r.outcome, r.detail.code]), Array(3).fill(['denied', 'ERR_KEY_REVOKED']))
  })

  test('revocation reaches a scope opened before it: reveal, seal and blind-index search fail with ERR_KEY_REVOKED at once', async () => {
    const tenant = 'open-scope'
    await tenantWithRow(tenant)
    await fx.domicile.withTenant(tenant, async (s) => {
      const row = await s.table('customers').get('c1')
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'before the revoke' }), 'DE-SECRET-1', 'the key is in use in this scope')
      await fx.domicile.keys.revoke(tenant, 'test-operator') // this process learns of it at once
      await rejectsWithCode(s.reveal(row!.tax_id, { purpose: 'after the revoke' }), 'ERR_KEY_REVOKED', 'reveal in the open scope')
      await rejectsWithCode(s.table('customers').insert({ id: 'c2', name: 'New', tax_id: 'DE-2' }), 'ERR_KEY_REVOKED', 'seal in the open scope')
      await rejectsWithCode(s.table('customers').find({ email: 'ada@example.eu' }), 'ERR_KEY_REVOKED', 'blind index in the open scope')
      assert.equal((await s.table('customers').get('c1'))?.name, 'Ada', 'other columns stay readable')
    })
    await fx.domicile.keys.restore(tenant, 'test-operator')
    await fx.domicile.withTenant(tenant, async (s) => {
      const row = await s.table('customers').get('c1')
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'after the restore' }), 'DE-SECRET-1')
    })
  })

  test('a restore also reaches an open scope, and a scope keeps using keys while its entry is unchanged', async () => {
    const tenant = 'open-scope-restore'
    await tenantWithRow(tenant)
    await fx.domicile.keys.revoke(tenant, 'test-operator')
    await fx.domicile.withTenant(tenant, async (s) => {
      const row = await s.table('customers').get('c1')
      await rejectsWithCode(s.reveal(row!.tax_id, { purpose: 'while revoked' }), 'ERR_KEY_REVOKED')
      await fx.domicile.keys.restore(tenant, 'test-operator')
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'after the restore' }), 'DE-SECRET-1')
      assert.equal(await s.reveal(row!.tax_id, { purpose: 'again' }), 'DE-SECRET-1')
    })
  })
})

describe('key-provider calls leave audit records in a createDomicile instance', { concurrency: false }, () => {
  let fx: DomicileFixture

  before(async () => {
    fx = await createDomicileFixture({ regions: [REGION] })
  })
  after(async () => {
    await fx?.close()
  })

  interface KeyEvent { type: string; outcome: string; tenant_id: string | null; detail: Record<string, unknown> }

  test('admin calls in the control plane; wrap and unwrap for a tenant transaction in its region, in that transaction', async () => {
    const tenant = 'provider-audit'
    const rec = await fx.addTenant(tenant, { region: REGION, cacheTtlMs: 0 }) // TTL 0: every use unwraps
    const keyId = rec.key!.keyId
    await fx.domicile.keys.status(tenant)

    const control = await internalsOf(fx.domicile).controlPlane.withSession((s) => s.query<KeyEvent>(
      "SELECT type, outcome, tenant_id, detail FROM domicile_control_audit WHERE type LIKE 'key.%' AND detail->>'keyId' = $1 ORDER BY id", [keyId]))
    assert.deepEqual(control.rows.map((r) => [r.type, r.outcome]), [['key.create', 'ok'], ['key.status', 'ok']])
    assert.equal(control.rows[0]!.detail.provider, rec.key!.provider)

    await fx.domicile.withTenant(tenant, async (s) => {
      const row = await s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@example.eu', tax_id: 'DE-1' })
      assert.equal(await s.reveal(row.tax_id, { purpose: 'provider audit' }), 'DE-1')
    })
    const region = await fx.regionAdmin(REGION, (s) => s.query<KeyEvent>(
      "SELECT type, outcome, tenant_id, detail FROM domicile_audit WHERE tenant_id = $1 AND type LIKE 'key.%' ORDER BY id", [tenant]))
    const seen = region.rows.map((r) => `${r.type} ${r.detail.purpose}#${r.detail.dataKeyId} ${r.outcome}`)
    for (const want of ['key.wrap data#1 ok', 'key.wrap index#1 ok', 'key.unwrap data#1 ok']) assert.ok(seen.includes(want), `${want} in ${JSON.stringify(seen)}`)
    for (const r of region.rows) {
      assert.equal(r.detail.keyId, keyId)
      assert.equal(r.detail.region, REGION)
    }
  })

  test('the record of a provider call made in a transaction that rolls back survives it', async () => {
    const tenant = 'provider-audit-rb'
    await fx.addTenant(tenant, { region: REGION })
    await assert.rejects(fx.domicile.withTenant(tenant, async (s) => {
      await s.table('customers').insert({ id: 'c1', name: 'Ada', tax_id: 'DE-1' })
      throw new Error('boom')
    }), /boom/)
    const region = await fx.regionAdmin(REGION, (s) => s.query<KeyEvent>(
      "SELECT type, outcome, tenant_id, detail FROM domicile_audit WHERE tenant_id = $1 AND type = 'key.wrap' ORDER BY id", [tenant]))
    assert.equal(region.rows.length, 1, 'the data key\'s wrap, once')
    assert.equal(region.rows[0]!.detail.rolledBack, 1)
  })
})
