/**
 * What the audit hash chain costs per record (issue #12, item 4 and "Performance").
 *
 * One PostgreSQL 15 cluster (test settings: fsync off), two regions migrated by Domicile in the
 * README's two-role setup. In region `chained` the audit table has its chain (the deferred trigger,
 * src/schema/audit-chain-ddl.ts); in region `plain` the owner dropped the trigger afterwards: the
 * same table, indexes and columns, no chain. Same run, arms interleaved in shuffled rounds:
 *
 * - `reveal path`: a tenant transaction that reads a row and reveals one sealed field (one
 *   `field.reveal` record through the capability-checked definer function), chained vs plain;
 * - `append 1`: one record per transaction, the owner's INSERT (as ops and the control plane write);
 * - `append 10`: ten records in one transaction (per-record cost = time / 10).
 *
 * Then throughput with 8 concurrent reveal loops per region (the chain serialises commits that
 * carry audit records, region by region): reveals per second, chained vs plain.
 *
 * Run: node --import tsx bench/audit-append.bench.ts   (BENCH_QUICK=1 for a smoke run)
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDomicile, parseConfig, verifyAuditChains, type Domicile } from '../src/index.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../test/support/pg-cluster.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { median, round, summarize } from './lib/stats.js'
import { interleave, type Arm } from './lib/timing.js'

const QUICK = process.env.BENCH_QUICK === '1'
const RESULTS = 'bench/results/audit-append.json'
const PLAN = QUICK ? { rounds: 4, block: 20, warmup: 40 } : { rounds: 20, block: 100, warmup: 300 }
const CONCURRENT = { workers: 8, perWorker: QUICK ? 20 : 150 }
const log = (m: string) => console.error(`[audit-append] ${m}`)

const SCHEMA = `export default {
  customers: { scope: 'tenant', primaryKey: 'id', columns: {
    id: { type: 'text' }, name: { type: 'text' }, email: { type: 'text', sensitive: true } } },
}
`

async function reveal(d: Domicile, tenant: string, i: number): Promise<void> {
  await d.withTenant(tenant, async (s) => {
    const row = await s.table('customers').get('c1')
    const v = await s.reveal(row!.email, { purpose: `bench ${i}`, actor: 'bench' })
    if (typeof v !== 'string') throw new Error('reveal returned no value')
  })
}

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`audit-append bench needs real PostgreSQL: ${why}`)
  const t0 = Date.now()
  const dir = mkdtempSync(join(tmpdir(), 'domicile-bench-audit-'))
  let cluster: PgCluster | undefined
  let d: Domicile | undefined
  const owners: pg.Client[] = []
  try {
    cluster = await startPgCluster('bench-audit')
    const logins = await twoRoleDatabases(cluster, ['chained', 'plain', 'control'])
    writeFileSync(join(dir, 'schema.mjs'), SCHEMA)
    const store = (db: string) => ({ driver: 'postgres', url: logins.dataUrl(db), ownerUrl: logins.ownerUrl(db), poolSize: CONCURRENT.workers })
    d = await createDomicile({ config: parseConfig({
      regions: { chained: store('chained'), plain: store('plain') },
      controlPlane: { driver: 'postgres', url: logins.dataUrl('control'), ownerUrl: logins.ownerUrl('control') },
      schema: './schema.mjs',
      keys: { dir: join(dir, 'keys') },
    }, dir) })
    await d.migrate()
    for (const region of ['chained', 'plain']) {
      const p = await d.keys.provision(`t-${region}`, { custody: 'kms' })
      await d.addTenant(`t-${region}`, { region, key: p.key, keyState: p.keyState })
      await d.withTenant(`t-${region}`, (s) => s.table('customers').insert({ id: 'c1', name: 'Ada', email: 'ada@example.com' }))
    }
    for (const db of ['chained', 'plain']) {
      const c = new pg.Client({ connectionString: logins.ownerUrl(db) })
      await c.connect()
      owners.push(c)
    }
    const [chainedOwner, plainOwner] = owners as [pg.Client, pg.Client]
    await plainOwner.query('DROP TRIGGER domicile_audit_chain_link ON domicile_audit')
    const dd = d
    const append = (c: pg.Client, n: number) => async (i: number) => {
      const values = Array.from({ length: n }, (_, k) => `('t-bench', 'ops.bench', 'ok', 'bench', '{"step":${i * n + k}}'::jsonb)`).join(', ')
      await c.query(`INSERT INTO domicile_audit (tenant_id, type, outcome, actor, detail) VALUES ${values}`)
    }
    const arms: Arm[] = [
      { name: 'reveal path, chained', op: (i) => reveal(dd, 't-chained', i) },
      { name: 'reveal path, plain', op: (i) => reveal(dd, 't-plain', i) },
      { name: 'append 1/tx, chained', op: append(chainedOwner, 1) },
      { name: 'append 1/tx, plain', op: append(plainOwner, 1) },
      { name: 'append 10/tx, chained', op: append(chainedOwner, 10) },
      { name: 'append 10/tx, plain', op: append(plainOwner, 10) },
    ]
    log(`measuring: ${PLAN.rounds} rounds x ${PLAN.block} ops per arm ...`)
    const samples = await interleave(arms, { rounds: PLAN.rounds, blockSize: PLAN.block, warmupOps: PLAN.warmup })
    const pairs = [[0, 1, 1], [2, 3, 1], [4, 5, 10]] as const
    const rows = pairs.map(([a, b, per]) => {
      const A = samples[a]!
      const B = samples[b]!
      const added = median(A.rounds.map((blk, r) => median(blk) - median(B.rounds[r]!)))
      const sa = summarize(A.all)
      const sb = summarize(B.all)
      return {
        what: A.name.replace(', chained', ''), recordsPerOp: per,
        chainedMedianUs: sa.medianUs, chainedP99Us: sa.p99Us, plainMedianUs: sb.medianUs, plainP99Us: sb.p99Us,
        addedUsPerOp: round(added), addedUsPerRecord: round(added / per), addedPct: round((added / sb.medianUs) * 100, 1),
      }
    })
    printTable('audit append, chained vs plain (same run, one operation in flight)', ['operation', 'records/op', 'chained median µs', 'p99', 'plain median µs', 'p99', 'added µs/op (paired)', 'added µs/record', 'added %'],
      rows.map((r) => [r.what, r.recordsPerOp, r.chainedMedianUs, r.chainedP99Us, r.plainMedianUs, r.plainP99Us, r.addedUsPerOp, r.addedUsPerRecord, r.addedPct]))

    log(`concurrent: ${CONCURRENT.workers} loops x ${CONCURRENT.perWorker} reveals per region ...`)
    const throughput = async (tenant: string): Promise<number> => {
      const start = process.hrtime.bigint()
      await Promise.all(Array.from({ length: CONCURRENT.workers }, async (_, w) => {
        for (let i = 0; i < CONCURRENT.perWorker; i++) await reveal(dd, tenant, w * 100_000 + i)
      }))
      const sec = Number(process.hrtime.bigint() - start) / 1e9
      return Math.round((CONCURRENT.workers * CONCURRENT.perWorker) / sec)
    }
    const concurrent: Array<{ region: string; revealsPerSec: number }> = []
    for (const region of ['plain', 'chained', 'plain', 'chained']) concurrent.push({ region, revealsPerSec: await throughput(`t-${region}`) })
    const best = (r: string) => Math.max(...concurrent.filter((c) => c.region === r).map((c) => c.revealsPerSec))
    printTable(`${CONCURRENT.workers} concurrent reveal loops, one region (best of two runs)`, ['region', 'reveals/s'], [['chained', best('chained')], ['plain', best('plain')]])

    const v = await verifyAuditChains(dd, { region: 'chained' })
    if (!v.ok) throw new Error(`the chained region's chain does not verify after the bench: ${JSON.stringify(v.chains[0]?.firstBad)}`)
    const verifyStart = process.hrtime.bigint()
    await verifyAuditChains(dd, { region: 'chained' })
    const verifyMs = Number(process.hrtime.bigint() - verifyStart) / 1e6
    const records = v.chains[0]!.records
    log(`verify: ${records} records in ${round(verifyMs)} ms`)
    if (QUICK) {
      console.log('BENCH_QUICK=1: smoke run, results not written')
    } else {
      writeResults(RESULTS, {
        benchmark: 'audit-append', machine: machineInfo(), plan: PLAN, durationSec: Math.round((Date.now() - t0) / 1000),
        notes: 'PostgreSQL 15 test cluster with fsync=off: under fsync the chain lock is held through the WAL flush, so concurrent throughput with the chain falls further.',
        rows, concurrent: { ...CONCURRENT, chained: best('chained'), plain: best('plain') },
        verify: { records, ms: round(verifyMs), usPerRecord: round((verifyMs * 1000) / records, 2) },
      })
      console.log(`results written to ${resolve(RESULTS)}`)
    }
  } finally {
    for (const c of owners) await c.end().catch(() => undefined)
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
