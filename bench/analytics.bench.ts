/**
 * Region-local analytics over 1,000,000 rows (issue #12, Performance).
 *
 * One PostgreSQL 15 cluster (this machine has 2 cores: three clusters would only compete for them)
 * with three region databases, each migrated by Domicile in the README's two-role setup, holding
 * 1,000,000 `orders` rows between them (unevenly: 50% / 30% / 20%, 60 tenants), populated
 * server-side with generate_series; a fourth database holds the same 1,000,000 rows in one plain
 * table. Two arms, interleaved in shuffled rounds (bench/lib/timing.ts), medians:
 *
 * - `merged (3 regions)`: `runAnalytics` — validation, one aggregate statement per region at once
 *   (READ ONLY transaction, statement timeout, stamp check, small groups suppressed in the region),
 *   merge, and the control-plane audit record.
 * - `one GROUP BY (1 database)`: the same GROUP BY with the same HAVING directly on the single
 *   database (pg client), the floor the merged query is compared with.
 *
 * Query: GROUP BY status, country; count, sum/avg/min/max of amount, sum of price (numeric).
 * Run: node --import tsx bench/analytics.bench.ts   (BENCH_QUICK=1 for a smoke run on 100,000 rows)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDomicile, parseConfig, runAnalytics, type AnalyticsQuery } from '../src/index.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../test/support/pg-cluster.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { round, summarize } from './lib/stats.js'
import { interleave } from './lib/timing.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/analytics.json'
const ROWS = QUICK ? 100_000 : 1_000_000
const TENANTS = 60
const REGIONS = [
  { name: 'eu-west-1', db: 'region_eu', share: 0.5 },
  { name: 'us-east-1', db: 'region_us', share: 0.3 },
  { name: 'ap-south-1', db: 'region_ap', share: 0.2 },
] as const
const PLAN = QUICK ? { rounds: 3, block: 1, warmup: 1 } : { rounds: 12, block: 1, warmup: 2 }
const log = (m: string) => console.error(`[analytics] ${m}`)

const SCHEMA = `export default {
  orders: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      status: { type: 'text' },
      country: { type: 'text' },
      amount: { type: 'integer' },
      price: { type: 'numeric' },
      email: { type: 'text', nullable: true, sensitive: { searchable: true } },
    },
  },
}
`

/** Row i's columns as SQL over generate_series (deterministic; a few rare countries make small groups). */
const ROW_SQL = (tenantExpr: string) => `SELECT ${tenantExpr}, 'o' || i,
  (ARRAY['new','paid','shipped','void'])[1 + (i / 7) % 4],
  CASE WHEN i % 997 = 0 THEN 'rare' || (i % 13) ELSE (ARRAY['de','fr','us','jp','br','za','in','mx'])[1 + (i * 13) % 8] END,
  ((i * 7919) % 200000) - 5000,
  (((i * 104729) % 10000000) / 100.0)::numeric`

