/**
 * What isolation against hostile SQL costs on a point read (issue #9, item 1).
 *
 * One PostgreSQL 15 cluster, migrated by Domicile, the data plane logged in as the role `migrate`
 * created. The same point read by primary key, one transaction each, on one connection, three ways:
 *
 * - `legacy`: the previous design. `BEGIN; SET LOCAL ROLE domicile_app; set_config(tenant)` + the
 *   read on a copy of the table whose policy compares `tenant_id` with the plain setting, which SQL
 *   in a scope could change.
 * - `verified context`: `BEGIN; SET LOCAL ROLE; domicile_enter(capability, tenant)` + the read on
 *   Domicile's table (policy through `domicile_tenant()`, proof recomputed per statement): what the
 *   router sends on a connection that only Domicile's own statements used since its last reset.
 * - `reset + verified context`: the same after a scope ran application SQL (`scope.sql`, `scope.db`)
 *   on the connection: the session reset comes first (src/regions/tenant-context.ts).
 *
 * Arms are interleaved in shuffled rounds (bench/lib/timing.ts); medians and paired differences.
 * Run: node --import tsx bench/tenant-context.bench.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDomicile, parseConfig } from '../src/index.js'
import { SESSION_OPEN, tenantTransactionPrelude } from '../src/regions/tenant-context.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../test/support/pg-cluster.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { median, round, summarize } from './lib/stats.js'
import { interleave, type Arm } from './lib/timing.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/tenant-context.json'
const ROWS = 20_000
const TENANTS = 20
const PLAN = QUICK ? { rounds: 4, block: 50, warmup: 100 } : { rounds: 30, block: 200, warmup: 1000 }
const log = (m: string) => console.error(`[tenant-context] ${m}`)

const SCHEMA = `export default {
  items: { scope: 'tenant', primaryKey: 'id', columns: { id: { type: 'text' }, name: { type: 'text' } } },
}
`

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`tenant-context bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'domicile-bench-ctx-'))
  let cluster: PgCluster | undefined
  let client: pg.Client | undefined
  try {
    cluster = await startPgCluster('bench-ctx')
    const logins = await twoRoleDatabases(cluster, ['region', 'control'])
    const base = `127.0.0.1:${cluster.port}`
    writeFileSync(join(dir, 'schema.mjs'), SCHEMA)
    const config = parseConfig({
      regions: { 'eu-west-1': { driver: 'postgres', url: logins.dataUrl('region'), ownerUrl: logins.ownerUrl('region') } },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    const d = await createDomicile({ config })
    await d.migrate()
    await d.close()
    // The legacy table: same rows, the previous policy.
    const owner = new pg.Client({ connectionString: `postgres://domicile_owner@${base}/region` })
    await owner.connect()
    await owner.query(`INSERT INTO items (tenant_id, id, name) SELECT 't' || (i % ${TENANTS}), 'i' || i, 'name ' || i FROM generate_series(1, ${ROWS}) i`)
    await owner.query('CREATE TABLE legacy_items (LIKE items INCLUDING ALL)')
    await owner.query('INSERT INTO legacy_items SELECT * FROM items')
    await owner.query('ALTER TABLE legacy_items ENABLE ROW LEVEL SECURITY')
    await owner.query(`CREATE POLICY legacy ON legacy_items USING (tenant_id = current_setting('domicile.tenant_id', true))`)
    await owner.query('GRANT SELECT ON legacy_items TO domicile_app')
    await owner.query('ANALYZE')
    await owner.end()

    client = new pg.Client({ connectionString: `postgres://domicile_data@${base}/region` })
    await client.connect()
    const c = client
    const cap = (await c.query<{ capability: string }>(SESSION_OPEN)).rows[0]!.capability
    // Row n belongs to tenant t(n % TENANTS); operation i reads a scattered row and opens its tenant.
    const row = (i: number) => 1 + ((i * 7919) % ROWS)
    const tenant = (i: number) => `t${row(i) % TENANTS}`
    const read = async (table: string, i: number) => {
      const r = await c.query(`SELECT id, name FROM ${table} WHERE tenant_id = $1 AND id = $2`, [tenant(i), `i${row(i)}`])
      if (r.rows.length !== 1) throw new Error(`${table}: expected one row for operation ${i}`)
    }
    const arms: Arm[] = [
      {
        name: 'legacy (settable context)',
        op: async (i) => {
          await c.query(`BEGIN; SET LOCAL ROLE domicile_app; SELECT set_config('domicile.tenant_id', '${tenant(i)}', true) AS tenant, kind, region FROM domicile_stamp`)
          await read('legacy_items', i)
          await c.query('COMMIT')
        },
      },
      {
        name: 'verified context (after repository-only scopes)',
        op: async (i) => {
          await c.query(`BEGIN; SET LOCAL ROLE domicile_app; SELECT domicile_enter('${cap}', '${tenant(i)}') AS tenant, kind, region FROM domicile_stamp`)
          await read('items', i)
          await c.query('COMMIT')
        },
      },
      {
        name: 'reset + verified context (after application SQL)',
        op: async (i) => {
          await c.query(tenantTransactionPrelude(tenant(i), cap))
          await read('items', i)
          await c.query('COMMIT')
        },
      },
    ]
    log(`measuring: ${PLAN.rounds} rounds x ${PLAN.block} ops per arm ...`)
    const samples = await interleave(arms, { rounds: PLAN.rounds, blockSize: PLAN.block, warmupOps: PLAN.warmup })
    const legacy = samples[0]!
    const paired = (a: typeof legacy) => round(median(a.rounds.map((blk, r) => median(blk) - median(legacy.rounds[r]!))))
    const rows = samples.map((s) => {
      const sum = summarize(s.all)
      return { arm: s.name, ...sum, addedUsVsLegacy: s === legacy ? 0 : paired(s), addedPctVsLegacy: s === legacy ? 0 : round((paired(s) / sum.medianUs) * 100, 1), cpuUsPerOp: round(median(s.cpuPerOpUs)) }
    })
    printTable('point read by primary key, one transaction, one connection (PostgreSQL 15)', ['arm', 'median µs', 'p99 µs', 'added µs vs legacy (paired)', 'added % of median', 'node CPU µs/op'],
      rows.map((r) => [r.arm, r.medianUs, r.p99Us, r.addedUsVsLegacy, r.addedPctVsLegacy, r.cpuUsPerOp]))
    if (QUICK) {
      console.log('BENCH_QUICK=1: smoke run, results not written')
    } else {
      writeResults(RESULTS, { benchmark: 'tenant-context', machine: machineInfo(), plan: PLAN, durationSec: Math.round((Date.now() - t0) / 1000), rows })
      console.log(`results written to ${resolve(RESULTS)}`)
    }
  } finally {
    await client?.end().catch(() => undefined)
    cluster?.destroy()
    rmSync(dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
