/**
 * Adoption of a 1,000,000-row application database (issue #13, "Performance"): wall time for
 * encrypting one column and for moving a 100,000-row tenant, each with the application workload's
 * p99 during the operation against its p99 without it.
 *
 * Two PostgreSQL 15 clusters in the production two-role setup: us-east-1 is the application's
 * existing database (test/support/adopt-fixture.ts: campaigns/ads/contacts/invoices keyed
 * (company_id, id), 1,000,000 rows, 10 companies, so each tenant holds 100,000 rows; contacts
 * 400,000), eu-west-1 a new database where the application ran its own DDL; the control plane beside
 * the first. The operator's steps run as the `domicile` command in child processes: `adopt inspect
 * --sensitive contacts.email`, `migrate` (library), `adopt tenants`, then the two measured
 * operations:
 *
 *   1. `domicile migrate encrypt contacts.email`       (400,000 rows, batches of 1000, one tenant at a time)
 *   2. `domicile tenant move 3 --to eu-west-1`         (100,001 rows over five tables)
 *
 * The application is this process: WORKERS loops doing one-shot calls through Domicile back to back
 * (no pause), each loop owning a fixed set of tenants (tenant c belongs to loop (c - 1) % WORKERS):
 * point reads of contacts and campaigns, updates of a non-sensitive column (contacts.phone) and of
 * the sensitive one (contacts.email, sealed on write), inserts of contacts (key drawn from the
 * table's sequence, email sealed). Same run, same tables, same workload:
 *
 *   baseline  the workload alone for BASE_MS before each operation (autovacuum quiet first)
 *   during    the workload while the operation runs: the whole command (spawn to exit), and its
 *             working part (encrypt: first batch to the swap; move: copy to cutover)
 *
 * During the move's write freeze the moving tenant's calls get ERR_TENANT_MOVING and are retried
 * every 10 ms; those calls are counted separately (with their longest wait), not in the p99. A loop
 * retrying blocks, as a request handler would, so the moving tenant's loop pauses for the freeze.
 *
 * The fixture has no index on invoices (company_id, contact_id), the referencing columns of its foreign
 * key to contacts (only invoices (company_id)): deleting the moved tenant's contacts from the source
 * (the purge) makes PostgreSQL check each deleted contact against all of the tenant's invoices.
 * BENCH_ADOPT_FK_INDEX=1 runs the same bench with that index added by the application's DDL in both
 * regions before adoption (results in bench/results/adopt-fk-index.json).
 *
 * Run: node --import tsx bench/adopt.bench.ts   (BENCH_QUICK=1: 100,000 rows, short baselines, results not written)
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { loadavg } from 'node:os'
import { join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import pg from 'pg'
import { createDomicile, isDomicileError, loadSchema, onboardTenant, parseConfig, type Domicile } from '../src/index.js'
import { ADOPT_FIXTURE_DDL, ADOPT_FIXTURE_PLANS_SQL, adoptConfig, createAdoptFixture } from '../test/support/adopt-fixture.js'
import { DOMICILE_BIN, makeTempDir, type TempDir } from '../test/support/cli.js'
import { postgresUnavailable, startPgCluster, twoRoleDatabases, type PgCluster } from '../test/support/pg-cluster.js'
import { cleanupAll, onCleanup } from './lib/cleanup.js'
import { machineInfo, printTable, writeResults } from './lib/report.js'
import { prng, round, summarize, type Summary } from './lib/stats.js'

const QUICK = process.env.BENCH_QUICK === '1'
/** The variant where the application also has an index on invoices (company_id, contact_id): its composite foreign key's columns. */
const FK_INDEX = process.env.BENCH_ADOPT_FK_INDEX === '1'
const RESULTS = FK_INDEX ? 'bench/results/adopt-fk-index.json' : 'bench/results/adopt.json'
const US = 'us-east-1'
const EU = 'eu-west-1'
const TENANTS = 10
const ROWS = QUICK ? 100_000 : 1_000_000
const MOVED = '3'
const WORKERS = 3
const WARMUP_MS = QUICK ? 1_000 : 3_000
const BASE_MS = QUICK ? 4_000 : 20_000
const QUIET_MAX_MS = QUICK ? 5_000 : 30_000
const ENCRYPTED = 'contacts.email'
const log = (m: string) => console.error(`[adopt] ${m}`)
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const loads = () => loadavg().map((x) => round(x, 2))

