/**
 * Tenant relocation between regions (issue #10 item 3), on real PostgreSQL: two clusters, one per
 * region, the control plane beside the first, the production two-role setup. A concurrent writer
 * runs during the move; every write it was told succeeded must be in the target region afterwards,
 * exactly once, and the source must hold nothing of the tenant (read directly from its store).
 */
import { strict as assert } from 'node:assert'
import { after, before, describe, test } from 'node:test'
import type { Domicile } from '../../src/index.js'
import { isDomicileError } from '../../src/errors.js'
import { internalsOf } from '../../src/domicile-internals.js'
import { abortTenantMove, moveTenant, resumeTenantMove } from '../../src/ops/tenant-move.js'
import type { ProgressEvent } from '../../src/ops/progress.js'
import { orderTables, planTables } from '../../src/ops/tenant-move-plan.js'
import { readChunk, writeChunk } from '../../src/ops/tenant-move-copier.js'
import { readTx } from '../../src/ops/tenant-move-sql.js'
import { postgresUnavailable } from '../support/pg-cluster.js'
import { seedTenant, startWriter } from '../support/move-writer.js'
import { addKmsTenant, EU, physicalCounts, revealAll, startMoveEnv, US, type MoveEnv } from '../support/tenant-move-env.js'

const missing = postgresUnavailable()

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDomicileError(e), `expected a DomicileError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    return true
  })
}

function assertSameRows(actual: Map<string, Record<string, unknown>>, expected: Map<string, Record<string, unknown>>): void {
  assert.deepEqual([...actual.keys()].sort(), [...expected.keys()].sort(), 'the same rows, each once')
  for (const [k, want] of expected) {
    const got = actual.get(k)!
    for (const [col, v] of Object.entries(want)) assert.deepEqual(got[col], v, `${k}.${col}`)
  }
}

describe('tenant move between regions (real PostgreSQL, two clusters)', { skip: missing }, () => {
  let env: MoveEnv
  let d: Domicile

  before(async () => {
    // The owner may set session_replication_role (README's optional grant): foreign keys are
    // checked once per chunk. tenant-move-crash.test.ts runs without it (per-row checks).
    env = await startMoveEnv('move', { replicationRole: true })
    d = await env.open()
  })

  after(async () => {
    await d?.close()
    await env?.destroy()
  })

  test('a move with a concurrent writer: every acknowledged write is in the target once, the source holds nothing', async () => {
    await addKmsTenant(d, 'acme', EU)
    await addKmsTenant(d, 'globex', EU)
    const model = await seedTenant(d, 'acme', 1500)
    const bystander = await seedTenant(d, 'globex', 50)
    const writer = startWriter(d, 'acme', model, { prefix: 'w' })
    const other = startWriter(d, 'globex', bystander, { prefix: 'g' })
    await new Promise((r) => setTimeout(r, 300))
    const events: ProgressEvent[] = []
    const notes: string[] = []
    const result = await moveTenant(d, 'acme', {
      to: US, actor: 'test-operator', batchRows: 400, purgeGraceMs: 300,
      progress: { update: (e) => events.push(e), note: (m) => notes.push(m) },
    })
    await new Promise((r) => setTimeout(r, 200))
    await writer.stop()
    await other.stop()
    assert.deepEqual(writer.stats.errors, [])
    assert.deepEqual(other.stats.errors, [])
    assert.ok(writer.stats.acknowledged > 20, `the writer kept writing (${writer.stats.acknowledged})`)

    assert.equal(result.state, 'done')
    assert.equal(result.from, EU)
    assert.equal(result.to, US)
    assert.ok(result.freezeMs !== null && result.freezeMs < 2000, `freeze ${result.freezeMs} ms`)
    // The freeze bound (2 s by default) as the application sees it: no write waited longer.
    assert.ok(writer.stats.longestRetryMs < 2000, `a write waited ${writer.stats.longestRetryMs} ms`)
    assert.ok(events.some((e) => e.state === 'copy' && e.unit === 'rows' && e.done > 0), 'copy progress in rows')
    assert.ok(notes.some((n) => /write freeze \d+ ms/.test(n)), 'the freeze is printed')
    assert.ok(notes.some((n) => /^orders: foreign keys checked once per chunk \(\d+ chunks?\)/.test(n)), `orders copied with one foreign-key check per chunk: ${notes.join(' | ')}`)

    const t = await d.getTenant('acme')
    assert.equal(t.region, US)
    assert.equal(t.status, 'active')
    // Decrypted content through withTenant + reveal equals the model (ciphertext opens in the target).
    assertSameRows(await revealAll(d, 'acme'), model)
    assertSameRows(await revealAll(d, 'globex'), bystander)
    const customers = [...model.keys()].filter((k) => k.startsWith('customers/')).length
    const orders = [...model.keys()].filter((k) => k.startsWith('orders/')).length
    const target = await physicalCounts(env, US, 'acme')
    assert.equal(target.customers, customers)
    assert.equal(target.orders, orders)
    assert.ok(target.keys >= 2, 'data and index keys in the target')
    assert.deepEqual(await physicalCounts(env, EU, 'acme'), { customers: 0, orders: 0, keys: 0 }, 'the source holds nothing of the tenant')
    // The other tenant of the source region is untouched.
    const g = await physicalCounts(env, EU, 'globex')
    assert.equal(g.customers, [...bystander.keys()].filter((k) => k.startsWith('customers/')).length)
    // Key numbers kept their values; the target's wrapped keys differ from the source's (rewrapped).
    const keys = await env.direct[US]!.query("SELECT purpose, key_number FROM domicile_data_keys WHERE tenant_id = 'acme' ORDER BY purpose, key_number")
    assert.ok(keys.rows.some((r) => r.purpose === 'data' && r.key_number === 1))
    assert.ok(keys.rows.some((r) => r.purpose === 'index'))
    // Blind-index search works in the target.
    const found = await d.tenant('acme').table('customers').find({ email: 'c7@acme.example' })
    assert.equal(found.length, 1)
    // Audit: start, states and end, with the actor, in both regions.
    for (const region of [EU, US]) {
      const a = await env.direct[region]!.query("SELECT type, actor FROM domicile_audit WHERE tenant_id = 'acme' AND type LIKE 'tenant.move.%' ORDER BY id")
      const types = a.rows.map((r) => r.type)
      for (const s of ['tenant.move.plan', 'tenant.move.copy', 'tenant.move.catch-up', 'tenant.move.verify', 'tenant.move.purge', 'tenant.move.done']) assert.ok(types.includes(s), `${region}: ${s}`)
      assert.ok(a.rows.every((r) => r.actor === 'test-operator'))
    }
    const op = (await internalsOf(d).journal!.list({ tenantId: 'acme' }))[0]!
    assert.equal(op.status, 'done')
    assert.equal(op.state, 'done')
  })

  test('a transaction open on the source when the freeze starts is drained: its write is moved', async () => {
    await addKmsTenant(d, 'drain', EU)
    const model = await seedTenant(d, 'drain', 50)
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let open!: () => void
    const opened = new Promise<void>((r) => (open = r))
    // A scope that wrote a row and is still open when the directory says "moving".
    const late = d.withTenant('drain', async (s) => {
      await s.table('customers').insert({ id: 'late', name: 'in flight', email: 'late@x', tax_id: 'L' })
      open()
      await gate
    })
    await opened
    const result = await moveTenant(d, 'drain', {
      to: US, purgeGraceMs: 0,
      progress: { update() {}, note: (m) => { if (m.includes('write freeze (')) setTimeout(release, 150) } },
    })
    await late
    model.set('customers/late', { id: 'late', name: 'in flight', email: 'late@x', tax_id: 'L' })
    assert.equal(result.state, 'done')
    assertSameRows(await revealAll(d, 'drain'), model)
    assert.ok((result.freezeMs ?? 0) >= 150, `the freeze waited for the open transaction (${result.freezeMs} ms)`)
  })

  test('once the freeze began, the source refuses the tenant in every process, whatever its directory cache says; the marker goes with the freeze', async () => {
    await addKmsTenant(d, 'frz', EU)
    await seedTenant(d, 'frz', 20)
    const { router } = internalsOf(d)
    // The freeze's marker in the source store (what a move in another process writes first). This
    // process's directory still says "active" in EU: its writes reach the source and are refused there.
    await router.withRegionAdmin(EU, (s) => s.query(`INSERT INTO domicile_frozen (tenant_id, operation) VALUES ('frz', 0)`))
    try {
      assert.equal((await d.getTenant('frz')).status, 'active')
      await refused(d.tenant('frz').table('customers').insert({ id: 'late', name: 'Late', email: 'late@frz.example', tax_id: 'X' }), 'ERR_TENANT_MOVING')
      await refused(d.withTenant('frz', (s) => s.sql('SELECT 1')), 'ERR_TENANT_MOVING')
      // Another tenant of the same store is served.
      await addKmsTenant(d, 'frz-neighbour', EU)
      await d.tenant('frz-neighbour').table('customers').insert({ id: 'n1', name: 'N', email: 'n@neighbour.example', tax_id: 'Y' })
    } finally {
      await router.withRegionAdmin(EU, (s) => s.query(`DELETE FROM domicile_frozen WHERE tenant_id = 'frz'`))
    }
    await d.tenant('frz').table('customers').insert({ id: 'late', name: 'Late', email: 'late@frz.example', tax_id: 'X' })
    // A move sets the marker before its freeze and removes it with the purge: none is left after one.
    const r = await moveTenant(d, 'frz', { to: US, purgeGraceMs: 0 })
    assert.equal(r.state, 'done')
    for (const region of [EU, US]) {
      const left = await router.withRegionAdmin(region, (s) => s.query<{ n: number }>(`SELECT count(*)::int AS n FROM domicile_frozen`))
      assert.equal(left.rows[0]!.n, 0, `no freeze marker left in ${region}`)
    }
    // And the scope role cannot read or write the markers.
    await refused(d.withTenant('frz', (s) => s.sql(`SELECT * FROM domicile_frozen`)), 'ERR_PERMISSION_DENIED')
  })

  test('the freeze bound is a deadline: a freeze that cannot finish in time is undone early and retried, no writer waits longer', async () => {
    await addKmsTenant(d, 'bounded', EU)
    const model = await seedTenant(d, 'bounded', 200)
    const writer = startWriter(d, 'bounded', model, { prefix: 'b' })
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    let open!: () => void
    const opened = new Promise<void>((r) => (open = r))
    // A scope that stays open across several freezes: the drain cannot finish until it ends.
    const stuck = d.withTenant('bounded', async (s) => {
      await s.table('customers').insert({ id: 'stuck', name: 'long transaction', email: 'stuck@x', tax_id: 'S' })
      open()
      await gate
    })
    await opened
    let freezes = 0
    const maxFreezeMs = 800
    const result = await moveTenant(d, 'bounded', {
      to: US, purgeGraceMs: 0, maxFreezeMs, freezeAttempts: 20,
      progress: { update() {}, note: (m) => { if (m.includes('write freeze (') && ++freezes === 2) setTimeout(release, 100) } },
    })
    await stuck
    model.set('customers/stuck', { id: 'stuck', name: 'long transaction', email: 'stuck@x', tax_id: 'S' })
    await new Promise((r) => setTimeout(r, 100))
    await writer.stop()
    assert.deepEqual(writer.stats.errors, [])
    assert.equal(result.state, 'done')
    assert.ok(freezes >= 2, `the first freeze was undone and retried (${freezes} freezes)`)
    assert.ok(writer.stats.retriedMoving > 0, 'the writer met the freeze')
    // Without a deadline the first freeze lasts the whole drain bound (1 s) before it is undone.
    assert.ok(writer.stats.longestRetryMs < maxFreezeMs + 150, `a write waited ${writer.stats.longestRetryMs} ms (bound ${maxFreezeMs} ms)`)
    assert.ok((result.freezeMs ?? Infinity) <= maxFreezeMs, `freeze ${result.freezeMs} ms`)
    assertSameRows(await revealAll(d, 'bounded'), model)
  })

  test('Precondition: the target region holds nothing of the tenant when a move starts.', async () => {
    await addKmsTenant(d, 'stale', US)
    await seedTenant(d, 'stale', 3)
    // A leftover row in the target (not put there by a move).
    await env.direct[EU]!.query("INSERT INTO customers (tenant_id, id, name) VALUES ('stale', 'x', 'left behind')")
    await refused(moveTenant(d, 'stale', { to: EU }), 'ERR_CONFLICT')
    assert.equal(await internalsOf(d).journal!.running('stale'), undefined, 'a move refused at its plan leaves nothing running')
    assert.equal((await internalsOf(d).journal!.list({ tenantId: 'stale' }))[0]?.status, 'failed')
    await env.direct[EU]!.query("DELETE FROM customers WHERE tenant_id = 'stale'")
    assert.equal((await d.getTenant('stale')).region, US)
  })

  test('Precondition: the target region is configured and differs from the tenant\'s home.', async () => {
    await addKmsTenant(d, 'here', EU)
    await refused(moveTenant(d, 'here', { to: EU }), 'ERR_INPUT_INVALID')
    await refused(moveTenant(d, 'here', { to: 'ap-south-1' }), 'ERR_REGION_UNKNOWN')
  })

  test('Precondition: only an active tenant with a usable key is moved.', async () => {
    await addKmsTenant(d, 'revoked', EU)
    await d.keys.revoke('revoked', 'test')
    await refused(moveTenant(d, 'revoked', { to: US }), 'ERR_KEY_REVOKED')
    await addKmsTenant(d, 'paused', EU)
    await d.setTenantStatus('paused', 'suspended')
    await refused(moveTenant(d, 'paused', { to: US }), 'ERR_TENANT_SUSPENDED')
  })

  test('abort after the copy: the target copy is deleted, the source still serves every row', async () => {
    await addKmsTenant(d, 'initech', EU)
    const model = await seedTenant(d, 'initech', 300)
    const p = internalsOf(d)
    // Run the move up to the end of the copy by stopping at the catch-up: a move that fails there.
    const started = moveTenant(d, 'initech', { to: US, batchRows: 100, catchUpRounds: 1, maxFreezeMs: 0, freezeAttempts: 1, purgeGraceMs: 0 })
    await refused(started, 'ERR_CONFLICT')
    const op = await p.journal!.running('initech')
    assert.ok(op, 'the move is still running in the journal')
    assert.equal(op.state, 'catch-up')
    assert.ok((await physicalCounts(env, US, 'initech')).customers > 0, 'the target holds a copy')
    // Writes work (the failed freeze was undone).
    await d.withTenant('initech', (s) => s.table('customers').insert({ id: 'after', name: 'after abort', email: 'a@x', tax_id: 'T' }))
    model.set('customers/after', { id: 'after', name: 'after abort', email: 'a@x', tax_id: 'T' })
    await refused(moveTenant(d, 'initech', { to: US }), 'ERR_OPERATION_RUNNING')
    const r = await abortTenantMove(d, 'initech', { actor: 'test' })
    assert.equal(r.state, 'aborted')
    assert.deepEqual(await physicalCounts(env, US, 'initech'), { customers: 0, orders: 0, keys: 0 })
    const t = await d.getTenant('initech')
    assert.equal(t.region, EU)
    assert.equal(t.status, 'active')
    assertSameRows(await revealAll(d, 'initech'), model)
    await refused(resumeTenantMove(d, 'initech'), 'ERR_OPERATION_NOT_FOUND')
  })

  test('a chunk written with the per-row foreign-key checks off is checked as a whole: a row without its parent in the target is not written', async () => {
    await addKmsTenant(d, 'orphans', EU)
    await seedTenant(d, 'orphans', 40)
    const { router, schema } = internalsOf(d)
    const plan = () => router.withRegionAdmin(EU, (src) => router.withRegionAdmin(US, (dst) => planTables(schema, src, dst)))
    const orders = (await plan()).tables.find((t) => t.name === 'orders')!
    const customers = (await plan()).tables.find((t) => t.name === 'customers')!
    assert.equal(orders.chunkForeignKeyCheck, true, 'granted, foreign keys only to tenant tables, no trigger')
    assert.equal(customers.chunkForeignKeyCheck, false, 'no foreign key: nothing to check')
    const us = env.direct[US]!
    try {
      // What the plan refuses: an owner without the grant, a table with a trigger of its own.
      await us.query('REVOKE SET ON PARAMETER session_replication_role FROM domicile_owner')
      assert.equal((await plan()).tables.find((t) => t.name === 'orders')!.chunkForeignKeyCheck, false, 'not granted')
      await us.query('GRANT SET ON PARAMETER session_replication_role TO domicile_owner')
      await us.query('CREATE FUNCTION orders_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$')
      await us.query('CREATE TRIGGER orders_touch BEFORE INSERT ON orders FOR EACH ROW EXECUTE FUNCTION orders_touch()')
      assert.equal((await plan()).tables.find((t) => t.name === 'orders')!.chunkForeignKeyCheck, false, 'a trigger of its own')
      await us.query('DROP TRIGGER orders_touch ON orders; DROP FUNCTION orders_touch()')

      // The target holds the tenant's customers but two; the orders' chunk comes with the checks off.
      const copy = async (t: typeof orders) => router.withRegionAdmin(EU, (src) => readTx(src, () => readChunk(src, t, 'orphans', null, 1000, 'binary')
        .then((c) => router.withRegionAdmin(US, (dst) => writeChunk(dst, c, false, true)))))
      await copy(customers)
      await us.query("DELETE FROM customers WHERE tenant_id = 'orphans' AND id IN ('c3', 'c17')")
      const w = await copy(orders)
      assert.equal(w.rows, 40)
      assert.equal(w.chunkChecked, false, 'the checked chunk had orphans: it took the general way')
      assert.equal(w.inserted, 38, 'every order whose customer is there, no other')
      const orphans = await us.query("SELECT o.id FROM orders o WHERE o.tenant_id = 'orphans' AND NOT EXISTS (SELECT 1 FROM customers c WHERE c.tenant_id = o.tenant_id AND c.id = o.customer_id)")
      assert.deepEqual(orphans.rows, [], 'no order without its customer in the target')
      // With every parent there, the same chunk goes in by the checked COPY.
      await us.query("DELETE FROM orders WHERE tenant_id = 'orphans'; DELETE FROM customers WHERE tenant_id = 'orphans'")
      await copy(customers)
      const ok = await copy(orders)
      assert.deepEqual([ok.chunkChecked, ok.inserted], [true, 40])
      // SET LOCAL ends with the transaction: no pooled owner connection is left in the replica role.
      const roles = await Promise.all(Array.from({ length: 8 }, () => router.withRegionAdmin(US, (s) =>
        s.query<{ session_replication_role: string }>('SHOW session_replication_role').then((r) => r.rows[0]!.session_replication_role))))
      assert.deepEqual(new Set(roles), new Set(['origin']))
    } finally {
      await us.query("DELETE FROM orders WHERE tenant_id = 'orphans'; DELETE FROM customers WHERE tenant_id = 'orphans'")
      await us.query('GRANT SET ON PARAMETER session_replication_role TO domicile_owner')
    }
  })

  test('a tenant moves there and back again', async () => {
    await addKmsTenant(d, 'boomerang', EU)
    const model = await seedTenant(d, 'boomerang', 100)
    await moveTenant(d, 'boomerang', { to: US, purgeGraceMs: 0 })
    await d.withTenant('boomerang', (s) => s.table('customers').update('c1', { tax_id: 'moved-once' }))
    model.set('customers/c1', { ...model.get('customers/c1')!, tax_id: 'moved-once' })
    const back = await moveTenant(d, 'boomerang', { to: EU, purgeGraceMs: 0 })
    assert.equal(back.state, 'done')
    assertSameRows(await revealAll(d, 'boomerang'), model)
    assert.deepEqual(await physicalCounts(env, US, 'boomerang'), { customers: 0, orders: 0, keys: 0 })
  })
})

describe('order of tables with foreign keys', () => {
  test('parents come before children; a cycle of non-deferrable keys is refused', () => {
    assert.deepEqual(orderTables(['orders', 'customers', 'lines'], [
      { child: 'orders', parent: 'customers', deferrable: false },
      { child: 'lines', parent: 'orders', deferrable: false },
      { child: 'customers', parent: 'customers', deferrable: false },
    ]).order, ['customers', 'orders', 'lines'])
    assert.throws(() => orderTables(['a', 'b'], [{ child: 'a', parent: 'b', deferrable: false }, { child: 'b', parent: 'a', deferrable: false }]),
      (e: unknown) => isDomicileError(e, 'ERR_SCHEMA_INVALID'))
    assert.deepEqual(orderTables(['a', 'b'], [{ child: 'a', parent: 'b', deferrable: true }, { child: 'b', parent: 'a', deferrable: false }]), { order: ['a', 'b'], deferred: true })
  })
})
