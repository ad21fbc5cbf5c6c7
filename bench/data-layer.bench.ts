/**
 * Data-layer benchmark: routed point reads and inserts through `withTenant` against real
 * PostgreSQL 15 (one cluster per region plus one for the control plane), compared in the same run
 * with the SAME statements issued directly through `pg` on the same cluster, plus the cold
 * directory lookup cost and the same figures on embedded PGlite regions.
 *
 * Target: median per-operation overhead of the data layer <= 5% for a point read by primary key
 * with a warm directory cache.
 *
 * Method
 * - The baseline statements are not retyped: one routed get() and one routed insert() are run
 *   with `pg.Client.prototype.query` wrapped, and the exact SQL texts the data layer sent (prelude
 *   from tenantTransactionPrelude, the repository's parameterised statement, COMMIT) are replayed.
 * - Arms are interleaved (bench/lib/timing.ts): warm-up, then many rounds in which every arm runs a
 *   small block of operations, the arm order shuffled each round; one operation in flight; every
 *   operation timed on its own; process CPU time recorded per block.
 * - Arms (postgres): "routed" (withTenant -> directory cache -> router -> driver pool -> repository);
 *   "pg, same connection" (the headline baseline: the statements sent with client.query over the
 *   data layer's own pooled connection, idle between operations, so both arms talk to the very
 *   same server backend); "pg Pool, own connection" (pg.Pool max 1, connect/release per
 *   transaction) and "pg Client, own connection". Separate connections mean separate backend
 *   processes, which the OS schedules differently on a busy 2-core machine: a fixed per-connection
 *   bias of either sign that interleaving cannot cancel, hence the same-connection headline.
 *   Regions use poolSize 1. Operations alternate between the us-east-1 and eu-west-1 tenant; each
 *   baseline uses the matching region's database. Overhead = (median routed - median baseline) /
 *   median baseline, with a 95% bootstrap interval over rounds, and the median over rounds of the
 *   paired per-round overhead as a drift-robust second estimate.
 * - Layer breakdown of the point read (postgres), all on the same connection: the same read
 *   through the driver's session, the router's tenant transaction, withTenant + scope.sql and
 *   withTenant + table.get, interleaved; each layer's cost = median over rounds of the paired
 *   difference to the layer below.
 * - Cold directory lookup: a real invalidation (setTenantStatus -> change log + NOTIFY), wait for
 *   the pushed notification, check the cache is empty (directory.peek), time withTenant (cold),
 *   check it is cached, time it again (warm). Cold cost = median of paired (cold - warm).
 *   Directory-only: the same with directory.get(). Also: the first request of a fresh instance
 *   (pools, LISTEN connection, stamp check included).
 * - PGlite: one data directory set is migrated and seeded through Domicile and closed; the region
 *   directories are then copied for the baseline (a PGlite data directory admits one instance), so
 *   the routed instance and the direct PGlite instances read identical data files.
 * - Caveat: both arms share the process, so the baseline also pays for the AsyncLocalStorage
 *   hooks the router enables (Node 20); the overhead over a process without Domicile is higher.
 *
 * Run: node --import tsx bench/data-layer.bench.ts   (BENCH_QUICK=1 for a short smoke run)
 */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { createDomicile, parseConfig, type Domicile } from '../src/index.js'
import { CHECKED_COMMIT, SESSION_OPEN, tenantTransactionPrelude } from '../src/regions/tenant-context.js'
import { postgresUnavailable, startPgCluster, type PgCluster } from '../test/support/pg-cluster.js'
import { bootstrapOverheadCi, median, overheadPct, prng, round, summarize, type Summary } from './lib/stats.js'
import { interleave, timeUs, type Arm, type ArmSamples } from './lib/timing.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { internalsOf } from '../src/domicile-internals.js'

const HERE = dirname(fileURLToPath(import.meta.url))
const RESULTS = join(HERE, 'results', 'data-layer.json')
const QUICK = process.env.BENCH_QUICK === '1'
const TARGET_PCT = 5
/** The headline baseline: the same statements over the data layer's own pooled connection. */
const SAME_CONN = 'pg, same connection'
const T0 = Date.now()
const log = (msg: string) => console.log(`[${((Date.now() - T0) / 1000).toFixed(1)}s] ${msg}`)

const REGIONS = ['us-east-1', 'eu-west-1'] as const
const TENANTS = [
  { id: 'acme', region: 'us-east-1' },
  { id: 'globex', region: 'eu-west-1' },
] as const
const ROWS_PER_TENANT = 1000

const SCHEMA_MODULE = `// Benchmark schema: plain columns only (field encryption is not part of this benchmark).
export default {
  customers: {
    scope: 'tenant',
    primaryKey: 'id',
    columns: {
      id: { type: 'text' },
      name: { type: 'text' },
      plan: { type: 'text', nullable: true },
    },
    indexes: ['plan'],
  },
}
`

