/**
 * Global reference tables (issue #12, item 1) against real PostgreSQL, set up as the README's
 * "Production PostgreSQL (two roles)": the control plane and eu-west-1 on one cluster, us-east-1 on
 * a cluster of its own so it can go down (`stop()`) and come back (`start()`). Writes go to the
 * control plane with an outbox entry; the replicator applies the outbox to each region in order,
 * idempotently; a region that was down catches up; the data plane can only read; a running
 * instance converges on a write made by another process (the CLI) within seconds.
 */
import { strict as assert } from 'node:assert'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import pg from 'pg'
import { createDomicile, deleteGlobal, listGlobal, parseConfig, replicateOnce, replicationStatus, startGlobalReplication, upsertGlobal, type Domicile } from '../../src/index.js'
import { EXAMPLE_SCHEMA } from '../../src/cli/templates.js'
import { isDomicileError } from '../../src/errors.js'
import type { ReplicationStatus } from '../../src/global/replication-status.js'
import { runCli, runCliJson } from '../support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../support/pg-cluster.js'

const missing = postgresUnavailable()
const EU = 'eu-west-1'
const US = 'us-east-1'

async function refused(p: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(isDomicileError(e), `expected a DomicileError, got ${String(e)}`)
    assert.equal(e.code, code, e.message)
    return true
  })
}

