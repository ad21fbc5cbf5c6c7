/**
 * The keyring: which key protects this tenant's data, asked exactly as the router asks which
 * region. Envelope encryption: the tenant's key-encryption key (held by the provider named in
 * its binding) wraps per-tenant data keys and one index root key, stored wrapped in the tenant's
 * region store (domicile_data_keys). The wrap context names tenant, region, key number and
 * purpose, so a wrapped key copied to another region or tenant does not unwrap.
 *
 * Nonce bound (NIST SP 800-38D, random 96-bit nonces): each data key may seal at most
 * `maxEncryptionsPerKey` (<= 2^32) values. Every process reserves blocks of that budget in the
 * store (a row-locked counter in domicile_data_keys) before using them; a key whose budget is
 * spent is retired and a new data key is created. A block reserved in a transaction is private
 * to it until it commits, and forgotten if it rolls back, so the counter never under-counts sealed
 * values that persist.
 *
 * Revocation reaches keys in use (docs/ARCHITECTURE.md "Data-key cache and the kill switch"):
 * every use of a data key or index key, cache hits inside an open scope included, first compares
 * the scope's directory entry with the directory's current one (an identity compare; the directory
 * drops an entry on LISTEN/NOTIFY or its poll). A changed entry is read again, and a revoked key is
 * refused with ERR_KEY_REVOKED before the key is used. Keys are handed to a callback that runs
 * synchronously right after that check (`withEncryptionKey`, `withDataKey`, `withColumnIndexKey`),
 * so no caller keeps a key across an await.
 *
 * Index keys rotate with a dual-read period (src/ops/rotate-index-key.ts): a tenant may have
 * several index root keys (purpose 'index', numbers 1, 2, ...). New blind indexes are written under
 * the highest 'active' one; an equality search looks under every index key the region holds
 * ('retired' = searched, not written: the old key while the rebuild runs, or the new key announced
 * before writes switch to it). Which keys exist is read once per directory entry and region (the
 * rotation changes the directory entry after each step, which every process sees within the
 * directory's bound), so the hot path stays free of SQL.
 */
import { randomBytes } from 'node:crypto'
import { transactionAudit } from '../audit/transaction-audit.js'
import type { KeyBinding, TenantRecord } from '../control-plane/tenant-directory.js'
import { isRetiredKey, releasedKeyError } from '../crypto/context-reserve.js'
import { DecryptionFailedError, DomicileError } from '../errors.js'
import type { TenantTransaction } from '../regions/router.js'
import type { DataKeyCache } from './data-key-cache.js'
import type { Custody, KeyProvider } from './key-provider.js'

/** The directory as the keyring reads it (TenantDirectory). */
export interface KeyringDirectory {
  /** The current entry when it can be trusted without I/O; undefined after a change until re-read. */
  cached(tenantId: string): TenantRecord | undefined
  /** The current entry, read from the control plane when needed. */
  get(tenantId: string): Promise<TenantRecord>
}

export interface KeyringOptions {
  /** Resolves a provider instance name to its (runtime-wrapped) provider. */
  readonly provider: (name: string) => Promise<KeyProvider>
  readonly cache: DataKeyCache
  /** Where each use of a key checks the tenant's current key state. */
  readonly directory: KeyringDirectory
  readonly cacheTtlMs: Readonly<Record<Custody, number>>
  readonly maxEncryptionsPerKey: number
  readonly reservationBlock: number
}

interface Budget {
  readonly keyNumber: number
  next: number
  readonly end: number
}

type Purpose = 'data' | 'index'

const hasRoom = (b: Budget): boolean => b.next < b.end

/** Data-key numbers: 1..2^31-1 (a PostgreSQL integer). */
const MAX_KEY_NUMBER = 0x7fff_ffff
const validKeyNumber = (n: number): boolean => Number.isInteger(n) && n >= 1 && n <= MAX_KEY_NUMBER

