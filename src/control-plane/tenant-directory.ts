/**
 * The tenant directory, in the control plane: tenant id -> home region and cell, key binding, status.
 * Only non-personal metadata lives here. Lookups are cached per process and invalidated when an
 * entry changes: pushed by LISTEN/NOTIFY on the control plane, with polling of the change log as
 * the fallback. The same path carries revocations (key_state), so every process learns of a
 * revoke within the push latency, or at worst one poll interval.
 */
import { ownerTransaction } from '../regions/owner-transaction.js'
import { DEFAULT_CELL } from '../regions/placement.js'
import { DomicileError } from '../errors.js'
import type { Custody } from '../keys/key-provider.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'

export type TenantStatus = 'active' | 'suspended' | 'moving'
/** Our side of the kill switch. 'none' = no key bound yet. */
export type KeyBindingState = 'none' | 'enabled' | 'revoked' | 'pending-import' | 'destroyed'

export interface KeyBinding {
  readonly custody: Custody
  /** Provider instance name from config (keys.providers). */
  readonly provider: string
  /** The provider's key reference. */
  readonly keyId: string
}

export interface TenantRecord {
  readonly id: string
  readonly region: string
  /** The tenant's cell in its home region ("main" in a region with one store). */
  readonly cell: string
  readonly status: TenantStatus
  readonly key: KeyBinding | null
  readonly keyState: KeyBindingState
  /** Per-tenant data-key cache TTL override (ms); null = the custody level's default. */
  readonly cacheTtlMs: number | null
  readonly version: number
  readonly createdAt: Date
  readonly updatedAt: Date
}

export const TENANT_ID = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
export const DIRECTORY_CHANNEL = 'domicile_directory'
/** How long an unwatched directory (a CLI command) trusts an entry it read: the revocation bound. */
export const UNWATCHED_TRUST_MS = 1000

/** Throws ERR_TENANT_INVALID unless `id` is a slug. */
export function assertTenantId(id: unknown): asserts id is string {
  if (typeof id !== 'string' || !TENANT_ID.test(id)) {
    throw new DomicileError('ERR_TENANT_INVALID', 'Tenant ids are slugs: 1-63 lower-case letters, digits and dashes, not starting or ending with a dash.')
  }
}

interface Row {
  id: string; region: string; cell?: string; status: TenantStatus; custody: Custody | null; provider: string | null; key_id: string | null
  key_state: KeyBindingState; cache_ttl_ms: number | null; version: string | number; created_at: Date | string; updated_at: Date | string
}

function toRecord(r: Row): TenantRecord {
  return Object.freeze({
    id: r.id,
    region: r.region,
    // A control plane not yet migrated by a version with cells has no column: its tenants are in "main".
    cell: r.cell ?? DEFAULT_CELL,
    status: r.status,
    key: r.custody && r.provider && r.key_id ? Object.freeze({ custody: r.custody, provider: r.provider, keyId: r.key_id }) : null,
    keyState: r.key_state,
    cacheTtlMs: r.cache_ttl_ms === null ? null : Number(r.cache_ttl_ms),
    version: Number(r.version),
    createdAt: new Date(r.created_at),
    updatedAt: new Date(r.updated_at),
  })
}

export interface NewTenant {
  readonly id: string
  readonly region: string
  /** Default "main". */
  readonly cell?: string
  readonly key?: KeyBinding | null
  readonly keyState?: KeyBindingState
  readonly cacheTtlMs?: number | null
}

export type TenantPatch = Partial<Pick<TenantRecord, 'region' | 'cell' | 'status' | 'key' | 'keyState' | 'cacheTtlMs'>>

/** Values an entry must still have for a guarded update to apply (compare-and-set). */
export interface DirectoryGuard {
  readonly version?: number
  readonly region?: string
  readonly cell?: string
  readonly status?: TenantStatus
}

export class TenantDirectory {
  readonly #store: StoreDriver
  readonly #pollMs: number
  readonly #cache = new Map<string, TenantRecord>()
  readonly #listeners = new Set<(tenantId: string) => void>()
  #lastSeq = 0
  #timer: NodeJS.Timeout | undefined
  #unlisten: (() => Promise<void>) | undefined
  #started: Promise<void> | undefined
  #polling: Promise<void> | undefined
  /**
   * Sequence numbers below the high-water mark not seen yet: log entries of transactions still in
   * flight (bigserial numbers at insert, not at commit) or rolled back. Re-read on every poll until
   * they appear or expire, so a change that commits late is never skipped.
   */
  readonly #gaps = new Map<number, number>()
  /** When the change feed was last read successfully (ms). */
  #lastSync = 0
  readonly #maxStaleMs: number
  /** Bumped on every invalidation, so a lookup racing a change never caches the stale row. */
  #epoch = 0

