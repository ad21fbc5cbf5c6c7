/**
 * Field-level encryption for one tenant transaction: seals sensitive values under the tenant's
 * current data key (AES-256-GCM, AAD = format version, key number, tenant, table, column, row
 * key), computes blind indexes under per-column keys derived from the tenant's index root key,
 * wraps stored ciphertext as SealedValues, and reveals them deliberately.
 *
 * Every reveal attempt (each value passed to `reveal` / `revealRows`) leaves exactly one audit
 * record (tenant, table, column, row key, purpose, actor, outcome, error code; never plaintext)
 * in the tenant's region, whatever the failure path: records go in through the transaction's
 * records (src/regions/tenant-records.ts); if the transaction rolls back, or could not take them
 * because an error aborted it, they are written after the rollback in a transaction of their own
 * (marked `rolledBack`). Plaintext is returned only once its records are written.
 *
 * Keys come from the keyring, which checks the tenant's key state at every use (revocation
 * reaches open scopes) and hands each key to a synchronous callback.
 */
import { DomicileError, isDomicileError } from '../errors.js'
import type { TenantRecord } from '../control-plane/tenant-directory.js'
import type { FieldProtection } from '../data/field-protection.js'
import type { Row } from '../data/repository.js'
import type { RevealOptions, Revealer } from '../data/tenant-scope.js'
import type { Keyring, TenantKeys } from '../keys/keyring.js'
import { transactionAudit } from '../audit/transaction-audit.js'
import type { TenantTransaction } from '../regions/router.js'
import type { AuditRecord } from '../regions/tenant-records.js'
import type { Normalization, ResolvedColumn, ResolvedTable } from '../schema/define-schema.js'
import { blindIndex, deriveColumnIndexKey, normalizeForIndex } from './blind-index.js'
import { prepareColumn, readKeyNumber, type FieldPlain, type PreparedColumn } from './field-codec.js'
import type { ScopeFieldsFactory } from './scope-fields-factory.js'
import { adoptSealed, isSealedValue, sealedBytes, sealedLocation } from './sealed-value.js'

const MAX_PURPOSE = 200
/**
 * Per schema column and tenant, made once and shared across transactions (no key material): the
 * prepared AAD prefix for sealing and opening, the names, and the blind-index options.
 */
interface ColumnRef {
  readonly tenantId: string
  readonly table: string
  readonly column: string
  readonly prepared: PreparedColumn
  readonly options: { readonly normalize: readonly Normalization[]; readonly bytes: number }
}
const columnRefs = new WeakMap<ResolvedColumn, Map<string, ColumnRef>>()
function columnRef(tenantId: string, table: ResolvedTable, col: ResolvedColumn): ColumnRef {
  let byTenant = columnRefs.get(col)
  if (!byTenant) {
    byTenant = new Map()
    columnRefs.set(col, byTenant)
  }
  let ref = byTenant.get(tenantId)
  if (!ref) {
    const s = col.sensitive
    ref = Object.freeze({
      tenantId, table: table.name, column: col.name,
      prepared: prepareColumn({ tenantId, table: table.name, column: col.name }),
      options: Object.freeze({ normalize: s ? s.normalize : [], bytes: s ? s.indexBytes : 4 }),
    })
    if (byTenant.size >= 10_000) byTenant.clear()
    byTenant.set(tenantId, ref)
  }
  return ref
}
const deriveForRef = (root: Uint8Array, ref: { table: string; column: string }): Uint8Array =>
  deriveColumnIndexKey(root, { tenantId: (ref as ColumnRef).tenantId, table: ref.table, column: ref.column })

function badPlain(table: ResolvedTable, col: ResolvedColumn, expected: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', `${table.name}.${col.name}: expected ${expected}.`, { path: `${table.name}.${col.name}` })
}

function checkPlain(table: ResolvedTable, col: ResolvedColumn, v: unknown): FieldPlain {
  switch (col.type) {
    case 'text':
    case 'uuid':
      if (typeof v !== 'string') throw badPlain(table, col, 'a string')
      return v
    case 'bytea':
      if (!(v instanceof Uint8Array)) throw badPlain(table, col, 'a Uint8Array')
      return v
    case 'integer':
    case 'bigint':
    case 'numeric':
      if (typeof v !== 'number' && typeof v !== 'string') throw badPlain(table, col, 'a number or digit string')
      return v
    case 'boolean':
      if (typeof v !== 'boolean') throw badPlain(table, col, 'a boolean')
      return v
    case 'timestamptz':
      if (v instanceof Date) return v.toISOString()
      if (typeof v !== 'string') throw badPlain(table, col, 'a Date or ISO string')
      return v
    default:
      return v as FieldPlain
  }
}

