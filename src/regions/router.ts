/**
 * The router: the only holder of region store handles. It resolves a region name to its store
 * (through a RegionSupplier), checks the store's region stamp, and runs tenant transactions with
 * the tenant context set and row-level security on. It fails closed: an unknown or unserved
 * region, a store that cannot be reached or whose stamp is wrong is an error, never a fallback.
 */
import { DomicileError, isDomicileError } from '../errors.js'
import { APP_ROLE, TENANT_SETTING } from '../schema/ddl.js'
import { ensureStamp, mismatch } from './region-stamp.js'
import type { RegionSupplier } from './region-supplier.js'
import type { StoreDriver, StoreSession } from './store-driver.js'

/** A transaction bound to one tenant in its home region. */
export interface TenantTransaction {
  readonly tenantId: string
  readonly region: string
  readonly session: StoreSession
  /**
   * Runs after the transaction rolled back, on the same session (outside any transaction): to
   * forget in-memory state tied to it, or to re-record what must survive (reveal audit records).
   */
  onRollback(cb: (session: StoreSession) => void | Promise<void>): void
  /** Runs after the transaction committed (e.g. to share what it reserved, or zero what it held). */
  onCommit(cb: () => void): void
  /**
   * Runs synchronously right after COMMIT has been sent, while it is in flight: client-side work
   * on rows already read (it must not use the session). Only when the callback of the
   * transaction succeeded. The COMMIT may still fail after it ran (then the transaction rolls
   * back as usual), and an error it throws reaches the caller after a successful COMMIT: use it
   * only for work whose failure does not need the transaction undone (reads).
   */
  whileCommitInFlight(cb: () => void): void
}

interface RegionState {
  readonly driver: StoreDriver
  verified?: Promise<void>
  /** Connected and stamp-checked: the hot path skips the await. */
  ok?: boolean
}

