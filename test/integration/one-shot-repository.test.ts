/**
 * `domicile.tenant(id).table(name)`: one transaction per repository call, on real (in-memory
 * PGlite) region stores. It must behave exactly like the same call inside `withTenant`: sealed
 * fields, blind-index search with false positives dropped, fail-closed tenants, regions and keys.
 * Its `find` filters and wraps the rows while the COMMIT is in flight; the order is observed on
 * the store's session.
 */
import { after, before, describe, test } from 'node:test'
import { strict as assert } from 'node:assert'
import type { RegionSupplier, Row, StoreDriver, StoreSession } from '../../src/index.js'
import { FieldEncryptor } from '../../src/fields/field-encryptor.js'
import { isSealedValue } from '../../src/fields/sealed-value.js'
import { createDomicileFixture, rejectsWithCode, type DomicileFixture } from '../support/domicile-fixture.js'

const REGION = 'eu-west-1'

/** Records COMMITs on the region's sessions: when each is sent and when it completes. */
function observeCommits(events: string[]): (supplier: RegionSupplier) => RegionSupplier {
  const observed = new WeakMap<StoreDriver, StoreDriver>()
  // One wrapper per connection: the router keys per-connection state on the session object.
  const sessions = new WeakMap<StoreSession, StoreSession>()
  const wrapSession = (s: StoreSession): StoreSession => {
    let w = sessions.get(s)
    if (!w) {
      w = observeSession(s)
      sessions.set(s, w)
    }
    return w
  }
  const observeSession = (s: StoreSession): StoreSession => ({
    query: (sql, params) => s.query(sql, params),
    discard: () => s.discard(),
    async exec(sql) {
      if (!/\bCOMMIT$/.test(sql)) return s.exec(sql)
      events.push('commit sent')
      const r = await s.exec(sql)
      events.push('commit done')
      return r
    },
  })
  return (supplier) => (region, cell) => {
    const d = supplier(region, cell)
    if (!d) return d
    let w = observed.get(d)
    if (w === undefined) {
      w = {
        kind: d.kind,
        description: d.description,
        separateOwner: d.separateOwner,
        init: () => d.init(),
        withSession: (fn, opts) => d.withSession((s) => fn(wrapSession(s)), opts),
        listen: (channel, onPayload, opts) => d.listen(channel, onPayload, opts),
        close: () => d.close(),
      }
      observed.set(d, w)
    }
    return w satisfies StoreDriver
  }
}