const PLANS = ['free', 'pro', 'enterprise']
const rowFor = (i: number) => ({ id: `c-${i}`, name: `Customer ${i}`, plan: PLANS[i % 3]! })

interface Plan {
  read: { rounds: number; block: number; warmup: number }
  /** Layer breakdown of the point read (postgres only). */
  layers?: { rounds: number; block: number; warmup: number }
  insert: { rounds: number; block: number; warmup: number }
  cold: number
  fresh: number
}
// Small blocks interleave finely (a block of 25 point reads lasts a few ms), so load changes on this
// shared machine hit all arms alike.
const PG_PLAN: Plan = QUICK
  ? { read: { rounds: 24, block: 25, warmup: 200 }, layers: { rounds: 12, block: 25, warmup: 100 }, insert: { rounds: 16, block: 25, warmup: 100 }, cold: 30, fresh: 2 }
  : { read: { rounds: 400, block: 25, warmup: 2000 }, layers: { rounds: 240, block: 20, warmup: 1000 }, insert: { rounds: 160, block: 25, warmup: 600 }, cold: 200, fresh: 5 }
const PGLITE_PLAN: Plan = QUICK
  ? { read: { rounds: 16, block: 25, warmup: 100 }, insert: { rounds: 12, block: 25, warmup: 100 }, cold: 20, fresh: 0 }
  : { read: { rounds: 240, block: 25, warmup: 1000 }, insert: { rounds: 112, block: 25, warmup: 400 }, cold: 150, fresh: 0 }

// ---------------------------------------------------------------------------------------------
// Shapes of the vendor subsets used here.

interface PgQueryable {
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] } | Array<{ rows: Record<string, unknown>[] }>>
}
interface PgPoolClient extends PgQueryable { release(): void }
interface PgPool { connect(): Promise<PgPoolClient>; end(): Promise<void> }
interface PgClient extends PgQueryable { connect(): Promise<void>; end(): Promise<void> }
interface PgModule {
  Pool: new (cfg: Record<string, unknown>) => PgPool
  Client: (new (cfg: Record<string, unknown>) => PgClient) & { prototype: { query: (...a: unknown[]) => unknown } }
}
interface PGliteLike {
  waitReady: Promise<void>
  query<R>(sql: string, params?: unknown[]): Promise<{ rows: R[] }>
  exec(sql: string): Promise<Array<{ rows: Record<string, unknown>[] }>>
  close(): Promise<void>
}

async function loadPg(): Promise<PgModule> {
  const mod = (await import('pg')) as unknown as { default?: PgModule } & PgModule
  return mod.default ?? mod
}

// ---------------------------------------------------------------------------------------------
// Setup helpers

function writeSchema(dir: string): string {
  mkdirSync(dir, { recursive: true })
  const p = join(dir, 'bench.schema.mjs')
  writeFileSync(p, SCHEMA_MODULE)
  return p
}

async function openDomicile(raw: Record<string, unknown>, baseDir: string): Promise<Domicile> {
  // directoryPollMs at its maximum: the poll timer must not invalidate entries mid-measurement
  // (the push path is what the cold-lookup measurement waits for).
  const config = parseConfig({ directoryPollMs: 60_000, ...raw }, baseDir)
  return createDomicile({ config })
}

async function prepare(d: Domicile): Promise<void> {
  const res = await d.migrate()
  const failed = res.filter((r) => !r.ok)
  if (failed.length) throw new Error(`migrate failed: ${JSON.stringify(failed)}`)
  for (const t of TENANTS) await d.addTenant(t.id, { region: t.region })
  for (const t of TENANTS) {
    await d.withTenant(t.id, async (s) => {
      const repo = s.table('customers')
      for (let i = 0; i < ROWS_PER_TENANT; i++) await repo.insert(rowFor(i))
    })
  }
  // Advance the directory's change-log cursor past the setup entries, so a later poll does not
  // invalidate warm entries during measurement.
  await d.directory.poll()
  // That poll invalidated the setup entries; warm the directory cache again.
  for (const t of TENANTS) await d.directory.get(t.id)
}

/** A pooled connection of the data layer, as seen from outside. */
type CapturedClient = PgClient & { listenerCount(event: string): number }

/**
 * The exact SQL texts the data layer sends for one get() and one insert(), captured from `pg`,
 * and, per region, the pooled connection the data layer uses (poolSize 1: its only one), so a
 * baseline can issue the same statements over the very same connection and server backend.
 */
