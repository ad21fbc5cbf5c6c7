/**
 * Tenant relocation between regions, or between cells of one region (`domicile tenant move ID
 * --to REGION [--cell CELL]`): a journaled state machine in the control plane, plan → copy →
 * catch-up → cutover → verify → purge → done. "Region" below means the source and target stores
 * (a cell of a region is a store of its own); keys are rewrapped for the target region's context.
 *
 * - The directory's region is the one source of truth. It changes once, at the cutover, in the
 *   same control-plane transaction as the journal step; before it the source region serves the
 *   tenant, after it the target does. At no moment do both.
 * - copy: the tenant's rows travel as stored (ciphertext is never decrypted), keyset batches with a
 *   checkpoint per batch; its data and index keys are rewrapped for the target region's wrap
 *   context through the tenant's key provider, with the same key numbers and budget counters.
 * - catch-up: rounds that compare both regions per hash bucket of the primary key (count and row
 *   content hashes) and copy what changed, deletions included, while the application writes on.
 * - cutover: the write freeze. The directory says "moving" (scopes get the retryable
 *   ERR_TENANT_MOVING), transactions open on the source drain, a last catch-up runs, both regions
 *   must then agree on every table's row count and content hash, the keys' counters are carried
 *   over, the target's sequences of adopted tables are advanced past the copied keys, and the
 *   directory moves to the target. A freeze that would pass `maxFreezeMs` is undone
 *   and tried again.
 * - verify: the target's keys unwrap under its context and sealed values open through the normal
 *   path (withTenant + reveal, audited).
 * - purge: after a grace period (processes with a stale directory entry), the source's rows are
 *   checked unchanged since the cutover and deleted with the source's wrapped keys; then checked gone.
 *
 * Killed at any point, `resumeTenantMove` completes it; `abortTenantMove` rolls it back before the
 * cutover (the target's copy is deleted; the source never stopped being the tenant's home).
 */
import { setTimeout as delay } from 'node:timers/promises'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import type { DomicileParts } from '../domicile.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { chooseCell, DEFAULT_CELL, type Placement } from '../regions/placement.js'
import type { StoreSession } from '../regions/store-driver.js'
import { OperationJournal, type Operation } from './operation-journal.js'
import { appendOperationAudit } from './ops-audit.js'
import { silentProgress, type Progress } from './progress.js'
import { advanceSequences, applyRepairs, canStreamCopy, readChunk, writeChunk, copyFormat, deleteTenantRows, insertBatch, readBatch, readRows, remainingRows, type TableRepair } from './tenant-move-copier.js'
import { drainOpenTransactions } from './tenant-move-drain.js'
import { checkKeysOpen, countKeys, deleteKeys, syncKeys } from './tenant-move-keys.js'
import { planTables, type MovePlan, type MoveTable } from './tenant-move-plan.js'
import { readTx, writeTx } from './tenant-move-sql.js'
import { bucketBits, bucketRows, changedBuckets, changeMarkers, contentHash, countRows, differingBuckets, patchSummary, rowHashes, summarize, type BucketHash, type Bucketing, type BucketSummary } from './tenant-move-verifier.js'

const sameBucketing = (s: BucketSummary | undefined, bk: Bucketing): boolean => s !== undefined && s.bits === bk.bits && s.hash === bk.hash

export type MoveState = 'plan' | 'copy' | 'catch-up' | 'cutover' | 'verify' | 'purge' | 'done' | 'abort' | 'aborted'

export interface MoveOptions {
  /** Who runs the move (audit). */
  readonly actor?: string
  readonly progress?: Progress
  /** Rows per copy batch. Default 20 000 (50 000 a chunk when the copy streams by COPY between PostgreSQL stores). */
  readonly batchRows?: number
  /** The write freeze is never longer: a final catch-up that would pass it is undone and retried. Default 2000 ms. */
  readonly maxFreezeMs?: number
  /** How long the freeze waits for transactions open on the source. Default 1000 ms. */
  readonly drainTimeoutMs?: number
  /** Attempts at the freeze before the move stops (resumable). Default 3. */
  readonly freezeAttempts?: number
  /** Online catch-up rounds before the freeze, at most. Default 10. */
  readonly catchUpRounds?: number
  /** The freeze starts once a catch-up round copied at most this many rows. Default 200. */
  readonly catchUpThreshold?: number
  /**
   * Wait between the cutover and the purge, so that no process still writes to the source from a
   * stale directory entry. Default: the directory's trust bound, max(5000, 10 × directoryPollMs).
   */
  readonly purgeGraceMs?: number
  /**
   * Let the bulk copy check a table's foreign keys once per chunk, with the target's per-row
   * checks off while the chunk is written, where the target allows it (`MoveTable.chunkForeignKeyCheck`:
   * the owner may set session_replication_role). Default true; false keeps PostgreSQL's per-row checks.
   */
  readonly chunkForeignKeyChecks?: boolean
}

export interface MoveResult {
  readonly operationId: number
  readonly tenant: string
  /** The source and target stores: a region, or `region/cell` for a region with several cells. */
  readonly from: string
  readonly to: string
  readonly state: 'done' | 'aborted'
  /** Rows copied by the bulk copy and catch-up. */
  readonly rows: number
  readonly keys: number
  readonly elapsedMs: number
  /** Length of the write freeze (directory "moving" to the cutover commit); null when none happened. */
  readonly freezeMs: number | null
  /** Bulk-copy rate in this process (rows/s), when it copied. */
  readonly copyRowsPerSecond: number | null
  /** Per table, at the cutover: rows and content hash (equal in both regions). */
  readonly tables: Readonly<Record<string, { rows: number; hash: string }>>
  /** Rows (and keys) deleted from the source by the purge, or from the target by an abort. */
  readonly deleted: { rows: number; keys: number }
}

interface TableCheckpoint {
  after: string | null
  done: boolean
  rows: number
}