describe('global tables: outbox, replication to every region, catch-up, read-only data plane (real PostgreSQL)', { skip: missing }, () => {
  let main: PgCluster
  let usCluster: PgCluster
  let dir: string
  let configFile: string
  let d: Domicile
  let suControl: pg.Client
  let suEu: pg.Client

  const cli = (args: string[]) => runCli([...args, '--config', configFile], { cwd: dir, timeoutMs: 60_000 })
  const outbox = async () => (await suControl.query<{ version: string; op: string; pk: string }>('SELECT version, op, pk FROM domicile_global_outbox ORDER BY version')).rows
  const latest = async () => Number((await suControl.query<{ v: string }>('SELECT coalesce(max(version), 0) AS v FROM domicile_global_outbox')).rows[0]!.v)
  const snapshot = async () => ({ control: await listGlobal(d, 'plans'), eu: await listGlobal(d, 'plans', { region: EU }), us: await listGlobal(d, 'plans', { region: US }), outbox: await latest() })

  before(async () => {
    main = await startPgCluster('global-main')
    usCluster = await startPgCluster('global-us')
    const mainLogins = await twoRoleDatabases(main, ['control', 'eu'])
    const usLogins = await twoRoleDatabases(usCluster, ['us'])
    dir = mkdtempSync(join(tmpdir(), 'domicile-global-'))
    writeFileSync(join(dir, 'domicile.schema.mjs'), EXAMPLE_SCHEMA)
    const raw = {
      regions: {
        [US]: { driver: 'postgres', url: usLogins.dataUrl('us'), ownerUrl: usLogins.ownerUrl('us'), connectTimeoutMs: 1000 },
        [EU]: { driver: 'postgres', url: mainLogins.dataUrl('eu'), ownerUrl: mainLogins.ownerUrl('eu'), connectTimeoutMs: 1000 },
      },
      controlPlane: { driver: 'postgres', url: mainLogins.dataUrl('control'), ownerUrl: mainLogins.ownerUrl('control') },
      schema: './domicile.schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }
    configFile = join(dir, 'domicile.config.json')
    writeFileSync(configFile, JSON.stringify(raw))
    d = await createDomicile({ config: parseConfig(raw, dir) })
    const results = await d.migrate()
    assert.ok(results.every((r) => r.ok), JSON.stringify(results))
    await d.addTenant('acme', { region: EU })
    suControl = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${main.port}/control` })
    suEu = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${main.port}/eu` })
    await suControl.connect()
    await suEu.connect()
  })

  after(async () => {
    await d?.close()
    await suControl?.end().catch(() => undefined)
    await suEu?.end().catch(() => undefined)
    main?.destroy()
    usCluster?.destroy()
    if (dir) rmSync(dir, { recursive: true, force: true })
  })

  test('upserts and deletes reach every region in version order', async () => {
    const a = await upsertGlobal(d, 'plans', { id: 'free', name: 'Free', price_cents: 0 })
    const b = await upsertGlobal(d, 'plans', { id: 'pro', name: 'Pro', price_cents: 4900 })
    const c = await upsertGlobal(d, 'plans', { id: 'pro', name: 'Pro', price_cents: 5900 })
    const e = await upsertGlobal(d, 'plans', { id: 'legacy', name: 'Legacy', price_cents: 100 })
    const f = await deleteGlobal(d, 'plans', 'legacy')
    const versions = [a, b, c, e, f].map((w) => w.version!)
    assert.deepEqual(versions, [...versions].sort((x, y) => x - y), 'versions increase with each write')
    assert.equal(new Set(versions).size, 5)
    assert.deepEqual((await outbox()).map((o) => `${o.op}:${o.pk}`), ['upsert:free', 'upsert:pro', 'upsert:pro', 'upsert:legacy', 'delete:legacy'])
    assert.deepEqual(await deleteGlobal(d, 'plans', 'legacy').then((w) => w.version), null, 'deleting a missing row writes nothing')

    // Nothing reaches a region before a replication pass: the control plane alone holds the write.
    assert.deepEqual(await listGlobal(d, 'plans', { region: EU }), [])
    const rs = await replicateOnce(d)
    assert.deepEqual(rs.map((r) => [r.region, r.ok, r.applied, r.version]).sort(), [[EU, true, 5, f.version], [US, true, 5, f.version]].sort())
    const expected = [{ id: 'free', name: 'Free', price_cents: 0 }, { id: 'pro', name: 'Pro', price_cents: 5900 }]
    const s = await snapshot()
    assert.deepEqual(s.control, expected)
    assert.deepEqual(s.eu, expected)
    assert.deepEqual(s.us, expected)
    // The region's own record of what it applied, read by the superuser (not through Domicile).
    assert.equal(Number((await suEu.query('SELECT version FROM domicile_global_applied')).rows[0].version), f.version)
    const st = await replicationStatus(d)
    assert.equal(st.latestVersion, f.version)
    for (const r of st.regions) assert.deepEqual([r.reachable, r.version, r.lagVersions, r.lagSeconds], [true, f.version, 0, 0], r.region)
  })

  test('Precondition: every key of the row is a column of the table; invalid rows are refused with nothing written anywhere', async () => {
    const before = await snapshot()
    await refused(upsertGlobal(d, 'plans', { id: 'x', name: 'X', price_cents: 1, email: 'ada@example.com' }), 'ERR_COLUMN_UNKNOWN')
    await refused(upsertGlobal(d, 'plans', { id: 'x', name: 'X', price_cents: 'ten' }), 'ERR_INPUT_INVALID')
    await refused(upsertGlobal(d, 'plans', { id: 'x', name: 'X', price_cents: 2 ** 40 }), 'ERR_INPUT_INVALID')
    await refused(upsertGlobal(d, 'plans', { id: 'x', price_cents: 1 }), 'ERR_INPUT_INVALID') // name is NOT NULL
    await refused(upsertGlobal(d, 'plans', { id: '', name: 'X', price_cents: 1 }), 'ERR_INPUT_INVALID')
    await refused(upsertGlobal(d, 'plans', { id: 'x', name: 'a\u0000b', price_cents: 1 }), 'ERR_INPUT_INVALID')
    await refused(upsertGlobal(d, 'nope', { id: 'x' }), 'ERR_TABLE_UNKNOWN')
    const cli1 = await cli(['global', 'upsert', 'plans', '--data', '{"id":"x","name":"X","price_cents":1,"tax_id":"DE123"}', '--json'])
    assert.equal(cli1.code, 2, cli1.stderr)
    assert.equal(JSON.parse(cli1.stdout).error.code, 'ERR_COLUMN_UNKNOWN')
    const cli2 = await cli(['global', 'upsert', 'plans', '--data', '{not json', '--json'])
    assert.equal(cli2.code, 2, cli2.stderr)
    await replicateOnce(d)
    assert.deepEqual(await snapshot(), before)
  })

  test('Precondition: global writes go to global tables only.', async () => {
    const before = await snapshot()
    // A tenant table (it holds personal, sealed columns) is never written through the control plane.
    await refused(upsertGlobal(d, 'customers', { id: 'c1', name: 'Ada', email: 'ada@example.com' }), 'ERR_INPUT_INVALID')
    await refused(deleteGlobal(d, 'customers', 'c1'), 'ERR_INPUT_INVALID')
    await refused(listGlobal(d, 'customers', { region: EU }), 'ERR_INPUT_INVALID')
    const r = await cli(['global', 'upsert', 'customers', '--data', '{"id":"c1","name":"Ada"}'])
    assert.equal(r.code, 2, r.stderr)
    const cp = await suControl.query(`SELECT to_regclass('customers') AS t`)
    assert.equal(cp.rows[0].t, null, 'the control plane has no tenant table at all')
    assert.deepEqual(await snapshot(), before)
  })

  test('replaying the same outbox twice changes nothing (idempotent)', async () => {
    const before = await snapshot()
    const v = before.outbox
    // Rewind the region's version (as a crash between apply and report could never do, but a restore could).
    await suEu.query('UPDATE domicile_global_applied SET version = 0')
    const first = await replicateOnce(d, { regions: [EU] })
    assert.deepEqual(first.map((r) => [r.ok, r.applied, r.version]), [[true, 5, v]])
    assert.deepEqual(await snapshot(), before)
    const second = await replicateOnce(d)
    assert.ok(second.every((r) => r.ok && r.applied === 0 && r.version === v), JSON.stringify(second))
    assert.deepEqual(await snapshot(), before)
  })

  test('the data plane reads global tables in a tenant scope and cannot write them or the applied version', async () => {
    const rows = await d.withTenant('acme', (s) => s.sql<{ id: string; price_cents: number }>('SELECT id, price_cents FROM plans ORDER BY id'))
    assert.deepEqual(rows, [{ id: 'free', price_cents: 0 }, { id: 'pro', price_cents: 5900 }])
    await refused(d.withTenant('acme', async (s) => s.table('plans')), 'ERR_QUERY_UNSUPPORTED')
    const before = await snapshot()
    const applied = async () => Number((await suEu.query('SELECT version FROM domicile_global_applied')).rows[0].version)
    const v = await applied()
    for (const attack of [
      `INSERT INTO plans (id, name, price_cents) VALUES ('hack', 'Hack', 0)`,
      `UPDATE plans SET price_cents = 1`,
      `DELETE FROM plans`,
      `TRUNCATE plans`,
      `UPDATE domicile_global_applied SET version = 0`,
      `UPDATE domicile_global_applied SET version = version + 1000`,
      `DELETE FROM domicile_global_applied`,
      `INSERT INTO domicile_global_applied (singleton, version) VALUES (true, 9) ON CONFLICT (singleton) DO UPDATE SET version = 9`,
    ]) {
      await refused(d.withTenant('acme', (s) => s.sql(attack)), 'ERR_PERMISSION_DENIED')
    }
    assert.equal(await applied(), v)
    assert.deepEqual(await snapshot(), before)
  })

  test('a region stopped during writes shows its lag, and catches up in order after restart', async () => {
    const start = await latest()
    usCluster.stop()
    await upsertGlobal(d, 'plans', { id: 'team', name: 'Team', price_cents: 1 })
    await upsertGlobal(d, 'plans', { id: 'team', name: 'Team', price_cents: 2 })
    await upsertGlobal(d, 'plans', { id: 'team', name: 'Team', price_cents: 3 })
    await upsertGlobal(d, 'plans', { id: 'gone', name: 'Gone', price_cents: 9 })
    await deleteGlobal(d, 'plans', 'gone')
    const pass = await replicateOnce(d)
    const us = pass.find((r) => r.region === US)!
    const eu = pass.find((r) => r.region === EU)!
    assert.deepEqual([eu.ok, eu.applied, eu.version], [true, 5, start + 5])
    assert.equal(us.ok, false)
    assert.equal(us.code, 'ERR_REGION_UNAVAILABLE')

    const st = await runCliJson<ReplicationStatus>(['replicate', 'status', '--json', '--config', configFile], { cwd: dir })
    assert.equal(st.latestVersion, start + 5)
    const usSt = st.regions.find((r) => r.region === US)!
    assert.deepEqual([usSt.reachable, usSt.version, usSt.versionSource, usSt.lagVersions], [false, start, 'last-report', 5])
    assert.ok(usSt.lagSeconds >= 0 && typeof usSt.lastReportAt === 'string')
    const euSt = st.regions.find((r) => r.region === EU)!
    assert.deepEqual([euSt.reachable, euSt.version, euSt.lagVersions], [true, start + 5, 0])
    const run = await cli(['replicate', 'run', '--json'])
    assert.equal(run.code, 1, 'replicate run fails while a region is down')

    usCluster.start()
    const back = await replicateOnce(d, { regions: [US] })
    assert.deepEqual(back.map((r) => [r.ok, r.applied, r.version, r.code]), [[true, 5, start + 5, undefined]])
    const s = await snapshot()
    assert.deepEqual(s.us, s.control)
    assert.deepEqual(s.eu, s.control)
    assert.equal(s.us.find((r) => r.id === 'team')?.price_cents, 3, 'applied in version order')
    assert.equal(s.us.find((r) => r.id === 'gone'), undefined)
    const after = await replicationStatus(d)
    for (const r of after.regions) assert.deepEqual([r.reachable, r.lagVersions], [true, 0], r.region)
  })

  test('a running instance converges within seconds on a write made by another process', async () => {
    const inRegion = async (region: string, id: string) => (await listGlobal(d, 'plans', { region })).find((r) => r.id === id)
    // Control: the CLI with --no-push writes the control plane only; without a running replicator no region changes.
    const w1 = await cli(['global', 'upsert', 'plans', '--data', '{"id":"enterprise","name":"Enterprise","price_cents":99000}', '--no-push', '--json'])
    assert.equal(w1.code, 0, w1.stderr)
    assert.deepEqual(JSON.parse(w1.stdout).regions, [])
    await new Promise((r) => setTimeout(r, 1500))
    assert.equal(await inRegion(EU, 'enterprise'), undefined)
    assert.equal(await inRegion(US, 'enterprise'), undefined)

    const stop = startGlobalReplication(d, { intervalMs: 1000 })
    try {
      const converged = async (id: string, price: number): Promise<number> => {
        const t0 = Date.now()
        while (Date.now() - t0 < 5000) {
          const [eu, us] = await Promise.all([inRegion(EU, id), inRegion(US, id)])
          if (eu?.price_cents === price && us?.price_cents === price) return Date.now() - t0
          await new Promise((r) => setTimeout(r, 100))
        }
        assert.fail(`plan ${id} at ${price} did not reach both regions within 5 s`)
      }
      await converged('enterprise', 99000)
      // With the loop running, another process's write arrives within seconds (NOTIFY nudge or the 1 s poll).
      const t0 = Date.now()
      const w2 = await cli(['global', 'upsert', 'plans', '--data', '{"id":"enterprise","name":"Enterprise","price_cents":89000}', '--no-push'])
      assert.equal(w2.code, 0, w2.stderr)
      const lag = await converged('enterprise', 89000)
      assert.ok(lag < 3000, `converged ${lag} ms after the CLI exited (${Date.now() - t0} ms after it started)`)
    } finally {
      await stop()
    }
  })
})