async function captureStatements(pg: PgModule, d: Domicile): Promise<{ read: string[]; insert: string[]; clients: Map<string, CapturedClient> }> {
  const proto = pg.Client.prototype
  const original = proto.query
  let seen: string[] = []
  const clients = new Map<string, CapturedClient>()
  const regionOf = new Map<string, string>(TENANTS.map((t) => [t.id, t.region]))
  proto.query = function (this: unknown, ...args: unknown[]) {
    const a0 = args[0]
    const text = typeof a0 === 'string' ? a0 : String((a0 as { text?: string }).text)
    if (text === SESSION_OPEN) return original.apply(this, args) // once per connection, not per transaction
    seen.push(text)
    const m = PRELUDE.exec(text)
    const region = m ? regionOf.get(m[2]!) : undefined
    if (m && region) {
      clients.set(region, this as CapturedClient)
      connectionCaps.set(this as object, m[1]!)
    }
    return original.apply(this, args)
  }
  try {
    const t = TENANTS[0]
    await d.withTenant(t.id, (s) => s.table('customers').get('c-1'))
    const read = seen
    seen = []
    await d.withTenant(t.id, (s) => s.table('customers').insert({ id: 'capture-1', name: 'x', plan: 'free' }))
    const insert = seen
    seen = []
    for (const other of TENANTS.slice(1)) await d.withTenant(other.id, (s) => s.table('customers').get('c-1'))
    /* Precondition: one connection per region was seen. */
    if (clients.size !== REGIONS.length) throw new Error('could not capture the data layer\'s region connections')
    return { read, insert, clients }
  } finally {
    proto.query = original
  }
}

/** The capability and tenant in a captured prelude. */
const PRELUDE = /domicile_enter\('([0-9a-f]{64})', '([^']+)'\)/

/**
 * Each connection's capability (src/schema/isolation-ddl.ts): the data layer's own connections'
 * as captured from their preludes; a baseline connection draws its own on first use, as the router
 * does, so both arms send the same prelude.
 */
const connectionCaps = new WeakMap<object, string>()
async function capOf(conn: object, query: (sql: string) => Promise<unknown>): Promise<string> {
  const known = connectionCaps.get(conn)
  if (known) return known
  const r = (await query(SESSION_OPEN)) as { rows: Array<{ capability: string }> }
  const cap = r.rows[0]!.capability
  connectionCaps.set(conn, cap)
  return cap
}

function checkShape(stmts: string[], tenant: string, what: string): { prelude: string; body: string } {
  /* Precondition: a tenant transaction is exactly prelude, one statement, COMMIT. */
  const m = PRELUDE.exec(stmts[0] ?? '')
  if (stmts.length !== 3 || !m || stmts[0] !== tenantTransactionPrelude(tenant, m[1]!, false) || stmts[2] !== CHECKED_COMMIT) {
    throw new Error(`${what}: unexpected statement sequence from the data layer: ${JSON.stringify(stmts)}`)
  }
  return { prelude: stmts[0]!, body: stmts[1]! }
}

// ---------------------------------------------------------------------------------------------
// Measurement

interface OpResult {
  readonly arms: Record<string, Summary & { cpuUsPerOp: number; medianFirstQuarterUs: number; medianLastQuarterUs: number }>
  readonly overheadPct: Record<string, number>
  readonly overheadCi95Pct: Record<string, [number, number]>
  readonly medianOfRoundOverheadsPct: Record<string, number>
}

function analyse(samples: ArmSamples[], routed: string): OpResult {
  const byName = new Map(samples.map((s) => [s.name, s]))
  const r = byName.get(routed)!
  const arms: OpResult['arms'] = {}
  const over: Record<string, number> = {}
  const ci: Record<string, [number, number]> = {}
  const perRound: Record<string, number> = {}
  for (const s of samples) {
    const q = Math.max(1, Math.floor(s.rounds.length / 4))
    arms[s.name] = {
      ...summarize(s.all),
      cpuUsPerOp: round(median(s.cpuPerOpUs)),
      medianFirstQuarterUs: round(median(s.rounds.slice(0, q).flat())),
      medianLastQuarterUs: round(median(s.rounds.slice(-q).flat())),
    }
  }
  for (const s of samples) {
    if (s.name === routed) continue
    over[`vs ${s.name}`] = overheadPct(arms[routed]!.medianUs, arms[s.name]!.medianUs)
    ci[`vs ${s.name}`] = bootstrapOverheadCi(r.rounds, s.rounds)
    perRound[`vs ${s.name}`] = round(median(r.rounds.map((blk, i) => ((median(blk) - median(s.rounds[i]!)) / median(s.rounds[i]!)) * 100)), 2)
  }
  return { arms, overheadPct: over, overheadCi95Pct: ci, medianOfRoundOverheadsPct: perRound }
}

