/**
 * Encrypt-in-place of 200,000 rows (issue #10, item 2): the job's rate while a concurrent writer
 * keeps going, and the writer's latency during the job against the same writer without it.
 *
 * One PostgreSQL 15 cluster (two roles), 4 tenants x 50,000 rows with a plaintext `text` column,
 * then declared sensitive and searchable (migrate adds the shadow column). The writer is one
 * application process doing one-shot writes back to back (2/3 updates of existing rows, 1/3
 * inserts; every value sealed with its blind index). The job runs in its own process, as
 * `domicile migrate encrypt` would (batches of 1000, the library's default; BENCH_BATCH=N for
 * another size; BENCH_MAX_RATE=N caps the job's rows per second). Same run, same table, same writer:
 *
 *   baseline  the writer alone, for BASE_MS before the job and BASE_MS after it (pooled: the
 *             machine is shared, and one window alone moved by 40% between runs)
 *   during    the writer while the job converts rows (from its first batch to its swap)
 *
 * Run: node --import tsx bench/encrypt-in-place.bench.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { rmSync } from 'node:fs'
import { loadavg } from 'node:os'
import { resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { postgresUnavailable } from '../test/support/pg-cluster.js'
import { rowId, runChild, startEipFixture } from '../test/support/encrypt-in-place-fixture.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { round, summarize } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/encrypt-in-place.json'
const TENANTS = ['t1', 't2', 't3', 't4']
const PER_TENANT = QUICK ? 5_000 : 50_000
const BASE_MS = QUICK ? 2_000 : 8_000
/** Rows per batch of the job (the fixture's child reads BATCH; its own default is smaller, for tests). */
const BATCH_SIZE = Number(process.env.BENCH_BATCH ?? 1000)
/** The job's rows-per-second cap (`--max-rows-per-second`); none unless BENCH_MAX_RATE=N. */
const MAX_RATE = process.env.BENCH_MAX_RATE ? Number(process.env.BENCH_MAX_RATE) : undefined
const log = (m: string) => console.error(`[encrypt-in-place] ${m}`)

type Row = { id: string; n: number; note: unknown }

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`encrypt-in-place bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  log(`populating ${TENANTS.length} x ${PER_TENANT} rows ...`)
  const f = await startEipFixture('bench-eip', TENANTS, PER_TENANT)
  try {
    let phase: 'baseline' | 'idle' | 'during' | 'after' = 'idle'
    const lat: Record<'baseline' | 'during' | 'after', number[]> = { baseline: [], during: [], after: [] }
    let stop = false
    let i = 0
    const writer = (async () => {
      while (!stop) {
        const t = TENANTS[i % TENANTS.length]!
        const repo = f.d.tenant(t).table<Row>('notes')
        const s = performance.now()
        try {
          if (i % 3 === 0) await repo.insert({ id: `w${i}`, n: i, note: `written ${i}` })
          else await repo.update(rowId((i * 7919) % PER_TENANT), { note: `updated ${i}` })
        } catch (e) {
          if (!(e instanceof Error && 'code' in e && (e as { code: string }).code === 'ERR_CONFLICT')) throw e
        }
        const us = (performance.now() - s) * 1000
        const ph = phase as 'baseline' | 'idle' | 'during' | 'after'
        if (ph !== 'idle') lat[ph].push(us)
        i++
      }
    })()
    // Warm up, then the baseline.
    await new Promise((r) => setTimeout(r, 1000))
    phase = 'baseline'
    await new Promise((r) => setTimeout(r, BASE_MS))
    phase = 'idle'
    const load = loadavg()
    log(`baseline: ${lat.baseline.length} writes; load average ${load.map((x) => x.toFixed(2)).join(' ')}; running the job ...`)
    let firstBatch = 0
    let swapAt = 0
    let convertedAtSwap = 0
    let lastDone = 0
    process.env.BATCH = String(BATCH_SIZE)
    if (MAX_RATE !== undefined) process.env.MAX_RATE = String(MAX_RATE)
    const run = await runChild(f, 'encrypt', undefined, (line) => {
      if (!line.startsWith('{"progress"')) return
      const e = JSON.parse(line).progress as { state: string; done: number }
      if (e.state === 'encrypt') {
        if (firstBatch === 0) firstBatch = performance.now()
        phase = 'during'
        lastDone = e.done
      } else if (e.state === 'swap' && swapAt === 0) {
        swapAt = performance.now()
        convertedAtSwap = lastDone
        phase = 'idle'
      }
    })
    // The writer alone again, as long as before: the machine is shared, so the baseline is the
    // writer before and after the job together.
    phase = 'after'
    await new Promise((r) => setTimeout(r, BASE_MS))
    phase = 'idle'
    stop = true
    await writer
    if (run.code !== 0) throw new Error(`the job failed: ${run.stderr}`)
    const result = JSON.parse(run.stdout.split('\n').find((l) => l.startsWith('{"result"'))!).result as { rows: number; elapsedMs: number; regions: Array<{ swapLockHeldMs?: number; swapLockWaitMs?: number }> }
    const convertSec = (swapAt - firstBatch) / 1000
    const before = summarize(lat.baseline)
    const afterJob = summarize(lat.after)
    const base = summarize([...lat.baseline, ...lat.after])
    const during = summarize(lat.during)
    const rows = [
      { arm: 'writer alone, before the job', writes: lat.baseline.length, ...before },
      { arm: 'writer alone, after the job', writes: lat.after.length, ...afterJob },
      { arm: 'writer alone (baseline: both)', writes: lat.baseline.length + lat.after.length, ...base },
      { arm: 'writer during the job', writes: lat.during.length, ...during },
    ]
    printTable('one-shot writes (update 2/3, insert 1/3), sealed + blind index, PostgreSQL 15', ['arm', 'writes', 'median µs', 'p99 µs'],
      rows.map((r) => [r.arm, r.writes, r.medianUs, r.p99Us]))
    const job = {
      batchSize: BATCH_SIZE, maxRowsPerSecond: MAX_RATE ?? 'none', rowsConverted: result.rows, convertSeconds: round(convertSec, 2), rowsPerSecond: Math.round(convertedAtSwap / convertSec),
      wholeJobMs: result.elapsedMs, wholeJobRowsPerSecond: Math.round(result.rows / (result.elapsedMs / 1000)),
      swapLockWaitMs: result.regions[0]?.swapLockWaitMs, swapLockHeldMs: result.regions[0]?.swapLockHeldMs,
      p99Ratio: round(during.p99Us / base.p99Us, 2), medianRatio: round(during.medianUs / base.medianUs, 2), p99RatioToBeforeOnly: round(during.p99Us / before.p99Us, 2), loadAverageBefore: load,
    }
    printTable(`encrypt-in-place job (child process, batches of ${BATCH_SIZE})`, Object.keys(job), [Object.values(job).map((v) => (Array.isArray(v) ? v.map((x) => x.toFixed(2)).join(' ') : String(v)))])
    if (QUICK) {
      console.log('BENCH_QUICK=1: smoke run, results not written')
    } else {
      writeResults(RESULTS, { benchmark: 'encrypt-in-place', machine: machineInfo(), rows: TENANTS.length * PER_TENANT, durationSec: Math.round((Date.now() - t0) / 1000), writer: rows, job })
      console.log(`results written to ${resolve(RESULTS)}`)
    }
  } finally {
    await f.close()
    rmSync(f.dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