/** What the journal keeps for a move (ids, counts, hashes; never row content or key material). */
interface MoveCheckpoint extends Record<string, unknown> {
  from: string
  to: string
  /** The source's and target's cells (absent in moves journaled before cells: "main"). */
  fromCell?: string
  toCell?: string
  startedAt: number
  bits: Record<string, number>
  /** How keys pick their bucket (absent in moves planned before hashtext buckets: md5). */
  bucketHash?: BucketHash
  total: number
  copy: Record<string, TableCheckpoint>
  copiedRows: number
  repairedRows: number
  keys: number
  freezeStartedAt?: number
  freezeMs?: number
  cutoverAt?: number
  tables?: Record<string, { rows: number; hash: string }>
  deleted?: { rows: number; keys: number }
}

/**
 * Test hook: DOMICILE_TEST_KILL_AT=<point> makes the process kill itself (SIGKILL) there, for the
 * crash tests. Inert unless set.
 */
function killPoint(point: string): void {
  if (process.env.DOMICILE_TEST_KILL_AT === point) process.kill(process.pid, 'SIGKILL')
}

/** A catch-up round that repairs more than this share of the previous round's rows is not converging. */
const CONVERGING = 0.7

/** Thrown inside the freeze when its deadline passed: the freeze is undone and tried again. */
class FreezeOverrun extends Error {}

/** Of the freeze bound, what is kept for the cutover commit and for writers to learn of it (ms). */
const FREEZE_RESERVE_MS = 400

const LEASE_CLASS = 0x646d6f76 // 'dmov'
/** How long a move waits for the lease of a process that was just killed. */
const LEASE_WAIT_MS = 3000

class MoveRun {
  readonly p: DomicileParts
  readonly journal: OperationJournal
  readonly progress: Progress
  readonly actor: string | null
  op: Operation<MoveCheckpoint>
  cp: MoveCheckpoint
  plan: MovePlan | undefined
  copyRate: number | null = null
  freezeMs: number | null = null
  /** The target's bucket summaries as of the last round (this process only). */
  readonly targetSummaries = new Map<string, BucketSummary>()
  /** The source's bucket summaries (with change markers) as of the last round (this process only). */
  readonly sourceSummaries = new Map<string, BucketSummary>()
  /** Freezes started by this process (a resumed move starts counting again). */
  freezeAttempts = 0

  constructor(readonly d: Domicile, op: Operation<MoveCheckpoint>, readonly opts: MoveOptions) {
    this.p = internalsOf(d)
    this.journal = this.p.journal ?? new OperationJournal(this.p.controlPlane)
    this.progress = opts.progress ?? silentProgress
    this.actor = opts.actor ?? op.actor
    this.op = op
    this.cp = structuredClone(op.checkpoint)
  }

  get tenant(): string {
    return this.op.target
  }

  /** The source store (region and cell). */
  get src(): Placement {
    return { region: this.cp.from, cell: this.cp.fromCell ?? DEFAULT_CELL }
  }

  /** The target store (region and cell). */
  get dst(): Placement {
    return { region: this.cp.to, cell: this.cp.toCell ?? DEFAULT_CELL }
  }

  /** The source's name in messages: its region, or `region/cell`. */
  get from(): string {
    return this.p.router.label(this.src)
  }

  get to(): string {
    return this.p.router.label(this.dst)
  }

  /** Where the directory homes the tenant: the source, the target or elsewhere. */
  homedAt(rec: { region: string; cell: string }): 'source' | 'target' | 'elsewhere' {
    const is = (p: Placement) => rec.region === p.region && rec.cell === p.cell
    return is(this.src) ? 'source' : is(this.dst) ? 'target' : 'elsewhere'
  }

  /** The directory guard "still homed in the source" (compare-and-set at the freeze, unfreeze, cutover, abort). */
  atSource(status: 'active' | 'moving'): { region: string; cell: string; status: 'active' | 'moving' } {
    return { region: this.src.region, cell: this.src.cell, status }
  }

  /** Owner sessions on both stores at once. */
  both<T>(fn: (src: StoreSession, dst: StoreSession) => Promise<T>): Promise<T> {
    return this.p.router.withRegionAdmin(this.src, (src) => this.p.router.withRegionAdmin(this.dst, (dst) => fn(src, dst)))
  }

  /** The key-sync arguments: keys are wrapped for the region (every cell of a region shares its wrap context). */
  get keyRegions(): { from: string; to: string } {
    return { from: this.src.region, to: this.dst.region }
  }

  async getPlan(): Promise<MovePlan> {
    if (this.plan === undefined) {
      this.plan = await this.both((src, dst) => planTables(this.p.schema, src, dst))
      for (const f of this.plan.unindexedForeignKeys) {
        this.progress.note(`warning: no index on ${f.table} (${f.columns.join(', ')}), the foreign key to ${f.parent}: the purge of the source checks ${f.table} once per ${f.parent} row it deletes, which grows with the square of the tenant's rows. Before moving large tenants, add one: CREATE INDEX CONCURRENTLY ON ${f.table} (${f.columns.join(', ')})`)
      }
    }
    return this.plan
  }

  async advance(state: MoveState, inTransaction?: (s: StoreSession) => Promise<void>): Promise<void> {
    await this.journal.advance(this.op.id, state, this.cp, inTransaction)
    this.op = { ...this.op, state }
  }

  /** The state's audit record, in both regions concerned. */
  async audit(state: string, outcome: string, detail: Record<string, unknown> = {}): Promise<void> {
    const record = { type: `tenant.move.${state}`, outcome, actor: this.actor, detail: { operation: this.op.id, from: this.from, to: this.to, ...detail } }
    for (const where of [this.src, this.dst]) await appendOperationAudit(this.p.router, where, this.tenant, [record])
  }

