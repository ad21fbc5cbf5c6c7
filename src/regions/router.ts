/**
 * The router: the only holder of region store handles. It resolves a placement (a region and one
 * of its cells) to its store (through a RegionSupplier), checks the store's stamp (region and
 * cell), and runs tenant transactions with the tenant context set and row-level security on. It
 * fails closed: an unknown or unserved region or cell, a store that cannot be reached or whose
 * stamp is wrong is an error, never a fallback to another region or cell.
 */
import { DomicileError, isDomicileError } from '../errors.js'
import { allStores, checkCell, regionUnknown, shown, storeLabel, type CellMap, type Placement } from './placement.js'
import { ensureStamp, mismatch, type StampKind } from './region-stamp.js'
import type { RegionSupplier } from './region-supplier.js'
import type { StoreDriver, StoreSession } from './store-driver.js'
import { CHECKED_COMMIT, SESSION_OPEN, SESSION_RESET, tenantTransactionPrelude } from './tenant-context.js'
import { tenantRecords, type AuditRecord, type TenantRecords } from './tenant-records.js'

/** A transaction bound to one tenant in its home region (and cell). */
export interface TenantTransaction {
  readonly tenantId: string
  readonly region: string
  readonly cell: string
  readonly session: StoreSession
  /** Key and audit records of the tenant, which SQL in the scope cannot write. */
  readonly records: TenantRecords
  /**
   * Marks that the application's own SQL (raw SQL, the query builder) runs on this transaction's
   * connection: the next transaction on it starts with the session reset. Domicile's own
   * statements leave no session state, so a connection only they used skips the reset.
   */
  runsApplicationSql(): void
  /**
   * Runs after the transaction rolled back: to forget in-memory state tied to it, or to re-record
   * what must survive it (reveal audit records): `after.appendAudit` writes in a transaction of
   * its own for the same tenant, on the same connection.
   */
  onRollback(cb: (after: AfterRollback) => void | Promise<void>): void
  /**
   * The one after-commit hook. Runs synchronously right after COMMIT has been sent, while it is in
   * flight, when the transaction's callback succeeded. `committed` resolves with whether the
   * COMMIT succeeded (it never rejects): what must wait until the transaction is durable (sharing
   * a reservation) chains on it; client-side work on rows already read (a lookup's filter) runs
   * right away and overlaps the round trip (it must not use the session). If the COMMIT fails the
   * transaction rolls back as usual. An error `cb` throws reaches the caller after a successful
   * COMMIT: use it only for work whose failure does not need the transaction undone (reads).
   */
  onCommit(cb: (committed: Promise<boolean>) => void): void
}

/** What a rollback hook may still do. */
export interface AfterRollback {
  appendAudit(rows: readonly AuditRecord[]): Promise<void>
}

interface RegionState {
  readonly driver: StoreDriver
  readonly where: Placement
  verified?: Promise<void>
  /** Connected and stamp-checked: the hot path skips the await. */
  ok?: boolean
}


/** Connections on which the application's own SQL ran since their last session reset. */
const untrusted = new WeakSet<StoreSession>()