/** Refuses use of a tenant's key on our side of the kill switch, before any provider call. */
export function assertKeyUsable(tenant: TenantRecord): KeyBinding {
  /* Precondition: tenant must have a key binding. */
  if (!tenant.key) {
    throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenant.id}" has no key binding, so it cannot hold sensitive fields. Bind one: "domicile tenant bind-key ${tenant.id} --custody kms" (or byok / hyok).`)
  }
  /* Precondition: the tenant's key is not destroyed. */
  if (tenant.keyState === 'destroyed') {
    throw new DomicileError('ERR_KEY_DESTROYED', `The key of tenant "${tenant.id}" was destroyed. Its sensitive fields cannot be recovered; this cannot be undone.`)
  }
  /* Precondition: the tenant's key is not revoked. */
  if (tenant.keyState === 'revoked') {
    throw new DomicileError('ERR_KEY_REVOKED', `The key of tenant "${tenant.id}" is revoked. Its sensitive fields stay unreadable until "domicile key restore ${tenant.id}".`)
  }
  /* Precondition: a BYOK key has its material imported. */
  if (tenant.keyState === 'pending-import') {
    throw new DomicileError('ERR_KEY_PENDING_IMPORT', `The key of tenant "${tenant.id}" awaits the customer's key material. Run "domicile key import-job ${tenant.id}" and "domicile key import".`)
  }
  return tenant.key
}

export class Keyring {
  readonly #o: KeyringOptions
  readonly #budgets = new Map<string, Budget>()

  constructor(opts: KeyringOptions) {
    this.#o = opts
  }

  /** Called when a tenant's directory entry changes (any process): drop its keys and budget. */
  forgetTenant(tenantId: string): void {
    this.#o.cache.invalidateTenant(tenantId)
    for (const k of this.#budgets.keys()) if (k.startsWith(`${tenantId}|`)) this.#budgets.delete(k)
  }

  forTransaction(tenant: TenantRecord, tx: TenantTransaction): TenantKeys {
    return new TenantKeys(this.#o, this.#budgets, tenant, tx)
  }

  /** The data-key cache's counters, for metrics. */
  cacheStats(): { readonly hits: number; readonly misses: number; readonly entries: number } {
    return this.#o.cache.stats()
  }
}

/** How often a use re-reads a changed entry or refetches a released key before giving up (ERR_CONFLICT). */
const USE_ATTEMPTS = 3

export class TenantKeys {
  readonly #o: KeyringOptions
  readonly #budgets: Map<string, Budget>
  /** The directory entry this transaction works under; replaced by the current one when it changes. */
  #tenant: TenantRecord
  readonly #tx: TenantTransaction
  #ttl: number
  readonly #budgetKey: string
  /** Budget reserved in this transaction, not yet committed. */
  #local: Budget | undefined
  #hooked = false

  constructor(o: KeyringOptions, budgets: Map<string, Budget>, tenant: TenantRecord, tx: TenantTransaction) {
    this.#o = o
    this.#budgets = budgets
    this.#tenant = tenant
    this.#tx = tx
    this.#ttl = ttlOf(o, tenant)
    this.#budgetKey = `${tenant.id}|${tx.region}`
  }

  /**
   * The synchronous check before every use of a key: the entry this transaction works under is
   * still the directory's current one (or the directory already holds a newer one, adopted
   * here), and its key is usable (else ERR_KEY_REVOKED / ERR_KEY_PENDING_IMPORT / ERR_KEY_NOT_FOUND).
   * Undefined when the entry changed and has not been read again yet: use `#checkAsync`.
   */
  #check(): KeyBinding | undefined {
    const current = this.#o.directory.cached(this.#tenant.id)
    if (current !== this.#tenant) {
      if (current === undefined) return undefined
      this.#adopt(current)
    }
    return assertKeyUsable(this.#tenant)
  }

  /** `#check`, reading a changed entry from the control plane (fails closed if it cannot). */
  async #checkAsync(): Promise<KeyBinding> {
    const ok = this.#check()
    if (ok) return ok
    this.#adopt(await this.#o.directory.get(this.#tenant.id))
    return assertKeyUsable(this.#tenant)
  }

  #adopt(entry: TenantRecord): void {
    this.#tenant = entry
    this.#ttl = ttlOf(this.#o, entry)
  }

  /**
   * Runs `use` with a key right after the key state was checked, synchronously. `load` fetches the
   * key (cache or unwrap); a key the cache released meanwhile is fetched again, a directory change
   * meanwhile is read before the key is used.
   */
  async #use<T>(load: () => Promise<Uint8Array>, use: (key: Uint8Array) => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.#checkAsync()
      const key = await load()
      // A revocation or a cache release may have come in while the key loaded.
      if (this.#check() !== undefined && !isRetiredKey(key)) return use(key)
      if (attempt === USE_ATTEMPTS) {
        await this.#checkAsync() // a revocation wins over the retry advice
        throw releasedKeyError()
      }
    }
  }