  async enter(state: MoveState, detail: Record<string, unknown> = {}): Promise<void> {
    this.progress.note(`tenant ${this.tenant}: ${state}`)
    await this.audit(state, 'ok', detail)
  }

  provider = (name: string) => {
    if (!this.p.providers) throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'No key providers are configured, but the tenant has wrapped keys to move.')
    return this.p.providers.runtime(name)
  }

  // -- states -------------------------------------------------------------------------------

  async plan_(): Promise<void> {
    const plan = await this.getPlan()
    const counts = await this.both(async (src, dst) => {
      const out: Record<string, number> = {}
      for (const t of plan.tables) {
        /* Precondition: the target region holds nothing of the tenant when a move starts. */
        if (await countRows(dst, t, this.tenant) > 0 || await countKeys(dst, this.tenant) > 0) {
          throw new DomicileError('ERR_CONFLICT', `Region "${this.to}" already holds rows or keys of tenant "${this.tenant}" that no move put there. Remove them (or abort the move that left them) before moving the tenant.`)
        }
        out[t.name] = await countRows(src, t, this.tenant)
      }
      return out
    })
    this.cp.bits = Object.fromEntries(plan.tables.map((t) => [t.name, bucketBits(counts[t.name] ?? 0)]))
    this.cp.bucketHash = 'hashtext'
    this.cp.total = Object.values(counts).reduce((a, b) => a + b, 0)
    this.cp.copy = Object.fromEntries(plan.tables.map((t) => [t.name, { after: null, done: false, rows: 0 }]))
    await this.advance('copy')
    await this.enter('copy', { tables: plan.tables.map((t) => t.name), rows: this.cp.total })
  }

  async copy(): Promise<void> {
    const plan = await this.getPlan()
    const batchRows = this.opts.batchRows ?? 20_000
    const started = performance.now()
    let copiedHere = 0
    let batchNo = 0
    await this.both(async (src, dst) => {
      const stream = canStreamCopy(src, dst)
      const tables = async (dst2?: StoreSession): Promise<void> => {
        for (const t of plan.tables) {
          const st = (this.cp.copy[t.name] ??= { after: null, done: false, rows: 0 })
          if (st.done) continue
          const step = async (rows: number, last: string | null, done: boolean) => {
            st.rows += rows
            st.after = last ?? st.after
            st.done = done
            this.cp.copiedRows += rows
            copiedHere += rows
            await this.advance('copy')
            this.progress.update({ state: 'copy', done: this.cp.copiedRows, total: this.cp.total, unit: 'rows' })
            killPoint(`copy:${++batchNo}`)
          }
          if (stream) {
            // PostgreSQL to PostgreSQL: chunks by COPY, in the one source snapshot below, two at a
            // time into the target on two sessions (its server's cores; the source's part is small).
            // The checkpoint moves past both once both committed: a crash between the two commits
            // re-copies the committed one, which the target refuses and the general way skips.
            const format = await copyFormat(src, dst, t)
            const chunk = Math.max(batchRows, this.opts.batchRows ?? 50_000)
            const chunkChecks = this.opts.chunkForeignKeyChecks !== false
            let checkedChunks = 0
            while (!st.done) {
              const a = await readChunk(src, t, this.tenant, st.after, chunk, format)
              const b = a.ended && a.last !== null && dst2 ? await readChunk(src, t, this.tenant, a.last, chunk, format) : null
              const [wa, wb] = await Promise.all([writeChunk(dst, a, plan.deferred, chunkChecks), b && dst2 ? writeChunk(dst2, b, plan.deferred, chunkChecks) : null])
              checkedChunks += Number(wa.chunkChecked) + Number(wb?.chunkChecked ?? false)
              const last = b ? b.last : a.last
              await step(wa.rows + (wb?.rows ?? 0), last, last === null)
            }
            if (checkedChunks > 0) this.progress.note(`${t.name}: foreign keys checked once per chunk (${checkedChunks} chunk${checkedChunks === 1 ? '' : 's'}), the target's per-row checks off while each was written`)
            continue
          }
          const read = (after: string | null) => readTx(src, () => readBatch(src, t, this.tenant, after, batchRows))
          let next: Promise<Awaited<ReturnType<typeof read>>> | null = read(st.after)
          while (next) {
            const b: Awaited<ReturnType<typeof read>> = await next
            // Read the next batch from the source while this one goes into the target.
            next = b.rows === batchRows ? read(b.last) : null
            next?.catch(() => undefined)
            if (b.rows > 0) await writeTx(dst, () => insertBatch(dst, t, b))
            await step(b.rows, b.last, next === null)
          }
        }
      }
      // Streaming, every chunk of every table is read in one source snapshot (parents first), so
      // a child row's parent is in the target before it and chunks go straight into the tables
      // (writeChunk); what is written after the snapshot comes with catch-up. The snapshot is held
      // for the copy's length (seconds for 200,000 rows), like a pg_dump's. A resumed copy starts
      // a new one.
      if (stream) await this.p.router.withRegionAdmin(this.dst, (second) => readTx(src, () => tables(second)))
      else await tables()
      const k = await syncKeys({ tenantId: this.tenant, ...this.keyRegions, source: src, target: dst, provider: this.provider, mode: 'mirror' })
      this.cp.keys = k.total
    })
    const secs = (performance.now() - started) / 1000
    if (copiedHere > 0 && secs > 0) this.copyRate = Math.round(copiedHere / secs)
    await this.advance('catch-up')
    await this.enter('catch-up', { copied: this.cp.copiedRows, keys: this.cp.keys })
  }

  /**
   * One catch-up round: compares every table per bucket (the source in one snapshot), copies the
   * rows that differ and deletes the ones gone from the source. Returns rows written and the
   * summaries after the round (both sides equal for every table when `verified`).
   */
  async round(src: StoreSession, dst: StoreSession, deadline?: number): Promise<{ repaired: number; verified: boolean; summaries: Map<string, BucketSummary> }> {
    const plan = await this.getPlan()
    const left = () => (deadline === undefined ? undefined : deadline - Date.now())
    const check = () => {
      const ms = left()
      if (ms !== undefined && ms <= 0) throw new FreezeOverrun()
    }
    check()
    const work = await readTx(src, async () => {
      const repairs: TableRepair[] = []
      const pending: Array<{ t: MoveTable; bk: Bucketing; diff: number[]; src: BucketSummary; dst: BucketSummary }> = []
      for (const t of plan.tables) {
        const bk = this.bucketing(t)
        // Only this move writes the tenant's rows in the target before the cutover: after one full
        // read, the target's summary is the last one, patched where this move wrote since.
        const known = this.targetSummaries.get(t.name)
        // The two regions are separate servers: the source's and the target's passes run at once.
        const [{ summary: a, rows: changed }, b] = await Promise.all([
          this.sourceSummary(src, t, bk),
          sameBucketing(known, bk) ? known! : readTx(dst, () => summarize(dst, t, this.tenant, bk)),
        ])
        check()
        const diff = differingBuckets(a, b)
        pending.push({ t, bk, diff, src: a, dst: b })
        if (diff.length === 0) continue
        // The source's rows of those buckets: read already when every one of them changed there.
        const have = changed && diff.every((x) => changed.buckets.has(x))
        const want = new Set(diff)
        const [ha, hb] = await Promise.all([
          have ? new Map([...changed.rows].filter(([, v]) => want.has(v.b)).map(([k, v]) => [k, v.m])) : rowHashes(src, t, this.tenant, bk, diff),
          readTx(dst, () => rowHashes(dst, t, this.tenant, bk, diff)),
        ])
        const upsert = [...ha].filter(([k, m]) => hb.get(k) !== m).map(([k]) => k)
        const remove = [...hb.keys()].filter((k) => !ha.has(k))
        repairs.push({ table: t, upsert: await readRows(src, t, this.tenant, upsert), remove })
        check()
      }
      return { repairs, pending }
    }, { timeoutMs: left() })
    const repaired = work.repairs.length ? await applyRepairs(dst, plan, this.tenant, work.repairs) : 0
    // Re-read the buckets that differed, in both regions: every bucket equal = the tables are equal.
    let verified = true
    const summaries = new Map<string, BucketSummary>()
    for (const w of work.pending) {
      if (w.diff.length === 0) {
        summaries.set(w.t.name, w.src)
        this.sourceSummaries.set(w.t.name, w.src)
        this.targetSummaries.set(w.t.name, w.dst)
        continue
      }
      check()
      // Inside the freeze (a deadline) the source no longer changes after the drain: its snapshot
      // above is final and only the target is read again. Outside it, both are.
      const [a, b] = await Promise.all([
        deadline === undefined ? readTx(src, () => summarize(src, w.t, this.tenant, w.bk, w.diff)) : w.src,
        readTx(dst, () => summarize(dst, w.t, this.tenant, w.bk, w.diff)),
      ])
      const sa = deadline === undefined ? patchSummary(w.src, a, w.diff) : w.src
      const sb = patchSummary(w.dst, b, w.diff)
      if (differingBuckets(sa, sb).length > 0) verified = false
      summaries.set(w.t.name, sa)
      this.sourceSummaries.set(w.t.name, sa)
      this.targetSummaries.set(w.t.name, sb)
    }
    this.cp.repairedRows += repaired
    return { repaired, verified, summaries }
  }

  /** A table's bucketing for this move (journaled at the plan). */
  bucketing(t: MoveTable): Bucketing {
    return { bits: this.cp.bits[t.name] ?? bucketBits(0), hash: this.cp.bucketHash ?? 'md5' }
  }

  /**
   * The source's bucket summary of a table in the current snapshot. After one full read, only the
   * buckets whose change markers moved since (rows inserted, updated or deleted) are hashed again:
   * a round costs a pass over row versions' xmin/ctid plus the content of what changed.
   */
  async sourceSummary(src: StoreSession, t: MoveTable, bk: Bucketing): Promise<{ summary: BucketSummary; rows?: { buckets: Set<number>; rows: Map<string, { b: number; m: string }> } }> {
    const prev = this.sourceSummaries.get(t.name)
    if (!sameBucketing(prev, bk) || !prev!.markers) return { summary: await summarize(src, t, this.tenant, bk) }
    const dirty = changedBuckets(prev!.markers, await changeMarkers(src, t, this.tenant, bk))
    if (dirty.length === 0) return { summary: prev! }
    const r = await bucketRows(src, t, this.tenant, bk, dirty)
    return { summary: patchSummary(prev!, r.summary, dirty), rows: { buckets: new Set(dirty), rows: r.rows } }
  }

  async catchUp(): Promise<void> {
    const rounds = this.opts.catchUpRounds ?? 10
    const threshold = this.opts.catchUpThreshold ?? 200
    await this.both(async (src, dst) => {
      const k = await syncKeys({ tenantId: this.tenant, ...this.keyRegions, source: src, target: dst, provider: this.provider, mode: 'mirror' })
      this.cp.keys = k.total
      // Rounds until one finds little to copy, so the one inside the freeze has little left; or until
      // the rounds stop converging (a steady writer changes as many rows per round as a round
      // repairs): more rounds would not make the freeze shorter.
      let previous = Number.POSITIVE_INFINITY
      for (let i = 1; i <= rounds; i++) {
        const r = await this.round(src, dst)
        this.progress.update({ state: 'catch-up', done: this.cp.repairedRows, unit: 'rows' })
        killPoint(`catch-up:${i}`)
        if (r.repaired <= threshold || r.repaired > previous * CONVERGING) break
        previous = r.repaired
      }
      // Most of the tenant's rows are in: the target's sequences move past them now, outside the
      // freeze (the cutover repeats it for the rows of the final catch-up).
      await advanceSequences(dst, await this.getPlan(), this.tenant)
    })
    await this.freeze()
  }

  /** Starts the write freeze: the directory says "moving", with the journal step. */
  async freeze(): Promise<void> {
    this.cp.freezeStartedAt = Date.now()
    this.freezeAttempts++
    // First the source refuses the tenant's new transactions (every process, whatever its directory
    // cache says), then the directory says "moving"; the drain then covers every transaction left.
    await this.setFrozen(true)
    await this.advance('cutover', async (s) => {
      await this.p.directory.updateWithin(s, this.tenant, { status: 'moving' }, 'move:freeze', this.atSource('active'),
        { type: 'tenant.move.freeze', outcome: 'ok', ...(this.actor ? { actor: this.actor } : {}), detail: { operation: this.op.id, from: this.from, to: this.to } })
    })
    this.p.directory.invalidate(this.tenant)
    this.progress.note(`tenant ${this.tenant}: write freeze (writes get ERR_TENANT_MOVING)`)
  }

  /** Ends a freeze without a cutover: the source serves writes again; catch-up goes on. */
  async unfreeze(reason: string): Promise<void> {
    await this.advance('catch-up', async (s) => {
      await this.p.directory.updateWithin(s, this.tenant, { status: 'active' }, 'move:unfreeze', this.atSource('moving'),
        { type: 'tenant.move.unfreeze', outcome: 'ok', ...(this.actor ? { actor: this.actor } : {}), detail: { operation: this.op.id, reason } })
    })
    this.p.directory.invalidate(this.tenant)
    await this.setFrozen(false)
    this.progress.note(`tenant ${this.tenant}: freeze undone (${reason}); catching up again`)
  }

  /**
   * The source store's freeze marker (`domicile_frozen`, read by `domicile_enter` in every tenant
   * transaction's first statement): while it is there the tenant's transactions on the source are
   * refused with ERR_TENANT_MOVING. Set before the directory says "moving"; removed when the freeze
   * is undone, by an abort, and with the purge. Idempotent.
   */
  async setFrozen(frozen: boolean): Promise<void> {
    await this.p.router.withRegionAdmin(this.src, (s) => frozen
      ? s.query('INSERT INTO domicile_frozen (tenant_id, operation) VALUES ($1, $2) ON CONFLICT (tenant_id) DO UPDATE SET operation = EXCLUDED.operation, at = now()', [this.tenant, this.op.id])
      : s.query('DELETE FROM domicile_frozen WHERE tenant_id = $1', [this.tenant]))
  }

  async cutover(): Promise<void> {
    const fresh = await this.p.directory.fresh(this.tenant)
    if (this.homedAt(fresh) === 'target') throw new DomicileError('ERR_CONFLICT', `The directory already homes tenant "${this.tenant}" in "${this.to}" but the journal is at the cutover. Inspect the journal before going on.`)
    if (fresh.status !== 'moving') {
      await this.freeze()
    } else {
      await this.setFrozen(true) // resumed inside the freeze: the marker is there, or is put back
    }
    // When writes stopped (the journal's clock), and when this process began its part of the freeze:
    // a freeze resumed after a crash is finished as fast as possible, not undone and started again.
    const t0 = this.cp.freezeStartedAt ?? Date.now()
    const mine = this.freezeAttempts > 0 ? t0 : Date.now()
    const maxFreezeMs = this.opts.maxFreezeMs ?? 2000
    // The freeze's work must end early enough for the cutover commit and for writers to learn of it.
    const deadline = mine + maxFreezeMs - Math.min(FREEZE_RESERVE_MS, maxFreezeMs / 4)
    killPoint('cutover')
    const outcome = await this.both(async (src, dst) => {
      try {
        if (this.p.router.driverKind(this.src) === 'postgres') {
          const bound = Math.min(this.opts.drainTimeoutMs ?? 1000, Math.max(0, (deadline - Date.now()) / 2))
          const drain = await drainOpenTransactions(src, bound)
          if (!drain.drained) return { ok: false as const, reason: `${drain.waitedFor} transaction(s) on the source did not end within the drain bound (${Math.round(bound)} ms)` }
        }
        let r = await this.round(src, dst, deadline)
        for (let i = 0; i < 2 && !r.verified; i++) r = await this.round(src, dst, deadline)
        if (!r.verified) return { ok: false as const, reason: 'the regions did not agree after the final catch-up' }
        // Every row of the tenant is in the target: its sequences must not hand out a copied key there.
        await advanceSequences(dst, await this.getPlan(), this.tenant)
        const k = await syncKeys({ tenantId: this.tenant, ...this.keyRegions, source: src, target: dst, provider: this.provider, mode: 'mirror' })
        this.cp.keys = k.total
        if (Date.now() > deadline) throw new FreezeOverrun()
        killPoint('cutover:verified')
        return { ok: true as const, summaries: r.summaries }
      } catch (e) {
        // Out of time (our own check, or a statement cancelled by the freeze's statement timeout).
        if (e instanceof FreezeOverrun || Date.now() >= deadline) return { ok: false as const, reason: `the final catch-up would have passed the ${maxFreezeMs} ms freeze bound` }
        throw e
      }
    })
    if (!outcome.ok || Date.now() - mine > maxFreezeMs) {
      const reason = outcome.ok ? `the final catch-up would have passed the ${maxFreezeMs} ms freeze bound` : outcome.reason
      await this.unfreeze(reason)
      if (this.freezeAttempts >= (this.opts.freezeAttempts ?? 3)) {
        throw new DomicileError('ERR_CONFLICT', `The move of tenant "${this.tenant}" could not cut over (${reason}). The tenant is served from "${this.from}" as before; run "domicile tenant move ${this.tenant} --resume" later, or --abort.`)
      }
      return this.catchUp()
    }
    this.cp.tables = Object.fromEntries([...outcome.summaries].map(([name, s]) => [name, { rows: s.rows, hash: contentHash(s) }]))
    this.cp.cutoverAt = Date.now()
    this.cp.freezeMs = this.cp.cutoverAt - t0
    await this.advance('verify', async (s) => {
      await this.p.directory.updateWithin(s, this.tenant, { region: this.dst.region, cell: this.dst.cell, status: 'active' }, 'move:cutover', this.atSource('moving'),
        { type: 'tenant.move.cutover', outcome: 'ok', ...(this.actor ? { actor: this.actor } : {}), detail: { operation: this.op.id, from: this.from, to: this.to, freezeMs: Date.now() - t0 } })
    })
    this.p.directory.invalidate(this.tenant)
    this.freezeMs = Date.now() - t0
    this.cp.freezeMs = this.freezeMs
    this.progress.note(`tenant ${this.tenant}: cut over to ${this.to}; write freeze ${this.freezeMs} ms`)
    await this.enter('verify', { freezeMs: this.freezeMs, tables: this.cp.tables })
  }

  async verify(): Promise<void> {
    killPoint('verify')
    const fresh = await this.p.directory.fresh(this.tenant)
    if (this.homedAt(fresh) !== 'target') throw new DomicileError('ERR_CONFLICT', `The directory does not home tenant "${this.tenant}" in "${this.to}" after the cutover. Inspect the journal before going on.`)
    const keys = await this.p.router.withRegionAdmin(this.dst, (dst) => checkKeysOpen(dst, this.tenant, this.dst.region, this.provider))
    let opened = 0
    if (fresh.key && keys > 0) {
      opened = await this.d.withTenant(this.tenant, async (scope) => {
        let n = 0
        for (const t of this.p.schema.tables.values()) {
          if (t.scope !== 'tenant' || t.sensitiveColumns.length === 0) continue
          const page = await scope.table(t.name).list({ limit: 1 })
          for (const row of page.rows) {
            for (const c of t.sensitiveColumns) {
              if (row[c.name] === null || row[c.name] === undefined) continue
              await scope.reveal(row[c.name], { purpose: 'tenant move: verify that sealed values open in the new region', ...(this.actor ? { actor: this.actor } : {}) })
              n++
            }
          }
        }
        return n
      })
    }
    await this.advance('purge')
    await this.enter('purge', { keysChecked: keys, valuesOpened: opened })
  }

  async purge(): Promise<void> {
    const fresh = await this.p.directory.fresh(this.tenant)
    /* Precondition: the source is purged only once the directory homes the tenant elsewhere. */
    if (this.homedAt(fresh) === 'source') throw new DomicileError('ERR_CONFLICT', `Tenant "${this.tenant}" is still homed in "${this.from}"; its rows there are not purged.`)
    const grace = this.opts.purgeGraceMs ?? Math.max(5000, 10 * (this.p.config?.directoryPollMs ?? 500))
    const wait = (this.cp.cutoverAt ?? 0) + grace - Date.now()
    if (wait > 0) {
      this.progress.note(`tenant ${this.tenant}: waiting ${Math.ceil(wait)} ms before the purge (processes with a stale directory entry)`)
      await delay(wait)
    }
    const plan = await this.getPlan()
    killPoint('purge')
    const deleted = await this.both(async (src, dst) => {
      // A budget reserved in the source after the final key sync still counts in the target.
      await syncKeys({ tenantId: this.tenant, ...this.keyRegions, source: src, target: dst, provider: this.provider, mode: 'counters' })
      return writeTx(src, async () => {
        // Resumed after the purge committed: nothing left to delete (checked again below).
        const left = Object.values(await remainingRows(src, plan, this.tenant)).reduce((a, b) => a + b, 0) + await countKeys(src, this.tenant)
        // The source is no longer the tenant's home: its freeze marker goes with its rows.
        await src.query('DELETE FROM domicile_frozen WHERE tenant_id = $1', [this.tenant])
        if (left === 0) return { rows: 0, keys: 0 }
        for (const t of plan.tables) {
          const want = this.cp.tables?.[t.name]
          const now = contentHash(await summarize(src, t, this.tenant, this.bucketing(t)))
          /* Precondition: the source is unchanged since the cutover (no write from a stale directory entry is lost). */
          if (!want || want.hash !== now) {
            throw new DomicileError('ERR_CONFLICT', `Table "${t.name}" of tenant "${this.tenant}" changed in the source region "${this.from}" after the cutover (a process with a stale directory entry wrote there). Nothing was purged; reconcile those rows into "${this.to}", then resume.`)
          }
        }
        const rows = await deleteTenantRows(src, plan, this.tenant)
        const keys = await deleteKeys(src, this.tenant)
        return { rows, keys }
      }, { repeatable: true, deferred: plan.deferred })
    })
    killPoint('purge:deleted')
    const left = await this.p.router.withRegionAdmin(this.src, async (src) => ({ rows: await remainingRows(src, plan, this.tenant), keys: await countKeys(src, this.tenant) }))
    const leftRows = Object.values(left.rows).reduce((a, b) => a + b, 0)
    /* Precondition: after the purge the source holds no row and no wrapped key of the tenant. */
    if (leftRows > 0 || left.keys > 0) {
      throw new DomicileError('ERR_CONFLICT', `After the purge, region "${this.from}" still holds ${leftRows} row(s) and ${left.keys} key(s) of tenant "${this.tenant}" (written there after the cutover). Resume the move to check again.`)
    }
    this.cp.deleted = { rows: (this.cp.deleted?.rows ?? 0) + deleted.rows, keys: (this.cp.deleted?.keys ?? 0) + deleted.keys }
    this.progress.update({ state: 'purge', done: this.cp.deleted.rows, unit: 'rows' })
    await this.journal.finish(this.op.id, 'done', 'done', this.cp)
    this.op = { ...this.op, state: 'done', status: 'done' }
    await this.audit('done', 'ok', { deleted: this.cp.deleted, freezeMs: this.cp.freezeMs ?? null })
    this.progress.note(`tenant ${this.tenant}: done; source purged (${deleted.rows} rows, ${deleted.keys} keys)`)
  }

  async drive(): Promise<MoveResult> {
    for (;;) {
      switch (this.op.state as MoveState) {
        case 'plan': await this.plan_(); break
        case 'copy': await this.copy(); break
        case 'catch-up': await this.catchUp(); break
        case 'cutover': await this.cutover(); break
        case 'verify': await this.verify(); break
        case 'purge': await this.purge(); break
        case 'abort': await this.abort(); break
        case 'done': case 'aborted': return this.result()
        default: throw new DomicileError('ERR_CONFLICT', `Operation #${this.op.id} is in an unknown state "${this.op.state}".`)
      }
    }
  }

  /** Rolls back a move that has not cut over: the target's copy (rows, keys) is deleted. */
  async abort(): Promise<void> {
    if (this.op.state !== 'abort') {
      await this.advance('abort', async (s) => {
        const r = await s.query<{ region: string; cell: string; status: string }>('SELECT region, cell, status FROM domicile_tenants WHERE id = $1 FOR UPDATE', [this.tenant])
        const row = r.rows[0]
        /* Precondition: a move is rolled back only before its cutover. */
        if (row && this.homedAt(row) !== 'source') {
          throw new DomicileError('ERR_CONFLICT', `The move of tenant "${this.tenant}" has cut over to "${this.p.router.label(row)}"; it cannot be rolled back. Run "domicile tenant move ${this.tenant} --resume" to finish it.`)
        }
        if (row?.status === 'moving') {
          await this.p.directory.updateWithin(s, this.tenant, { status: 'active' }, 'move:abort', this.atSource('moving'),
            { type: 'tenant.move.abort', outcome: 'ok', ...(this.actor ? { actor: this.actor } : {}), detail: { operation: this.op.id } })
        }
      })
      this.p.directory.invalidate(this.tenant)
      await this.enter('abort')
    }
    killPoint('abort')
    if (this.homedAt(await this.p.directory.fresh(this.tenant)) === 'source') await this.setFrozen(false)
    const fresh = await this.p.directory.fresh(this.tenant)
    /* Precondition: an abort deletes only a copy that is not the tenant's home. */
    if (this.homedAt(fresh) !== 'source') throw new DomicileError('ERR_CONFLICT', `Tenant "${this.tenant}" is homed in "${this.p.router.label(fresh)}"; the abort deletes nothing.`)
    const plan = await this.getPlan()
    const deleted = await this.p.router.withRegionAdmin(this.dst, (dst) => writeTx(dst, async () => ({ rows: await deleteTenantRows(dst, plan, this.tenant), keys: await deleteKeys(dst, this.tenant) }), { deferred: plan.deferred }))
    const left = await this.p.router.withRegionAdmin(this.dst, async (dst) => Object.values(await remainingRows(dst, plan, this.tenant)).reduce((a, b) => a + b, 0) + await countKeys(dst, this.tenant))
    if (left > 0) throw new DomicileError('ERR_CONFLICT', `Region "${this.to}" still holds data of tenant "${this.tenant}" after the abort. Run --abort again.`)
    this.cp.deleted = deleted
    await this.journal.finish(this.op.id, 'aborted', 'aborted', this.cp)
    this.op = { ...this.op, state: 'aborted', status: 'aborted' }
    await this.audit('aborted', 'ok', { deleted })
    this.progress.note(`tenant ${this.tenant}: move aborted; ${this.to} cleaned (${deleted.rows} rows, ${deleted.keys} keys)`)
  }

  result(): MoveResult {
    return Object.freeze({
      operationId: this.op.id, tenant: this.tenant, from: this.from, to: this.to,
      state: this.op.state === 'aborted' ? 'aborted' as const : 'done' as const,
      rows: this.cp.copiedRows + this.cp.repairedRows, keys: this.cp.keys,
      elapsedMs: Date.now() - this.cp.startedAt,
      freezeMs: this.freezeMs ?? this.cp.freezeMs ?? null,
      copyRowsPerSecond: this.copyRate,
      tables: this.cp.tables ?? {},
      deleted: this.cp.deleted ?? { rows: 0, keys: 0 },
    })
  }
}

