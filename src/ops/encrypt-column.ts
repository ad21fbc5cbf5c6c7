/**
 * Encrypt-in-place of a populated plaintext column, online (`domicile migrate encrypt TABLE.COLUMN`),
 * and its rollback (`domicile migrate decrypt TABLE.COLUMN`). One region at a time:
 *
 *   prepare  shadow column of the other form + direction marker (catalog-only), the index of rows
 *            still to convert (built concurrently); then a grace of LAYOUT_TTL_MS so every process
 *            writes in the new direction before any row is converted
 *   convert  per tenant, batch by batch, each batch one tenant transaction (the keyring's path: key
 *            state checked at every use, nonce budget reserved, provider calls audited in the
 *            region): select rows still in the source form, seal (or open) each under the tenant's
 *            data key with its AAD (tenant, table, column, row key), compute the blind index, and
 *            write with a compare-and-set (source still equal to what was read, target still NULL),
 *            so a concurrent application write is never overwritten; batches go by key (keyset)
 *   vacuum   VACUUM the table (no lock that blocks writes): dead row versions holding the old form go,
 *            and the swap's check under its lock stays short
 *   swap     one short transaction: lock, check no source row is left, drop the source column,
 *            rename the shadow if it is the one kept (catalog-only)
 *   vacuum   again, for rows converted after the first one
 *
 * Each row carries its own state (which column holds its value), so a run killed at any point
 * (SIGKILL) is finished by running it again: a batch is one transaction (no half-written row), the
 * compare-and-set never converts a row twice, the catalog steps are transactions or idempotent.
 * The journal's checkpoint (control plane) records each region's step and counts, for progress
 * and audit; the rows themselves are the truth. A session advisory lock in the control plane keeps
 * two processes from driving the same column (a killed holder releases it with its connection).
 */
import { userInfo } from 'node:os'
import { DomicileError, isDomicileError } from '../errors.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import type { TenantRecord } from '../control-plane/tenant-directory.js'
import type { FieldProtection } from '../data/field-protection.js'
import type { Revealer } from '../data/tenant-scope.js'
import { LAYOUT_TTL_MS } from '../data/repository.js'
import type { StoreSession } from '../regions/store-driver.js'
import type { MigrationDirection } from '../schema/column-layout.js'
import { q } from '../schema/ddl.js'
import type { ResolvedColumn, ResolvedTable } from '../schema/define-schema.js'
import { tenantColumnSql, tenantMatch, tenantParam } from '../schema/tenant-column.js'
import { ensurePendingIndex, pkSqlType, prepareColumn, readColumnLayout, reached, sourceColumn, swapColumn, targetColumn } from './encrypt-column-ddl.js'
import { verifyColumn, type ColumnVerification } from './encrypt-column-verify.js'
import { batchColumn, batchRows } from './batch-params.js'
import { appendOperationAudit } from './ops-audit.js'
import type { Operation, OperationKind } from './operation-journal.js'
import { silentProgress, type Progress } from './progress.js'
import { Throttle } from './rotate-common.js'
import { tenantIdSql } from './tenant-rows.js'

export interface ColumnMigrationOptions {
  readonly progress?: Progress
  /** Who runs it; recorded in the audit and the journal. Default: the OS user. */
  readonly actor?: string
  /** Rows per batch (one tenant transaction each). Default 1000. */
  readonly batchSize?: number
  /**
   * Tenants converted at once in a region, each on its own connection (1..16). Default 1. More
   * converts faster and costs the application's writes latency: on the 2-core benchmark machine 2
   * gave +33% rows/s and a writer p99 of 2.2× (1 keeps it near 1×; BENCHMARKS.md).
   */
  readonly concurrency?: number
  /**
   * At most this many rows a second, averaged over the job (all tenants converted at once
   * together); no limit by default. Bounds what the job takes from the application's writes.
   */
  readonly maxRowsPerSecond?: number
  /** Check afterwards that no row holds the source form and every sealed value opens. */
  readonly verify?: boolean
  /** Wait after a layout change before converting rows; at least LAYOUT_TTL_MS. Default LAYOUT_TTL_MS + 500. */
  readonly graceMs?: number
  /** Swap attempts before giving up (each waits at most SWAP_LOCK_TIMEOUT_MS for its lock). Default 20. */
  readonly swapAttempts?: number
}