function indexInput(v: unknown): string | Uint8Array {
  if (typeof v === 'string' || v instanceof Uint8Array) return v
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v)
  if (v instanceof Date) return v.toISOString()
  throw new DomicileError('ERR_QUERY_UNSUPPORTED', 'Equality search on a sensitive column takes a plain value (string, number, boolean, bytes).')
}

/** Reveal failures that say "no" rather than "something broke". */
const DENIED_CODES: ReadonlySet<string> = new Set(['ERR_DECRYPTION_FAILED', 'ERR_KEY_REVOKED', 'ERR_KEY_PENDING_IMPORT', 'ERR_KEY_NOT_FOUND', 'ERR_INPUT_INVALID'])
const codeOf = (e: unknown): string => (isDomicileError(e) ? e.code : 'ERR_UNKNOWN')

export class FieldEncryptor implements FieldProtection, Revealer {
  readonly #tenant: TenantRecord
  readonly #tx: TenantTransaction
  readonly #keys: TenantKeys
  #lastProbe: { ref: ColumnRef; value: unknown; probe: string | Uint8Array } | undefined
  /** Data keys copied by holdKeyFor, by key number; zeroed by releaseHeldKeys. */
  #held: Map<number, Uint8Array> | undefined
  #releaseOnRollback = false

  constructor(tenant: TenantRecord, tx: TenantTransaction, keys: TenantKeys) {
    this.#tenant = tenant
    this.#tx = tx
    this.#keys = keys
  }

  check(table: ResolvedTable, col: ResolvedColumn, value: unknown): void {
    checkPlain(table, col, value)
  }

