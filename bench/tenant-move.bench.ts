/**
 * Relocation of a 200,000-row tenant between two PostgreSQL 15 clusters on this machine (issue #10,
 * item 3): rows/s and the write freeze.
 *
 * Two clusters (one per region, the control plane beside the first), the production two-role
 * setup, the test schema (customers with a searchable sealed email and a sealed tax id; orders with
 * a sealed note and a foreign key to customers). The tenant holds 100,000 customers and 100,000
 * orders written through Domicile (real ciphertext). A writer keeps writing to the tenant during the
 * move and retries ERR_TENANT_MOVING; its longest wait is the freeze as an application sees it.
 *
 * Figures:
 * - bulk-copy rate (rows/s of the copy state), and the relocation rate: rows / (start → cutover);
 * - write freeze: the move's own measure (directory "moving" → cutover commit) and the writer's
 *   longest wait;
 * - same-run ceiling: the same rows moved by `COPY ... TO STDOUT (FORMAT binary) | COPY ... FROM
 *   STDIN (FORMAT binary)` between the two clusters with psql (into scratch tables, no Domicile).
 *
 * Run: node --import tsx bench/tenant-move.bench.ts   (BENCH_QUICK=1: 20,000 rows, results not written)
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { moveTenant } from '../src/ops/tenant-move.js'
import { postgresUnavailable } from '../test/support/pg-cluster.js'
import { startWriter } from '../test/support/move-writer.js'
import { addKmsTenant, EU, startMoveEnv, US } from '../test/support/tenant-move-env.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/tenant-move.json'
const CUSTOMERS = QUICK ? 10_000 : 100_000
const log = (m: string) => console.error(`[tenant-move] ${m}`)

function psqlPath(): string {
  for (const dir of ['/usr/lib/postgresql/15/bin', '/usr/lib/postgresql/16/bin', '/usr/bin', '/usr/local/bin']) if (existsSync(`${dir}/psql`)) return `${dir}/psql`
  return 'psql'
}

/** COPY binary of the tenant's rows from one cluster into scratch tables on the other, through a pipe. Returns ms. */
function copyBinaryCeiling(fromPort: number, toPort: number, tenant: string): number {
  const psql = psqlPath()
  const started = performance.now()
  for (const table of ['customers', 'orders']) {
    const out = `${psql} -X -q -h 127.0.0.1 -p ${fromPort} -U postgres -d region -c "COPY (SELECT * FROM ${table} WHERE tenant_id = '${tenant}') TO STDOUT (FORMAT binary)"`
    const into = `${psql} -X -q -h 127.0.0.1 -p ${toPort} -U postgres -d region -c "COPY ceiling_${table} FROM STDIN (FORMAT binary)"`
    const r = spawnSync('sh', ['-c', `${out} | ${into}`], { encoding: 'utf8' })
    if (r.status !== 0) throw new Error(`COPY ceiling failed: ${r.stderr}`)
  }
  return performance.now() - started
}

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`tenant-move bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  const env = await startMoveEnv('bench-move', { poolSize: 6, replicationRole: true })
  const d = await env.open()
  try {
    await addKmsTenant(d, 'big', EU)
    log(`seeding ${2 * CUSTOMERS} rows through Domicile (sealed fields) ...`)
    const seedStart = Date.now()
    const model = new Map<string, Record<string, unknown>>()
    const chunk = 1000
    const seedChunk = async (from: number) => d.withTenant('big', async (s) => {
      for (let j = from; j < Math.min(CUSTOMERS, from + chunk); j++) {
        await s.table('customers').insert({ id: `c${String(j).padStart(7, '0')}`, name: `Customer ${j}`, email: `c${j}@big.example`, tax_id: `TAX-${j}`, plan: j % 3 === 0 ? 'pro' : 'free' })
        await s.table('orders').insert({ id: `o${String(j).padStart(7, '0')}`, customer_id: `c${String(j).padStart(7, '0')}`, amount: j, note: `order note ${j}` })
      }
    })
    for (let i = 0; i < CUSTOMERS; i += 2 * chunk) await Promise.all([seedChunk(i), seedChunk(i + chunk)])
    for (const c of Object.values(env.direct)) await c.query('ANALYZE')
    log(`seeded in ${Math.round((Date.now() - seedStart) / 1000)} s`)

    // Same-run ceiling: COPY binary between the two clusters (scratch tables, no constraints but the primary key).
    await env.direct[US]!.query('CREATE TABLE ceiling_customers (LIKE customers INCLUDING DEFAULTS INCLUDING INDEXES)')
    await env.direct[US]!.query('CREATE TABLE ceiling_orders (LIKE orders INCLUDING DEFAULTS INCLUDING INDEXES)')
    const ceilingMs = copyBinaryCeiling(env.clusters.eu.port, env.clusters.us.port, 'big')
    await env.direct[US]!.query('DROP TABLE ceiling_customers, ceiling_orders')
    const rows = 2 * CUSTOMERS
    log(`COPY binary ceiling: ${Math.round(rows / (ceilingMs / 1000))} rows/s`)

    // Two moves in one run: there (EU -> US) and back (US -> EU), one with the foreign keys checked
    // once per chunk (the owner has the README's optional grant), the other with PostgreSQL's
    // per-row checks (chunkForeignKeyChecks: false). BENCH_MOVE_FIRST=per-row swaps which goes first.
    const firstPerRow = process.env.BENCH_MOVE_FIRST === 'per-row'
    const measureMove = async (to: string, prefix: string, chunkForeignKeyChecks: boolean) => {
      const writer = startWriter(d, 'big', model, { prefix, pauseMs: 5 })
      await new Promise((r) => setTimeout(r, 500))
      const marks: Record<string, number> = {}
      let checkedNotes = 0
      const start = performance.now()
      const result = await moveTenant(d, 'big', {
        to, actor: 'bench', purgeGraceMs: 0, chunkForeignKeyChecks,
        progress: {
          update() {},
          note(m) {
            if (/foreign keys checked once per chunk/.test(m)) checkedNotes++
            const s = /: (copy|catch-up|write freeze|cut over|verify|purge|done)/.exec(m)?.[1]
            if (s && marks[s] === undefined) marks[s] = performance.now() - start
          },
        },
      })
      await new Promise((r) => setTimeout(r, 300))
      await writer.stop()
      if (writer.stats.errors.length) throw new Error(`writer errors: ${writer.stats.errors.slice(0, 3).join('; ')}`)
      /* Postcondition: the mode asked for is the mode measured. */
      if ((checkedNotes > 0) !== chunkForeignKeyChecks) throw new Error(`expected chunk checks ${chunkForeignKeyChecks}, saw ${checkedNotes} notes`)
      const toCutover = marks['cut over'] ?? result.elapsedMs
      return {
        direction: to === US ? 'eu -> us' : 'us -> eu',
        foreignKeyChecks: chunkForeignKeyChecks ? 'per chunk' : 'per row',
        copyRowsPerSecond: result.copyRowsPerSecond,
        relocationRowsPerSecond: Math.round(rows / (toCutover / 1000)),
        endToEndMs: Math.round(performance.now() - start),
        msToCutover: Math.round(toCutover),
        freezeMs: result.freezeMs,
        writerLongestWaitMs: writer.stats.longestRetryMs,
        writerRetriesMoving: writer.stats.retriedMoving,
        writerAcknowledged: writer.stats.acknowledged,
        rowsCaughtUp: result.rows - rows,
        phasesMs: Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)])),
      }
    }
    const there = await measureMove(US, 'w', !firstPerRow)
    const back = await measureMove(EU, 'b', firstPerRow)
    const [chunked, perRow] = firstPerRow ? [back, there] : [there, back]
    const out = {
      rows,
      ...chunked,
      copyBinaryCeilingRowsPerSecond: Math.round(rows / (ceilingMs / 1000)),
      perRowChecks: perRow,
    }
    const row = (label: string, f: (m: typeof there) => number | null) => [label, f(chunked) ?? 0, f(perRow) ?? 0]
    printTable(`tenant move: ${rows} rows between two PostgreSQL clusters (targets: >= 100,000 rows/s, floor 50,000; freeze <= 0.5 s, never > 2 s); same-run COPY binary ceiling ${out.copyBinaryCeilingRowsPerSecond} rows/s`,
      ['measure', `FK checks per chunk (${chunked.direction})`, `per row (${perRow.direction})`], [
        row('bulk copy rows/s', (m) => m.copyRowsPerSecond),
        row('relocation rows/s (start to cutover)', (m) => m.relocationRowsPerSecond),
        row('write freeze ms (directory moving -> cutover)', (m) => m.freezeMs),
        row('writer longest wait ms', (m) => m.writerLongestWaitMs),
        row('start to cutover ms', (m) => m.msToCutover),
        row('end to end ms (purge included, no grace)', (m) => m.endToEndMs),
      ])
    writeResults(RESULTS, { benchmark: 'tenant-move', machine: machineInfo(), durationSec: Math.round((Date.now() - t0) / 1000), ...out })
  } finally {
    await d.close()
    await env.destroy()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
