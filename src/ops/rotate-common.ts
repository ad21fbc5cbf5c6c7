/**
 * What the three key rotations share (src/ops/rotate-kek.ts, rotate-data-key.ts, reencrypt-data.ts,
 * rotate-index-key.ts): the instance's parts they need, taking over or starting their journal entry,
 * waiting until every process has seen a directory change and every older transaction has ended,
 * the tenant tables that hold sealed values, tenant keys unwrapped for a job (zeroed at the end),
 * new wrapped keys, audit in the region, and the crash points the SIGKILL tests use.
 */
import { randomBytes } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'
import type { TenantDirectory, TenantRecord, KeyBinding } from '../control-plane/tenant-directory.js'
import type { Domicile, DomicileParts } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import type { KeyProvider } from '../keys/key-provider.js'
import { keyWrapContext } from '../keys/keyring.js'
import type { ProviderRegistry } from '../keys/provider-registry.js'
import { DEFAULT_CELL, type Placement } from '../regions/placement.js'
import type { RegionRouter } from '../regions/router.js'
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'
import type { ResolvedColumn, ResolvedTable, Schema } from '../schema/define-schema.js'
import type { Operation, OperationJournal, OperationKind } from './operation-journal.js'
import { appendOperationAudit } from './ops-audit.js'
import { silentProgress, type Progress } from './progress.js'
import { rowKeyCast } from './tenant-rows.js'

/** Options every rotation takes. */
export interface RotationOptions {
  /** Who runs it, for the journal and the audit records. */
  readonly actor?: string
  readonly progress?: Progress
  /**
   * How long every process may take to see a directory change (push, else poll, else it stops
   * trusting its cache). Default: max(5 s, 10 × directoryPollMs) + directoryPollMs, the
   * directory's own fail-closed bound plus one poll.
   */
  readonly propagationMs?: number
  /**
   * A running operation of this kind whose journal entry was updated less than this long ago is
   * taken to be alive in another process, and is not taken over (ERR_OPERATION_RUNNING). Default 30 s.
   * After a crash, rerun once this has passed (or pass 0 when you know the other process is gone).
   */
  readonly staleAfterMs?: number
  /** Longest wait for transactions older than a step to end. Default 60 s. */
  readonly oldTransactionsTimeoutMs?: number
}

export interface RotationParts {
  readonly d: Domicile
  readonly parts: DomicileParts
  readonly router: RegionRouter
  readonly directory: TenantDirectory
  readonly providers: ProviderRegistry
  readonly journal: OperationJournal
  readonly schema: Schema
  readonly progress: Progress
  readonly actor: string | null
  readonly propagationMs: number
  readonly staleAfterMs: number
  readonly oldTransactionsTimeoutMs: number
  readonly maxEncryptionsPerKey: number
}

export function rotationParts(d: Domicile, opts: RotationOptions): RotationParts {
  const parts = internalsOf(d)
  // Key rotation needs key custody and the operations journal.
  if (!parts.providers || !parts.journal || !parts.keyring) {
    throw new DomicileError('ERR_KEY_PROVIDER_UNKNOWN', 'This instance has no key custody configured (keys.providers); there are no keys to rotate.')
  }
  const poll = parts.config?.directoryPollMs ?? 500
  return {
    d, parts, router: parts.router, directory: parts.directory, providers: parts.providers, journal: parts.journal, schema: parts.schema,
    progress: opts.progress ?? silentProgress,
    actor: opts.actor ?? null,
    propagationMs: opts.propagationMs ?? Math.max(5000, 10 * poll) + poll,
    staleAfterMs: opts.staleAfterMs ?? 30_000,
    oldTransactionsTimeoutMs: opts.oldTransactionsTimeoutMs ?? 60_000,
    maxEncryptionsPerKey: parts.config?.keys.maxEncryptionsPerKey ?? 2 ** 32,
  }
}

/**
 * The tenant's entry, if its key can be rotated now: it has a key binding in state 'enabled' and is
 * not moving between regions.
 */