  seal(table: ResolvedTable, col: ResolvedColumn, rowKey: string, value: unknown): Uint8Array | Promise<Uint8Array> {
    const plain = checkPlain(table, col, value)
    const prep = columnRef(this.#tenant.id, table, col).prepared
    return this.#keys.withEncryptionKey((key, keyNumber) => prep.seal(key, keyNumber, rowKey, plain))
  }

  index(table: ResolvedTable, col: ResolvedColumn, value: unknown): Uint8Array | Promise<Uint8Array> {
    const s = col.sensitive
    if (!s || !s.searchable) throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${table.name}.${col.name} is not searchable.`)
    const input = indexInput(value)
    const ref = columnRef(this.#tenant.id, table, col)
    return this.#keys.withColumnIndexKey(ref, deriveForRef, (k) => blindIndex(k, input, ref.options))
  }

  indexProbes(table: ResolvedTable, col: ResolvedColumn, value: unknown): readonly Uint8Array[] | Promise<readonly Uint8Array[]> {
    const s = col.sensitive
    if (!s || !s.searchable) throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${table.name}.${col.name} is not searchable.`)
    const input = indexInput(value)
    const ref = columnRef(this.#tenant.id, table, col)
    return this.#keys.withColumnIndexKeys(ref, deriveForRef, (keys) => keys.map((k) => blindIndex(k, input, ref.options)))
  }

  wrap(table: ResolvedTable, col: ResolvedColumn, rowKey: string, stored: Uint8Array): unknown {
    // The data layer owns `stored` (a fresh driver buffer, or the output of seal): no copy.
    return adoptSealed(stored, columnRef(this.#tenant.id, table, col), rowKey)
  }

  matchesHeld(table: ResolvedTable, col: ResolvedColumn, rowKey: string, stored: Uint8Array, value: unknown): boolean {
    const key = this.#held?.get(readKeyNumber(stored))
    /* Precondition: the key was held by holdKeyFor (no key fetch may happen here: the transaction is over). */
    if (!key) throw new DomicileError('ERR_KEY_NOT_FOUND', `${table.name}.${col.name}: a data key needed to check a search result was not held. Retry the lookup.`)
    return this.#equal(table, col, rowKey, stored, value, key)
  }

  holdKeyFor(stored: Uint8Array): void | Promise<void> {
    const n = readKeyNumber(stored)
    if (this.#held?.has(n)) return
    if (!this.#held) {
      this.#held = new Map()
      if (!this.#releaseOnRollback) {
        this.#releaseOnRollback = true
        this.#tx.onRollback(() => this.releaseHeldKeys()) // a failed transaction never runs its filter
      }
    }
    const held = this.#held
    // A copy (the cache may zero its own), unless the keys were released meanwhile.
    const h = this.#keys.withDataKey(n, (key) => {
      if (this.#held === held) held.set(n, Uint8Array.from(key))
    })
    if (h instanceof Promise) return h
  }

  releaseHeldKeys(): void {
    if (!this.#held) return
    for (const k of this.#held.values()) k.fill(0)
    this.#held = undefined
  }

  #equal(table: ResolvedTable, col: ResolvedColumn, rowKey: string, stored: Uint8Array, value: unknown, key: Uint8Array): boolean {
    const ref = columnRef(this.#tenant.id, table, col)
    const opened = indexInput(ref.prepared.open(key, rowKey, stored))
    const probe = this.#probeFor(ref, value)
    if (typeof opened === 'string') {
      return typeof probe === 'string' && (ref.options.normalize.length > 0 ? normalizeForIndex(opened, ref.options.normalize) : opened) === probe
    }
    return probe instanceof Uint8Array && Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength).equals(probe)
  }

  /** The searched value as compared (normalised text, or bytes), kept for the candidates of one find. */
  #probeFor(ref: ColumnRef, value: unknown): string | Uint8Array {
    const last = this.#lastProbe
    if (last !== undefined && last.ref === ref && last.value === value) return last.probe
    const input = indexInput(value)
    const probe = typeof input === 'string' && ref.options.normalize.length > 0 ? normalizeForIndex(input, ref.options.normalize) : input
    this.#lastProbe = { ref, value, probe }
    return probe
  }

  async reveal(value: unknown, opts: RevealOptions): Promise<unknown> {
    const [row] = await this.#revealMany([value], opts)
    return row
  }

  async revealRows<R extends Row>(rows: readonly R[], opts: RevealOptions & { columns?: readonly string[] }): Promise<R[]> {
    const cells: Array<[number, string]> = []
    const values: unknown[] = []
    rows.forEach((row, i) => {
      for (const [k, v] of Object.entries(row)) {
        if (!isSealedValue(v)) continue
        if (opts?.columns && !opts.columns.includes(k)) continue
        cells.push([i, k])
        values.push(v)
      }
    })
    const opened = await this.#revealMany(values, opts)
    const out = rows.map((r) => ({ ...r }) as Row)
    cells.forEach(([i, k], j) => {
      out[i]![k] = opened[j]
    })
    return out as R[]
  }

  /**
   * Opens each value, and records one audit record per value whatever happens. Either every value
   * opens and the plaintexts are returned (outcome ok), or nothing is returned and the call fails
   * with the first failure; values that opened are then recorded as withheld (outcome denied).
   */
  async #revealMany(values: readonly unknown[], opts: RevealOptions): Promise<unknown[]> {
    const purpose = typeof opts?.purpose === 'string' && opts.purpose.trim() !== '' && opts.purpose.length <= MAX_PURPOSE ? opts.purpose : undefined
    const actorOk = opts?.actor === undefined || (typeof opts.actor === 'string' && opts.actor.length <= MAX_PURPOSE)
    const actor = actorOk && typeof opts?.actor === 'string' ? opts.actor : null
    const records: AuditRecord[] = []
    const out: unknown[] = []
    let failure: { error: unknown } | undefined
    for (const v of values) {
      let detail: Record<string, string | number> = purpose === undefined ? {} : { purpose }
      try {
        /* Precondition: a reveal states its purpose. */
        if (purpose === undefined) {
          throw new DomicileError('ERR_INPUT_INVALID', `reveal needs { purpose } (1-${MAX_PURPOSE} characters): why the plaintext is needed. It is recorded in the audit log.`)
        }
        if (!actorOk) throw new DomicileError('ERR_INPUT_INVALID', `reveal: actor must be a string of at most ${MAX_PURPOSE} characters.`)
        /* Precondition: only sealed values of this tenant are revealed in its scope. */
        if (!isSealedValue(v)) throw new DomicileError('ERR_INPUT_INVALID', 'reveal takes a sealed value read in this scope (a sensitive field of a row).')
        const loc = sealedLocation(v)
        // Another tenant's identifiers are not written into this tenant's audit log.
        if (loc.tenantId !== this.#tenant.id) throw new DomicileError('ERR_INPUT_INVALID', 'This sealed value belongs to another tenant; reveal it in that tenant\'s scope.')
        detail = { table: loc.table, column: loc.column, rowKey: String(loc.rowKey), purpose }
        const bytes = sealedBytes(v)
        const opened = this.#keys.withDataKey(readKeyNumber(bytes), (key) => prepareColumnFor(loc).open(key, loc.rowKey, bytes))
        out.push(opened instanceof Promise ? await opened : opened)
        records.push({ type: 'field.reveal', outcome: 'ok', actor, detail })
      } catch (e) {
        failure ??= { error: e }
        const code = codeOf(e)
        records.push({ type: 'field.reveal', outcome: DENIED_CODES.has(code) ? 'denied' : 'error', actor, detail: { ...detail, code } })
      }
    }
    if (failure !== undefined) {
      const code = codeOf(failure.error)
      for (let i = 0; i < records.length; i++) {
        const r = records[i]!
        if (r.outcome === 'ok') records[i] = { ...r, outcome: 'denied', detail: { ...r.detail, code, withheld: 1 } }
      }
      wipe(out)
      await this.#record(records).catch(() => undefined) // kept for after the rollback
      throw failure.error
    }
    try {
      await this.#record(records)
    } catch (e) {
      wipe(out)
      throw e
    }
    return out
  }

  /**
   * Writes the records in the transaction; kept for after its rollback when it cannot take them
   * (then an ok record becomes an error one: that plaintext is not returned).
   */
  #record(records: AuditRecord[]): Promise<void> {
    return transactionAudit(this.#tx).append(records, (r, e) => (r.outcome === 'ok' ? { ...r, outcome: 'error', detail: { ...r.detail, code: codeOf(e) } } : r))
  }
}

/** Zeroes revealed byte values that will not be returned. */
function wipe(values: unknown[]): void {
  for (const v of values) if (v instanceof Uint8Array) v.fill(0)
  values.length = 0
}

/** Reveal works from a sealed value's location (table and column names), not schema objects. */
const byLocation = new Map<string, PreparedColumn>()
function prepareColumnFor(loc: { tenantId: string; table: string; column: string }): PreparedColumn {
  const id = `${loc.tenantId}\u0000${loc.table}\u0000${loc.column}`
  let p = byLocation.get(id)
  if (!p) {
    if (byLocation.size >= 10_000) byLocation.clear()
    p = prepareColumn(loc)
    byLocation.set(id, p)
  }
  return p
}

/** Builds a FieldEncryptor per tenant transaction, for tenants with a key binding. */
export function fieldEncryption(keyring: Keyring): ScopeFieldsFactory {
  return {
    forTransaction(tenant: TenantRecord, tx: TenantTransaction) {
      if (!tenant.key) return undefined
      return new FieldEncryptor(tenant, tx, keyring.forTransaction(tenant, tx))
    },
  }
}

/**
 * For data-key rotation (src/ops/reencrypt-data.ts): opens `sealed` (a value of row `rowKey` of
 * `table.column` of tenant `tenantId`) with `oldKey` and seals what it holds under `newKey`, number
 * `newKeyNumber`, with the same AAD but for the key number, and a fresh random nonce. The content is
 * exactly what was sealed: text and bytes as they are, and JSON values as `JSON.stringify` wrote them
 * (parsing and writing that again gives the same text). Fails with the opaque decryption error when
 * `sealed` does not open. The caller counts the encryption against the new key's budget.
 */
export function resealField(oldKey: Uint8Array, newKey: Uint8Array, newKeyNumber: number, ctx: { tenantId: string; table: string; column: string; rowKey: string }, sealed: Uint8Array): Buffer {
  const col = prepareColumnFor(ctx)
  const plain = col.open(oldKey, ctx.rowKey, sealed)
  try {
    return col.seal(newKey, newKeyNumber, ctx.rowKey, plain)
  } finally {
    if (plain instanceof Uint8Array) plain.fill(0)
  }
}

/**
 * For index-key rotation (src/ops/rotate-index-key.ts): computes blind indexes of stored values of
 * one searchable column under index root key `indexRootKey`, exactly as a write would (same
 * derivation, normalisation and length). The column key is derived once; `dispose()` zeroes it.
 */
export function columnReindexer(tenantId: string, table: ResolvedTable, col: ResolvedColumn, indexRootKey: Uint8Array): { indexOf(dataKey: Uint8Array, rowKey: string, sealed: Uint8Array): Buffer; dispose(): void } {
  /* Precondition: only searchable sensitive columns have a blind index. */
  if (!col.sensitive || !col.sensitive.searchable) throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${table.name}.${col.name} is not searchable.`)
  const ref = columnRef(tenantId, table, col)
  const columnKey = deriveForRef(indexRootKey, ref)
  return {
    indexOf(dataKey, rowKey, sealed) {
      const opened = ref.prepared.open(dataKey, rowKey, sealed)
      try {
        return blindIndex(columnKey, indexInput(opened), ref.options)
      } finally {
        if (opened instanceof Uint8Array) opened.fill(0)
      }
    },
    dispose() {
      columnKey.fill(0)
    },
  }
}