interface ColdResult {
  readonly samples: number
  readonly discarded: number
  readonly coldWithTenantMedianUs: number
  readonly warmWithTenantMedianUs: number
  readonly coldMinusWarmMedianUs: number
  readonly coldWithTenantP99Us: number
  readonly directoryGetColdMedianUs: number
  readonly directoryGetColdP99Us: number
  readonly directoryGetWarmMedianUs: number
  readonly freshInstanceFirstRequestMedianUs?: number
  readonly freshInstanceSamples?: number
}

/** Invalidates a tenant's cache entry the real way and waits until the push has arrived too. */
async function invalidate(d: Domicile, tenantId: string): Promise<boolean> {
  let events = 0
  const off = d.directory.onChange((id) => {
    if (id === tenantId) events++
  })
  try {
    await d.setTenantStatus(tenantId, 'active') // sync invalidation (1) + NOTIFY (2)
    const deadline = Date.now() + 1000
    while (events < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 0))
    return events >= 2
  } finally {
    off()
  }
}

async function measureCold(d: Domicile, n: number, fresh?: () => Promise<number>, freshN = 0): Promise<ColdResult> {
  const cold: number[] = []
  const warm: number[] = []
  const diff: number[] = []
  const dirCold: number[] = []
  const dirWarm: number[] = []
  let discarded = 0
  const read = (t: string, k: number) => d.withTenant(t, (s) => s.table('customers').get(`c-${k}`))
  for (let i = 0; i < n; i++) {
    const t = TENANTS[i % TENANTS.length]!.id
    // withTenant, cold then warm
    if (!(await invalidate(d, t)) || d.directory.peek(t) !== undefined) { discarded++; continue }
    const c = await timeUs(() => read(t, i % ROWS_PER_TENANT))
    if (d.directory.peek(t) === undefined) { discarded++; continue }
    const w = await timeUs(() => read(t, (i + 1) % ROWS_PER_TENANT))
    if (d.directory.peek(t) === undefined) { discarded++; continue }
    cold.push(c); warm.push(w); diff.push(c - w)
    // directory.get alone, cold then warm
    if (!(await invalidate(d, t)) || d.directory.peek(t) !== undefined) { discarded++; continue }
    dirCold.push(await timeUs(() => d.directory.get(t)))
    dirWarm.push(await timeUs(() => d.directory.get(t)))
  }
  const sc = summarize(cold)
  const sd = summarize(dirCold)
  const out: ColdResult = {
    samples: cold.length,
    discarded,
    coldWithTenantMedianUs: sc.medianUs,
    warmWithTenantMedianUs: summarize(warm).medianUs,
    coldMinusWarmMedianUs: round(median(diff)),
    coldWithTenantP99Us: sc.p99Us,
    directoryGetColdMedianUs: sd.medianUs,
    directoryGetColdP99Us: sd.p99Us,
    directoryGetWarmMedianUs: round(median(dirWarm), 2),
  }
  if (!fresh || freshN === 0) return out
  const firsts: number[] = []
  for (let i = 0; i < freshN; i++) firsts.push(await fresh())
  return { ...out, freshInstanceFirstRequestMedianUs: round(median(firsts)), freshInstanceSamples: freshN }
}

// ---------------------------------------------------------------------------------------------
// Engines

interface EngineResult {
  readonly engine: 'postgres' | 'pglite'
  readonly statements: { read: string[]; insert: string[] }
  readonly read: OpResult
  readonly readLayers?: LayerRow[]
  readonly insert: OpResult
  readonly cold: ColdResult
  readonly plan: Plan
  readonly diagnostics?: Record<string, unknown>
}

const keysFor = (seed: number, n: number) => {
  const rnd = prng(seed)
  return Array.from({ length: n }, () => Math.floor(rnd() * ROWS_PER_TENANT))
}

function routedArms(d: Domicile, keys: number[]): { read: Arm; insert: Arm } {
  return {
    read: {
      name: 'routed',
      op: async (i) => {
        const t = TENANTS[i % 2]!.id
        const row = await d.withTenant(t, (s) => s.table('customers').get(`c-${keys[i % keys.length]}`))
        if (!row) throw new Error('routed read: row missing')
      },
    },
    insert: {
      name: 'routed',
      op: (i) => d.withTenant(TENANTS[i % 2]!.id, (s) => s.table('customers').insert({ id: `r-${i}`, name: `Customer r-${i}`, plan: PLANS[i % 3]! })),
    },
  }
}

/** The statements a baseline replays: the captured texts, checked for shape. */
interface BaselineSql {
  prelude(tenantId: string, cap: string): string
  readonly read: string
  readonly insert: string
}

function baselineSql(stmts: { read: string[]; insert: string[] }): BaselineSql {
  return {
    // Repository calls run no application SQL, so the data layer sends no session reset: neither do the baselines.
    prelude: (tenantId: string, cap: string) => tenantTransactionPrelude(tenantId, cap, false),
    read: checkShape(stmts.read, TENANTS[0].id, 'read').body,
    insert: checkShape(stmts.insert, TENANTS[0].id, 'insert').body,
  }
}

