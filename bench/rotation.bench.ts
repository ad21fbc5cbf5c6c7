/**
 * Key rotation (issue #10, item 1), on one real PostgreSQL 15 cluster set up with two roles, the
 * local key provider:
 *
 * 1. KEK rotation of 1,000 tenants (`rotateKeks`, one new KEK per tenant, one shared wait for the
 *    directory's bound): tenants/s, with and without that wait. The proof that no row table was
 *    read: PostgreSQL's own per-table counters (pg_stat_user_tables: sequential and index scans,
 *    rows fetched, inserted, updated, deleted) of every tenant table, read before and after with
 *    every Domicile connection closed (backends flush their counters when they exit), are unchanged,
 *    while those of domicile_data_keys moved by the number of keys rewrapped.
 * 2. Same run: KEK rotation time per tenant for tenants of 2 rows against tenants of 2,000 rows,
 *    interleaved one by one: the cost does not grow with rows.
 * 3. Data-key re-encryption (`rotateDataKey`): values/s and rows/s over the re-encryption itself,
 *    against the same-run baseline of the crypto alone (open + seal of the same values in process),
 *    and a throttled run (rows/s asked vs achieved).
 *
 * Run: node --import tsx bench/rotation.bench.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { randomBytes } from 'node:crypto'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { isDomicileError, type Domicile } from '../src/index.js'
import { prepareColumn } from '../src/fields/field-codec.js'
import { resealField } from '../src/fields/field-encryptor.js'
import { rotateKek, rotateKeks } from '../src/ops/rotate-kek.js'
import { rotateDataKey } from '../src/ops/rotate-data-key.js'
import { postgresUnavailable } from '../test/support/pg-cluster.js'
import { REGION, startRotationCluster, type RotationCluster } from '../test/support/rotation-cluster.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { median, round } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/rotation.json'
const TENANTS = QUICK ? 40 : 1000
const LARGE = { tenants: QUICK ? 3 : 10, rows: QUICK ? 200 : 2000 }
const REENCRYPT_ROWS = QUICK ? 1000 : 30_000
const THROTTLE = { rows: QUICK ? 500 : 5000, perSecond: QUICK ? 1000 : 2500 }
const log = (m: string) => console.error(`[rotation] ${m}`)

type Counters = Record<string, Record<string, number>>

async function tableCounters(rc: RotationCluster, tables: readonly string[]): Promise<Counters> {
  await rc.su.query('SELECT pg_stat_clear_snapshot()')
  const r = await rc.su.query<Record<string, string | number>>(
    `SELECT relname, seq_scan, coalesce(seq_tup_read, 0) AS seq_tup_read, coalesce(idx_scan, 0) AS idx_scan, coalesce(idx_tup_fetch, 0) AS idx_tup_fetch,
            n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_user_tables WHERE relname = ANY($1)`, [tables])
  return Object.fromEntries(r.rows.map((row) => [String(row.relname), Object.fromEntries(Object.entries(row).filter(([k]) => k !== 'relname').map(([k, v]) => [k, Number(v)]))]))
}

const diff = (a: Counters, b: Counters): Counters =>
  Object.fromEntries(Object.keys(b).map((t) => [t, Object.fromEntries(Object.keys(b[t]!).map((k) => [k, b[t]![k]! - (a[t]?.[k] ?? 0)]))]))

let seedRetries = 0

/**
 * ERR_CONFLICT is retryable: a new tenant's first keys can be released by its own directory change
 * notifications (the add, then its NOTIFY and the poll) while a transaction uses them.
 */
async function retrying(fn: () => Promise<unknown>): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await fn()
      return
    } catch (e) {
      if (!isDomicileError(e, 'ERR_CONFLICT') || attempt === 5) throw e
      seedRetries++
    }
  }
}

