/**
 * The store-driver conformance suite: every store driver (PGlite, PostgreSQL) runs these cases
 * through the whole data layer. It shows rows land only in the home region's store, RLS blocks
 * cross-tenant reads through raw SQL in a scope, the region stamp check, each fail-closed error,
 * and (where the fixture can stop a server) a region going down failing only its own tenants.
 */
import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { createDomicile, defineSchema, limitRegions, type Domicile, type DomicileConfig } from '../../src/index.js'
import { isDomicileError, type DomicileErrorCode } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'

export interface StoreSuiteFixture {
  /** Regions us-east-1 and eu-west-1 plus a control plane; `swapRegions` exchanges the two region stores. */
  config(opts?: { swapRegions?: boolean }): DomicileConfig
  /** Stops / starts a region's server (fixtures with real servers only). */
  stopRegion?(region: string): void
  startRegion?(region: string): void
  /** Embedded stores can be open in one instance at a time. */
  readonly exclusive: boolean
  teardown(): Promise<void>
}

export const suiteSchema = defineSchema({
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text' },
      plan: { type: 'text', nullable: true },
      seats: { type: 'integer', nullable: true },
      big: { type: 'bigint', nullable: true },
      active: { type: 'boolean', nullable: true },
      meta: { type: 'jsonb', nullable: true },
      since: { type: 'timestamptz', nullable: true },
    },
    indexes: ['plan'],
  },
  events: { scope: 'tenant', primaryKey: 'seq', columns: { seq: { type: 'integer' }, kind: { type: 'text' } } },
  contacts: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: { id: { type: 'text' }, email: { type: 'text', nullable: true, sensitive: { searchable: true, normalize: ['trim', 'lower'] } } },
  },
  plans: { scope: 'global', primaryKey: 'id', columns: { id: { type: 'text' }, price_cents: { type: 'integer' } } },
})