// -- the operator's commands, as child processes -------------------------------------------------

interface ChildRun {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
  /** performance.now() in this process when spawned and when it exited. */
  readonly startedAt: number
  readonly endedAt: number
}

/** Runs `domicile <args>` (bin/domicile.mjs, the real entry) in `cwd`; `onLine` sees each stderr line as it arrives. */
function domicile(args: readonly string[], cwd: string, onLine?: (line: string, at: number) => void): Promise<ChildRun> {
  const env: NodeJS.ProcessEnv = { ...process.env, NODE_NO_WARNINGS: '1' }
  delete env.DOMICILE_CONFIG
  return new Promise((resolvePromise, reject) => {
    const startedAt = performance.now()
    const child = spawn(process.execPath, [DOMICILE_BIN, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    let partial = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (!onLine) return
      const at = performance.now()
      partial += d
      const lines = partial.split('\n')
      partial = lines.pop()!
      for (const l of lines) onLine(l, at)
    })
    child.on('error', reject)
    child.on('close', (code) => resolvePromise({ code, stdout, stderr, startedAt, endedAt: performance.now() }))
  })
}

async function domicileOk(args: readonly string[], cwd: string, onLine?: (line: string, at: number) => void): Promise<ChildRun> {
  const r = await domicile(args, cwd, onLine)
  if (r.code !== 0) throw new Error(`domicile ${args.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`)
  return r
}

const num = (re: RegExp, s: string): number | undefined => {
  const m = re.exec(s)
  return m ? Number(m[1]) : undefined
}

// -- the application's workload ------------------------------------------------------------------

type Kind = 'get contact' | 'get campaign' | 'update phone' | 'update email' | 'insert contact'
const MIX: ReadonlyArray<readonly [Kind, number]> = [['get contact', 0.35], ['get campaign', 0.15], ['update phone', 0.2], ['update email', 0.15], ['insert contact', 0.15]]

interface Sample {
  /** performance.now() when the call started (ms). */
  readonly at: number
  /** Duration including retries (µs). */
  readonly us: number
  readonly kind: Kind
  readonly tenant: string
  /** ERR_TENANT_MOVING refusals before it succeeded. */
  readonly moving: number
  /** ERR_CONFLICT retries (a compare-and-set race with the encryption job). */
  readonly conflicts: number
}

interface Workload {
  readonly samples: Sample[]
  readonly errors: string[]
  errorCount: number
  stop(): Promise<void>
}

/** The keys the fixture gave tenant c in a table of n rows: row g belongs to company 1 + g % TENANTS. */
function keyPicker(n: number, c: number, rnd: () => number): () => string {
  const kMin = c - 1 === 0 ? 1 : 0
  const kMax = Math.floor((n - (c - 1)) / TENANTS)
  return () => String(c - 1 + TENANTS * (kMin + Math.floor(rnd() * (kMax - kMin + 1))))
}