/**
 * Holds the move's lease while `fn` runs: a session-level advisory lock on the control plane, so two
 * processes never drive the same move (a killed process's lock goes with its connection).
 */
async function withLease<T>(p: DomicileParts, tenantId: string, fn: () => Promise<T>): Promise<T> {
  if (p.controlPlane.kind !== 'postgres') return fn()
  return p.controlPlane.withSession(async (s) => {
    // A process killed a moment ago may still hold it until the server notices its connection closed.
    const deadline = Date.now() + LEASE_WAIT_MS
    for (;;) {
      const r = await s.query<{ ok: boolean }>('SELECT pg_try_advisory_lock($1::int, hashtext($2)) AS ok', [LEASE_CLASS, tenantId])
      if (r.rows[0]?.ok) break
      if (Date.now() > deadline) {
        throw new DomicileError('ERR_OPERATION_RUNNING', `Another process is driving the move of tenant "${tenantId}" right now. If that process is gone, its hold ends when the control plane drops its connection; try again then.`)
      }
      await delay(50)
    }
    try {
      return await fn()
    } finally {
      await s.query('SELECT pg_advisory_unlock($1::int, hashtext($2))', [LEASE_CLASS, tenantId]).catch(() => s.discard())
    }
  }, { role: 'owner' })
}