export async function rotatableTenant(p: RotationParts, tenantId: string): Promise<TenantRecord & { key: KeyBinding }> {
  const t = await p.directory.get(tenantId)
  /* Precondition: the tenant has a key binding. */
  if (!t.key) throw new DomicileError('ERR_KEY_NOT_FOUND', `Tenant "${tenantId}" has no key binding, so it has no keys to rotate.`)
  /* Precondition: the tenant's key is usable (not revoked, destroyed or awaiting import). */
  if (t.keyState !== 'enabled') {
    const code = t.keyState === 'destroyed' ? 'ERR_KEY_DESTROYED' : t.keyState === 'pending-import' ? 'ERR_KEY_PENDING_IMPORT' : 'ERR_KEY_REVOKED'
    throw new DomicileError(code, `The key of tenant "${tenantId}" is ${t.keyState}; keys can be rotated only while it is enabled.`)
  }
  // A tenant in the middle of a move is not rotated.
  if (t.status === 'moving') throw new DomicileError('ERR_TENANT_MOVING', `Tenant "${tenantId}" is moving between regions; rotate its keys once the move is done.`)
  return t as TenantRecord & { key: KeyBinding }
}

/**
 * Refuses while a column migration (encrypt/decrypt in place) runs: its rows live in a shadow column
 * this job does not see, so neither a re-encryption nor an index rebuild could vouch for them.
 */
export async function assertNoColumnMigration(p: RotationParts): Promise<void> {
  const ops = await p.journal.list({ limit: 1000 })
  const m = ops.find((o) => o.status === 'running' && (o.kind === 'encrypt-column' || o.kind === 'decrypt-column'))
  /* Precondition: no column migration is running. */
  if (m) throw new DomicileError('ERR_OPERATION_RUNNING', `Column migration #${m.id} (${m.kind} ${m.target}) is running; rotate data or index keys once it is done.`)
}

/**
 * The running operation of `kind` on the tenant, taken over when its driver is gone (journal entry
 * not updated for `staleAfterMs`, or waiting for the customer), else a new one started with `first`.
 */
export async function claimOperation<C extends Record<string, unknown>>(
  p: RotationParts, kind: OperationKind, tenantId: string, first: { state: string; checkpoint: C }, opts: { idleStates?: readonly string[] } = {},
): Promise<{ op: Operation<C>; resumed: boolean }> {
  const running = await p.journal.running<C>(tenantId)
  if (running) {
    /* Precondition: one operation at a time per tenant. */
    if (running.kind !== kind) {
      throw new DomicileError('ERR_OPERATION_RUNNING', `Operation #${running.id} (${running.kind}, at "${running.state}") is running for tenant "${tenantId}". Let it finish (or resume or abort it) first.`)
    }
    const idle = opts.idleStates?.includes(running.state) === true
    /* Precondition: a running operation is taken over only when no process drives it any more. */
    if (!idle && Date.now() - running.updatedAt.getTime() < p.staleAfterMs) {
      throw new DomicileError('ERR_OPERATION_RUNNING', `Operation #${running.id} (${kind}) on tenant "${tenantId}" was active ${Math.round((Date.now() - running.updatedAt.getTime()) / 1000)} s ago, so another process may still drive it. Rerun after ${Math.round(p.staleAfterMs / 1000)} s without progress to resume it.`)
    }
    return { op: running, resumed: true }
  }
  const op = await p.journal.start<C>({ kind, tenantId, target: tenantId, state: first.state, checkpoint: first.checkpoint, ...(p.actor ? { actor: p.actor } : {}) })
  return { op, resumed: false }
}

/** The store an operation's checkpoint names: its region and cell (checkpoints written before cells: "main"). */
export function storeOf(cp: { readonly region: string; readonly cell?: unknown }): Placement {
  return { region: cp.region, cell: typeof cp.cell === 'string' ? cp.cell : DEFAULT_CELL }
}

/** Whether the tenant still lives where the operation's checkpoint says it started. */
export function stillAt(cp: { readonly region: string; readonly cell?: unknown }, t: Placement): boolean {
  const at = storeOf(cp)
  return at.region === t.region && at.cell === t.cell
}

