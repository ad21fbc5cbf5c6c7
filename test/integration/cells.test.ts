/**
 * Cells (issue #12, item 5) against real PostgreSQL: eu-west-1 lists two stores (cells "a" and
 * "b", each its own cluster so one can go down), us-east-1 one. Placement by fewest tenants or a
 * named cell; each cell stamped with its region and cell name (a swapped URL is refused); rows only
 * in the tenant's cell; a cell that is down fails only its own tenants; region-wide operations
 * (migrate, analytics, replication, audit verify, lint) cover every cell; a tenant moves between
 * the cells of its region online.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import {
  createDomicile, lintResidency, listGlobal, onboardTenant, parseConfig, replicateOnce, replicationStatus, runAnalytics, upsertGlobal,
  verifyAuditChains, type Domicile,
} from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { isDomicileError } from '../../src/errors.js'
import { moveTenant } from '../../src/ops/tenant-move.js'
import { runCli, runCliJson } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const EU = 'eu-west-1'
const US = 'us-east-1'
const PLANS = ['free', 'pro', 'team']

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDomicileError(e), `expected a DomicileError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    return true
  })
}

describe('cells: several stores in one region (real PostgreSQL)', { skip: missing }, () => {
  let main: PgCluster
  let cellB: PgCluster
  let dir: string
  let configFile: string
  let raw: Record<string, unknown>
  let d: Domicile
  /** Superuser clients on each store (reading them directly, not through Domicile). */
  const direct: Record<string, pg.Client> = {}
  /** Customers written per tenant (id -> plan). */
  const written = new Map<string, Map<string, string>>()

  const cli = (args: string[]) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs: 60_000 })
  const rowsIn = async (store: string, tenant: string) =>
    Number((await direct[store]!.query('SELECT count(*) AS n FROM customers WHERE tenant_id = $1', [tenant])).rows[0].n)
  const keysIn = async (store: string, tenant: string) =>
    Number((await direct[store]!.query('SELECT count(*) AS n FROM domicile_data_keys WHERE tenant_id = $1', [tenant])).rows[0].n)
  const cellOf = async (tenant: string) => (await d.getTenant(tenant)).cell

  async function write(tenant: string, n: number): Promise<void> {
    const mine = written.get(tenant) ?? new Map<string, string>()
    written.set(tenant, mine)
    await d.withTenant(tenant, async (s) => {
      for (let i = 0; i < n; i++) {
        const id = `c${mine.size}`
        const plan = PLANS[(mine.size + tenant.length) % PLANS.length]!
        await s.table('customers').insert({ id, name: `Customer ${id}`, email: `${id}@${tenant}.example`, tax_id: `T-${id}`, plan })
        mine.set(id, plan)
      }
    })
  }

  async function connectDirect(name: string, c: PgCluster, db: string): Promise<void> {
    const client = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${c.port}/${db}` })
    client.on('error', () => undefined) // the cell going down ends it; it is reconnected after
    await client.connect()
    direct[name] = client
  }

  before(async () => {
    ;[main, cellB] = await Promise.all([startPgCluster('cells-main'), startPgCluster('cells-b')])
    const mainLogins = await twoRoleDatabases(main, ['control', 'eua', 'us'])
    const bLogins = await twoRoleDatabases(cellB, ['eub'])
    dir = mkdtempSync(join(tmpdir(), 'domicile-cells-'))
    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    const store = (l: typeof mainLogins, db: string) => ({ driver: 'postgres', url: l.dataUrl(db), ownerUrl: l.ownerUrl(db), connectTimeoutMs: 1000 })
    raw = {
      regions: {
        [EU]: { jurisdiction: 'EU', cells: { a: store(mainLogins, 'eua'), b: store(bLogins, 'eub') } },
        [US]: store(mainLogins, 'us'),
      },
      controlPlane: store(mainLogins, 'control'),
      schema: './domicile.schema.mjs',
      keys: { dir: './keys' },
      directoryPollMs: 200,
    }
    configFile = join(dir, 'domicile.config.json')
    writeFileSync(configFile, JSON.stringify(raw))
    d = await createDomicile({ config: parseConfig(raw, dir) })
    for (const [name, c, db] of [['eu-a', main, 'eua'], ['eu-b', cellB, 'eub'], ['us', main, 'us']] as const) await connectDirect(name, c, db)
  })

  after(async () => {
    await d?.close()
    for (const c of Object.values(direct)) await c.end().catch(() => undefined)
    main?.destroy()
    cellB?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('migrate covers every cell and stamps each with its region and cell', async () => {
    const results = await d.migrate()
    assert.deepEqual(results.map((r) => [r.store, r.ok]), [['control-plane', true], [`${EU}/a`, true], [`${EU}/b`, true], [US, true]])
    const stamp = async (store: string) => (await direct[store]!.query('SELECT kind, region, cell FROM domicile_stamp')).rows[0]
    assert.deepEqual(await stamp('eu-a'), { kind: 'region', region: EU, cell: 'a' })
    assert.deepEqual(await stamp('eu-b'), { kind: 'region', region: EU, cell: 'b' })
    assert.deepEqual(await stamp('us'), { kind: 'region', region: US, cell: 'main' })
    const listed = await d.listRegions()
    assert.deepEqual(listed.map((r) => [r.name, r.region, r.cell, r.reachable]), [[`${EU}/a`, EU, 'a', true], [`${EU}/b`, EU, 'b', true], [US, US, 'main', true]])
  })

  test('new tenants go to the cell with the fewest tenants, or the one named; an unknown cell is refused', async () => {
    const placed: string[] = []
    for (const id of ['t1', 't2', 't3']) placed.push((await onboardTenant(d, { id, region: EU })).tenant.cell)
    assert.deepEqual(placed, ['a', 'b', 'a'], 'ties go to the first cell in configuration order')
    // Named: b is now at 1 tenant, a at 2; naming a puts it there anyway.
    assert.equal((await onboardTenant(d, { id: 't4', region: EU, cell: 'a' })).tenant.cell, 'a')
    // b has the fewest now (1 against 3).
    assert.equal((await onboardTenant(d, { id: 't5', region: EU })).tenant.cell, 'b')
    assert.equal((await onboardTenant(d, { id: 'u1', region: US })).tenant.cell, 'main')
    await refused(onboardTenant(d, { id: 't6', region: EU, cell: 'c' }), 'ERR_CELL_UNKNOWN')
    await refused(onboardTenant(d, { id: 'u2', region: US, cell: 'a' }), 'ERR_CELL_UNKNOWN')
    await refused(d.getTenant('t6'), 'ERR_TENANT_UNKNOWN') // nothing half-written
    // The CLI: --cell, typed error and exit 2 for an unknown cell, the cell in --json.
    const viaCli = await runCliJson<{ id: string; region: string; cell: string }>(['tenant', 'add', 'cli1', '--region', EU, '--cell', 'b', '--json', '--config', configFile], { cwd: dir, timeoutMs: 60_000 })
    assert.deepEqual([viaCli.region, viaCli.cell], [EU, 'b'])
    const bad = await cli(['tenant', 'add', 'cli2', '--region', EU, '--cell', 'nope', '--json'])
    assert.equal(bad.code, 2, bad.stderr)
    assert.match(bad.stdout + bad.stderr, /ERR_CELL_UNKNOWN/)
  })

  test('rows land only in the tenant\'s cell; row-level security still isolates tenants inside a cell', async () => {
    for (const t of ['t1', 't2', 't3', 't4', 't5', 'u1']) await write(t, 6)
    for (const t of ['t1', 't3', 't4']) assert.deepEqual([await rowsIn('eu-a', t), await rowsIn('eu-b', t), await rowsIn('us', t)], [6, 0, 0], t)
    for (const t of ['t2', 't5']) assert.deepEqual([await rowsIn('eu-a', t), await rowsIn('eu-b', t), await rowsIn('us', t)], [0, 6, 0], t)
    assert.deepEqual([await keysIn('eu-a', 't2'), await keysIn('eu-b', 't1')], [0, 0], 'keys live in the tenant\'s cell only')
    const seen = await d.withTenant('t1', (s) => s.sql<{ n: number }>('SELECT count(*)::int AS n FROM customers'))
    assert.equal(Number(seen[0]!.n), 6, 't1 sees only its own rows in cell a (t3 and t4 share it)')
  })

  test('a store whose stamp names another cell is refused (swapped URLs)', async () => {
    const regions = raw.regions as Record<string, { cells: Record<string, unknown> }>
    const swapped = { ...raw, regions: { ...regions, [EU]: { cells: { a: regions[EU]!.cells.b, b: regions[EU]!.cells.a } } } }
    const other = await createDomicile({ config: parseConfig(swapped, dir), changeFeed: false })
    try {
      await refused(other.withTenant('t1', (s) => s.table('customers').list()), 'ERR_REGION_MISMATCH')
      await refused(other.withTenant('t2', (s) => s.table('customers').list()), 'ERR_REGION_MISMATCH')
      // Migrate does not restamp it either.
      const results = await other.migrate()
      assert.deepEqual(results.filter((r) => !r.ok).map((r) => [r.store, r.code]), [[`${EU}/a`, 'ERR_REGION_MISMATCH'], [`${EU}/b`, 'ERR_REGION_MISMATCH']])
    } finally {
      await other.close()
    }
  })

  test('region-wide operations cover every cell: analytics equals a brute-force count, replication, audit verify, lint', async () => {
    // Analytics: the merged figures equal a count over every row written (every group has at least 2 rows in each cell).
    const r = await runAnalytics(d, { table: 'customers', groupBy: ['plan'], measures: ['count'], minGroupSize: 2 })
    assert.deepEqual(r.contributed, [`${EU}/a`, `${EU}/b`, US])
    assert.deepEqual(r.unavailable, [])
    const brute = new Map<string, number>()
    for (const rows of written.values()) for (const plan of rows.values()) brute.set(plan, (brute.get(plan) ?? 0) + 1)
    assert.deepEqual(new Map(r.groups.map((g) => [String(g.plan), Number(g.count)])), brute)

    await upsertGlobal(d, 'plans', { id: 'pro', name: 'Pro', price_cents: 4900 })
    const reps = await replicateOnce(d)
    assert.deepEqual(reps.map((x) => [x.region, x.ok, x.applied]), [[`${EU}/a`, true, 1], [`${EU}/b`, true, 1], [US, true, 1]])
    assert.deepEqual(await listGlobal(d, 'plans', { region: `${EU}/b` }), [{ id: 'pro', name: 'Pro', price_cents: 4900 }])
    assert.equal(Number((await direct['eu-b']!.query('SELECT count(*) AS n FROM plans')).rows[0].n), 1, 'the replica is in cell b itself')
    await refused(listGlobal(d, 'plans', { region: EU }), 'ERR_CELL_UNKNOWN') // two cells: name one
    assert.deepEqual((await replicationStatus(d)).regions.map((x) => [x.region, x.lagVersions]), [[`${EU}/a`, 0], [`${EU}/b`, 0], [US, 0]])

    const audit = await verifyAuditChains(d)
    assert.ok(audit.ok, JSON.stringify(audit))
    assert.deepEqual(audit.chains.map((c) => c.store).sort(), ['control-plane', `${EU}/a`, `${EU}/b`, US].sort())
    const onlyEu = await verifyAuditChains(d, { region: EU })
    assert.deepEqual(onlyEu.chains.map((c) => c.store), [`${EU}/a`, `${EU}/b`])
    assert.deepEqual((await verifyAuditChains(d, { region: `${EU}/b` })).chains.map((c) => c.store), [`${EU}/b`])
    await refused(verifyAuditChains(d, { region: `${EU}/z` }), 'ERR_CELL_UNKNOWN')

    // Lint samples the global tables' copy in each cell: personal-looking data planted in cell b only is found there.
    await direct['eu-b']!.query("INSERT INTO plans (id, name, price_cents) VALUES ('leak', 'ada.lovelace@example.com', 1)")
    try {
      const lint = await lintResidency(d, {})
      const hits = lint.findings.filter((f) => f.rule === 'personal-values')
      assert.ok(hits.some((f) => String(f.store ?? f.message).includes(`${EU}/b`)), JSON.stringify(hits))
      assert.ok(!hits.some((f) => String(f.store ?? f.message).includes(`${EU}/a`)), JSON.stringify(hits))
    } finally {
      await direct['eu-b']!.query("DELETE FROM plans WHERE id = 'leak'")
    }
  })

  test('a cell that is down fails only its own tenants; they recover when it returns', async () => {
    cellB.stop()
    try {
      const t0 = Date.now()
      await refused(d.withTenant('t2', (s) => s.table('customers').list()), 'ERR_REGION_UNAVAILABLE')
      assert.ok(Date.now() - t0 < 5000, 'bounded by the connect timeout')
      // Tenants of cell a and of another region are served as before.
      assert.equal((await d.withTenant('t1', (s) => s.table('customers').list())).rows.length, 6)
      assert.equal((await d.withTenant('u1', (s) => s.table('customers').list())).rows.length, 6)
      await write('t3', 1)
      const r = await runAnalytics(d, { table: 'customers', groupBy: ['plan'], measures: ['count'], minGroupSize: 2 })
      assert.deepEqual([r.contributed, r.unavailable], [[`${EU}/a`, US], [`${EU}/b`]])
      const audit = await verifyAuditChains(d)
      assert.deepEqual(audit.unavailable.map((u) => u.store), [`${EU}/b`])
      const health = await d.listRegions()
      assert.deepEqual(health.map((h) => [h.name, h.reachable]), [[`${EU}/a`, true], [`${EU}/b`, false], [US, true]])
    } finally {
      cellB.start()
      await direct['eu-b']!.end().catch(() => undefined)
      await connectDirect('eu-b', cellB, 'eub')
    }
    const deadline = Date.now() + 15_000
    for (;;) {
      try {
        assert.equal((await d.withTenant('t2', (s) => s.table('customers').list())).rows.length, 6)
        break
      } catch (e) {
        if (!isDomicileError(e, 'ERR_REGION_UNAVAILABLE') || Date.now() > deadline) throw e
        await new Promise((res) => setTimeout(res, 100))
      }
    }
  })

  test('a tenant moves between the cells of its region online: rows, keys and reveals follow it', async () => {
    const before = await d.withTenant('t1', async (s) => s.revealRows((await s.table('customers').list({ limit: 100 })).rows, { purpose: 'test', actor: 'test' }))
    // No cell named: the region's other cell (a tenant never "moves" to its own cell).
    const r = await moveTenant(d, 't1', { to: EU, purgeGraceMs: 0, actor: 'test' })
    assert.deepEqual([r.state, r.from, r.to], ['done', `${EU}/a`, `${EU}/b`])
    assert.deepEqual([await cellOf('t1'), (await d.getTenant('t1')).region], ['b', EU])
    assert.deepEqual([await rowsIn('eu-a', 't1'), await rowsIn('eu-b', 't1')], [0, 6])
    assert.deepEqual([await keysIn('eu-a', 't1') === 0, await keysIn('eu-b', 't1') > 0], [true, true])
    const after = await d.withTenant('t1', async (s) => s.revealRows((await s.table('customers').list({ limit: 100 })).rows, { purpose: 'test', actor: 'test' }))
    assert.deepEqual(after, before)
    // And back through the CLI, naming the cell; the same cell again is refused as input.
    const back = await runCliJson<{ state: string; from: string; to: string }>(['tenant', 'move', 't1', '--to', EU, '--cell', 'a', '--json', '--config', configFile], { cwd: dir, timeoutMs: 120_000 })
    assert.deepEqual([back.state, back.from, back.to], ['done', `${EU}/b`, `${EU}/a`])
    assert.equal(await cellOf('t1'), 'a')
    await refused(moveTenant(d, 't1', { to: EU, toCell: 'a' }), 'ERR_INPUT_INVALID')
    await refused(moveTenant(d, 't1', { to: EU, toCell: 'z' }), 'ERR_CELL_UNKNOWN')
  })
})