// The baseline operations are written out per connection kind, with no helper layers between
// the loop and the driver, so that the baseline carries no overhead of its own.

/** pg.Pool per region: check out, prelude, statement, COMMIT, release (what the driver does). */
function pgPoolArms(name: string, tag: string, keys: number[], sql: BaselineSql, pools: ReadonlyMap<string, PgPool>): { read: Arm; insert: Arm } {
  return {
    read: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const c = await pools.get(t.region)!.connect()
        try {
          await c.query(sql.prelude(t.id, connectionCaps.get(c) ?? (await capOf(c, (q) => c.query(q)))))
          const r = await c.query(sql.read, [t.id, `c-${keys[i % keys.length]}`])
          if (!rowsOf(r)[0]) throw new Error(`${name} read: row missing`)
          await c.query(CHECKED_COMMIT)
        } finally {
          c.release()
        }
      },
    },
    insert: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const c = await pools.get(t.region)!.connect()
        try {
          await c.query(sql.prelude(t.id, connectionCaps.get(c) ?? (await capOf(c, (q) => c.query(q)))))
          await c.query(sql.insert, [t.id, `${tag}-${i}`, `Customer ${tag}-${i}`, PLANS[i % 3]!])
          await c.query(CHECKED_COMMIT)
        } finally {
          c.release()
        }
      },
    },
  }
}

/** A pg.Client per region (its own, or the data layer's own pooled connection): no pool checkout. */
function pgClientArms(name: string, tag: string, keys: number[], sql: BaselineSql, clients: ReadonlyMap<string, PgClient>): { read: Arm; insert: Arm } {
  return {
    read: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const c = clients.get(t.region)!
        await c.query(sql.prelude(t.id, connectionCaps.get(c) ?? (await capOf(c, (q) => c.query(q)))))
        const r = await c.query(sql.read, [t.id, `c-${keys[i % keys.length]}`])
        if (!rowsOf(r)[0]) throw new Error(`${name} read: row missing`)
        await c.query(CHECKED_COMMIT)
      },
    },
    insert: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const c = clients.get(t.region)!
        await c.query(sql.prelude(t.id, connectionCaps.get(c) ?? (await capOf(c, (q) => c.query(q)))))
        await c.query(sql.insert, [t.id, `${tag}-${i}`, `Customer ${tag}-${i}`, PLANS[i % 3]!])
        await c.query(CHECKED_COMMIT)
      },
    },
  }
}

/** A PGlite instance per region, through the same engine calls the PGlite driver makes. */
function pgliteArms(name: string, tag: string, keys: number[], sql: BaselineSql, dbs: ReadonlyMap<string, PGliteLike>): { read: Arm; insert: Arm } {
  return {
    read: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const db = dbs.get(t.region)!
        await db.exec(sql.prelude(t.id, connectionCaps.get(db) ?? (await capOf(db, (q) => db.query(q)))))
        const r = await db.query<Record<string, unknown>>(sql.read, [t.id, `c-${keys[i % keys.length]}`])
        if (!r.rows[0]) throw new Error(`${name} read: row missing`)
        await db.exec(CHECKED_COMMIT)
      },
    },
    insert: {
      name,
      op: async (i) => {
        const t = TENANTS[i % 2]!
        const db = dbs.get(t.region)!
        await db.exec(sql.prelude(t.id, connectionCaps.get(db) ?? (await capOf(db, (q) => db.query(q)))))
        await db.query(sql.insert, [t.id, `${tag}-${i}`, `Customer ${tag}-${i}`, PLANS[i % 3]!])
        await db.exec(CHECKED_COMMIT)
      },
    },
  }
}

/**
 * The point read peeled layer by layer, to attribute the overhead. All arms use the data layer's
 * own region connection: the driver's session (through router.withRegionAdmin, which adds only the
 * cached readiness check), the router's tenant transaction, withTenant with raw SQL (adds the
 * directory cache and the scope), and the full repository get() (the routed arm, added by the caller).
 */
function layerArms(d: Domicile, keys: number[], sql: BaselineSql, shared: ReadonlyMap<string, object>): Arm[] {
  const router = internalsOf(d).router
  const key = (i: number) => `c-${keys[i % keys.length]}`
  const need = (row: unknown, what: string) => {
    if (!row) throw new Error(`${what}: row missing`)
  }
  return [
    {
      name: 'driver session (withRegionAdmin)',
      op: async (i) => {
        const t = TENANTS[i % 2]!
        await router.withRegionAdmin(t.region, async (s) => {
          // poolSize 1: the session is the region's one connection, whose capability was captured.
          await s.exec(sql.prelude(t.id, connectionCaps.get(shared.get(t.region)!)!))
          need((await s.query(sql.read, [t.id, key(i)])).rows[0], 'driver')
          await s.exec(CHECKED_COMMIT)
        })
      },
    },
    {
      name: 'router.withTenantTransaction',
      op: async (i) => {
        const t = TENANTS[i % 2]!
        need(await router.withTenantTransaction(t.id, { region: t.region, cell: 'main' }, async (tx) => (await tx.session.query(sql.read, [t.id, key(i)])).rows[0]), 'router')
      },
    },
    {
      name: 'withTenant + scope.sql',
      op: async (i) => {
        const t = TENANTS[i % 2]!
        need(await d.withTenant(t.id, async (s) => (await s.sql(sql.read, [t.id, key(i)]))[0]), 'scope.sql')
      },
    },
  ]
}