  /**
   * @param opts.pollMs change-log polling interval (the fallback behind push)
   * @param opts.maxStaleMs cached entries are not trusted when the change feed has not been read
   *   for this long (control plane unreachable): lookups go to the control plane and fail closed.
   *   Default max(5000, 10 * pollMs).
   */
  constructor(store: StoreDriver, opts: { pollMs: number; maxStaleMs?: number; watch?: boolean }) {
    this.#store = store
    this.#pollMs = opts.pollMs
    this.#maxStaleMs = opts.maxStaleMs ?? Math.max(5000, 10 * opts.pollMs)
    this.#watch = opts.watch ?? true
  }

  /**
   * False for a short-lived process (a CLI command): no change feed (no LISTEN connection, no
   * change-log read, no poll timer); an entry read from the control plane is trusted for at most
   * UNWATCHED_TRUST_MS, then read again, so the revocation bound holds without the feed.
   */
  readonly #watch: boolean
  /** When each cached entry was read (unwatched mode only). */
  readonly #readAt = new Map<string, number>()

  /** Starts change delivery (push + poll). Called on first use; nothing to start when unwatched. */
  start(): Promise<void> {
    if (!this.#watch) return Promise.resolve()
    this.#started ??= (async () => {
      // Entries still in flight when we start hold numbers below max(seq): track recent gaps.
      const recent = await this.#store.withSession((s) => s.query<{ seq: string }>('SELECT seq::text AS seq FROM domicile_directory_log ORDER BY seq DESC LIMIT 1000'))
      const seen = recent.rows.map((r) => Number(r.seq))
      this.#lastSeq = seen[0] ?? 0
      const now = Date.now()
      const have = new Set(seen)
      for (let n = this.#lastSeq - 1; n > Math.max(0, this.#lastSeq - 1000); n--) if (!have.has(n)) this.#gaps.set(n, now)
      this.#lastSync = now
      try {
        this.#unlisten = await this.#store.listen(DIRECTORY_CHANNEL, (id) => this.#changed(id), { onReconnect: () => void this.poll() })
      } catch {
        // Push is an accelerator; polling below is the guarantee.
      }
      this.#timer = setInterval(() => void this.poll(), this.#pollMs)
      this.#timer.unref()
    })()
    return this.#started.catch((e) => {
      this.#started = undefined
      throw e
    })
  }

  /** Reads the change log since the last seen entry; invalidates what changed. A call during a poll joins it. */
  poll(): Promise<void> {
    return (this.#polling ??= this.#pollOnce().finally(() => {
      this.#polling = undefined
    }))
  }

  async #pollOnce(): Promise<void> {
    try {
      const started = Date.now()
      const gaps = [...this.#gaps.keys()]
      const r = await this.#store.withSession((s) =>
        s.query<{ seq: string; tenant_id: string }>(
          'SELECT seq::text AS seq, tenant_id FROM domicile_directory_log WHERE seq > $1 OR seq = ANY($2::bigint[]) ORDER BY seq', [this.#lastSeq, gaps]))
      for (const row of r.rows) {
        const seq = Number(row.seq)
        this.#gaps.delete(seq)
        for (let n = this.#lastSeq + 1; n < seq; n++) this.#gaps.set(n, started)
        this.#lastSeq = Math.max(this.#lastSeq, seq)
        this.#changed(row.tenant_id)
      }
      // A gap older than a minute belongs to a transaction that rolled back (or is pathological).
      for (const [n, since] of this.#gaps) if (started - since > 60_000) this.#gaps.delete(n)
      this.#lastSync = started
    } catch {
      // Control plane unreachable: cached entries stay until their next change is seen.
    }
  }

  #changed(tenantId: string): void {
    this.#epoch++
    this.#cache.delete(tenantId)
    for (const l of this.#listeners) l(tenantId)
  }

  /** Called with a tenant id whenever its entry changes (any process). */
  onChange(listener: (tenantId: string) => void): () => void {
    this.#listeners.add(listener)
    return () => this.#listeners.delete(listener)
  }

  /** How long ago the change feed was last read (ms), for metrics; Infinity when unwatched or not started. */
  get syncAgeMs(): number {
    return this.#watch && this.#lastSync > 0 ? Date.now() - this.#lastSync : Number.POSITIVE_INFINITY
  }

  /** Cached entry, if any (no I/O). */
  peek(id: string): TenantRecord | undefined {
    return this.#cache.get(id)
  }

  /** The cached entry when the cache is fresh enough to trust (no I/O, no promise). */
  cached(id: string): TenantRecord | undefined {
    const hit = this.#cache.get(id)
    if (!hit) return undefined
    if (!this.#watch) return Date.now() - (this.#readAt.get(id) ?? 0) <= UNWATCHED_TRUST_MS ? hit : undefined
    return Date.now() - this.#lastSync <= this.#maxStaleMs ? hit : undefined
  }

  /** The tenant's entry; ERR_TENANT_UNKNOWN if there is none. */
  async get(id: string): Promise<TenantRecord> {
    const hit = this.cached(id)
    if (hit) return hit
    assertTenantId(id)
    await this.start()
    // A change feed not read for too long (a long blocking operation, the control plane away) is
    // caught up first: what is read below is then trusted like any cached entry, not refused by
    // the next `cached()` until the timer's poll comes round.
    if (this.#watch && Date.now() - this.#lastSync > this.#maxStaleMs) await this.poll()
    const epoch = this.#epoch
    const started = Date.now()
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_tenants WHERE id = $1', [id]))
    const row = r.rows[0]
    if (!row) throw new DomicileError('ERR_TENANT_UNKNOWN', `No tenant "${id}" in the directory. Add it with "domicile tenant add".`)
    const rec = toRecord(row)
    if (epoch === this.#epoch) {
      this.#cache.set(id, rec)
      if (!this.#watch) this.#readAt.set(id, started)
    }
    return rec
  }

  /** The entry as the control plane has it now, bypassing the cache (operations decide on it). */
  async fresh(id: string): Promise<TenantRecord> {
    assertTenantId(id)
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_tenants WHERE id = $1', [id]), { role: 'owner' })
    if (!r.rows[0]) throw new DomicileError('ERR_TENANT_UNKNOWN', `No tenant "${id}" in the directory. Add it with "domicile tenant add".`)
    return toRecord(r.rows[0])
  }

  async list(): Promise<TenantRecord[]> {
    const r = await this.#store.withSession((s) => s.query<Row>('SELECT * FROM domicile_tenants ORDER BY id'))
    return r.rows.map(toRecord)
  }

  /** How many tenants each cell of a region holds (cells without tenants are absent): placement's input. */
  async tenantsPerCell(region: string): Promise<Map<string, number>> {
    const r = await this.#store.withSession((s) => s.query<{ cell: string; n: string | number }>(
      'SELECT cell, count(*) AS n FROM domicile_tenants WHERE region = $1 GROUP BY cell', [region]))
    return new Map(r.rows.map((x) => [x.cell, Number(x.n)]))
  }

  /** Adds an entry; `audit` is recorded in the same transaction (both or neither). */
  async add(t: NewTenant, audit?: ControlAuditEvent): Promise<TenantRecord> {
    assertTenantId(t.id)
    await this.start()
    const rec = await this.#tx(async (s) => {
      const r = await s.query<Row>(
        `INSERT INTO domicile_tenants (id, region, cell, status, custody, provider, key_id, key_state, cache_ttl_ms)
         VALUES ($1, $2, $8, 'active', $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING RETURNING *`,
        [t.id, t.region, t.key?.custody ?? null, t.key?.provider ?? null, t.key?.keyId ?? null, t.keyState ?? (t.key ? 'enabled' : 'none'), t.cacheTtlMs ?? null, t.cell ?? DEFAULT_CELL])
      if (!r.rows[0]) throw new DomicileError('ERR_TENANT_EXISTS', `Tenant "${t.id}" already exists. Use "domicile tenant show ${t.id}".`)
      await this.#logChange(s, t.id, 'add')
      if (audit) await insertAudit(s, { tenantId: t.id, ...audit })
      return toRecord(r.rows[0])
    })
    this.#changed(t.id)
    return rec
  }

  /**
   * Updates an entry; with `expectedVersion`, fails with ERR_CONFLICT if it changed meanwhile.
   * `audit` (e.g. the record of a key state change) is written in the same transaction.
   */
  async update(id: string, patch: TenantPatch, change: string, expectedVersion?: number, audit?: ControlAuditEvent): Promise<TenantRecord> {
    assertTenantId(id)
    await this.start()
    const rec = await this.#tx((s) => this.#apply(s, id, patch, change, expectedVersion === undefined ? {} : { version: expectedVersion }, audit))
    this.#changed(id)
    return rec
  }

  /**
   * A guarded update inside a control-plane transaction the caller holds (the operations
   * journal's hook: a journal step and the directory change commit together, or neither does).
   * The row changes only if it still has every value in `guard`; otherwise ERR_CONFLICT (the
   * caller's transaction rolls back). The change is logged and notified with the transaction;
   * call `invalidate(id)` after it committed so this process does not wait for its own NOTIFY.
   */
  async updateWithin(s: StoreSession, id: string, patch: TenantPatch, change: string, guard: DirectoryGuard, audit?: ControlAuditEvent): Promise<TenantRecord> {
    assertTenantId(id)
    return this.#apply(s, id, patch, change, guard, audit)
  }

  /** Drops this process's cached entry (after a change committed through `updateWithin`). */
  invalidate(id: string): void {
    this.#changed(id)
  }

  async #apply(s: StoreSession, id: string, patch: TenantPatch, change: string, guard: DirectoryGuard, audit?: ControlAuditEvent): Promise<TenantRecord> {
    const sets: string[] = []
    const params: unknown[] = [id]
    const set = (col: string, v: unknown) => {
      params.push(v)
      sets.push(`${col} = $${params.length}`)
    }
    if (patch.region !== undefined) set('region', patch.region)
    if (patch.cell !== undefined) set('cell', patch.cell)
    if (patch.status !== undefined) set('status', patch.status)
    if (patch.keyState !== undefined) set('key_state', patch.keyState)
    if (patch.cacheTtlMs !== undefined) set('cache_ttl_ms', patch.cacheTtlMs)
    if (patch.key !== undefined) {
      set('custody', patch.key?.custody ?? null)
      set('provider', patch.key?.provider ?? null)
      set('key_id', patch.key?.keyId ?? null)
    }
    let where = 'id = $1'
    const cond = (col: string, v: unknown) => {
      params.push(v)
      where += ` AND ${col} = $${params.length}`
    }
    if (guard.version !== undefined) cond('version', guard.version)
    if (guard.region !== undefined) cond('region', guard.region)
    if (guard.cell !== undefined) cond('cell', guard.cell)
    if (guard.status !== undefined) cond('status', guard.status)
    const r = await s.query<Row>(`UPDATE domicile_tenants SET ${[...sets, 'version = version + 1', 'updated_at = now()'].join(', ')} WHERE ${where} RETURNING *`, params)
    if (!r.rows[0]) {
      const exists = await s.query('SELECT 1 FROM domicile_tenants WHERE id = $1', [id])
      if (exists.rows.length === 0) throw new DomicileError('ERR_TENANT_UNKNOWN', `No tenant "${id}" in the directory.`)
      throw new DomicileError('ERR_CONFLICT', `Tenant "${id}" changed while this operation ran. Retry it.`)
    }
    await this.#logChange(s, id, change)
    if (audit) await insertAudit(s, { tenantId: id, ...audit })
    return toRecord(r.rows[0])
  }

  /** Records a control-plane audit event (non-personal), as admin work (the owner's login). */
  async audit(event: ControlAuditEvent & { tenantId?: string }): Promise<void> {
    await this.#store.withSession((s) => insertAudit(s, event), { role: 'owner' })
  }

  async #logChange(s: StoreSession, id: string, change: string): Promise<void> {
    await s.query('INSERT INTO domicile_directory_log (tenant_id, change) VALUES ($1, $2)', [id, change])
    await s.query('SELECT pg_notify($1, $2)', [DIRECTORY_CHANNEL, id])
  }

  /** A write transaction: admin work, on the owner's login. */
  #tx<T>(fn: (s: StoreSession) => Promise<T>): Promise<T> {
    return ownerTransaction(this.#store, fn)
  }

  async close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer)
    await this.#unlisten?.().catch(() => undefined)
  }
}

/** A control-plane audit event: identifiers only, never personal data or key material. */
export interface ControlAuditEvent {
  readonly type: string
  readonly outcome: string
  readonly actor?: string
  readonly detail?: Record<string, unknown>
}

async function insertAudit(s: StoreSession, event: ControlAuditEvent & { tenantId?: string }): Promise<void> {
  await s.query('INSERT INTO domicile_control_audit (tenant_id, type, outcome, actor, detail) VALUES ($1, $2, $3, $4, $5::jsonb)',
    [event.tenantId ?? null, event.type, event.outcome, event.actor ?? null, JSON.stringify(event.detail ?? {})])
}