function journalOf(p: DomicileParts): OperationJournal {
  return p.journal ?? new OperationJournal(p.controlPlane)
}

async function runningMove(p: DomicileParts, tenantId: string): Promise<Operation<MoveCheckpoint>> {
  const op = await journalOf(p).running<MoveCheckpoint>(tenantId)
  if (!op || op.kind !== 'tenant-move') throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No move of tenant "${tenantId}" is running. Start one with "domicile tenant move ${tenantId} --to REGION".`)
  return op
}

/**
 * Moves a tenant to another region, or to another cell of its region, online. Without `toCell`
 * the target is the region's cell with the fewest tenants (not the tenant's own).
 *
 * @example
 * ```ts
 * const r = await moveTenant(domicile, 'acme', { to: 'eu-central-1', actor: 'ops@example.com' })
 * console.log(r.rows, r.freezeMs)
 * await moveTenant(domicile, 'globex', { to: 'eu-west-1', toCell: 'b' }) // to another cell of its region
 * ```
 */
export async function moveTenant(d: Domicile, tenantId: string, opts: MoveOptions & { readonly to: string; readonly toCell?: string }): Promise<MoveResult> {
  const p = internalsOf(d)
  const t = await p.directory.fresh(tenantId)
  /* Precondition: the target region (and cell) is configured and differs from the tenant's home. */
  const cells = p.router.cellMap
  const sameRegion = t.region === opts.to
  // A named cell must be one of the region's; else the region's cell with the fewest tenants, never
  // the tenant's own (counts are read only when there is a choice to make).
  const candidates = (cells.get(opts.to) ?? []).filter((c) => !sameRegion || c !== t.cell)
  const counts = opts.toCell === undefined && candidates.length > 1 ? await p.directory.tenantsPerCell(opts.to) : new Map<string, number>()
  const toCell = chooseCell(opts.to, cells, counts, opts.toCell !== undefined ? { requested: opts.toCell } : sameRegion ? { exclude: t.cell } : {})
  if (toCell === undefined) throw new DomicileError('ERR_INPUT_INVALID', `Tenant "${tenantId}" is already homed in "${opts.to}".`)
  const dst: Placement = { region: opts.to, cell: toCell }
  if (sameRegion && toCell === t.cell) throw new DomicileError('ERR_INPUT_INVALID', `Tenant "${tenantId}" is already homed in "${p.router.label(dst)}".`)
  /* Precondition: only an active tenant with a usable key is moved. */
  if (t.status !== 'active') throw new DomicileError(t.status === 'moving' ? 'ERR_TENANT_MOVING' : 'ERR_TENANT_SUSPENDED', `Tenant "${tenantId}" is ${t.status}; only an active tenant is moved.`)
  if (t.key && t.keyState !== 'enabled') {
    throw new DomicileError(t.keyState === 'destroyed' ? 'ERR_KEY_DESTROYED' : 'ERR_KEY_REVOKED', `Tenant "${tenantId}"'s key is ${t.keyState}: its keys cannot be rewrapped for another region.`)
  }
  await Promise.all([p.router.probe(t), p.router.probe(dst)]).then((r) => {
    const down = r.findIndex((x) => !x.reachable)
    if (down >= 0) throw new DomicileError('ERR_REGION_UNAVAILABLE', `Region "${p.router.label(down === 0 ? t : dst)}" is not reachable; the move did not start.`)
  })
  return withLease(p, tenantId, async () => {
    const cp: MoveCheckpoint = {
      from: t.region, to: opts.to, fromCell: t.cell, toCell, startedAt: Date.now(), bits: {}, total: 0, copy: {}, copiedRows: 0, repairedRows: 0, keys: 0,
    }
    const op = await journalOf(p).start<MoveCheckpoint>({ kind: 'tenant-move', tenantId, target: tenantId, state: 'plan', checkpoint: cp, ...(opts.actor ? { actor: opts.actor } : {}) })
    await p.directory.audit({ tenantId, type: 'tenant.move.start', outcome: 'ok', ...(opts.actor ? { actor: opts.actor } : {}), detail: { operation: op.id, from: p.router.label(t), to: p.router.label(dst) } })
    const run = new MoveRun(d, op, opts)
    await run.enter('plan')
    try {
      await run.plan_()
    } catch (e) {
      // Nothing was copied yet: the move ends here, failed, and leaves nothing to resume or abort.
      await journalOf(p).finish(op.id, 'failed', 'plan').catch(() => undefined)
      await run.audit('plan', 'error', { code: isDomicileError(e) ? e.code : 'ERR_UNKNOWN' }).catch(() => undefined)
      throw e
    }
    return run.drive()
  })
}