interface LayerRow { readonly layer: string; readonly medianUs: number; readonly addedUs: number; readonly cumulativePct: number; readonly cpuUsPerOp: number }

function analyseLayers(samples: ArmSamples[]): LayerRow[] {
  const base = samples[0]!
  const perRound = (a: ArmSamples, b: ArmSamples) => median(a.rounds.map((blk, r) => median(blk) - median(b.rounds[r]!)))
  return samples.map((s, k) => ({
    layer: s.name,
    medianUs: round(median(s.all)),
    // Paired by round (both blocks ran back to back), so load drift between rounds cancels.
    addedUs: k === 0 ? 0 : round(perRound(s, samples[k - 1]!)),
    cumulativePct: k === 0 ? 0 : round((perRound(s, base) / median(base.all)) * 100, 2),
    cpuUsPerOp: round(median(s.cpuPerOpUs)),
  }))
}

const rowsOf = (r: { rows: Record<string, unknown>[] } | Array<{ rows: Record<string, unknown>[] }>) => (Array.isArray(r) ? r.at(-1)?.rows ?? [] : r.rows)

async function runPostgres(tmp: string, clusters: PgCluster[]): Promise<EngineResult> {
  const pg = await loadPg()
  const [cp, us, eu] = clusters as [PgCluster, PgCluster, PgCluster]
  const urls: Record<string, string> = { 'us-east-1': us.database('region_us'), 'eu-west-1': eu.database('region_eu') }
  const raw = {
    regions: Object.fromEntries(REGIONS.map((r) => [r, { driver: 'postgres', url: urls[r], poolSize: 1 }])),
    controlPlane: { driver: 'postgres', url: cp.database('control_plane'), poolSize: 1 },
    schema: writeSchema(tmp),
  }
  const d = await openDomicile(raw, tmp)
  const pools = new Map<string, PgPool>()
  const clients = new Map<string, PgClient>()
  try {
    log('postgres: migrate + seed ...')
    await prepare(d)
    const { clients: shared, ...stmts } = await captureStatements(pg, d)
    const listenersBefore = shared.get('us-east-1')!.listenerCount('error')
    for (const r of REGIONS) {
      pools.set(r, new pg.Pool({ connectionString: urls[r], max: 1, idleTimeoutMillis: 30_000 }))
      const c = new pg.Client({ connectionString: urls[r] })
      await c.connect()
      clients.set(r, c)
    }
    const keys = keysFor(42, 4096)
    const routed = routedArms(d, keys)
    const sql = baselineSql(stmts)
    const viaShared = pgClientArms(SAME_CONN, 's', keys, sql, shared)
    const viaPool = pgPoolArms('pg Pool, own connection', 'p', keys, sql, pools)
    const viaClient = pgClientArms('pg Client, own connection', 'k', keys, sql, clients)
    // Sanity: the routed read and the baseline read return the same row.
    const sample = await d.withTenant('acme', (s) => s.table('customers').get('c-7'))
    const direct = rowsOf(await shared.get('us-east-1')!.query(sql.read, ['acme', 'c-7']))
    if (JSON.stringify(sample) !== JSON.stringify(direct[0])) throw new Error('routed and direct reads differ')

    log('postgres: point reads ...')
    const read = analyse(await interleave([routed.read, viaShared.read, viaPool.read, viaClient.read], { rounds: PG_PLAN.read.rounds, blockSize: PG_PLAN.read.block, warmupOps: PG_PLAN.read.warmup }), 'routed')
    log('postgres: point-read layer breakdown ...')
    const lp = PG_PLAN.layers!
    const layers = analyseLayers(await interleave([viaShared.read, ...layerArms(d, keys, sql, shared), { ...routed.read, name: 'withTenant + table.get (routed)' }],
      { rounds: lp.rounds, blockSize: lp.block, warmupOps: lp.warmup, seed: 2 }))
    log('postgres: inserts ...')
    const insert = analyse(await interleave([routed.insert, viaShared.insert, viaPool.insert, viaClient.insert], { rounds: PG_PLAN.insert.rounds, blockSize: PG_PLAN.insert.block, warmupOps: PG_PLAN.insert.warmup }), 'routed')
    log('postgres: cold directory lookups ...')
    const fresh = async (): Promise<number> => {
      const f = await openDomicile(raw, tmp)
      try {
        return await timeUs(() => f.withTenant('acme', (s) => s.table('customers').get('c-3')))
      } finally {
        await f.close()
      }
    }
    const cold = await measureCold(d, PG_PLAN.cold, fresh, PG_PLAN.fresh)
    // Diagnostic: 'error' listeners on the us-east-1 region's pooled pg connection.
    const diagnostics = { regionConnectionErrorListeners: { afterSetup: listenersBefore, afterRun: shared.get('us-east-1')!.listenerCount('error') } }
    return { engine: 'postgres', statements: stmts, read, readLayers: layers, insert, cold, plan: PG_PLAN, diagnostics }
  } finally {
    for (const p of pools.values()) await p.end().catch(() => undefined)
    for (const c of clients.values()) await c.end().catch(() => undefined)
    await d.close().catch(() => undefined)
  }
}

