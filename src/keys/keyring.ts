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
 */
import { randomBytes } from 'node:crypto'
import type { KeyBinding, TenantRecord } from '../control-plane/tenant-directory.js'
import { DecryptionFailedError, DomicileError } from '../errors.js'
import type { TenantTransaction } from '../regions/router.js'
import type { DataKeyCache } from './data-key-cache.js'
import type { Custody, KeyProvider } from './key-provider.js'

export interface KeyringOptions {
  /** Resolves a provider instance name to its (runtime-wrapped) provider. */
  readonly provider: (name: string) => Promise<KeyProvider>
  readonly cache: DataKeyCache
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

/** Refuses use of a tenant's key on our side of the kill switch, before any provider call. */
export function assertKeyUsable(tenant: TenantRecord): KeyBinding {
  /* Precondition: tenant must have a key binding. */
  if (!tenant.key) {
    throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenant.id}" has no key binding, so it cannot hold sensitive fields. Provision one with "domicile tenant add ${tenant.id} --custody kms|byok|hyok".`)
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
}

export class TenantKeys {
  readonly #o: KeyringOptions
  readonly #budgets: Map<string, Budget>
  readonly #tenant: TenantRecord
  readonly #tx: TenantTransaction
  readonly #ttl: number
  readonly #budgetKey: string
  /** Budget reserved in this transaction, not yet committed. */
  #local: Budget | undefined
  #hooked = false

  constructor(o: KeyringOptions, budgets: Map<string, Budget>, tenant: TenantRecord, tx: TenantTransaction) {
    this.#o = o
    this.#budgets = budgets
    this.#tenant = tenant
    this.#tx = tx
    this.#ttl = tenant.cacheTtlMs ?? (tenant.key ? o.cacheTtlMs[tenant.key.custody] : 0)
    this.#budgetKey = `${tenant.id}|${tx.region}`
  }

  #cacheId(purpose: Purpose, n: number, provider: string, keyId: string): string {
    return `${this.#tenant.id}|${this.#tx.region}|${purpose}|${n}|${provider}|${keyId}`
  }

  /** Cache ids under the current binding, memoised per directory entry (hot path: no string building). */
  #boundId(purpose: Purpose, n: number): string {
    // Memo keys: the key number for data keys, a constant for the index root key (built strings
    // would be hashed afresh on every call).
    return this.#memo(purpose === 'data' ? n : INDEX_MEMO, () => {
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