async function addTenants(d: Domicile, ids: readonly string[], rows: number): Promise<void> {
  let next = 0
  await Promise.all(Array.from({ length: 4 }, async () => {
    while (next < ids.length) {
      const id = ids[next++]!
      const p = await d.keys.provision(id, { custody: 'kms' })
      await d.addTenant(id, { region: REGION, key: p.key, keyState: p.keyState })
      await retrying(() => d.withTenant(id, async (s) => {
        for (let i = 0; i < rows; i++) await s.table('customers').insert({ id: `c${i}`, name: `n${i}`, email: `u${i}@${id}.example`, tax_id: `T-${i}` })
      }))
    }
  }))
}

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`rotation bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  const rc = await startRotationCluster('bench-rotation')
  try {
    let d = await rc.open()
    const rowTables = [...d.schema.tables.values()].filter((t) => t.scope === 'tenant').map((t) => t.name)
    const small = Array.from({ length: TENANTS }, (_, i) => `t-${String(i).padStart(4, '0')}`)
    const large = Array.from({ length: LARGE.tenants }, (_, i) => `big-${i}`)
    log(`seeding ${TENANTS} tenants x 2 rows, ${LARGE.tenants} x ${LARGE.rows} rows, 1 x ${REENCRYPT_ROWS} rows`)
    await addTenants(d, small, 2)
    await addTenants(d, large, LARGE.rows)
    await addTenants(d, ['bulk', 'throttled'], 0)
    await retrying(() => d.withTenant('bulk', async (s) => {
      for (let i = 0; i < REENCRYPT_ROWS; i++) await s.table('customers').insert({ id: `r${String(i).padStart(6, '0')}`, name: 'n', email: `r${i}@bulk.example`, tax_id: `TAX-${i}-${'x'.repeat(16)}` })
    }))
    await retrying(() => d.withTenant('throttled', async (s) => {
      for (let i = 0; i < THROTTLE.rows; i++) await s.table('customers').insert({ id: `r${i}`, name: 'n', email: `r${i}@t.example`, tax_id: `T${i}` })
    }))
    await d.close()
    log(`seeded (${seedRetries} seeding transaction(s) retried after ERR_CONFLICT)`)

    // 1. 1,000 tenants, counters read with every Domicile connection closed.
    const before = await tableCounters(rc, [...rowTables, 'domicile_data_keys'])
    d = await rc.open()
    const tk = Date.now()
    const outcomes = await rotateKeks(d, small, { concurrency: 4 })
    const kekMs = Date.now() - tk
    const failed = outcomes.filter((o) => 'error' in o)
    if (failed.length > 0) throw new Error(`${failed.length} tenants failed: ${JSON.stringify(failed.slice(0, 3))}`)
    const keys = outcomes.reduce((a, o) => a + ('result' in o ? o.result.keys : 0), 0)
    const waitMs = Math.max(5000, 10 * 200) + 200
    await d.close()
    await new Promise((r) => setTimeout(r, 500))
    const after = await tableCounters(rc, [...rowTables, 'domicile_data_keys'])
    const delta = diff(before, after)
    const untouched = rowTables.every((t) => Object.values(delta[t] ?? {}).every((v) => v === 0))
    log(`KEK rotation: ${TENANTS} tenants, ${keys} keys in ${kekMs} ms; row tables untouched: ${untouched}`)
    if (!untouched) throw new Error(`a row table was read or written during the KEK rotation: ${JSON.stringify(delta)}`)

    // 2. Cost per tenant: 2 rows against LARGE.rows rows, interleaved.
    d = await rc.open()
    const perTenant = { small: [] as number[], large: [] as number[] }
    for (let i = 0; i < LARGE.tenants; i++) {
      for (const [group, id] of [['small', small[i]!], ['large', large[i]!]] as const) {
        const t = performance.now()
        await rotateKek(d, id, { propagationMs: 0 })
        perTenant[group].push(performance.now() - t)
      }
    }

    // 3. Data-key re-encryption.
    const dk = await rotateDataKey(d, 'bulk', { propagationMs: 0, batchSize: 1000 })
    const reencryptMs = dk.reencryptMs
    const throttled = await rotateDataKey(d, 'throttled', { propagationMs: 0, batchSize: 100, maxRowsPerSecond: THROTTLE.perSecond })
    const throttledRate = throttled.rowsPerSecond
    await d.close()
    // Baseline: the crypto alone (open with the old key, seal under the new one), same values shape.
    const col = prepareColumn({ tenantId: 'bulk', table: 'customers', column: 'tax_id' })
    const k1 = randomBytes(32)
    const k2 = randomBytes(32)
    const sample = Array.from({ length: 20_000 }, (_, i) => col.seal(k1, 1, `r${i}`, `TAX-${i}-${'x'.repeat(16)}`))
    const tc = performance.now()
    for (let i = 0; i < sample.length; i++) resealField(k1, k2, 2, { tenantId: 'bulk', table: 'customers', column: 'tax_id', rowKey: `r${i}` }, sample[i]!)
    const cryptoPerSec = sample.length / ((performance.now() - tc) / 1000)

    const rows = [
      ['KEK rotation, 1 new KEK per tenant', `${TENANTS} tenants, ${keys} keys`, `${kekMs} ms`, `${round((TENANTS * 1000) / kekMs)} tenants/s`],
      ['  without the one shared wait for the directory bound', `${waitMs} ms wait`, `${kekMs - waitMs} ms`, `${round((TENANTS * 1000) / Math.max(kekMs - waitMs, 1))} tenants/s`],
      ['KEK rotation per tenant, 2 rows', `${LARGE.tenants} tenants`, `median ${round(median(perTenant.small))} ms`, '-'],
      [`KEK rotation per tenant, ${LARGE.rows} rows`, `${LARGE.tenants} tenants`, `median ${round(median(perTenant.large))} ms`, '-'],
      ['data-key re-encryption', `${dk.rows} rows, ${dk.values} values`, `${round(reencryptMs)} ms`, `${dk.valuesPerSecond} values/s, ${dk.rowsPerSecond} rows/s`],
      ['  baseline: open + seal alone, in process', `${sample.length} values`, '-', `${round(cryptoPerSec)} values/s`],
      [`throttled re-encryption, asked ${THROTTLE.perSecond} rows/s`, `${throttled.rows} rows`, '-', `${round(throttledRate)} rows/s achieved`],
    ]
    printTable('Key rotation (PostgreSQL 15, two roles, local provider)', ['what', 'size', 'time', 'rate'], rows)
    console.log(`row-table counters during the ${TENANTS}-tenant KEK rotation: ${JSON.stringify(Object.fromEntries(rowTables.map((t) => [t, delta[t]])))}`)
    console.log(`domicile_data_keys counters: ${JSON.stringify(delta.domicile_data_keys)}`)
    writeResults(RESULTS, {
      benchmark: 'rotation', machine: machineInfo(), seedRetries, durationSec: Math.round((Date.now() - t0) / 1000),
      kek: { tenants: TENANTS, keys, ms: kekMs, tenantsPerSecond: round((TENANTS * 1000) / kekMs), sharedWaitMs: waitMs, tenantsPerSecondWithoutWait: round((TENANTS * 1000) / Math.max(kekMs - waitMs, 1)) },
      noRowTableRead: { rowTables: Object.fromEntries(rowTables.map((t) => [t, delta[t]])), dataKeys: delta.domicile_data_keys, untouched },
      perTenantMs: { rows2: round(median(perTenant.small)), [`rows${LARGE.rows}`]: round(median(perTenant.large)), samples: perTenant },
      reencrypt: { rows: dk.rows, values: dk.values, ms: round(reencryptMs), valuesPerSecond: dk.valuesPerSecond, rowsPerSecond: dk.rowsPerSecond, cryptoOnlyValuesPerSecond: round(cryptoPerSec) },
      throttle: { askedRowsPerSecond: THROTTLE.perSecond, achievedRowsPerSecond: round(throttledRate), rows: throttled.rows },
    })
  } finally {
    await rc.close()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exit(1)
  })
}