function startWorkload(d: Domicile, counts: { contacts: number; campaigns: number }): Workload {
  const w: Workload = { samples: [], errors: [], errorCount: 0, stop: async () => undefined }
  let stopping = false
  let seq = 0
  const loops = Array.from({ length: WORKERS }, (_, worker) => (async () => {
    const rnd = prng(1000 + worker)
    const mine = Array.from({ length: TENANTS }, (_, i) => i + 1).filter((c) => (c - 1) % WORKERS === worker)
    const pick = new Map(mine.map((c) => [c, { contact: keyPicker(counts.contacts, c, rnd), campaign: keyPicker(counts.campaigns, c, rnd) }]))
    while (!stopping) {
      const c = mine[Math.floor(rnd() * mine.length)]!
      const tenant = String(c)
      const x = rnd()
      let acc = 0
      const kind = MIX.find(([, p]) => (acc += p) > x)?.[0] ?? 'get contact'
      const n = ++seq
      const keys = pick.get(c)!
      const fn: () => Promise<unknown> = kind === 'get contact' ? () => d.tenant(tenant).table('contacts').get(keys.contact())
        : kind === 'get campaign' ? () => d.tenant(tenant).table('campaigns').get(keys.campaign())
          : kind === 'update phone' ? () => d.tenant(tenant).table('contacts').update(keys.contact(), { phone: `+1 202 555 ${String(n % 10_000).padStart(4, '0')}` })
            : kind === 'update email' ? () => d.tenant(tenant).table('contacts').update(keys.contact(), { email: `upd${n}@customer${c}.example.com` })
              : () => d.tenant(tenant).table('contacts').insert({ email: `wl${n}@customer${c}.example.com`, full_name: `Person W${n}`, phone: '+1 202 555 0000' })
      const at = performance.now()
      let moving = 0
      let conflicts = 0
      for (;;) {
        try {
          const r = await fn()
          if (r === undefined && kind !== 'insert contact') throw new Error(`${kind}: no row (tenant ${tenant})`)
          w.samples.push({ at, us: (performance.now() - at) * 1000, kind, tenant, moving, conflicts })
          break
        } catch (e) {
          if (isDomicileError(e, 'ERR_TENANT_MOVING')) {
            moving++
            await sleep(10)
            continue
          }
          // An update racing the job's compare-and-set write of the same row; an insert's duplicate key is no race.
          if (isDomicileError(e, 'ERR_CONFLICT') && kind !== 'insert contact' && conflicts < 50) {
            conflicts++
            continue
          }
          w.errorCount++
          if (w.errors.length < 20) w.errors.push(`${kind} (tenant ${tenant}): ${isDomicileError(e) ? `${e.code}: ${e.message}` : String((e as Error)?.message ?? e)}`)
          break
        }
      }
    }
  })())
  w.stop = async () => {
    stopping = true
    await Promise.all(loops)
  }
  return w
}

interface WindowStats extends Summary {
  readonly window: string
  readonly seconds: number
  readonly callsPerSecond: number
  /** Calls that got ERR_TENANT_MOVING and were retried (not in the percentiles). */
  readonly movingCalls: number
  readonly movingRefusals: number
  readonly movingLongestWaitMs: number
  readonly conflictRetries: number
  readonly medianByKindUs: Record<string, number>
  readonly p99ByKindUs: Record<string, number>
}

/** The workload's calls that started in [from, to). */
function windowStats(w: Workload, window: string, from: number, to: number): WindowStats {
  const inWin = w.samples.filter((s) => s.at >= from && s.at < to)
  const clean = inWin.filter((s) => s.moving === 0)
  const moving = inWin.filter((s) => s.moving > 0)
  const medianByKindUs: Record<string, number> = {}
  const p99ByKindUs: Record<string, number> = {}
  for (const [k] of MIX) {
    const sk = summarize(clean.filter((s) => s.kind === k).map((s) => s.us))
    medianByKindUs[k] = sk.medianUs
    p99ByKindUs[k] = sk.p99Us
  }
  const seconds = (to - from) / 1000
  return {
    window, seconds: round(seconds, 1), callsPerSecond: Math.round(inWin.length / seconds),
    ...summarize(clean.map((s) => s.us)),
    movingCalls: moving.length, movingRefusals: moving.reduce((a, s) => a + s.moving, 0),
    movingLongestWaitMs: Math.round(Math.max(0, ...moving.map((s) => s.us / 1000))),
    conflictRetries: inWin.reduce((a, s) => a + s.conflicts, 0), medianByKindUs, p99ByKindUs,
  }
}

const ms = (us: number) => round(us / 1000, 2)
const row = (s: WindowStats, base: WindowStats) => [s.window, s.seconds, s.n, s.callsPerSecond, ms(s.medianUs), ms(s.p90Us), ms(s.p99Us), `${round(s.p99Us / base.p99Us, 2).toFixed(2)}×`]
const HEADER = ['workload window', 's', 'calls', 'calls/s', 'median ms', 'p90 ms', 'p99 ms', 'p99 / baseline']

// -- the bench -------------------------------------------------------------------------------