async function runPGlite(tmp: string, statements: { read: string[]; insert: string[] }): Promise<EngineResult> {
  const schema = writeSchema(tmp)
  const dirs = (set: string) => ({ 'us-east-1': join(tmp, set, 'us-east-1'), 'eu-west-1': join(tmp, set, 'eu-west-1'), 'control-plane': join(tmp, set, 'control-plane') })
  const routedDirs = dirs('routed')
  const baselineDirs = dirs('baseline')
  const raw = {
    regions: Object.fromEntries(REGIONS.map((r) => [r, { driver: 'pglite', dataDir: routedDirs[r] }])),
    controlPlane: { driver: 'pglite', dataDir: routedDirs['control-plane'] },
    schema,
  }
  const { PGlite } = (await import('@electric-sql/pglite')) as unknown as { PGlite: new (dir: string) => PGliteLike }
  // Creating a PGlite data directory (initdb in WASM) takes seconds, reopening one well under a
  // second. So: create one empty cluster, copy it for each store, migrate and seed through
  // Domicile, close, and copy the prepared region directories for the baseline. Both arms then
  // read identical data files, each through its own reopened PGlite instance.
  log('pglite: preparing data directories ...')
  const template = join(tmp, 'template')
  const blank = new PGlite(template)
  await blank.waitReady
  await blank.close()
  for (const dir of Object.values(routedDirs)) cpSync(template, dir, { recursive: true })
  const prep = await openDomicile(raw, tmp)
  try {
    await prepare(prep)
  } finally {
    await prep.close()
  }
  for (const r of REGIONS) cpSync(routedDirs[r], baselineDirs[r], { recursive: true })

  const direct = new Map<string, PGliteLike>()
  const d = await openDomicile(raw, tmp)
  try {
    for (const r of REGIONS) {
      const db = new PGlite(baselineDirs[r])
      await db.waitReady
      direct.set(r, db)
    }
    for (const t of TENANTS) await d.directory.get(t.id) // opens the control plane, warms the cache
    const keys = keysFor(43, 4096)
    const routed = routedArms(d, keys)
    const viaPGlite = pgliteArms('PGlite direct', 'p', keys, baselineSql(statements), direct)
    log('pglite: point reads ...')
    const read = analyse(await interleave([routed.read, viaPGlite.read], { rounds: PGLITE_PLAN.read.rounds, blockSize: PGLITE_PLAN.read.block, warmupOps: PGLITE_PLAN.read.warmup }), 'routed')
    log('pglite: inserts ...')
    const insert = analyse(await interleave([routed.insert, viaPGlite.insert], { rounds: PGLITE_PLAN.insert.rounds, blockSize: PGLITE_PLAN.insert.block, warmupOps: PGLITE_PLAN.insert.warmup }), 'routed')
    log('pglite: cold directory lookups ...')
    const cold = await measureCold(d, PGLITE_PLAN.cold)
    return { engine: 'pglite', statements, read, insert, cold, plan: PGLITE_PLAN }
  } finally {
    for (const db of direct.values()) await db.close().catch(() => undefined)
    await d.close().catch(() => undefined)
  }
}

// ---------------------------------------------------------------------------------------------
// Report