async function rejects(p: Promise<unknown>, code: DomicileErrorCode): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDomicileError(e), `expected a DomicileError ${code}, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    return true
  })
}

export function runStoreDriverSuite(opts: { name: string; setup: () => Promise<StoreSuiteFixture> }): void {
  describe(`store driver conformance: ${opts.name}`, { concurrency: false }, () => {
    let fx: StoreSuiteFixture
    let d: Domicile
    const open = (config: DomicileConfig, policy?: Parameters<typeof createDomicile>[0]) => createDomicile({ config, schema: suiteSchema, ...policy })

    before(async () => {
      fx = await opts.setup()
      d = await open(fx.config())
    })
    after(async () => {
      await d?.close()
      await fx?.teardown()
    })

    test('migrate applies to every store and is idempotent', async () => {
      const first = await d.migrate()
      const second = await d.migrate()
      for (const r of [...first, ...second]) assert.ok(r.ok, `${r.store}: ${r.message}`)
      assert.deepEqual(first.map((r) => r.store), ['control-plane', 'us-east-1', 'eu-west-1'])
    })

    test('rows land only in the home region store', async () => {
      await d.addTenant('acme', { region: 'eu-west-1' })
      await d.addTenant('bistro', { region: 'eu-west-1' })
      await d.addTenant('globex', { region: 'us-east-1' })
      for (const [t, n] of [['acme', 3], ['bistro', 2], ['globex', 4]] as const) {
        await d.withTenant(t, async (s) => {
          for (let i = 0; i < n; i++) await s.table('customers').insert({ id: `c${i}`, name: `${t}-${i}`, plan: 'pro' })
        })
      }
      const counts: Record<string, Record<string, number>> = {}
      for (const region of d.regions) {
        const r = await internalsOf(d).router.withRegionAdmin(region, (s) =>
          s.query<{ tenant_id: string; n: number }>('SELECT tenant_id, count(*)::int AS n FROM customers GROUP BY tenant_id ORDER BY tenant_id'))
        counts[region] = Object.fromEntries(r.rows.map((x) => [x.tenant_id, Number(x.n)]))
      }
      assert.deepEqual(counts, { 'us-east-1': { globex: 4 }, 'eu-west-1': { acme: 3, bistro: 2 } })
    })

    test('repository: insert, get, find, update, delete, list with cursor; values round-trip the same on every driver', async () => {
      const since = new Date('2026-01-02T03:04:05.000Z')
      await d.withTenant('acme', async (s) => {
        const c = s.table('customers')
        const row = await c.insert({ id: 'x1', name: 'Ada', plan: 'team', seats: 5, big: '9007199254740993', active: true, meta: { tier: 2, tags: ['a'] }, since })
        assert.deepEqual(row, { id: 'x1', name: 'Ada', plan: 'team', seats: 5, big: '9007199254740993', active: true, meta: { tier: 2, tags: ['a'] }, since })
        assert.deepEqual(await c.get('x1'), row)
        assert.equal(await c.get('nope'), undefined)
        assert.deepEqual((await c.find({ plan: 'team' })).map((r) => r.id), ['x1'])
        assert.deepEqual((await c.find({ plan: 'team', active: false })).map((r) => r.id), [])
        assert.equal((await c.update('x1', { seats: 6 }))?.seats, 6)
        assert.equal(await c.update('nope', { seats: 1 }), undefined)
      })
      // A failed statement aborts a PostgreSQL transaction, so each refusal gets its own scope.
      await rejects(d.withTenant('acme', (s) => s.table('customers').insert({ id: 'x1', name: 'dup' })), 'ERR_CONFLICT')
      await rejects(d.withTenant('acme', (s) => s.table('customers').find({ nope: 1 } as never)), 'ERR_COLUMN_UNKNOWN')
      await rejects(d.withTenant('acme', (s) => s.table('customers').insert({ id: 'x2', name: 'Bob', seats: 'many' } as never)), 'ERR_INPUT_INVALID')
      await rejects(d.withTenant('acme', (s) => s.table('customers').update('x1', { id: 'x9' })), 'ERR_INPUT_INVALID')
      await rejects(d.withTenant('acme', (s) => s.sql('SELECT no_such_column FROM customers')), 'ERR_QUERY_FAILED')
      await d.withTenant('acme', async (s) => {
        const c = s.table('customers')
        assert.equal(await c.delete('x1'), true)
        assert.equal(await c.delete('x1'), false)
        const ids: string[] = []
        let cursor: string | undefined
        do {
          const page = await c.list({ limit: 2, ...(cursor ? { cursor } : {}) })
          assert.ok(page.rows.length <= 2)
          ids.push(...page.rows.map((r) => String(r.id)))
          cursor = page.nextCursor
        } while (cursor)
        assert.deepEqual(ids, ['c0', 'c1', 'c2'])
      })
      await rejects(d.withTenant('acme', (s) => s.table('customers').list({ cursor: 'garbage' })), 'ERR_INPUT_INVALID')
      await rejects(d.withTenant('acme', (s) => s.table('customers').list({ limit: 0 })), 'ERR_INPUT_INVALID')
    })

    test('one transaction per call (domicile.tenant(id).table(name)): the same results, the same errors, the same isolation', async () => {
      const c = d.tenant('bistro').table('customers')
      const row = await c.insert({ id: 'o1', name: 'Oona', plan: 'team', seats: 2, meta: { a: 1 } })
      assert.deepEqual(await c.get('o1'), row)
      assert.deepEqual((await c.find({ plan: 'team' })).map((r) => r.id), ['o1'])
      assert.equal((await c.update('o1', { seats: 3 }))?.seats, 3)
      await rejects(c.insert({ id: 'o1', name: 'dup' }), 'ERR_CONFLICT')
      await rejects(c.find({ nope: 1 } as never), 'ERR_COLUMN_UNKNOWN')
      assert.deepEqual(await d.withTenant('bistro', async (s) => (await s.table('customers').get('o1'))?.seats), 3)
      assert.equal(await d.tenant('acme').table('customers').get('o1'), undefined, "another tenant's rows stay invisible")
      assert.equal(await c.delete('o1'), true)
      await rejects(d.tenant('nobody').table('customers').find({ plan: 'team' }), 'ERR_TENANT_UNKNOWN')

      // Sealed fields: the blind-index find and its false-positive filter on this driver.
      const p = await d.keys.provision('keyed', { custody: 'kms' })
      await d.addTenant('keyed', { region: 'us-east-1', key: p.key, keyState: p.keyState })
      const contacts = d.tenant('keyed').table('contacts')
      await contacts.insert({ id: 'k1', email: 'Kim@Example.com' })
      await contacts.insert({ id: 'k2', email: 'lee@example.com' })
      assert.deepEqual((await contacts.find({ email: ' kim@example.COM' })).map((r) => r.id), ['k1'])
      await d.withTenant('keyed', (s) => s.sql("UPDATE contacts SET email__bidx = (SELECT email__bidx FROM contacts WHERE id = 'k1') WHERE id = 'k2'"))
      assert.deepEqual((await contacts.find({ email: 'kim@example.com' })).map((r) => r.id), ['k1'], 'a colliding candidate is dropped')
      const [k1] = await contacts.find({ email: 'kim@example.com' })
      assert.equal(String(k1?.email), '[sealed]')
      assert.equal(await d.withTenant('keyed', (s) => s.reveal(k1!.email, { purpose: 'conformance: one-shot find returns the right row' })), 'Kim@Example.com')
    })

    test('integer primary keys and required columns', async () => {
      await d.withTenant('globex', async (s) => {
        const ev = s.table('events')
        for (const seq of [3, 1, 2]) await ev.insert({ seq, kind: `k${seq}` })
        assert.deepEqual(await ev.get(2), { seq: 2, kind: 'k2' })
        assert.deepEqual(await ev.get('3'), { seq: 3, kind: 'k3' })
        const first = await ev.list({ limit: 2 })
        assert.deepEqual(first.rows.map((r) => r.seq), [1, 2])
        const second = await ev.list({ limit: 2, cursor: first.nextCursor! })
        assert.deepEqual(second.rows.map((r) => r.seq), [3])
        assert.equal((await ev.update(1, { kind: 'x' }))?.kind, 'x')
        assert.equal(await ev.delete(1), true)
      })
      await rejects(d.withTenant('globex', (s) => s.table('events').insert({ seq: 9 })), 'ERR_INPUT_INVALID')
      await rejects(d.withTenant('globex', (s) => s.table('events').update(2, { kind: null })), 'ERR_INPUT_INVALID')
      await rejects(d.withTenant('globex', (s) => s.table('customers').insert({ id: 'n1', name: null })), 'ERR_INPUT_INVALID')
    })

    test('RLS: raw SQL in a scope sees and changes only its own tenant\'s rows', async () => {
      await d.withTenant('acme', async (s) => {
        const all = await s.sql<{ tenant_id: string }>('SELECT tenant_id FROM customers')
        assert.ok(all.length > 0)
        assert.ok(all.every((r) => r.tenant_id === 'acme'), 'saw another tenant\'s rows')
        const other = await s.sql<{ n: number }>("SELECT count(*)::int AS n FROM customers WHERE tenant_id = 'bistro'")
        assert.equal(Number(other[0]!.n), 0)
        const who = await s.sql<{ u: string; bypass: boolean; su: boolean }>('SELECT current_user AS u, r.rolbypassrls AS bypass, r.rolsuper AS su FROM pg_roles r WHERE r.rolname = current_user')
        assert.deepEqual(who[0], { u: 'domicile_app', bypass: false, su: false })
        await s.sql("UPDATE customers SET plan = 'hacked'")
        const viaKysely = await s.db.selectFrom('customers').select('tenant_id').execute()
        assert.ok(viaKysely.every((r: { tenant_id: string }) => r.tenant_id === 'acme'))
      })
      await rejects(d.withTenant('acme', (s) => s.sql("INSERT INTO customers (tenant_id, id, name) VALUES ('bistro', 'evil', 'x')")), 'ERR_INPUT_INVALID')
      const bistro = await d.withTenant('bistro', (s) => s.table('customers').list())
      assert.ok(bistro.rows.every((r) => r.plan === 'pro'), 'an update in acme\'s scope reached bistro\'s rows')
      assert.ok(bistro.rows.every((r) => r.id !== 'evil'))
    })

    test('a scope is one transaction: an error rolls back repository and query-builder writes', async () => {
      await assert.rejects(d.withTenant('globex', async (s) => {
        await s.table('customers').insert({ id: 'tx1', name: 'gone' })
        await s.db.insertInto('customers').values({ tenant_id: 'globex', id: 'tx2', name: 'gone too' }).execute()
        throw new Error('boom')
      }), /boom/)
      const r = await d.withTenant('globex', (s) => s.sql<{ n: number }>("SELECT count(*)::int AS n FROM customers WHERE id IN ('tx1','tx2')"))
      assert.equal(Number(r[0]!.n), 0)
    })

    test('fail closed: unknown tenant, invalid id, suspended tenant, nested scopes isolated or refused, global table repository', async () => {
      await rejects(d.withTenant('nobody', async () => 1), 'ERR_TENANT_UNKNOWN')
      await rejects(d.withTenant('Not A Slug', async () => 1), 'ERR_TENANT_INVALID')
      await rejects(d.addTenant('acme', { region: 'eu-west-1' }), 'ERR_TENANT_EXISTS')
      await rejects(d.addTenant('newco', { region: 'ap-south-1' }), 'ERR_REGION_UNKNOWN')
      await d.addTenant('paused', { region: 'us-east-1' })
      await d.setTenantStatus('paused', 'suspended')
      await rejects(d.withTenant('paused', async () => 1), 'ERR_TENANT_SUSPENDED')
      await d.setTenantStatus('paused', 'active')
      assert.equal(await d.withTenant('paused', async () => 1), 1)
      if (fx.exclusive) {
        // One embedded session: a scope inside a scope is refused rather than sharing a transaction.
        await rejects(d.withTenant('acme', () => d.withTenant('bistro', async () => 1)), 'ERR_INPUT_INVALID')
      } else {
        // Separate sessions: the inner scope is its own transaction with its own tenant context.
        const seen = await d.withTenant('acme', async (outer) => {
          const inner = await d.withTenant('bistro', (s) => s.sql<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM customers'))
          const mine = await outer.sql<{ tenant_id: string }>('SELECT DISTINCT tenant_id FROM customers')
          return { inner: inner.map((r) => r.tenant_id), outer: mine.map((r) => r.tenant_id) }
        })
        assert.deepEqual(seen, { inner: ['bistro'], outer: ['acme'] })
      }
      await rejects(d.withTenant('acme', async (s) => s.table('plans').list()), 'ERR_QUERY_UNSUPPORTED')
    })

    test('fail closed: a region outside the serving policy is ERR_REGION_UNKNOWN, never another region', async () => {
      if (fx.exclusive) await d.close()
      const euOnly = await open(fx.config(), { regionPolicy: (s) => limitRegions(s, ['eu-west-1']) })
      try {
        await rejects(euOnly.withTenant('globex', async () => 1), 'ERR_REGION_UNKNOWN')
        assert.equal((await euOnly.withTenant('acme', (s) => s.table('customers').list())).rows.length, 3)
      } finally {
        await euOnly.close()
        if (fx.exclusive) d = await open(fx.config())
      }
    })

    test('region stamp: swapped connection settings are refused with ERR_REGION_MISMATCH', async () => {
      if (fx.exclusive) await d.close()
      const swapped = await open(fx.config({ swapRegions: true }))
      try {
        await rejects(swapped.withTenant('acme', async () => 1), 'ERR_REGION_MISMATCH')
        await rejects(swapped.withTenant('globex', async () => 1), 'ERR_REGION_MISMATCH')
        const results = await swapped.migrate()
        assert.deepEqual(results.filter((r) => !r.ok).map((r) => [r.store, r.code]), [['us-east-1', 'ERR_REGION_MISMATCH'], ['eu-west-1', 'ERR_REGION_MISMATCH']])
        const regions = await swapped.listRegions()
        assert.ok(regions.every((r) => !r.reachable && r.code === 'ERR_REGION_MISMATCH'))
      } finally {
        await swapped.close()
        if (fx.exclusive) d = await open(fx.config())
      }
      // The correctly configured instance still works and nothing moved.
      assert.equal((await d.withTenant('globex', (s) => s.table('customers').list())).rows.length, 4)
    })

    test('a region going down fails only its own tenants, fast, and recovers', { skip: opts.name.startsWith('pglite') ? 'an embedded store cannot be stopped from outside the process; covered by the postgres run' : false }, async () => {
      assert.ok(fx.stopRegion && fx.startRegion, 'fixture must be able to stop a region')
      fx.stopRegion('eu-west-1')
      try {
        const t0 = Date.now()
        await rejects(d.withTenant('acme', (s) => s.table('customers').list()), 'ERR_REGION_UNAVAILABLE')
        assert.ok(Date.now() - t0 < 5000, 'unavailability must be reported within the connect timeout')
        assert.equal((await d.withTenant('globex', (s) => s.table('customers').list())).rows.length, 4)
        const regions = Object.fromEntries((await d.listRegions()).map((r) => [r.name, r.reachable]))
        assert.deepEqual(regions, { 'us-east-1': true, 'eu-west-1': false })
      } finally {
        fx.startRegion('eu-west-1')
      }
      assert.equal((await d.withTenant('acme', (s) => s.table('customers').list())).rows.length, 3)
    })
  })
}