  #cacheId(purpose: Purpose, n: number, provider: string, keyId: string): string {
    return `${this.#tenant.id}|${this.#tx.region}|${purpose}|${n}|${provider}|${keyId}`
  }

  /** Cache ids under the current binding, memoised per directory entry (hot path: no string building). */
  #boundId(purpose: Purpose, n: number): string {
    // Memo keys: the key number for data keys, its negative for index root keys (built strings
    // would be hashed afresh on every call).
    return this.#memo(purpose === 'data' ? n : -n, () => {
      const b = this.#tenant.key!
      return this.#cacheId(purpose, n, b.provider, b.keyId)
    })
  }

  #memo(k: number | string | object, make: () => string): string {
    let memo = idMemo.get(this.#tenant)
    if (!memo) {
      memo = new Map()
      idMemo.set(this.#tenant, memo)
    }
    let id = memo.get(k)
    if (id === undefined) {
      id = make()
      memo.set(k, id)
    }
    return id
  }

  /**
   * Seals one value: `use(key, keyNumber)` runs synchronously with the data key to seal under
   * (do not keep the key), and one encryption of a reserved budget is consumed. Synchronous when
   * the budget and the key are at hand. Budget reserved by this transaction stays private to it
   * until it commits (a concurrent transaction must not seal under a reservation that may still
   * roll back); after the commit the rest of the block is shared with later transactions.
   */
  withEncryptionKey<T>(use: (key: Uint8Array, keyNumber: number) => T): T | Promise<T> {
    if (this.#check() !== undefined) {
      const b = this.#usableBudget()
      if (b) {
        const key = this.#o.cache.peek(this.#boundId('data', b.keyNumber))
        if (key) {
          b.next++
          return use(key, b.keyNumber)
        }
      }
    }
    return this.#encryptionKeySlow(use)
  }

  async #encryptionKeySlow<T>(use: (key: Uint8Array, keyNumber: number) => T): Promise<T> {
    const binding = await this.#checkAsync()
    let b = this.#usableBudget()
    if (!b) {
      b = await this.#reserve(binding)
      this.#local = b
      if (!this.#hooked) {
        this.#hooked = true
        this.#tx.onCommit((committed) => {
          const mine = this.#local
          void committed.then((ok) => {
            const cur = this.#budgets.get(this.#budgetKey)
            if (ok && mine && hasRoom(mine) && !(cur && hasRoom(cur))) this.#budgets.set(this.#budgetKey, mine)
          })
        })
        this.#tx.onRollback(() => {
          this.#local = undefined
        })
      }
    }
    b.next++
    const n = b.keyNumber
    return this.#use(() => this.#key('data', n), (key) => use(key, n))
  }

  /** This transaction's own reservation if it has room, else the process's committed one, if any. */
  #usableBudget(): Budget | undefined {
    const local = this.#local
    if (local && hasRoom(local)) return local
    const shared = this.#budgets.get(this.#budgetKey)
    return shared && hasRoom(shared) ? shared : undefined
  }

  /**
   * Opens with data key `keyNumber`: `use(key)` runs synchronously with it (do not keep it).
   * Synchronous on a cache hit. A number no key can have is the opaque decryption failure, before
   * any SQL.
   */
  withDataKey<T>(keyNumber: number, use: (key: Uint8Array) => T): T | Promise<T> {
    /* Precondition: a data-key number is an integer from 1 to 2^31-1. */
    if (!validKeyNumber(keyNumber)) throw new DecryptionFailedError()
    if (this.#check() !== undefined) {
      const hot = this.#o.cache.peek(this.#boundId('data', keyNumber))
      if (hot) return use(hot)
    }
    return this.#use(() => this.#key('data', keyNumber), use)
  }

  /**
   * The HMAC key of one searchable column under the tenant's current index key (the one new blind
   * indexes are written under), derived from that index root key and kept in the data-key cache
   * with the tenant's other keys (zeroed and revoked with them), handed to `use` synchronously.
   */
  withColumnIndexKey<T>(ref: ColumnKeyRef, derive: (root: Uint8Array, ref: ColumnKeyRef) => Uint8Array, use: (key: Uint8Array) => T): T | Promise<T> {
    if (this.#check() !== undefined) {
      const st = this.#indexKeysCached()
      if (st) {
        const hit = this.#o.cache.peek(this.#columnId(ref, st.write))
        if (hit) return use(hit)
      }
    }
    return this.#use(async () => {
      // The state and ids under the entry as re-read by the check (a changed binding is another key).
      const st = await this.#indexKeys()
      const key = await this.#columnKey(ref, derive, st.write, st.write)
      if (!key) throw indexKeysChanged(this.#tenant.id)
      return key
    }, use)
  }

  /**
   * The HMAC keys of one searchable column under every index key an equality search must cover
   * (the current one first; during an index-key rotation also the other), handed to `use`
   * synchronously. An index key the region no longer holds (retired meanwhile) is left out.
   */
  withColumnIndexKeys<T>(ref: ColumnKeyRef, derive: (root: Uint8Array, ref: ColumnKeyRef) => Uint8Array, use: (keys: readonly Uint8Array[]) => T): T | Promise<T> {
    if (this.#check() !== undefined) {
      const st = this.#indexKeysCached()
      if (st) {
        const hits: Uint8Array[] = []
        for (const n of st.search) {
          const hit = this.#o.cache.peek(this.#columnId(ref, n))
          if (!hit) break
          hits.push(hit)
        }
        if (hits.length === st.search.length) return use(hits)
      }
    }
    return this.#useAll(async (keys) => {
      const st = await this.#indexKeys()
      for (const n of st.search) {
        const k = await this.#columnKey(ref, derive, n, st.write)
        // Copied before the next await: a key the cache does not keep (TTL 0, or invalidated while
        // it loaded) is zeroed right after its waiters resumed, and a kept one may expire meanwhile.
        if (k) keys.push(Uint8Array.from(k))
      }
      if (keys.length === 0) throw indexKeysChanged(this.#tenant.id)
    }, use)
  }

  /**
   * `#use` for several keys fetched one after the other: `load` pushes a private copy of each key
   * onto the array it is given (the cache may zero its own copy while the next key loads). The
   * copies are zeroed once `use` returned, or when the load fails.
   */
  async #useAll<T>(load: (keys: Uint8Array[]) => Promise<void>, use: (keys: readonly Uint8Array[]) => T): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      await this.#checkAsync()
      const keys: Uint8Array[] = []
      try {
        await load(keys)
        // A revocation may have come in while the keys loaded.
        if (this.#check() !== undefined) return use(keys)
      } finally {
        for (const k of keys) k.fill(0)
      }
      if (attempt === USE_ATTEMPTS) {
        await this.#checkAsync()
        throw releasedKeyError()
      }
    }
  }

  /** One column key under index key `n` (cache, or derived from the unwrapped root); undefined if `n` is gone. */
  async #columnKey(ref: ColumnKeyRef, derive: (root: Uint8Array, ref: ColumnKeyRef) => Uint8Array, n: number, write: number): Promise<Uint8Array | undefined> {
    const id = this.#columnId(ref, n)
    try {
      return await this.#o.cache.get(id, this.#tenant.id, this.#ttl, () => this.#use(() => this.#indexRootKey(n, write), (root) => derive(root, ref)))
    } catch (e) {
      if (e instanceof NoSuchKey) return undefined
      throw e
    }
  }

  #columnId(ref: ColumnKeyRef, n: number): string {
    let byRef = columnIdMemo.get(this.#tenant)
    if (!byRef) {
      byRef = new Map()
      columnIdMemo.set(this.#tenant, byRef)
    }
    let ids = byRef.get(ref)
    if (!ids) {
      ids = []
      byRef.set(ref, ids)
    }
    let id = ids[n]
    if (id === undefined) {
      const b = this.#tenant.key!
      id = `${this.#tenant.id}|${this.#tx.region}|column|${n}|${ref.table}.${ref.column}|${b.provider}|${b.keyId}`
      ids[n] = id
    }
    return id
  }

  /** The index keys of this tenant in this region, as of the current directory entry (no I/O). */
  #indexKeysCached(): IndexKeys | undefined {
    return indexKeysMemo.get(this.#tenant)?.get(this.#tx.region)
  }

  /**
   * Which index keys exist: read from the region once per directory entry (an index-key rotation
   * changes the entry after each of its steps). No index key yet: number 1, created on first use.
   */
  async #indexKeys(): Promise<IndexKeys> {
    const hit = this.#indexKeysCached()
    if (hit) return hit
    const entry = this.#tenant
    const r = await this.#tx.session.query<{ key_number: number; status: string }>(
      "SELECT key_number, status FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'index' ORDER BY key_number DESC", [entry.id])
    const st = indexKeysOf(r.rows.map((row) => ({ keyNumber: Number(row.key_number), status: row.status })))
    let byRegion = indexKeysMemo.get(entry)
    if (!byRegion) {
      byRegion = new Map()
      indexKeysMemo.set(entry, byRegion)
    }
    byRegion.set(this.#tx.region, st)
    return st
  }

  #context(purpose: Purpose, n: number) {
    return keyWrapContext(this.#tenant.id, this.#tx.region, purpose, n)
  }

  /** Reserves a block of the active data key's budget; creates the next data key when spent. */
  async #reserve(binding: KeyBinding): Promise<Budget> {
    for (let attempt = 0; attempt < 5; attempt++) {
      const g = await this.#tx.records.reserveDataKeyBudget(this.#o.reservationBlock)
      if (g.keyNumber !== null) return { keyNumber: g.keyNumber, next: g.start, end: g.start + g.granted }
      const grant = Math.min(this.#o.reservationBlock, this.#o.maxEncryptionsPerKey)
      if (await this.#create(binding, 'data', g.nextKeyNumber, grant)) return { keyNumber: g.nextKeyNumber, next: 0, end: grant }
      // Another transaction created that key first; take its budget on the next pass.
    }
    throw new DomicileError('ERR_CONFLICT', `Could not reserve data-key budget for tenant "${this.#tenant.id}" under contention. Retry the operation.`)
  }

  /** Generates, wraps and stores a new key; false when another transaction created it first. */
  async #create(binding: KeyBinding, purpose: Purpose, n: number, reserved: number): Promise<boolean> {
    const provider = await this.#o.provider(binding.provider)
    const raw = randomBytes(32)
    try {
      const wrapped = await provider.wrapKey({ keyId: binding.keyId, plaintextKey: raw, context: this.#context(purpose, n) }, { audit: transactionAudit(this.#tx).sink() })
      const stored = await this.#tx.records.insertKey({
        purpose, keyNumber: n, wrapped: wrapped.ciphertext, provider: binding.provider, keyId: binding.keyId,
        reserved, maxEncryptions: purpose === 'data' ? this.#o.maxEncryptionsPerKey : 0,
      })
      if (!stored) return false
      const id = this.#cacheId(purpose, n, binding.provider, binding.keyId)
      await this.#o.cache.load(id, this.#tenant.id, this.#ttl, async () => Buffer.from(raw))
      // If this transaction rolls back, the key row vanishes: so must the cached plaintext.
      this.#tx.onRollback(() => this.#o.cache.invalidate(id))
      return true
    } finally {
      raw.fill(0)
    }
  }

  /**
   * Index root key `n` (blind indexes). The first one (number 1, when it is the current one) is
   * created on first use. Use it synchronously.
   */
  async #indexRootKey(n: number, write: number): Promise<Uint8Array> {
    try {
      return await this.#key('index', n)
    } catch (e) {
      if (!(e instanceof NoSuchKey) || n !== 1 || write !== 1) throw e
      const binding = await this.#checkAsync()
      await this.#create(binding, 'index', 1, 0)
      return this.#key('index', 1)
    }
  }

  /** A key from the cache, or read from the store and unwrapped. Check the key state before and after. */
  async #key(purpose: Purpose, n: number): Promise<Uint8Array> {
    // Fast path: the key this tenant's current binding wrapped.
    const hot = this.#o.cache.peek(this.#boundId(purpose, n))
    if (hot) return hot
    const r = await this.#tx.session.query<{ wrapped: Uint8Array; provider: string; key_id: string }>(
      'SELECT wrapped, provider, key_id FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3', [this.#tenant.id, purpose, n])
    const row = r.rows[0]
    if (!row) {
      if (purpose === 'index') throw new NoSuchKey()
      throw new DecryptionFailedError()
    }
    const id = this.#cacheId(purpose, n, row.provider, row.key_id)
    const tenantId = this.#tenant.id
    return this.#o.cache.get(id, tenantId, this.#ttl, async () => {
      // Checked once more right before the provider call (a revoke may have come in during the read).
      await this.#checkAsync()
      const provider = await this.#o.provider(row.provider)
      // Recorded in the tenant's region, with the transaction that needed the key.
      return provider.unwrapKey({ keyId: row.key_id, ciphertext: new Uint8Array(row.wrapped), context: this.#context(purpose, n) }, { audit: transactionAudit(this.#tx).sink() })
    })
  }
}