function print(res: EngineResult[]): void {
  const header = ['operation / arm', 'median µs', 'p90 µs', 'p99 µs', 'ops/s', 'node CPU µs/op', 'overhead % (median)', '95% CI %', 'median of round overheads %']
  for (const e of res) {
    const rows: Array<Array<string | number>> = []
    for (const op of ['read', 'insert'] as const) {
      const r = e[op]
      for (const [name, s] of Object.entries(r.arms)) {
        const key = `vs ${name}`
        rows.push([`${op === 'read' ? 'point read (PK, warm)' : 'insert'} / ${name}`, s.medianUs, s.p90Us, s.p99Us, s.opsPerSec, s.cpuUsPerOp,
          name === 'routed' ? '' : String(r.overheadPct[key]), name === 'routed' ? '' : `[${r.overheadCi95Pct[key]!.join(', ')}]`,
          name === 'routed' ? '' : String(r.medianOfRoundOverheadsPct[key])])
      }
    }
    printTable(`${e.engine}: routed withTenant vs. the same statements issued directly (n per arm: read ${e.read.arms.routed!.n}, insert ${e.insert.arms.routed!.n})`, header, rows)
    const c = e.cold
    if (e.readLayers) {
      printTable(`${e.engine}: point read, layer by layer (interleaved; "added" = median over rounds of the paired difference to the row above)`, ['layer', 'median µs', 'added µs', 'cumulative %', 'node CPU µs/op'],
        e.readLayers.map((l) => [l.layer, l.medianUs, l.addedUs, l.cumulativePct, l.cpuUsPerOp]))
    }
    if (e.diagnostics) console.log(`\n${e.engine} diagnostics: ${JSON.stringify(e.diagnostics)}`)
    printTable(`${e.engine}: directory lookup (${c.samples} samples, ${c.discarded} discarded)`, ['measure', 'µs'], [
      ['withTenant read, cold directory cache (median)', c.coldWithTenantMedianUs],
      ['withTenant read, warm, paired (median)', c.warmWithTenantMedianUs],
      ['cold lookup cost = median(cold - warm)', c.coldMinusWarmMedianUs],
      ['directory.get cold (median)', c.directoryGetColdMedianUs],
      ['directory.get cold (p99)', c.directoryGetColdP99Us],
      ['directory.get warm (median)', c.directoryGetWarmMedianUs],
      ...(c.freshInstanceFirstRequestMedianUs !== undefined ? [[`first withTenant of a fresh instance (median of ${c.freshInstanceSamples})`, c.freshInstanceFirstRequestMedianUs] as [string, number]] : []),
    ])
  }
}

export async function main(): Promise<void> {
  const t0 = Date.now()
  const loadAtStart = machineInfo().loadAvg
  const why = postgresUnavailable()
  if (why) throw new Error(`data-layer bench needs real PostgreSQL: ${why}`)
  const tmp = mkdtempSync(join(tmpdir(), 'domicile-bench-'))
  const clusters: PgCluster[] = []
  const stopClusters = () => {
    for (const c of clusters) {
      try { c.destroy() } catch { /* best effort */ }
    }
    clusters.length = 0
  }
  const cleanup = () => {
    stopClusters()
    rmSync(tmp, { recursive: true, force: true })
  }
  const onSignal = () => {
    cleanup()
    process.exit(130)
  }
  process.once('SIGINT', onSignal)
  process.once('SIGTERM', onSignal)
  try {
    log('starting PostgreSQL clusters (control plane, us-east-1, eu-west-1) ...')
    for (const n of ['bench-cp', 'bench-us', 'bench-eu']) clusters.push(await startPgCluster(n))
    const pgRes = await runPostgres(join(tmp, 'pg'), clusters)
    stopClusters() // free the CPU for the embedded engine
    const liteRes = await runPGlite(join(tmp, 'pglite'), pgRes.statements)
    const results = [pgRes, liteRes]
    print(results)
    const vs = `vs ${SAME_CONN}`
    const readOver = pgRes.read.overheadPct[vs]!
    const paired = pgRes.read.medianOfRoundOverheadsPct[vs]!
    const verdict = {
      target: `median point-read overhead (warm directory) <= ${TARGET_PCT}% vs the same statements through pg on the same connection`,
      postgresReadOverheadPct: readOver,
      ci95Pct: pgRes.read.overheadCi95Pct[vs],
      pairedRoundsOverheadPct: paired,
      vsPgPoolOwnConnectionPct: pgRes.read.overheadPct['vs pg Pool, own connection'],
      pass: readOver <= TARGET_PCT,
    }
    console.log(`\nTarget: ${verdict.target}: ${readOver}% (95% CI ${JSON.stringify(verdict.ci95Pct)}, paired by round ${paired}%) -> ${verdict.pass ? 'PASS' : 'FAIL'}  (total ${Math.round((Date.now() - t0) / 1000)} s)`)
    if (QUICK) {
      console.log('BENCH_QUICK=1: smoke run, results not written')
    } else {
      writeResults(RESULTS, { benchmark: 'data-layer', machine: { ...machineInfo(), loadAvgAtStart: loadAtStart }, verdict, durationSec: Math.round((Date.now() - t0) / 1000), results })
      console.log(`results written to ${resolve(RESULTS)}`)
    }
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
    cleanup()
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  })
}