describe('one transaction per call: domicile.tenant(id).table(name)', { concurrency: false }, () => {
  let fx: DomicileFixture
  const events: string[] = []

  before(async () => {
    fx = await createDomicileFixture({ regions: [REGION], regionPolicy: observeCommits(events) })
    await fx.addTenant('os-a', { region: REGION })
    await fx.addTenant('os-b', { region: REGION })
  })
  after(async () => {
    await fx?.close()
  })

  test('insert, get, find, update, list and delete behave as inside withTenant; sensitive fields stay sealed', async () => {
    const customers = fx.domicile.tenant('os-a').table('customers')
    const inserted = await customers.insert({ id: 'c1', name: 'Ada', email: ' Ada@Example.EU', tax_id: 'DE1', plan: 'pro' })
    assert.ok(isSealedValue(inserted.email) && String(inserted.email) === '[sealed]')
    await customers.insert({ id: 'c2', name: 'Bob', email: 'bob@example.eu', tax_id: 'DE2', plan: 'free' })

    const got = await customers.get('c1')
    assert.equal(got?.name, 'Ada')
    assert.ok(isSealedValue(got?.email) && isSealedValue(got?.tax_id))
    for (const probe of ['ada@example.eu', '  ADA@EXAMPLE.EU ']) {
      assert.deepEqual((await customers.find({ email: probe })).map((r) => r.id), ['c1'], probe)
    }
    assert.deepEqual((await customers.find({ email: 'nobody@example.eu' })).map((r) => r.id), [])
    assert.deepEqual((await customers.find({ plan: 'free' })).map((r) => r.id), ['c2'])
    const [found] = await customers.find({ email: 'bob@example.eu' })
    assert.ok(isSealedValue(found?.email) && isSealedValue(found?.tax_id), 'find returns sealed values')
    assert.equal(await fx.domicile.withTenant('os-a', (s) => s.reveal(found!.email, { purpose: 'test: one-shot find returns the right row' })), 'bob@example.eu')

    assert.equal((await customers.update('c2', { plan: 'pro', email: 'robert@example.eu' }))?.plan, 'pro')
    assert.deepEqual((await customers.find({ email: 'robert@example.eu' })).map((r) => r.id), ['c2'])
    assert.deepEqual((await customers.list({ limit: 10 })).rows.map((r) => r.id), ['c1', 'c2'])
    assert.equal(await customers.delete('c2'), true)
    assert.deepEqual((await customers.list()).rows.map((r) => r.id), ['c1'])

    // Same rows through withTenant; the other tenant sees none of them.
    assert.deepEqual(await fx.domicile.withTenant('os-a', async (s) => (await s.table('customers').find({ email: 'ada@example.eu' })).map((r) => r.id)), ['c1'])
    assert.deepEqual((await fx.domicile.tenant('os-b').table('customers').find({ email: 'ada@example.eu' })).map((r) => r.id), [])
    assert.equal(await fx.domicile.tenant('os-b').table('customers').get('c1'), undefined)
  })

  test('a blind-index collision is dropped: the candidate is opened and compared, in both paths', async () => {
    const customers = fx.domicile.tenant('os-a').table('customers')
    await customers.insert({ id: 'x1', name: 'Xavier', email: 'xavier@example.eu', tax_id: 'DE3' })
    await customers.insert({ id: 'x2', name: 'Yvonne', email: 'yvonne@example.eu', tax_id: 'DE4' })
    // Force a collision: x2's blind index becomes x1's, as two values sharing 4 bytes would.
    await fx.domicile.withTenant('os-a', (s) => s.sql("UPDATE customers SET email__bidx = (SELECT email__bidx FROM customers WHERE id = 'x1') WHERE id = 'x2'"))
    const candidates = await fx.domicile.withTenant('os-a', (s) => s.sql<Row>("SELECT id FROM customers WHERE email__bidx = (SELECT email__bidx FROM customers WHERE id = 'x1') ORDER BY id"))
    assert.deepEqual(candidates.map((r) => r.id), ['x1', 'x2'], 'the store returns both candidates')
    assert.deepEqual((await customers.find({ email: 'xavier@example.eu' })).map((r) => r.id), ['x1'])
    assert.deepEqual(await fx.domicile.withTenant('os-a', async (s) => (await s.table('customers').find({ email: 'xavier@example.eu' })).map((r) => r.id)), ['x1'])
    // And x2 is no longer found by its own value (its index now points elsewhere).
    assert.deepEqual((await customers.find({ email: 'yvonne@example.eu' })).map((r) => r.id), [])
  })

  test('find filters and wraps while the COMMIT is in flight; inside withTenant the filter runs before', async () => {
    const seen: string[] = []
    // The filter, one code path for both (src/data/candidate-filter.ts): matchesHeld with held keys.
    type Check = (...a: unknown[]) => unknown
    const proto = FieldEncryptor.prototype as unknown as { matchesHeld: Check }
    const original = proto.matchesHeld
    proto.matchesHeld = function (this: unknown, ...a: unknown[]) {
      events.push('matchesHeld')
      return original.apply(this, a)
    }
    try {
      events.length = 0
      await fx.domicile.tenant('os-a').table('customers').find({ email: 'ada@example.eu' })
      seen.push(events.join(' > '))
      events.length = 0
      await fx.domicile.withTenant('os-a', (s) => s.table('customers').find({ email: 'ada@example.eu' }))
      seen.push(events.join(' > '))
    } finally {
      proto.matchesHeld = original
    }
    assert.deepEqual(seen, ['commit sent > matchesHeld > commit done', 'matchesHeld > commit sent > commit done'])
  })

  test('the keys a find held are released once per find, also when the filter fails', async () => {
    const proto = FieldEncryptor.prototype as unknown as { releaseHeldKeys: () => void; holdKeyFor: (s: Uint8Array) => unknown }
    const original = { release: proto.releaseHeldKeys, hold: proto.holdKeyFor }
    const seen = { held: 0, released: 0 }
    proto.holdKeyFor = function (this: unknown, stored: Uint8Array) {
      seen.held++
      return original.hold.call(this, stored)
    }
    proto.releaseHeldKeys = function (this: unknown) {
      seen.released++
      return original.release.call(this)
    }
    try {
      const customers = fx.domicile.tenant('os-a').table('customers')
      await customers.insert({ id: 'h1', name: 'Hal', email: 'hal@example.eu' })
      assert.deepEqual((await customers.find({ email: 'hal@example.eu' })).map((r) => r.id), ['h1'])
      assert.deepEqual(seen, { held: 1, released: 1 })
      await fx.domicile.withTenant('os-a', (s) => s.sql("UPDATE customers SET email = set_byte(email, 20, get_byte(email, 20) # 1) WHERE id = 'h1'"))
      await rejectsWithCode(customers.find({ email: 'hal@example.eu' }), 'ERR_DECRYPTION_FAILED')
      assert.deepEqual(seen, { held: 2, released: 2 })
    } finally {
      proto.releaseHeldKeys = original.release
      proto.holdKeyFor = original.hold
    }
  })

  test('tampered ciphertext of a candidate fails the find opaquely, after the read-only transaction', async () => {
    const customers = fx.domicile.tenant('os-a').table('customers')
    await customers.insert({ id: 't1', name: 'Tam', email: 'tam@example.eu', tax_id: 'DE5' })
    await fx.domicile.withTenant('os-a', (s) => s.sql("UPDATE customers SET email = set_byte(email, 20, get_byte(email, 20) # 1) WHERE id = 't1'"))
    const e = await rejectsWithCode(customers.find({ email: 'tam@example.eu' }), 'ERR_DECRYPTION_FAILED')
    assert.ok(!e.message.includes('tam@example.eu'))
    // Non-sensitive lookups on the same row still work.
    assert.deepEqual((await customers.find({ name: 'Tam' })).map((r) => r.id), ['t1'])
  })

  test('fails closed: unknown tenant, suspended tenant, global table, revoked key', async () => {
    await rejectsWithCode(fx.domicile.tenant('no-such-tenant').table('customers').find({ name: 'x' }), 'ERR_TENANT_UNKNOWN')
    assert.throws(() => fx.domicile.tenant('os-a').table('plans'), (e: unknown) => (e as { code?: string }).code === 'ERR_QUERY_UNSUPPORTED')
    assert.throws(() => fx.domicile.tenant('os-a').table('nope'), (e: unknown) => (e as { code?: string }).code === 'ERR_TABLE_UNKNOWN')

    await fx.addTenant('os-c', { region: REGION })
    const c = fx.domicile.tenant('os-c').table('customers')
    await c.insert({ id: 'r1', name: 'Rae', email: 'rae@example.eu', tax_id: 'DE6' })
    await fx.domicile.setTenantStatus('os-c', 'suspended')
    await rejectsWithCode(c.find({ name: 'Rae' }), 'ERR_TENANT_SUSPENDED')
    await fx.domicile.setTenantStatus('os-c', 'active')

    await fx.domicile.keys.revoke('os-c', 'test-operator')
    await rejectsWithCode(c.find({ email: 'rae@example.eu' }), 'ERR_KEY_REVOKED')
    const [row] = await c.find({ name: 'Rae' })
    assert.equal(row?.id, 'r1', 'non-sensitive columns stay readable after the revoke')
    await rejectsWithCode(c.insert({ id: 'r2', name: 'Ray', email: 'ray@example.eu' }), 'ERR_KEY_REVOKED')
  })
})