/** Records an operation's event in the tenant's region (start, checkpoint, end, error); never key material. */
export async function auditOperation(p: RotationParts, region: Placement, tenantId: string, op: Operation<Record<string, unknown>> | { id: number; kind: OperationKind },
  event: 'start' | 'resume' | 'checkpoint' | 'end' | 'error', detail: Record<string, unknown> = {}): Promise<void> {
  await appendOperationAudit(p.router, region, tenantId, [{
    type: `operation.${event}`, outcome: event === 'error' ? 'error' : 'ok', actor: p.actor,
    detail: { operation: op.id, kind: op.kind, ...detail },
  }])
}

/**
 * Waits until every process has seen a directory change made before this call (`propagationMs`),
 * then until every transaction that had an id when the wait ended has ended, in the region. After
 * this, no transaction of the region still works under the directory entry the change replaced.
 */
export async function waitForQuiescence(p: RotationParts, region: Placement): Promise<void> {
  await delay(p.propagationMs)
  await waitForOlderTransactions(p, region)
}

/** Waits until every transaction of the region store that had started writing when called has ended. */
export async function waitForOlderTransactions(p: RotationParts, region: Placement): Promise<void> {
  const deadline = Date.now() + p.oldTransactionsTimeoutMs
  await p.router.withRegionAdmin(region, async (s) => {
    const mark = (await s.query<{ mark: string }>('SELECT txid_snapshot_xmax(txid_current_snapshot())::text AS mark')).rows[0]!.mark
    for (;;) {
      const r = await s.query<{ done: boolean }>('SELECT txid_snapshot_xmin(txid_current_snapshot()) >= $1::bigint AS done', [mark])
      if (r.rows[0]?.done === true) return
      if (Date.now() > deadline) {
        throw new DomicileError('ERR_CONFLICT', `A transaction in region "${p.router.label(region)}" older than this step is still open after ${Math.round(p.oldTransactionsTimeoutMs / 1000)} s. End long-running transactions and rerun the command to resume.`)
      }
      await delay(50)
    }
  })
}

/** Runs `fn` in one owner transaction on the region store. */
export function regionTransaction<T>(p: RotationParts, region: Placement, fn: (s: StoreSession) => Promise<T>): Promise<T> {
  return p.router.withRegionAdmin(region, async (s) => {
    await s.exec('BEGIN')
    try {
      const out = await fn(s)
      await s.exec('COMMIT')
      return out
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => undefined)
      throw e
    }
  })
}

/** Tenant tables with sealed columns stored as bytea in the region (a column still being migrated to sealed storage is left out). */
export interface SealedTable {
  readonly table: ResolvedTable
  readonly columns: readonly ResolvedColumn[]
  /** `col.sql type` cast for the primary key in parameters ('' for text). */
  readonly pkCast: string
}

export async function sealedTables(p: RotationParts, region: Placement, filter: (c: ResolvedColumn) => boolean = () => true): Promise<SealedTable[]> {
  const r = await p.router.withRegionAdmin(region, (s) => s.query<{ table_name: string; column_name: string }>(
    "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = current_schema() AND data_type = 'bytea'"))
  const bytea = new Set(r.rows.map((row) => `${row.table_name}.${row.column_name}`))
  const out: SealedTable[] = []
  for (const t of p.schema.tables.values()) {
    if (t.scope !== 'tenant') continue
    const cols = t.sensitiveColumns.filter((c) => filter(c) && bytea.has(`${t.name}.${c.name}`))
    if (cols.length === 0) continue
    out.push({ table: t, columns: cols, pkCast: rowKeyCast(t) })
  }
  return out.sort((a, b) => a.table.name.localeCompare(b.table.name))
}

/** The SQL text of a header key-number test: bytes 2..5 of a sealed value (u32be key number). */
export const keyNumberSql = (col: ResolvedColumn): string => `substring(${q(col.name)} from 2 for 4)`

export function u32be(n: number): Buffer {
  const b = Buffer.alloc(4)
  b.writeUInt32BE(n, 0)
  return b
}

/**
 * A tenant's data or index keys unwrapped for one job on an owner session, by number, each
 * unwrapped once through the provider named in its row; `dispose()` zeroes them all.
 */
export class JobKeys {
  readonly #p: RotationParts
  readonly #tenantId: string
  readonly #region: string
  readonly #purpose: 'data' | 'index'
  readonly #keys = new Map<number, Uint8Array>()