/** Completes a move that stopped (crash, kill, failure) from where its journal says it stands. */
export async function resumeTenantMove(d: Domicile, tenantId: string, opts: MoveOptions = {}): Promise<MoveResult> {
  const p = internalsOf(d)
  return withLease(p, tenantId, async () => {
    const op = await runningMove(p, tenantId)
    const run = new MoveRun(d, op, opts)
    run.progress.note(`tenant ${tenantId}: resuming move #${op.id} at "${op.state}"`)
    await run.audit('resume', 'ok', { at: op.state })
    return run.drive()
  })
}

/** Rolls back a move that has not cut over yet. After the cutover, only resume is possible. */
export async function abortTenantMove(d: Domicile, tenantId: string, opts: Pick<MoveOptions, 'actor' | 'progress'> = {}): Promise<MoveResult> {
  const p = internalsOf(d)
  return withLease(p, tenantId, async () => {
    const op = await runningMove(p, tenantId)
    if (op.state === 'verify' || op.state === 'purge') {
      throw new DomicileError('ERR_CONFLICT', `The move of tenant "${tenantId}" has cut over to "${p.router.label({ region: op.checkpoint.to, cell: op.checkpoint.toCell ?? DEFAULT_CELL })}"; it cannot be rolled back. Run "domicile tenant move ${tenantId} --resume" to finish it.`)
    }
    const run = new MoveRun(d, op, opts)
    await run.abort()
    return run.result()
  })
}