function ttlOf(o: KeyringOptions, tenant: TenantRecord): number {
  return tenant.cacheTtlMs ?? (tenant.key ? o.cacheTtlMs[tenant.key.custody] : 0)
}

class NoSuchKey extends Error {}

function indexKeysChanged(tenantId: string): DomicileError {
  return new DomicileError('ERR_CONFLICT', `The blind-index keys of tenant "${tenantId}" changed while this transaction used them (an index-key rotation). Retry the operation.`)
}

/** Per directory entry (a new entry object on every change): cache ids by purpose and number. */
const idMemo = new WeakMap<TenantRecord, Map<string | number | object, string>>()
/** Per directory entry: column-key cache ids by searchable column and index key number. */
const columnIdMemo = new WeakMap<TenantRecord, Map<ColumnKeyRef, string[]>>()
/** Per directory entry and region: the tenant's index keys. */
const indexKeysMemo = new WeakMap<TenantRecord, Map<string, IndexKeys>>()

/** The index keys a transaction writes under and searches under. */
export interface IndexKeys {
  /** New blind indexes are computed under this index key. */
  readonly write: number
  /** An equality search looks under each of these (the write key first). */
  readonly search: readonly number[]
}

/**
 * The index keys as the rows of domicile_data_keys (purpose 'index') say: writes use the highest
 * 'active' key; searches cover every key held ('retired' = searched, not written). No row: key 1,
 * created on first use.
 */
export function indexKeysOf(rows: ReadonlyArray<{ keyNumber: number; status: string }>): IndexKeys {
  if (rows.length === 0) return Object.freeze({ write: 1, search: Object.freeze([1]) })
  const numbers = rows.map((r) => r.keyNumber)
  const active = rows.filter((r) => r.status === 'active').map((r) => r.keyNumber)
  const write = active.length > 0 ? Math.max(...active) : Math.max(...numbers)
  return Object.freeze({ write, search: Object.freeze([write, ...numbers.filter((n) => n !== write).sort((a, b) => b - a)]) })
}

/** A searchable column, as a stable object (the schema's) naming its table and column. */
export interface ColumnKeyRef {
  readonly table: string
  readonly column: string
}

/**
 * The wrap context of a tenant's data or index key: tenant, region, key number, purpose. A wrapped
 * key copied to another region (or tenant, or number) does not unwrap there; moving a tenant
 * rewraps its keys for the new region's context through the provider.
 */
export function keyWrapContext(tenantId: string, region: string, purpose: 'data' | 'index', keyNumber: number): { tenantId: string; region: string; dataKeyId: string; purpose: 'data' | 'index' } {
  return { tenantId, region, dataKeyId: String(keyNumber), purpose }
}