const QUERY: AnalyticsQuery = { table: 'orders', groupBy: ['status', 'country'], measures: ['count', 'sum:amount', 'avg:amount', 'min:amount', 'max:amount', 'sum:price'] }
const BASELINE_SQL = `SELECT status, country, count(*), sum(amount), avg(amount), min(amount), max(amount), sum(price)
  FROM orders GROUP BY status, country HAVING count(*) >= 5`

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`analytics bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'domicile-bench-analytics-'))
  let cluster: PgCluster | undefined
  let single: pg.Client | undefined
  let d: Awaited<ReturnType<typeof createDomicile>> | undefined
  try {
    cluster = await startPgCluster('bench-analytics')
    const logins = await twoRoleDatabases(cluster, [...REGIONS.map((r) => r.db), 'control'])
    writeFileSync(join(dir, 'schema.mjs'), SCHEMA)
    const config = parseConfig({
      regions: Object.fromEntries(REGIONS.map((r) => [r.name, { driver: 'postgres', url: logins.dataUrl(r.db), ownerUrl: logins.ownerUrl(r.db) }])),
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir)
    d = await createDomicile({ config })
    await d.migrate()
    log(`populating ${ROWS} rows over ${REGIONS.length} region databases and one single database`)
    let from = 1
    for (const [k, r] of REGIONS.entries()) {
      const n = k === REGIONS.length - 1 ? ROWS - from + 1 : Math.round(ROWS * r.share)
      const owner = new pg.Client({ connectionString: logins.ownerUrl(r.db) })
      owner.on('error', () => undefined)
      await owner.connect()
      // Tenants are spread over regions: tenant j lives in region j % 3.
      await owner.query(`INSERT INTO orders (tenant_id, id, status, country, amount, price) ${ROW_SQL(`'t' || (${k} + 3 * (i % ${TENANTS / 3}))`)} FROM generate_series(${from}::bigint, ${from + n - 1}) i`)
      await owner.query('VACUUM ANALYZE orders')
      await owner.end()
      from += n
    }
    await cluster.database('single')
    single = new pg.Client({ connectionString: `postgres://postgres@127.0.0.1:${cluster.port}/single` })
    await single.connect()
    await single.query('CREATE TABLE orders (tenant_id text NOT NULL, id text NOT NULL, status text NOT NULL, country text NOT NULL, amount integer NOT NULL, price numeric NOT NULL, email bytea, email__bidx bytea, PRIMARY KEY (tenant_id, id))')
    await single.query(`INSERT INTO orders (tenant_id, id, status, country, amount, price) ${ROW_SQL(`'t' || (i % ${TENANTS})`)} FROM generate_series(1::bigint, ${ROWS}) i`)
    await single.query('VACUUM ANALYZE orders')
    log(`populated in ${Math.round((Date.now() - t0) / 1000)} s`)

    // Same answer from both arms (the merged groups equal the single GROUP BY's where no group is suppressed anywhere).
    const merged = await runAnalytics(d, QUERY)
    const direct = (await single.query<{ status: string; country: string; count: string }>(BASELINE_SQL)).rows
    const directTotal = direct.reduce((s, x) => s + Number(x.count), 0)
    const mergedTotal = merged.groups.reduce((s, g) => s + Number(g.count), 0)
    log(`groups: merged ${merged.groups.length} (${merged.suppressedGroups} suppressed in regions), direct ${direct.length}; rows in groups: merged ${mergedTotal}, direct ${directTotal}`)

    const dom = d
    const client = single
    const arms = [
      { name: 'merged (3 regions)', op: () => runAnalytics(dom, QUERY) },
      { name: 'one GROUP BY (1 database)', op: () => client.query(BASELINE_SQL) },
    ]
    const samples = await interleave(arms, { rounds: PLAN.rounds, blockSize: PLAN.block, warmupOps: PLAN.warmup })
    const stats = samples.map((s) => ({ arm: s.name, ...summarize(s.all) }))
    const ratio = round(stats[0]!.medianUs / stats[1]!.medianUs, 2)
    const rows = stats.map((s) => ({ arm: s.arm, medianMs: round(s.medianUs / 1000, 1), p90Ms: round(s.p90Us / 1000, 1), minMs: round(s.minUs / 1000, 1), n: s.n }))
    printTable(`Analytics over ${ROWS.toLocaleString('en')} rows, GROUP BY status, country (medians of ${PLAN.rounds} interleaved rounds)`,
      ['arm', 'median ms', 'p90 ms', 'min ms', 'n'], rows.map((r) => [r.arm, r.medianMs, r.p90Ms, r.minMs, r.n]))
    console.log(`ratio merged / one GROUP BY: ${ratio}x`)
    const result = {
      benchmark: 'analytics',
      machine: machineInfo(),
      setup: `one PostgreSQL 15 cluster (2-core machine): three region databases (${REGIONS.map((r) => `${r.name} ${Math.round(r.share * 100)}%`).join(', ')}) vs one database with all rows; same server, same run`,
      rowsTotal: ROWS,
      tenants: TENANTS,
      query: QUERY,
      plan: PLAN,
      groups: { merged: merged.groups.length, suppressedInRegions: merged.suppressedGroups, direct: direct.length },
      rows,
      ratioMergedOverSingle: ratio,
      durationSec: Math.round((Date.now() - t0) / 1000),
    }
    if (QUICK) console.log('BENCH_QUICK=1: smoke run, results not written')
    else {
      writeResults(RESULTS, result)
      console.log(`results written to ${resolve(RESULTS)}`)
    }
  } finally {
    await single?.end().catch(() => undefined)
    await d?.close().catch(() => undefined)
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