  /** `where` is the tenant's store; keys are wrapped for its region (the cell is not part of the wrap context). */
  constructor(p: RotationParts, tenantId: string, where: Placement, purpose: 'data' | 'index') {
    this.#p = p
    this.#tenantId = tenantId
    this.#region = where.region
    this.#purpose = purpose
  }

  /** Key `n` (use it synchronously or keep it until dispose); the opaque decryption error when the region holds no such key. */
  async get(s: StoreSession, n: number): Promise<Uint8Array> {
    const hit = this.#keys.get(n)
    if (hit) return hit
    const r = await s.query<{ wrapped: Uint8Array; provider: string; key_id: string }>(
      'SELECT wrapped, provider, key_id FROM domicile_data_keys WHERE tenant_id = $1 AND purpose = $2 AND key_number = $3', [this.#tenantId, this.#purpose, n])
    const row = r.rows[0]
    if (!row) throw new DomicileError('ERR_DECRYPTION_FAILED', 'A stored value names a data key the region does not hold.')
    const provider = await this.#p.providers.runtime(row.provider)
    const key = await provider.unwrapKey({ keyId: row.key_id, ciphertext: new Uint8Array(row.wrapped), context: keyWrapContext(this.#tenantId, this.#region, this.#purpose, n) })
    const mine = new Uint8Array(key)
    key.fill(0)
    this.#keys.set(n, mine)
    return mine
  }

  /** Keeps a key this job made itself (takes ownership; zeroed at dispose). */
  adopt(n: number, key: Uint8Array): void {
    this.#keys.get(n)?.fill(0)
    this.#keys.set(n, key)
  }

  dispose(): void {
    for (const k of this.#keys.values()) k.fill(0)
    this.#keys.clear()
  }
}

/**
 * A new random 256-bit key wrapped under the tenant's KEK for (tenant, region, purpose, n): the raw
 * key (the caller zeroes or adopts it) and the wrapped bytes to store.
 */
export async function newWrappedKey(provider: KeyProvider, binding: KeyBinding, tenantId: string, region: string, purpose: 'data' | 'index', n: number): Promise<{ raw: Uint8Array; wrapped: Uint8Array }> {
  const raw = new Uint8Array(randomBytes(32))
  try {
    const w = await provider.wrapKey({ keyId: binding.keyId, plaintextKey: raw, context: keyWrapContext(tenantId, region, purpose, n) })
    return { raw, wrapped: w.ciphertext }
  } catch (e) {
    raw.fill(0)
    throw e
  }
}

/**
 * A crash point for the SIGKILL tests: the process kills itself here when DOMICILE_TEST_KILL_AT
 * names this point. Inert unless that variable is set.
 */
export function crashPoint(name: string): void {
  if (process.env.DOMICILE_TEST_KILL_AT === name) process.kill(process.pid, 'SIGKILL')
}

/** The batch size of a job: `given`, else `fallback`. */
export function batchSizeOf(given: number | undefined, fallback: number): number {
  const n = given ?? fallback
  /* Precondition: a batch holds 1 to 10000 rows (or key rows). */
  if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new DomicileError('ERR_INPUT_INVALID', 'batchSize: expected an integer from 1 to 10000.', { path: 'batchSize' })
  return n
}

/** Keeps a job at or below `rowsPerSecond` (undefined: no limit). */
export class Throttle {
  readonly #rate: number | undefined
  #start: number | undefined
  #done = 0

  constructor(rowsPerSecond: number | undefined) {
    /* Precondition: a rate limit is a positive number of rows per second. */
    if (rowsPerSecond !== undefined && (!Number.isFinite(rowsPerSecond) || rowsPerSecond <= 0)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'The rows-per-second limit must be a positive number.', { path: 'maxRowsPerSecond' })
    }
    this.#rate = rowsPerSecond
  }

  /** Call before the first batch: the clock starts here (idempotent). */
  begin(): void {
    this.#start ??= Date.now()
  }

  /** Call after each batch of `rows`: waits until the average rate is back at the limit. */
  async after(rows: number): Promise<void> {
    this.begin()
    this.#done += rows
    if (this.#rate === undefined) return
    const due = this.#start! + (this.#done / this.#rate) * 1000
    const wait = due - Date.now()
    if (wait > 0) await delay(wait)
  }
}