export async function main(): Promise<void> {
  const why = postgresUnavailable()
  if (why) throw new Error(`adopt bench needs real PostgreSQL: ${why}`)
  const t0 = performance.now()
  const setupMs: Record<string, number> = {}
  const step = async <T>(label: string, fn: () => Promise<T>): Promise<T> => {
    const s = performance.now()
    const r = await fn()
    setupMs[label] = Math.round(performance.now() - s)
    log(`${label}: ${setupMs[label]} ms`)
    return r
  }

  const clusters = await step('clusters', () => Promise.all([startPgCluster('bench-adopt-us'), startPgCluster('bench-adopt-eu')]))
  onCleanup(() => clusters.forEach((c: PgCluster) => c.destroy()))
  const [us, eu] = clusters
  const usLogins = await twoRoleDatabases(us, ['shop', 'control'])
  const euLogins = await twoRoleDatabases(eu, ['shop'])
  const su = new pg.Client({ connectionString: us.url.replace(/\/postgres$/, '/shop') })
  await su.connect()
  onCleanup(() => su.end())
  log(`filling ${ROWS} rows for ${TENANTS} tenants ...`)
  const fixture = await step('fixture', async () => {
    const newRegion = async () => {
      const c = new pg.Client({ connectionString: euLogins.ownerUrl('shop') })
      await c.connect()
      try {
        await c.query(`BEGIN; ${ADOPT_FIXTURE_DDL}; ${ADOPT_FIXTURE_PLANS_SQL}; COMMIT`)
      } finally {
        await c.end()
      }
    }
    const [f] = await Promise.all([createAdoptFixture(usLogins.ownerUrl('shop'), { tenants: TENANTS, rows: ROWS }), newRegion()])
    if (FK_INDEX) {
      for (const url of [usLogins.ownerUrl('shop'), euLogins.ownerUrl('shop')]) {
        const c = new pg.Client({ connectionString: url })
        await c.connect()
        try {
          await c.query('CREATE INDEX invoices_contact_idx ON invoices (company_id, contact_id)')
        } finally {
          await c.end()
        }
      }
    }
    return f
  })
  // The application's database has been running for a while: vacuumed and analysed, as autovacuum would have left it.
  await step('vacuum', () => su.query('VACUUM ANALYZE'))
  const movedRows = Number((await su.query(`SELECT (SELECT count(*) FROM campaigns WHERE company_id = $1) + (SELECT count(*) FROM ads WHERE company_id = $1)
      + (SELECT count(*) FROM contacts WHERE company_id = $1) + (SELECT count(*) FROM invoices WHERE company_id = $1) + 1 AS n`, [MOVED])).rows[0].n)

  const dir: TempDir = await makeTempDir('bench-adopt-')
  onCleanup(() => dir.cleanup())
  const raw = adoptConfig(usLogins, euLogins)
  writeFileSync(join(dir.path, 'domicile.config.json'), JSON.stringify(raw, null, 2))
  const schemaFile = join(dir.path, 'domicile.schema.mjs')
  const open = async () => createDomicile({ config: parseConfig(raw, dir.path), schema: await loadSchema(schemaFile) })

  const inspect = await step('adopt inspect', () => domicileOk(['adopt', 'inspect', '--region', US, '--tenant-column', 'company_id', '--out', 'domicile.schema.mjs', '--sensitive', ENCRYPTED, '--json'], dir.path))
  const accepted = (JSON.parse(inspect.stdout) as { suggestions: Array<{ table: string; column: string; accepted: boolean }> }).suggestions.filter((s) => s.accepted).map((s) => `${s.table}.${s.column}`)
  if (accepted.join() !== ENCRYPTED) throw new Error(`adopt inspect accepted ${JSON.stringify(accepted)}, expected ${ENCRYPTED}`)
  await step('migrate', async () => {
    const ops = await open()
    try {
      const m = await ops.migrate()
      if (!m.every((r) => r.ok)) throw new Error(`migrate: ${JSON.stringify(m)}`)
    } finally {
      await ops.close()
    }
  })
  // `domicile adopt tenants` registers the 10 companies (onboardTenant one by one when the command is not there).
  let registeredBy = 'domicile adopt tenants --region us-east-1 --from-table companies --custody kms'
  await step('adopt tenants', async () => {
    const r = await domicile(['adopt', 'tenants', '--region', US, '--from-table', 'companies', '--custody', 'kms', '--json'], dir.path)
    if (r.code === 0) {
      const doc = JSON.parse(r.stdout) as { added: unknown }
      const added = Array.isArray(doc.added) ? doc.added.length : Number(doc.added)
      if (added !== TENANTS) throw new Error(`adopt tenants added ${JSON.stringify(doc.added)}, expected ${TENANTS}: ${r.stdout}`)
      return
    }
    log(`adopt tenants exited ${r.code} (${r.stderr.trim().split('\n')[0]}); registering with onboardTenant instead`)
    registeredBy = 'onboardTenant (library), one per company'
    const ops = await open()
    try {
      for (let c = 1; c <= TENANTS; c++) await onboardTenant(ops, { id: String(c), region: US, custody: 'kms' })
    } finally {
      await ops.close()
    }
  })

  const d = await open()
  onCleanup(() => d.close())
  const counts = { contacts: fixture.counts.contacts, campaigns: fixture.counts.campaigns }
  const wl = startWorkload(d, counts)
  onCleanup(() => wl.stop())
  await sleep(WARMUP_MS)

  /** Waits (bounded) until no autovacuum worker runs on the application's cluster; returns ms waited. */
  const quiet = async (): Promise<{ waitedMs: number; stillRunning: number }> => {
    const s = performance.now()
    for (;;) {
      const n = Number((await su.query(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE backend_type = 'autovacuum worker'`)).rows[0].n)
      if (n === 0 || performance.now() - s > QUIET_MAX_MS) return { waitedMs: Math.round(performance.now() - s), stillRunning: n }
      await sleep(500)
    }
  }
  const baseline = async (label: string) => {
    const q = await quiet()
    const load = loads()
    const from = performance.now()
    await sleep(BASE_MS)
    const to = performance.now()
    log(`${label}: ${wl.samples.filter((s) => s.at >= from).length} calls; load average ${load.join(' ')}`)
    return { from, to, load, quiet: q }
  }

  // 1. encrypt contacts.email -------------------------------------------------------------------
  const b1 = await baseline('baseline before encrypt')
  log(`domicile migrate encrypt ${ENCRYPTED} ...`)
  let convertFrom = 0
  let convertTo = 0
  let swapNote: { wait?: number; held?: number } = {}
  const enc = await domicileOk(['migrate', 'encrypt', ENCRYPTED], dir.path, (line, at) => {
    if (convertFrom === 0 && line.startsWith('encrypt:')) convertFrom = at
    else if (convertFrom !== 0 && convertTo === 0 && line.startsWith('swap:')) convertTo = at
    const m = new RegExp(`\\(${US}\\): swapped \\(lock waited ([\\d.]+) ms, held ([\\d.]+) ms\\)`).exec(line)
    if (m) swapNote = { wait: Number(m[1]), held: Number(m[2]) }
  })
  const encLoadAfter = loads()
  if (convertFrom === 0 || convertTo === 0) throw new Error(`migrate encrypt: no conversion seen in its progress\n${enc.stderr}`)
  const encRows = num(/^rows\s+(\d+)/m, enc.stdout)!
  const encElapsedMs = Math.round(num(/^elapsed\s+([\d.]+) s/m, enc.stdout)! * 1000)
  const sealed = await su.query(`SELECT data_type FROM information_schema.columns WHERE table_name = 'contacts' AND column_name = 'email'`)
  if (sealed.rows[0]?.data_type !== 'bytea') throw new Error(`after migrate encrypt, contacts.email is ${sealed.rows[0]?.data_type}`)
  const encW = {
    baseline: windowStats(wl, 'alone, before encrypt (baseline)', b1.from, b1.to),
    converting: windowStats(wl, 'during encrypt: first batch to swap', convertFrom, convertTo),
    command: windowStats(wl, 'during encrypt: whole command', enc.startedAt, enc.endedAt),
  }
  const encrypt = {
    command: `domicile migrate encrypt ${ENCRYPTED}`,
    rows: encRows, wallMs: Math.round(enc.endedAt - enc.startedAt), jobElapsedMs: encElapsedMs,
    convertMs: Math.round(convertTo - convertFrom), rowsPerSecondConverting: Math.round(encRows / ((convertTo - convertFrom) / 1000)),
    rowsPerSecondWall: Math.round(encRows / ((enc.endedAt - enc.startedAt) / 1000)),
    swapLockWaitMs: swapNote.wait, swapLockHeldMs: swapNote.held,
    p99Ratio: round(encW.converting.p99Us / encW.baseline.p99Us, 2), p99RatioWholeCommand: round(encW.command.p99Us / encW.baseline.p99Us, 2),
    loadAvgBefore: b1.load, loadAvgAfter: encLoadAfter, autovacuumBeforeBaseline: b1.quiet, workload: encW,
  }
  printTable(`workload (${WORKERS} loops of one-shot calls) around \`${encrypt.command}\` (${encRows} rows)`, HEADER, [row(encW.baseline, encW.baseline), row(encW.converting, encW.baseline), row(encW.command, encW.baseline)])
  printTable('encrypt contacts.email (child process, default batch 1000, one tenant at a time)', ['measure', 'value'], [
    ['wall time, spawn to exit, ms', encrypt.wallMs], ['job elapsed (its own figure), ms', encrypt.jobElapsedMs], ['converting (first batch to swap), ms', encrypt.convertMs],
    ['rows/s converting', encrypt.rowsPerSecondConverting], ['rows/s wall', encrypt.rowsPerSecondWall], ['swap lock held ms (us-east-1)', encrypt.swapLockHeldMs ?? '-'],
    ['ERR_CONFLICT retries of the workload (whole command)', encW.command.conflictRetries], ['load average before', b1.load.join(' ')], ['load average after', encLoadAfter.join(' ')],
  ])

  // 2. move tenant MOVED to eu-west-1 -------------------------------------------------------------
  const b2 = await baseline('baseline before move')
  log(`domicile tenant move ${MOVED} --to ${EU} (${movedRows} rows) ...`)
  const marks: Record<string, number> = {}
  let graceMs: number | undefined
  const mv = await domicileOk(['tenant', 'move', MOVED, '--to', EU], dir.path, (line, at) => {
    graceMs ??= num(/: waiting (\d+) ms before the purge/, line)
    const s = new RegExp(`^tenant ${MOVED}: (copy|catch-up|write freeze|freeze undone|cut over|verify|purge|waiting|done)`).exec(line)?.[1]
    if (s === 'write freeze') marks[s] = at // the last freeze attempt counts
    else if (s && marks[s] === undefined) marks[s] = at
  })
  const mvLoadAfter = loads()
  await sleep(500)
  const home = await d.getTenant(MOVED)
  if (home.region !== EU) throw new Error(`after tenant move, tenant ${MOVED} is homed in ${home.region}`)
  const freezeMs = num(/^write freeze\s+(\d+) ms/m, mv.stdout)
  const mvElapsed = num(/^elapsed\s+(\d+) ms/m, mv.stdout)
  const copyRate = num(/^copy rate\s+(\d+) rows\/s/m, mv.stdout)
  const mvRows = num(/^rows\s+(\d+)/m, mv.stdout)
  const purged = num(/^purged from source\s+(\d+) rows/m, mv.stdout)
  const copyAt = marks.copy ?? mv.startedAt
  const cutAt = marks['cut over'] ?? mv.endedAt
  const purgeFrom = marks.waiting !== undefined && graceMs !== undefined ? marks.waiting + graceMs : marks.purge ?? cutAt
  const mvW = {
    baseline: windowStats(wl, 'alone, before move (baseline)', b2.from, b2.to),
    toCutover: windowStats(wl, 'during move: copy to cutover', copyAt, cutAt),
    freeze: windowStats(wl, 'during move: write freeze', marks['write freeze'] ?? cutAt, cutAt),
    purge: windowStats(wl, 'during move: purge of the source', purgeFrom, marks.done ?? mv.endedAt),
    command: windowStats(wl, 'during move: whole command', mv.startedAt, mv.endedAt),
  }
  const move = {
    command: `domicile tenant move ${MOVED} --to ${EU}`,
    tenantRows: movedRows, rowsCopied: mvRows, purgedFromSource: purged,
    wallMs: Math.round(mv.endedAt - mv.startedAt), moveElapsedMs: mvElapsed, toCutoverMs: Math.round(cutAt - mv.startedAt), copyToCutoverMs: Math.round(cutAt - copyAt),
    purgeGraceWaitMs: graceMs, purgeMs: marks.waiting !== undefined && marks.done !== undefined && graceMs !== undefined ? Math.round(marks.done - marks.waiting - graceMs) : undefined,
    freezeMs, copyRowsPerSecond: copyRate, relocationRowsPerSecond: Math.round(movedRows / ((cutAt - copyAt) / 1000)),
    movingCalls: mvW.command.movingCalls, movingRefusals: mvW.command.movingRefusals, movingLongestWaitMs: mvW.command.movingLongestWaitMs,
    p99Ratio: round(mvW.toCutover.p99Us / mvW.baseline.p99Us, 2), p99RatioPurge: round(mvW.purge.p99Us / mvW.baseline.p99Us, 2), p99RatioWholeCommand: round(mvW.command.p99Us / mvW.baseline.p99Us, 2),
    phasesMs: Object.fromEntries(Object.entries(marks).sort((a, b) => a[1] - b[1]).map(([k, v]) => [k, Math.round(v - mv.startedAt)])),
    loadAvgBefore: b2.load, loadAvgAfter: mvLoadAfter, autovacuumBeforeBaseline: b2.quiet, workload: mvW,
  }
  printTable(`workload (${WORKERS} loops of one-shot calls) around \`${move.command}\` (${movedRows} rows)`, HEADER, [row(mvW.baseline, mvW.baseline), row(mvW.toCutover, mvW.baseline), row(mvW.freeze, mvW.baseline), row(mvW.purge, mvW.baseline), row(mvW.command, mvW.baseline)])
  printTable(`move tenant ${MOVED} (${movedRows} rows) us-east-1 -> eu-west-1 (child process)`, ['measure', 'value'], [
    ['wall time, spawn to exit, ms', move.wallMs], ['move elapsed (its own figure), ms', move.moveElapsedMs ?? '-'], ['spawn to cutover, ms', move.toCutoverMs], ['copy to cutover, ms', move.copyToCutoverMs],
    ['purge grace wait (directory bound), ms', move.purgeGraceWaitMs ?? '-'], ['purge after the wait, ms', move.purgeMs ?? '-'], ['write freeze ms (directory moving -> cutover)', freezeMs ?? '-'], ['bulk copy rows/s', copyRate ?? '-'], ['relocation rows/s (copy to cutover)', move.relocationRowsPerSecond],
    ['moving tenant calls refused (ERR_TENANT_MOVING), retried', `${move.movingCalls} calls, ${move.movingRefusals} refusals, longest wait ${move.movingLongestWaitMs} ms`],
    ['load average before', b2.load.join(' ')], ['load average after', mvLoadAfter.join(' ')],
  ])

  await wl.stop()
  if (wl.errorCount > 0) {
    console.error(`workload errors (${wl.errorCount}):\n  ${wl.errors.join('\n  ')}`)
    process.exitCode = 1
  }
  const out = {
    benchmark: 'adopt', machine: machineInfo(), durationSec: Math.round((performance.now() - t0) / 1000),
    fixture: { rows: ROWS, tenants: TENANTS, counts: fixture.counts, movedTenant: MOVED, movedTenantRows: movedRows, invoicesContactIndex: FK_INDEX },
    setupMs, registeredBy,
    workload: { loops: WORKERS, mix: Object.fromEntries(MIX), calls: wl.samples.length, errors: wl.errorCount, firstErrors: wl.errors },
    encrypt, move,
  }
  printTable('setup (ms)', ['step', 'ms'], Object.entries(setupMs))
  if (QUICK) console.log('BENCH_QUICK=1: smoke run, results not written')
  else {
    writeResults(RESULTS, out)
    console.log(`results written to ${resolve(RESULTS)}`)
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((e) => {
    console.error(e)
    process.exitCode = 1
  }).finally(() => cleanupAll())
}