/** A tenant transaction; hook lists are allocated only when something registers. */
class Tx implements TenantTransaction {
  #rollbacks: Array<(after: AfterRollback) => void | Promise<void>> | undefined
  #commits: Array<(committed: Promise<boolean>) => void> | undefined
  #records: TenantRecords | undefined
  readonly region: string
  readonly cell: string
  constructor(readonly tenantId: string, where: Placement, readonly session: StoreSession, readonly capability: string) {
    this.region = where.region
    this.cell = where.cell
  }
  runsApplicationSql(): void {
    untrusted.add(this.session)
  }
  get records(): TenantRecords {
    return (this.#records ??= tenantRecords(this.session, this.capability))
  }
  onRollback(cb: (after: AfterRollback) => void | Promise<void>): void {
    ;(this.#rollbacks ??= []).push(cb)
  }
  onCommit(cb: (committed: Promise<boolean>) => void): void {
    ;(this.#commits ??= []).push(cb)
  }
  /** Runs the commit hooks while `commit` is in flight; returns the first error they threw. */
  committing(commit: Promise<unknown>): { error: unknown } | undefined {
    const hooks = this.#commits
    if (hooks === undefined) return undefined
    const committed = commit.then(() => true, () => false)
    let failed: { error: unknown } | undefined
    for (const cb of hooks) {
      try {
        cb(committed)
      } catch (error) {
        failed ??= { error }
      }
    }
    return failed
  }
  async rolledBack(after: AfterRollback): Promise<void> {
    for (const cb of this.#rollbacks ?? []) {
      try {
        await cb(after)
      } catch {
        // A rollback hook must not mask the original error.
      }
    }
  }
}

export class RegionRouter {
  readonly #names: readonly string[]
  readonly #cells: CellMap
  readonly #stores: readonly Placement[]
  readonly #supplier: RegionSupplier
  /** By region, then cell (two lookups of interned names: no string is built per transaction). */
  readonly #states = new Map<string, Map<string, RegionState>>()
  /** Each data-plane connection's capability (see src/schema/isolation-ddl.ts). */
  readonly #caps = new WeakMap<StoreSession, string>()
  #closed = false

  /**
   * @param cells every region the configuration knows and its cells (for messages and listings)
   * @param supplier which of them this process serves, and with which store
   */
  constructor(cells: CellMap, supplier: RegionSupplier) {
    this.#cells = new Map([...cells].map(([r, list]) => [r, Object.freeze([...list])]))
    this.#names = Object.freeze([...cells.keys()])
    this.#stores = Object.freeze(allStores(this.#cells).map((p) => Object.freeze(p)))
    this.#supplier = supplier
  }

  get regionNames(): readonly string[] {
    return this.#names
  }

  /** Every configured store (each cell of each region), region by region: what region-wide operations cover. */
  get stores(): readonly Placement[] {
    return this.#stores
  }

  /** A region's cells in configuration order (empty for an unknown region). */
  cellsOf(region: string): readonly string[] {
    return this.#cells.get(region) ?? []
  }

  /** The configured regions and their cells. */
  get cellMap(): CellMap {
    return this.#cells
  }

  /** A store's name for listings: the region, or `region/cell` when the region has several cells. */
  label(where: Placement): string {
    return storeLabel(where, this.#cells)
  }

  /**
   * The store a listing name stands for: `region` (a region with one cell) or `region/cell`.
   * Throws ERR_REGION_UNKNOWN, or ERR_CELL_UNKNOWN for an unknown cell or a bare name of a region with several.
   */
  resolve(label: string): Placement {
    const slash = label.indexOf('/')
    const region = slash < 0 ? label : label.slice(0, slash)
    const cells = this.#cells.get(region)
    if (!cells) throw regionUnknown(region, this.#cells)
    if (slash < 0) {
      if (cells.length === 1) return { region, cell: cells[0]! }
      throw new DomicileError('ERR_CELL_UNKNOWN', `Region ${shown(region)} has several cells: name one as ${cells.map((c) => `${region}/${c}`).join(', ')}.`)
    }
    const cell = label.slice(slash + 1)
    checkCell(this.#cells, region, cell)
    return { region, cell }
  }

  /** The stores of one region (all of them without a region). */
  storesOf(region?: string): readonly Placement[] {
    return region === undefined ? this.#stores : this.#stores.filter((p) => p.region === region)
  }

  #state(where: Placement): RegionState {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'This Domicile instance was closed.')
    let st = this.#states.get(where.region)?.get(where.cell)
    if (st) return st
    const { region, cell } = where
    /* Precondition: the region and its cell are configured and served by this process. */
    const known = this.#cells.has(region)
    if (known) checkCell(this.#cells, region, cell, 'Restore the cell in the config; a tenant is never served by another cell instead.')
    const driver = known ? this.#supplier(region, cell) : false
    if (!driver) {
      throw new DomicileError('ERR_REGION_UNKNOWN',
        `Region ${shown(region)} is not configured or not served by this deployment (configured: ${this.#names.join(', ')}). Add it to the config and run "domicile migrate"; data is never sent to another region instead.`)
    }
    st = { driver, where: Object.freeze({ region, cell }) }
    let byCell = this.#states.get(region)
    if (!byCell) this.#states.set(region, (byCell = new Map()))
    byCell.set(cell, st)
    return st
  }

  /** Connects to a store and checks its stamp and its data-plane login once; a failure is retried on the next call. */
  async #ready(where: Placement): Promise<StoreDriver> {
    const st = this.#state(where)
    st.verified ??= st.driver.withSession((s) => verifyRegionStore(s, st.driver, st.where))
    try {
      await st.verified
      st.ok = true
    } catch (e) {
      st.verified = undefined
      st.ok = false
      throw e
    }
    return st.driver
  }

  /** This connection's capability, drawn when Domicile first uses it (before any scope SQL ran on it). */
  async #capability(session: StoreSession): Promise<string> {
    const known = this.#caps.get(session)
    if (known) return known
    const r = await session.query<{ capability: string }>(SESSION_OPEN)
    const cap = r.rows[0]?.capability
    if (typeof cap !== 'string' || !/^[0-9a-f]{64}$/.test(cap)) {
      session.discard()
      throw new DomicileError('ERR_NOT_MIGRATED', 'The store did not hand out a session capability. Run "domicile migrate" with this version of Domicile.')
    }
    this.#caps.set(session, cap)
    return cap
  }

  /** Opens a tenant transaction on a session: reset, BEGIN, role, verified tenant context, stamp. */
  async #begin(session: StoreSession, tenantId: string, where: Placement): Promise<string> {
    const cap = await this.#capability(session)
    let rows: Record<string, unknown>[]
    try {
      const reset = untrusted.has(session)
      rows = await session.exec(tenantTransactionPrelude(tenantId, cap, reset))
      if (reset) untrusted.delete(session)
    } catch (e) {
      // Nothing of the scope ran yet: this connection is not trusted any more.
      session.discard()
      await session.exec('ROLLBACK').catch(() => undefined)
      throw e
    }
    const stamp = rows[0] as { tenant?: string; kind?: string; region?: string; cell?: string } | undefined
    if (!stamp || stamp.tenant !== tenantId || stamp.kind !== 'region' || stamp.region !== where.region || stamp.cell !== where.cell) {
      await session.exec('ROLLBACK').catch(() => undefined)
      const s = this.#states.get(where.region)?.get(where.cell)
      if (s) {
        s.ok = false
        s.verified = undefined
      }
      throw mismatch({ kind: 'region', ...where }, { kind: (stamp?.kind as 'region') ?? 'region', region: String(stamp?.region ?? '(none)'), cell: String(stamp?.cell ?? '(none)') })
    }
    return cap
  }

  /**
   * Runs `fn` in a transaction on the tenant's home region, as the RLS-bound role with the tenant
   * context set by Domicile (SQL in the scope cannot change it). The session is reset first and
   * the stamp is checked again inside the transaction (same round trip). Each call is its own
   * transaction on its own session, so scopes are isolated even when one is opened inside another
   * (the embedded driver, which has a single session, refuses that instead).
   */
  async withTenantTransaction<T>(tenantId: string, where: Placement, fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const st = this.#states.get(where.region)?.get(where.cell)
    const driver = st?.ok ? st.driver : await this.#ready(where)
    return driver.withSession(async (session) => {
      const cap = await this.#begin(session, tenantId, where)
      const tx = new Tx(tenantId, where, session, cap)
      let result: T
      let inFlight: { error: unknown } | undefined
      try {
        result = await fn(tx)
        // Sent now; the commit hooks overlap its round trip. The leading statement fails in a
        // transaction that an error aborted (where a bare COMMIT would silently roll back and
        // report success): that transaction then takes the rollback path, hooks included.
        // A connection the application's SQL ran on is reset in the same round trip, so nothing it
        // left (an advisory lock, a temp table, a setting) outlives the scope while the connection idles.
        const dirty = untrusted.has(session)
        const commit = session.exec(dirty ? `${CHECKED_COMMIT}; ${SESSION_RESET}` : CHECKED_COMMIT)
        inFlight = tx.committing(commit)
        await commit
        if (dirty) untrusted.delete(session)
      } catch (e) {
        const dirty = untrusted.has(session)
        await session.exec(dirty ? `ROLLBACK; ${SESSION_RESET}` : 'ROLLBACK').then(() => {
          if (dirty) untrusted.delete(session)
        }, () => session.discard())
        await tx.rolledBack({ appendAudit: (rows) => this.#appendAfterRollback(session, tenantId, where, rows) })
        throw e
      }
      if (inFlight) throw inFlight.error
      return result
    })
  }

  /** Audit records that must outlive a rolled-back transaction: a transaction of their own. */
  async #appendAfterRollback(session: StoreSession, tenantId: string, where: Placement, rows: readonly AuditRecord[]): Promise<void> {
    const cap = await this.#begin(session, tenantId, where)
    try {
      await tenantRecords(session, cap).appendAudit(rows)
      await session.exec('COMMIT')
    } catch (e) {
      await session.exec('ROLLBACK').catch(() => session.discard())
      throw e
    }
  }

  /**
   * Internal: an owner session on a region store (the `ownerUrl` login), for migrations,
   * operations and the demo's physical proof. Not reachable from the package's public API.
   */
  async withRegionAdmin<T>(store: Placement | string, fn: (session: StoreSession) => Promise<T>, opts: { verifyStamp?: boolean } = {}): Promise<T> {
    // A name is a region with one store, or `region/cell`.
    const where = typeof store === 'string' ? this.resolve(store) : store
    // Unverified (migrate): the owner's session only, since the data plane's login may not exist yet.
    const driver = opts.verifyStamp === false ? this.#state(where).driver : await this.#ready(where)
    return driver.withSession(fn, { role: 'owner' })
  }

  /** Whether a store answers and carries the right stamp. */
  async probe(where: Placement): Promise<{ reachable: boolean; code?: string }> {
    try {
      await this.#ready(where)
      await this.#state(where).driver.withSession((s) => s.query('SELECT 1'))
      return { reachable: true }
    } catch (e) {
      return { reachable: false, ...(isDomicileError(e) ? { code: e.code } : {}) }
    }
  }

  /** A served store's login settings, for migrate (never a session: store handles stay private). */
  loginsOf(where: Placement): Pick<StoreDriver, 'separateOwner' | 'dataLogin'> {
    const { separateOwner, dataLogin } = this.#state(where).driver
    return { separateOwner, ...(dataLogin ? { dataLogin } : {}) }
  }

  /** The driver kind of a served store, for listings. */
  driverKind(where: Placement): string {
    return this.#state(where).driver.kind
  }

  async close(): Promise<void> {
    this.#closed = true
    await Promise.all([...this.#states.values()].flatMap((m) => [...m.values()]).map((st) => st.driver.close().catch(() => undefined)))
    this.#states.clear()
  }
}

/** Regions already warned about, once per process. */
const warned = new Set<string>()

/**
 * The checks made when a region store is first used, in one round trip: its stamp says it is this
 * region, it was migrated by this version (tenant-context functions exist), and the data plane's
 * login. A store without Domicile's tables fails that query; `ensureStamp` then names the problem.
 */
async function verifyRegionStore(session: StoreSession, driver: StoreDriver, where: Placement): Promise<void> {
  const { region } = where
  const expected = { kind: 'region', region, cell: where.cell } as const
  let row: { kind: StampKind; region: string; cell: string; privileged: boolean; functions: boolean } | undefined
  try {
    row = (await session.query<{ kind: StampKind; region: string; cell: string; privileged: boolean; functions: boolean }>(
      `SELECT s.kind, s.region, s.cell, (r.rolsuper OR r.rolbypassrls OR r.rolcreaterole OR pg_has_role(r.oid, c.relowner, 'MEMBER')) AS privileged,
              to_regprocedure('domicile_enter(text,text)') IS NOT NULL AS functions
       FROM domicile_stamp s, pg_roles r, pg_class c WHERE r.rolname = current_user AND c.oid = 'domicile_stamp'::regclass`)).rows[0]
  } catch (e) {
    if (!isDomicileError(e, 'ERR_QUERY_FAILED')) throw e
    // No stamp table (not migrated) or another store: the stamp check says which, precisely.
    await ensureStamp(session, expected, { write: false })
    // Stamped as this store, but by an older version (no cell column yet).
    throw new DomicileError('ERR_NOT_MIGRATED', `Region "${region}" was migrated by an older version of Domicile. Run "domicile migrate".`)
  }
  if (!row) await ensureStamp(session, expected, { write: false })
  else if (row.kind !== expected.kind || row.region !== expected.region || row.cell !== expected.cell) throw mismatch(expected, row)
  checkDataLogin(row, driver, region)
}

/**
 * Checks the data plane's login on a region store. Isolation against hostile SQL in a scope needs
 * a login that owns nothing and cannot become the owner; a privileged login still works (the scope
 * drops to `domicile_app`), with a warning, because SQL in a scope could then RESET ROLE.
 */
function checkDataLogin(row: { privileged: boolean; functions: boolean } | undefined, driver: StoreDriver, region: string): void {
  if (!row?.functions) {
    throw new DomicileError('ERR_NOT_MIGRATED', `Region "${region}" was migrated by an older version of Domicile (no tenant-context functions). Run "domicile migrate".`)
  }
  if (row.privileged && driver.kind !== 'pglite' && !warned.has(region)) {
    warned.add(region)
    process.emitWarning(
      `Region "${region}": the data plane logs in as a privileged role (superuser, owner of Domicile's tables, or able to become it). ` +
        'Tenant scopes still run as domicile_app, but SQL injected into a scope could leave it with RESET ROLE. ' +
        'Configure "ownerUrl" for migrate and admin work and a "url" whose role owns nothing; "domicile migrate" creates that role. See README "Production PostgreSQL (two roles)".',
      { code: 'DOMICILE_SINGLE_ROLE' })
  }
}