export interface RegionOutcome {
  readonly region: string
  readonly rows: number
  readonly tenants: number
  readonly swapLockWaitMs?: number
  readonly swapLockHeldMs?: number
}

export interface ColumnMigrationResult {
  readonly state: 'done'
  readonly operation: number
  readonly target: string
  readonly direction: MigrationDirection
  /** Rows converted by this run. */
  readonly rows: number
  readonly elapsedMs: number
  readonly rowsPerSecond: number
  readonly regions: readonly RegionOutcome[]
  readonly verify?: ColumnVerification
}

interface RegionCheckpoint {
  state: 'prepare' | 'convert' | 'swap' | 'vacuum' | 'done'
  rows: number
  preparedAt?: number
}

interface Checkpoint extends Record<string, unknown> {
  direction: MigrationDirection
  regions: Record<string, RegionCheckpoint>
  rows: number
}

/** Resolves `table.column` to a sensitive text column of a tenant table. */
export function resolveColumnTarget(d: Domicile, target: string): { table: ResolvedTable; column: ResolvedColumn } {
  const m = /^([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)$/.exec(typeof target === 'string' ? target : '')
  /* Precondition: the target is TABLE.COLUMN. */
  if (!m) throw new DomicileError('ERR_INPUT_INVALID', 'Name the column as TABLE.COLUMN, e.g. customers.notes.')
  const table = d.schema.table(m[1]!)
  const column = table.columns.get(m[2]!)
  if (!column) throw new DomicileError('ERR_COLUMN_UNKNOWN', `Table "${table.name}" has no column "${m[2]}".`, { path: target })
  /* Precondition: the column is declared sensitive in the schema (the data layer then reads both forms during the migration). */
  if (!column.sensitive || table.scope !== 'tenant') {
    throw new DomicileError('ERR_SCHEMA_INVALID', `${target} is not a sensitive column of a tenant table. Declare it { type: 'text', sensitive: ... } in the schema and deploy that first; the data layer then reads both forms while the migration runs.`, { path: target })
  }
  /* Precondition: encrypt-in-place converts text columns. */
  if (column.type !== 'text') throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${target} is of type ${column.type}; encrypt-in-place converts text columns only.`, { path: target })
  return { table, column }
}

/** A test hook, inert unless DOMICILE_TEST_KILL_AT=<point>:<n> is set: SIGKILL at the n-th pass of <point>. */
const killCounts = new Map<string, number>()
function killPoint(point: string): void {
  const spec = process.env.DOMICILE_TEST_KILL_AT
  if (!spec) return
  const [p, n] = spec.split(':')
  if (p !== point) return
  const c = (killCounts.get(point) ?? 0) + 1
  killCounts.set(point, c)
  if (c === Number(n)) process.kill(process.pid, 'SIGKILL')
}

function defaultActor(): string {
  try {
    return `os:${userInfo().username}`
  } catch {
    return 'os:unknown'
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/**
 * Encrypts `table.column` in place, online, in every region; resumes a run that was killed.
 *
 * @example
 * const r = await encryptColumn(domicile, 'customers.notes', { verify: true })
 */
export function encryptColumn(d: Domicile, target: string, opts: ColumnMigrationOptions = {}): Promise<ColumnMigrationResult> {
  return migrateColumn(d, target, 'encrypt', opts)
}

/**
 * The rollback: turns `table.column` back into plaintext, online, with the same guarantees. New
 * writes are plaintext from the moment it starts. Each value opened is audited as a reveal.
 *
 * @example
 * await decryptColumn(domicile, 'customers.notes')
 */
export function decryptColumn(d: Domicile, target: string, opts: ColumnMigrationOptions = {}): Promise<ColumnMigrationResult> {
  return migrateColumn(d, target, 'decrypt', opts)
}

async function migrateColumn(d: Domicile, target: string, direction: MigrationDirection, opts: ColumnMigrationOptions): Promise<ColumnMigrationResult> {
  const { table, column } = resolveColumnTarget(d, target)
  const parts = internalsOf(d)
  if (!parts.journal) throw new DomicileError('ERR_CONFIG_INVALID', 'This instance has no operations journal.')
  if (!parts.fields) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key custody is configured, so no column can be sealed or opened.')
  const key = `${table.name}.${column.name}`
  return withColumnLease(d, key, async () => {
    const job = new ColumnJob(d, table, column, direction, opts)
    return job.run()
  })
}

/**
 * How long a run waits for the column's lease before saying another process holds it: the lease of
 * a process that was just killed is released when the server notices its connection is gone, which
 * can take a moment on a busy machine.
 */
const LEASE_WAIT_MS = 5000

/**
 * One process at a time per column: a session advisory lock in the control plane, held for the
 * run (released when the process dies with its connection). Embedded PGlite is one process anyway.
 */
async function withColumnLease<T>(d: Domicile, key: string, fn: () => Promise<T>): Promise<T> {
  const cp = internalsOf(d).controlPlane
  if (cp.kind !== 'postgres') return fn()
  return cp.withSession(async (s) => {
    const started = Date.now()
    let ok = false
    for (;;) {
      const r = await s.query<{ ok: boolean }>(`SELECT pg_try_advisory_lock(hashtext('domicile:column:' || $1)) AS ok`, [key])
      ok = r.rows[0]?.ok === true
      if (ok || Date.now() - started >= LEASE_WAIT_MS) break
      await new Promise((resolve) => setTimeout(resolve, 100))
    }
    if (!ok) throw new DomicileError('ERR_OPERATION_RUNNING', `Another process is migrating ${key} right now. Wait for it, or stop it; a killed run is resumed by running the command again.`)
    try {
      return await fn()
    } finally {
      await s.query(`SELECT pg_advisory_unlock(hashtext('domicile:column:' || $1))`, [key]).catch(() => s.discard())
    }
  }, { role: 'owner' })
}

class ColumnJob {
  readonly #d: Domicile
  readonly #t: ResolvedTable
  readonly #col: ResolvedColumn
  readonly #dir: MigrationDirection
  readonly #progress: Progress
  readonly #actor: string
  readonly #batch: number
  readonly #concurrency: number
  readonly #throttle: Throttle
  readonly #grace: number
  readonly #opts: ColumnMigrationOptions
  readonly #target: string
  #op!: Operation<Checkpoint>
  #cp!: Checkpoint
  #rows = 0
  #lastCheckpoint = 0
  readonly #started = performance.now()

  constructor(d: Domicile, t: ResolvedTable, col: ResolvedColumn, dir: MigrationDirection, opts: ColumnMigrationOptions) {
    this.#d = d
    this.#t = t
    this.#col = col
    this.#dir = dir
    this.#opts = opts
    this.#progress = opts.progress ?? silentProgress
    this.#actor = opts.actor ?? defaultActor()
    this.#batch = opts.batchSize ?? 1000
    this.#concurrency = opts.concurrency ?? 1
    /* Precondition: a concurrency of 1 to 16 tenants at once. */
    if (!Number.isInteger(this.#concurrency) || this.#concurrency < 1 || this.#concurrency > 16) {
      throw new DomicileError('ERR_INPUT_INVALID', 'concurrency: expected an integer from 1 to 16.', { path: 'concurrency' })
    }
    /* Precondition: the batch size is 1..10000. */
    if (!Number.isInteger(this.#batch) || this.#batch < 1 || this.#batch > 10_000) throw new DomicileError('ERR_INPUT_INVALID', 'batchSize: expected an integer from 1 to 10000.')
    // The rate limit (checked by Throttle: a positive number of rows per second), over the whole job.
    this.#throttle = new Throttle(opts.maxRowsPerSecond)
    this.#grace = Math.max(opts.graceMs ?? LAYOUT_TTL_MS + 500, LAYOUT_TTL_MS + 100)
    this.#target = `${t.name}.${col.name}`
  }

  get #kind(): OperationKind {
    return this.#dir === 'encrypt' ? 'encrypt-column' : 'decrypt-column'
  }

  get #parts() {
    return internalsOf(this.#d)
  }

  async run(): Promise<ColumnMigrationResult> {
    await this.#openOperation()
    const outcomes: RegionOutcome[] = []
    // Every store: each cell of a region is converted on its own (its checkpoint keyed by `region/cell`).
    for (const where of this.#parts.router.stores) outcomes.push(await this.#region(this.#parts.router.label(where)))
    await this.#parts.journal!.finish(this.#op.id, 'done', 'done', this.#cp)
    this.#progress.note(`${this.#target}: ${this.#dir} done (${this.#rows} rows this run)`)
    let verify: ColumnVerification | undefined
    if (this.#opts.verify) {
      verify = await verifyColumn(this.#d, this.#target, this.#dir, { progress: this.#progress })
      if (!verify.ok) {
        throw new DomicileError('ERR_DECRYPTION_FAILED', `Verification of ${this.#target} failed: ${verify.failed} value(s) did not open as this column's sealed values, ${verify.leftInSourceForm} row(s) still in the source form, ${verify.unaccounted} row(s) not visible to their tenant. Nothing was changed by the check; see the audit records of operation #${this.#op.id}.`)
      }
    }
    const elapsedMs = Math.round(performance.now() - this.#started)
    return Object.freeze({
      state: 'done' as const, operation: this.#op.id, target: this.#target, direction: this.#dir, rows: this.#rows, elapsedMs,
      rowsPerSecond: elapsedMs > 0 ? Math.round((this.#rows / elapsedMs) * 1000) : 0, regions: outcomes, ...(verify ? { verify } : {}),
    })
  }

  /** Resumes this column's running operation, ends one of the other direction (this run reverses it), or starts one. */
  async #openOperation(): Promise<void> {
    const journal = this.#parts.journal!
    const running = await journal.running<Checkpoint>(this.#target)
    if (running && running.kind === this.#kind) {
      this.#op = running
      this.#cp = { direction: this.#dir, rows: Number(running.checkpoint.rows ?? 0), regions: { ...(running.checkpoint.regions ?? {}) } }
      this.#progress.note(`${this.#target}: resuming operation #${running.id} at "${running.state}"`)
      return
    }
    if (running) {
      if (running.kind !== 'encrypt-column' && running.kind !== 'decrypt-column') {
        throw new DomicileError('ERR_OPERATION_RUNNING', `Operation #${running.id} (${running.kind}) is running on ${this.#target}.`)
      }
      await journal.finish(running.id, 'aborted', 'reversed', { ...running.checkpoint, reversedBy: this.#dir })
      this.#progress.note(`${this.#target}: operation #${running.id} (${running.kind}) is reversed by this ${this.#dir}`)
    }
    this.#cp = { direction: this.#dir, rows: 0, regions: {} }
    this.#op = await journal.start<Checkpoint>({ kind: this.#kind, tenantId: null, target: this.#target, state: 'prepare', checkpoint: this.#cp, actor: this.#actor })
  }

  async #checkpoint(state: string, force = false): Promise<void> {
    const now = performance.now()
    if (!force && now - this.#lastCheckpoint < 1000) return
    this.#lastCheckpoint = now
    await this.#parts.journal!.advance(this.#op.id, state, this.#cp)
  }

  #audit(region: string, tenants: Iterable<string>, step: 'start' | 'checkpoint' | 'end', detail: Record<string, unknown>): Promise<void> {
    const type = `column.${this.#dir}.${step}`
    const base = { operation: this.#op.id, table: this.#t.name, column: this.#col.name, region, ...detail }
    const where = this.#parts.router.resolve(region)
    return Promise.all([...tenants].map((tenant) => appendOperationAudit(this.#parts.router, where, tenant, [{ type, outcome: 'ok', actor: this.#actor, detail: base }]))).then(() => undefined)
  }

  #admin<T>(region: string, fn: (s: StoreSession) => Promise<T>): Promise<T> {
    return this.#parts.router.withRegionAdmin(this.#parts.router.resolve(region), fn)
  }

  async #region(region: string): Promise<RegionOutcome> {
    const cp = (this.#cp.regions[region] ??= { state: 'prepare', rows: 0 })
    const tenantsSeen = new Set<string>()
    let swapWait: number | undefined
    let swapHeld: number | undefined
    if (cp.state === 'done') {
      // A finished region is checked again (its layout), never converted twice.
      const { layout } = await this.#admin(region, (s) => readColumnLayout(s, this.#t, this.#col))
      if (reached(layout, this.#dir)) return { region, rows: 0, tenants: 0 }
      cp.state = 'prepare'
    }
    // prepare
    this.#progress.update({ state: 'prepare', done: 0, unit: 'rows' })
    const prep = await this.#admin(region, (s) => prepareColumn(s, this.#t, this.#col, this.#dir))
    const source = sourceColumn(prep.layout, this.#dir)
    if (source !== undefined) {
      await this.#admin(region, (s) => ensurePendingIndex(s, this.#t, this.#col, this.#dir, source))
      // Fresh statistics (the shadow column is new, the table may never have been analysed): the
      // batches' reads then walk the pending index in key order instead of sorting every row left.
      await this.#admin(region, (s) => s.query(`ANALYZE ${q(this.#t.name)}`))
      if (prep.changed || cp.preparedAt === undefined) cp.preparedAt = Date.now()
      cp.state = 'convert'
      await this.#checkpoint('convert', true)
      killPoint('prepare')
      // Every process must see the new layout (it re-reads it every LAYOUT_TTL_MS) before rows move.
      const wait = cp.preparedAt + this.#grace - Date.now()
      if (wait > 0) {
        this.#progress.note(`${this.#target} (${region}): waiting ${Math.ceil(wait / 100) / 10} s for every process to see the new layout`)
        await sleep(wait)
      }
      const pending = await this.#pending(region)
      await this.#audit(region, pending.keys(), 'start', { pending: sumOf(pending) })
      // convert, then swap; rows written in the source form meanwhile (a process that had not seen
      // the layout yet) send it back to convert.
      for (let attempt = 0; ; attempt++) {
        await this.#convert(region, cp, tenantsSeen)
        // Dead row versions (and their index entries) go first, outside any lock: the swap's check
        // under its lock is then an index probe over live entries only, and holds the lock briefly.
        this.#progress.update({ state: 'vacuum', done: 0, unit: 'rows' })
        await this.#admin(region, (s) => s.query(`VACUUM ${q(this.#t.name)}`))
        cp.state = 'swap'
        await this.#checkpoint('swap', true)
        this.#progress.update({ state: 'swap', done: 0, unit: 'rows' })
        let out
        try {
          out = await this.#admin(region, (s) => swapColumn(s, this.#t, this.#col, this.#dir, () => killPoint('swap')))
        } catch (e) {
          // Lock timeout (SQLSTATE 55P03): the table was busy; try again shortly.
          if (!(isDomicileError(e) && /55P03/.test(e.message)) || attempt + 1 >= (this.#opts.swapAttempts ?? 20)) throw e
          await sleep(200 + 100 * attempt)
          continue
        }
        swapWait = Math.round(out.lockWaitMs * 10) / 10
        swapHeld = Math.round(out.lockHeldMs * 10) / 10
        if (out.swapped) break
        if (attempt + 1 >= (this.#opts.swapAttempts ?? 20)) {
          throw new DomicileError('ERR_CONFLICT', `${this.#target} (${region}): rows kept arriving in the source form; run the command again.`)
        }
      }
      this.#progress.note(`${this.#target} (${region}): swapped (lock waited ${swapWait} ms, held ${swapHeld} ms)`)
    }
    cp.state = 'vacuum'
    await this.#checkpoint('vacuum', true)
    this.#progress.update({ state: 'vacuum', done: 0, unit: 'rows' })
    // Dead row versions still holding the old form (rows converted after the first VACUUM): remove
    // them (the space is reused, not scrubbed: docs/ENCRYPT-IN-PLACE.md says what else may still
    // hold it and for how long).
    await this.#admin(region, (s) => s.query(`VACUUM (ANALYZE) ${q(this.#t.name)}`))
    cp.state = 'done'
    await this.#checkpoint('done', true)
    const tenants = tenantsSeen.size > 0 ? tenantsSeen : new Set((await this.#admin(region, (s) => s.query<{ t: string | null }>(`SELECT DISTINCT ${tenantIdSql(this.#t)} AS t FROM ${q(this.#t.name)}`))).rows.flatMap((r) => (r.t === null ? [] : [r.t])))
    await this.#audit(region, tenants, 'end', { rows: cp.rows, ...(swapHeld !== undefined ? { swapLockHeldMs: swapHeld } : {}) })
    return { region, rows: cp.rows, tenants: tenants.size, ...(swapWait !== undefined ? { swapLockWaitMs: swapWait, swapLockHeldMs: swapHeld } : {}) }
  }

  /** Rows still in the source form, per tenant (through the pending index). */
  async #pending(region: string): Promise<Map<string, number>> {
    return this.#admin(region, async (s) => {
      const { layout } = await readColumnLayout(s, this.#t, this.#col)
      const src = sourceColumn(layout, this.#dir)
      if (src === undefined) return new Map()
      const tc = tenantColumnSql(this.#t)
      const r = await s.query<{ t: string | null; n: string | number }>(`SELECT ${tenantIdSql(this.#t)} AS t, count(*) AS n FROM ${q(this.#t.name)} WHERE ${q(src)} IS NOT NULL GROUP BY ${tc} ORDER BY ${tc}`)
      /* Precondition: every row to convert belongs to a tenant (an adopted table's tenant column may allow NULL). */
      if (r.rows.some((row) => row.t === null)) {
        throw new DomicileError('ERR_TENANT_UNKNOWN', `${this.#target} (${region}) has rows whose tenant column ${this.#t.tenantColumn?.name ?? 'tenant_id'} is NULL: they belong to no tenant, so no key can seal them. Give them a tenant (or delete them), then run the command again.`)
      }
      return new Map(r.rows.map((row) => [row.t!, Number(row.n)]))
    })
  }

  async #convert(region: string, cp: RegionCheckpoint, tenantsSeen: Set<string>): Promise<void> {
    for (;;) {
      const pending = await this.#pending(region)
      if (pending.size === 0) return
      const total = this.#rows + sumOf(pending)
      const queue = [...pending.keys()]
      // A few tenants at once, each on its own connection; the first failure stops the others after
      // their current batch (every batch is its own transaction: nothing is left half-written).
      let failed: { error: unknown } | undefined
      this.#throttle.begin()
      const worker = async (): Promise<void> => {
        for (let tenantId = queue.shift(); tenantId !== undefined && !failed; tenantId = queue.shift()) {
          tenantsSeen.add(tenantId)
          const tenant = await this.#tenant(tenantId, region)
          let rows = 0
          // Keyset: each batch starts after the last row key of the one before, so it never walks
          // the pending index's entries of rows already converted (they stay until VACUUM).
          let after: unknown
          for (;;) {
            const { selected, converted, last } = await this.#convertBatch(tenant, after)
            after = last
            rows += converted
            cp.rows += converted
            this.#rows += converted
            this.#cp.rows += converted
            // Rows the compare-and-set skipped (written meanwhile) are looked at again on the next pass.
            this.#progress.update({ state: this.#dir, done: this.#rows, total: Math.max(total, this.#rows), unit: 'rows' })
            killPoint('convert')
            await this.#checkpoint(this.#dir)
            if (selected < this.#batch || failed) break
            await this.#throttle.after(selected)
          }
          await this.#audit(region, [tenantId], 'checkpoint', { rows })
        }
      }
      await Promise.allSettled(Array.from({ length: Math.min(this.#concurrency, queue.length) }, () => worker().catch((error: unknown) => {
        failed ??= { error }
      })))
      if (failed) throw failed.error
    }
  }

  /** The tenant's directory entry; a tenant the job cannot work on here stops it with what to do. */
  async #tenant(tenantId: string, region: string): Promise<TenantRecord> {
    let t: TenantRecord
    try {
      t = await this.#parts.directory.get(tenantId)
    } catch (e) {
      if (isDomicileError(e) && e.code === 'ERR_TENANT_UNKNOWN') {
        throw new DomicileError('ERR_TENANT_UNKNOWN', `${this.#target} (${region}) has rows of tenant "${tenantId}", which is not in the directory, so no key can seal them. Add the tenant (or delete its rows), then run the command again.`)
      }
      throw e
    }
    /* Precondition: rows are converted only in the tenant's home region (its keys are wrapped for it). */
    if (this.#parts.router.label(t) !== region) {
      throw new DomicileError('ERR_REGION_MISMATCH', `${this.#target}: tenant "${tenantId}" has rows in "${region}" but lives in "${this.#parts.router.label(t)}" (a move in progress or left over). Finish the move, then run the command again.`)
    }
    /* Precondition: a tenant in the final step of a move is not written to. */
    if (t.status === 'moving') throw new DomicileError('ERR_TENANT_MOVING', `Tenant "${tenantId}" is moving between regions; run the command again when the move is done.`)
    return t
  }

  /**
   * One batch: one tenant transaction, the rows still in the source form whose key comes after
   * `after` (all of them when undefined). Returns how many rows it selected and converted, and the
   * last row key it selected.
   *
   * Reading and sealing the next batch while the server writes this one was tried and dropped:
   * with the writer of the benchmark running it converted no faster (20.9k/23.6k against
   * 21.5k/27.8k rows/s, same runs) and the writer's p99 was worse (1.86×/1.96× against
   * 1.37×/1.30×; BENCHMARKS.md). `concurrency` stays the one knob that trades latency for speed.
   */
  async #convertBatch(tenant: TenantRecord, after: unknown): Promise<{ selected: number; converted: number; last?: unknown }> {
    const fieldsFactory = this.#parts.fields!
    // #tenant checked that the tenant lives in this store: its own placement routes the batch.
    return this.#parts.router.withTenantTransaction(tenant.id, tenant, async (tx) => {
      const fields = fieldsFactory.forTransaction(tenant, tx)
      if (!fields) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenant.id}" has no key binding, so its rows of ${this.#target} cannot be sealed. Bind a key ("domicile tenant add --custody"), then run the command again.`)
      const { layout } = await readColumnLayout(tx.session, this.#t, this.#col)
      const src = sourceColumn(layout, this.#dir)
      const dst = targetColumn(layout, this.#dir)
      if (src === undefined || dst === undefined) return { selected: 0, converted: 0 }
      const pk = q(this.#t.primaryKey)
      const table = q(this.#t.name)
      const tenantArg = tenantParam(this.#t, tenant.id)
      const keyType = pkSqlType(this.#t)
      const r = await tx.session.query<{ k: unknown; v: string | Uint8Array }>(
        `SELECT ${pk} AS k, ${q(src)} AS v FROM ${table} WHERE ${tenantMatch(this.#t, '$1')} AND ${q(src)} IS NOT NULL${after === undefined ? '' : ` AND ${pk} > $3::${keyType}`} ORDER BY ${pk} LIMIT $2`,
        after === undefined ? [tenantArg, this.#batch] : [tenantArg, this.#batch, after])
      if (r.rows.length === 0) return { selected: 0, converted: 0 }
      const keys = r.rows.map((row) => String(row.k))
      const olds = r.rows.map((row) => row.v)
      const encrypt = this.#dir === 'encrypt'
      const news = encrypt ? await this.#seal(fields, keys, olds as string[]) : await this.#open(fields, keys, olds as Uint8Array[])
      const ixs = encrypt && this.#col.indexColumn ? await this.#index(fields, olds as string[]) : null
      const first = r.rows[0]!.k
      const last = r.rows[r.rows.length - 1]!.k
      const params: unknown[] = [tenantArg, first, last, keys]
      const ov = batchColumn('ov', encrypt ? 'text' : 'bytea', olds, params)
      const nv = batchColumn('nv', encrypt ? 'bytea' : 'text', news, params)
      const ix = ixs ? batchColumn('ix', 'bytea', ixs, params) : undefined
      const setIndex = ix ? `, ${q(this.#col.indexColumn!)} = ${ix.value}` : ''
      // Compare-and-set: only rows still holding exactly what was read, and nothing in the target.
      // The key range of the batch bounds the rows the statement looks at, whatever plan it gets.
      const u = await tx.session.query(
        `UPDATE ${table} AS t SET ${q(dst)} = ${nv.value}, ${q(src)} = NULL${setIndex}
         FROM ${batchRows('$4', [ov, nv, ...(ix ? [ix] : [])])}
         WHERE ${tenantMatch(this.#t, '$1', 't')} AND t.${pk} BETWEEN $2::${keyType} AND $3::${keyType}
           AND t.${pk} = v.k::${keyType} AND t.${q(src)} = ${ov.value} AND t.${q(dst)} IS NULL`, params)
      killPoint('batch')
      return { selected: r.rows.length, converted: u.rowCount, last }
    })
  }

  async #seal(fields: FieldProtection, keys: string[], plains: string[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (let i = 0; i < keys.length; i++) {
      const s = fields.seal(this.#t, this.#col, keys[i]!, plains[i]!)
      out.push(s instanceof Promise ? await s : s)
    }
    return out
  }

  async #index(fields: FieldProtection, plains: string[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (const p of plains) {
      const ix = fields.index(this.#t, this.#col, p)
      out.push(ix instanceof Promise ? await ix : ix)
    }
    return out
  }

  /** Opens the batch's values as reveals (one audit record each, in this transaction). */
  async #open(fields: FieldProtection & Revealer, keys: string[], sealed: Uint8Array[]): Promise<string[]> {
    const rows = sealed.map((b, i) => ({ v: fields.wrap(this.#t, this.#col, keys[i]!, new Uint8Array(b)) }))
    const opened = await fields.revealRows(rows, { purpose: `domicile migrate decrypt ${this.#target} (operation #${this.#op.id})`, actor: this.#actor })
    return opened.map((r) => {
      /* Postcondition: a text column's sealed values open to strings. */
      if (typeof r.v !== 'string') throw new DomicileError('ERR_DECRYPTION_FAILED', `A value of ${this.#target} did not open to text.`)
      return r.v
    })
  }
}

const sumOf = (m: Map<string, number>): number => {
  let n = 0
  for (const v of m.values()) n += v
  return n
}