  /** Synchronous hit path: the data key if it is cached under the current binding. */
  peekDataKey(keyNumber: number): Uint8Array | undefined {
    assertKeyUsable(this.#tenant)
    return this.#o.cache.peek(this.#boundId('data', keyNumber))
  }

  /**
   * Synchronous hit path for sealing: consumes one encryption of an already reserved budget when
   * its key is cached; undefined when a reservation or an unwrap is needed (use encryptionKey()).
   */
  tryEncryptionKey(): { keyNumber: number; key: Uint8Array } | undefined {
    assertKeyUsable(this.#tenant)
    const b = this.#usableBudget()
    if (!b) return undefined
    const key = this.#o.cache.peek(this.#boundId('data', b.keyNumber))
    if (!key) return undefined
    b.next++
    return { keyNumber: b.keyNumber, key }
  }

  /**
   * The HMAC key of one searchable column, derived from the index root key and kept in the
   * data-key cache with the tenant's other keys (zeroed and revoked with them).
   */
  columnIndexKey(ref: ColumnKeyRef, derive: (root: Uint8Array, ref: ColumnKeyRef) => Uint8Array): Uint8Array | Promise<Uint8Array> {
    assertKeyUsable(this.#tenant)
    const id = this.#memo(ref, () => {
      const b = this.#tenant.key!
      return `${this.#tenant.id}|${this.#tx.region}|column|${ref.table}.${ref.column}|${b.provider}|${b.keyId}`
    })
    const hit = this.#o.cache.peek(id)
    if (hit) return hit
    return this.#o.cache.load(id, this.#tenant.id, this.#ttl, async () => derive(await this.indexRootKey(), ref))
  }

  #context(purpose: Purpose, n: number) {
    return { tenantId: this.#tenant.id, region: this.#tx.region, dataKeyId: String(n), purpose }
  }

  /**
   * The data key to seal one value with now; one encryption of its budget is consumed.
   * Budget reserved by this transaction stays private to it until it commits (a concurrent
   * transaction must not seal under a reservation that may still roll back); after the commit the
   * rest of the block is shared with later transactions of this process.
   */
  async encryptionKey(): Promise<{ keyNumber: number; key: Uint8Array }> {
    const binding = assertKeyUsable(this.#tenant)
    let b = this.#usableBudget()
    if (!b) {
      b = await this.#reserve(binding)
      this.#local = b
      if (!this.#hooked) {
        this.#hooked = true
        this.#tx.onCommit(() => {
          const mine = this.#local
          const cur = this.#budgets.get(this.#budgetKey)
          if (mine && hasRoom(mine) && !(cur && hasRoom(cur))) this.#budgets.set(this.#budgetKey, mine)
        })
        this.#tx.onRollback(() => {
          this.#local = undefined
        })
      }
    }
    b.next++
    return { keyNumber: b.keyNumber, key: await this.dataKey(b.keyNumber) }
  }

  /** This transaction's own reservation if it has room, else the process's committed one, if any. */
  #usableBudget(): Budget | undefined {
    const local = this.#local
    if (local && hasRoom(local)) return local
    const shared = this.#budgets.get(this.#budgetKey)
    return shared && hasRoom(shared) ? shared : undefined
  }

  /** Reserves a block of the active data key's budget; creates the next data key when spent. */
  async #reserve(binding: KeyBinding): Promise<Budget> {
    const s = this.#tx.session
    for (let attempt = 0; attempt < 5; attempt++) {
      const r = await s.query<{ key_number: number; reserved: string; max: string }>(
        `SELECT key_number, encryptions_reserved::text AS reserved, max_encryptions::text AS max FROM domicile_data_keys
         WHERE tenant_id = $1 AND purpose = 'data' AND status = 'active' ORDER BY key_number DESC LIMIT 1 FOR UPDATE`, [this.#tenant.id])
      const row = r.rows[0]
      if (row) {
        const reserved = Number(row.reserved)
        const max = Number(row.max)
        if (reserved < max) {
          const grant = Math.min(this.#o.reservationBlock, max - reserved)
          await s.query(`UPDATE domicile_data_keys SET encryptions_reserved = encryptions_reserved + $3 WHERE tenant_id = $1 AND purpose = 'data' AND key_number = $2`,
            [this.#tenant.id, row.key_number, grant])
          return { keyNumber: Number(row.key_number), next: reserved, end: reserved + grant }
        }
        await s.query(`UPDATE domicile_data_keys SET status = 'retired' WHERE tenant_id = $1 AND purpose = 'data' AND key_number = $2`, [this.#tenant.id, row.key_number])
      }
      const last = await s.query<{ n: number | null }>(`SELECT max(key_number) AS n FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = 'data'`, [this.#tenant.id])
      const n = Number(last.rows[0]?.n ?? 0) + 1
      const grant = Math.min(this.#o.reservationBlock, this.#o.maxEncryptionsPerKey)
      if (await this.#create(binding, 'data', n, grant)) return { keyNumber: n, next: 0, end: grant }
      // Another transaction created key n first; take its budget on the next pass.
    }
    throw new DomicileError('ERR_CONFLICT', `Could not reserve data-key budget for tenant "${this.#tenant.id}" under contention. Retry the operation.`)
  }

  /** Generates, wraps and stores a new key; false when another transaction created it first. */
  async #create(binding: KeyBinding, purpose: Purpose, n: number, reserved: number): Promise<boolean> {
    const provider = await this.#o.provider(binding.provider)
    const raw = randomBytes(32)
    try {
      const wrapped = await provider.wrapKey({ keyId: binding.keyId, plaintextKey: raw, context: this.#context(purpose, n) })
      const ins = await this.#tx.session.query(
        `INSERT INTO domicile_data_keys (tenant_id, purpose, key_number, wrapped, provider, key_id, encryptions_reserved, max_encryptions)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING key_number`,
        [this.#tenant.id, purpose, n, wrapped.ciphertext, binding.provider, binding.keyId, reserved, purpose === 'data' ? this.#o.maxEncryptionsPerKey : 0])
      if (ins.rows.length === 0) return false
      const id = this.#cacheId(purpose, n, binding.provider, binding.keyId)
      await this.#o.cache.load(id, this.#tenant.id, this.#ttl, async () => Buffer.from(raw))
      // If this transaction rolls back, the key row vanishes: so must the cached plaintext.
      this.#tx.onRollback(() => this.#o.cache.invalidate(id))
      return true
    } finally {
      raw.fill(0)
    }
  }

  /** A data key by number, for opening a sealed value. Use the result synchronously. */
  async dataKey(keyNumber: number): Promise<Uint8Array> {
    return this.#key('data', keyNumber)
  }

  /** The tenant's index root key (blind indexes), created on first use. */
  async indexRootKey(): Promise<Uint8Array> {
    try {
      return await this.#key('index', 1)
    } catch (e) {
      if (!(e instanceof NoSuchKey)) throw e
      const binding = assertKeyUsable(this.#tenant)
      await this.#create(binding, 'index', 1, 0)
      return this.#key('index', 1)
    }
  }

  async #key(purpose: Purpose, n: number): Promise<Uint8Array> {
    assertKeyUsable(this.#tenant)
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
    return this.#o.cache.get(id, this.#tenant.id, this.#ttl, async () => {
      const provider = await this.#o.provider(row.provider)
      return provider.unwrapKey({ keyId: row.key_id, ciphertext: new Uint8Array(row.wrapped), context: this.#context(purpose, n) })
    })
  }
}

class NoSuchKey extends Error {}

/** Per directory entry (a new entry object on every change): cache ids by purpose and number. */
const idMemo = new WeakMap<TenantRecord, Map<string | number | object, string>>()
const INDEX_MEMO = 'index'

/** A searchable column, as a stable object (the schema's) naming its table and column. */
export interface ColumnKeyRef {
  readonly table: string
  readonly column: string
}