/** A tenant transaction; hook lists are allocated only when something registers. */
class Tx implements TenantTransaction {
  #rollbacks: Array<(s: StoreSession) => void | Promise<void>> | undefined
  #commits: Array<() => void> | undefined
  #inFlight: Array<() => void> | undefined
  constructor(readonly tenantId: string, readonly region: string, readonly session: StoreSession) {}
  onRollback(cb: (session: StoreSession) => void | Promise<void>): void {
    ;(this.#rollbacks ??= []).push(cb)
  }
  onCommit(cb: () => void): void {
    ;(this.#commits ??= []).push(cb)
  }
  whileCommitInFlight(cb: () => void): void {
    ;(this.#inFlight ??= []).push(cb)
  }
  /** Runs the in-flight callbacks; returns the first error (the COMMIT is awaited regardless). */
  runWhileCommitInFlight(): { error: unknown } | undefined {
    let failed: { error: unknown } | undefined
    for (const cb of this.#inFlight ?? []) {
      try {
        cb()
      } catch (error) {
        failed ??= { error }
      }
    }
    return failed
  }
  async rolledBack(): Promise<void> {
    for (const cb of this.#rollbacks ?? []) {
      try {
        await cb(this.session)
      } catch {
        // A rollback hook must not mask the original error.
      }
    }
  }
  committed(): void {
    for (const cb of this.#commits ?? []) cb()
  }
}

/** Tenant ids are validated slugs, but quote defensively anyway. */
const literal = (s: string): string => `'${s.replace(/'/g, "''")}'`

/**
 * The statements that open a tenant transaction, in one round trip: begin, drop to the RLS-bound
 * role, set the tenant context, and read the store's stamp back.
 */
export function tenantTransactionPrelude(tenantId: string): string {
  return `BEGIN; SET LOCAL ROLE ${APP_ROLE}; SELECT set_config('${TENANT_SETTING}', ${literal(tenantId)}, true) AS tenant, kind, region FROM domicile_stamp`
}

export class RegionRouter {
  readonly #names: readonly string[]
  readonly #supplier: RegionSupplier
  readonly #states = new Map<string, RegionState>()
  #closed = false

  /**
   * @param names every region the configuration knows (for messages and listings)
   * @param supplier which of them this process serves, and with which store
   */
  constructor(names: readonly string[], supplier: RegionSupplier) {
    this.#names = Object.freeze([...names])
    this.#supplier = supplier
  }

  get regionNames(): readonly string[] {
    return this.#names
  }

  #state(region: string): RegionState {
    if (this.#closed) throw new DomicileError('ERR_CLOSED', 'This Domicile instance was closed.')
    let st = this.#states.get(region)
    if (st) return st
    /* Precondition: the region is configured and served by this process. */
    const driver = this.#names.includes(region) ? this.#supplier(region) : false
    if (!driver) {
      throw new DomicileError('ERR_REGION_UNKNOWN',
        `Region "${region}" is not configured or not served by this deployment (configured: ${this.#names.join(', ')}). Add it to the config and run "domicile migrate"; data is never sent to another region instead.`)
    }
    st = { driver }
    this.#states.set(region, st)
    return st
  }

  /** Connects to a region and checks its stamp once; a failure is retried on the next call. */
  async #ready(region: string): Promise<StoreDriver> {
    const st = this.#state(region)
    st.verified ??= (async () => {
      await st.driver.init()
      await st.driver.withSession((s) => ensureStamp(s, { kind: 'region', region }, { write: false }))
    })()
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

  /**
   * Runs `fn` in a transaction on the tenant's home region, as the RLS-bound role with the tenant
   * context set. The stamp is checked again inside the transaction (same round trip). Each call is
   * its own transaction on its own session, so scopes are isolated even when one is opened inside
   * another (the embedded driver, which has a single session, refuses that instead).
   */
  async withTenantTransaction<T>(tenantId: string, region: string, fn: (tx: TenantTransaction) => Promise<T>): Promise<T> {
    const st = this.#states.get(region)
    const driver = st?.ok ? st.driver : await this.#ready(region)
    return driver.withSession(async (session) => {
      const rows = await session.exec(tenantTransactionPrelude(tenantId))
      const stamp = rows[0] as { kind?: string; region?: string } | undefined
      if (!stamp || stamp.kind !== 'region' || stamp.region !== region) {
        await session.exec('ROLLBACK').catch(() => undefined)
        const s = this.#states.get(region)!
        s.ok = false
        s.verified = undefined
        throw mismatch({ kind: 'region', region }, { kind: (stamp?.kind as 'region') ?? 'region', region: String(stamp?.region ?? '(none)') })
      }
      const tx = new Tx(tenantId, region, session)
      let result: T
      let inFlight: { error: unknown } | undefined
      try {
        result = await fn(tx)
        const commit = session.exec('COMMIT') // sent now; the work below overlaps its round trip
        inFlight = tx.runWhileCommitInFlight()
        await commit
      } catch (e) {
        await session.exec('ROLLBACK').catch(() => undefined)
        await tx.rolledBack()
        throw e
      }
      tx.committed()
      if (inFlight) throw inFlight.error
      return result
    })
  }

  /**
   * Internal: an owner session on a region store, for migrations, operations and the demo's
   * physical proof. Not exported from the package entry point.
   */
  async withRegionAdmin<T>(region: string, fn: (session: StoreSession) => Promise<T>, opts: { verifyStamp?: boolean } = {}): Promise<T> {
    const driver = opts.verifyStamp === false ? this.#state(region).driver : await this.#ready(region)
    if (opts.verifyStamp === false) await driver.init()
    return driver.withSession(fn)
  }

  /** Whether a region's store answers and carries the right stamp. */
  async probe(region: string): Promise<{ reachable: boolean; code?: string }> {
    try {
      await this.#ready(region)
      await this.#state(region).driver.withSession((s) => s.query('SELECT 1'))
      return { reachable: true }
    } catch (e) {
      return { reachable: false, ...(isDomicileError(e) ? { code: e.code } : {}) }
    }
  }

  /** The driver kind of a served region, for listings. */
  driverKind(region: string): string {
    return this.#state(region).driver.kind
  }

  async close(): Promise<void> {
    this.#closed = true
    for (const st of this.#states.values()) await st.driver.close().catch(() => undefined)
    this.#states.clear()
  }
}
