/**
 * The operations journal (control plane, `domicile_operations`): every online lifecycle operation
 * (tenant move, key rotation, data re-encryption, encrypt-in-place migration, key destruction)
 * records its kind, its target, where its state machine stands and its checkpoint, in the owner's
 * transactions. A process killed at any point leaves the journal saying what to resume or abort.
 * At most one operation runs per target (a tenant id, or a `table.column`): a unique index refuses a
 * second one, so two processes can never both drive the same tenant.
 */
import { DomicileError } from '../errors.js'
import { ownerTransaction } from '../regions/owner-transaction.js'
import type { StoreDriver, StoreSession } from '../regions/store-driver.js'

export type OperationKind = 'tenant-move' | 'key-rotate' | 'data-key-rotate' | 'index-key-rotate' | 'encrypt-column' | 'decrypt-column' | 'key-destroy'
export type OperationStatus = 'running' | 'done' | 'aborted' | 'failed'

export interface Operation<C = Record<string, unknown>> {
  readonly id: number
  readonly kind: OperationKind
  readonly tenantId: string | null
  /** What it works on: the tenant id, or `table.column` for a column migration. */
  readonly target: string
  readonly state: string
  readonly status: OperationStatus
  readonly checkpoint: C
  readonly actor: string | null
  readonly startedAt: Date
  readonly updatedAt: Date
  readonly finishedAt: Date | null
}

interface Row {
  id: string | number; kind: OperationKind; tenant_id: string | null; target: string; state: string; status: OperationStatus
  checkpoint: Record<string, unknown>; actor: string | null; started_at: Date | string; updated_at: Date | string; finished_at: Date | string | null
}

const toOperation = <C>(r: Row): Operation<C> => Object.freeze({
  id: Number(r.id), kind: r.kind, tenantId: r.tenant_id, target: r.target, state: r.state, status: r.status,
  checkpoint: r.checkpoint as C, actor: r.actor, startedAt: new Date(r.started_at), updatedAt: new Date(r.updated_at),
  finishedAt: r.finished_at === null ? null : new Date(r.finished_at),
})

export class OperationJournal {
  readonly #store: StoreDriver

  /** @param controlPlane the control-plane store; the journal writes with its owner login. */
  constructor(controlPlane: StoreDriver) {
    this.#store = controlPlane
  }

  #owner<T>(fn: (s: StoreSession) => Promise<T>): Promise<T> {
    return this.#store.withSession(fn, { role: 'owner' })
  }

  /** One owner transaction: committed when `fn` resolves, rolled back when it throws. */
  #transaction<T>(fn: (s: StoreSession) => Promise<T>): Promise<T> {
    return ownerTransaction(this.#store, fn)
  }

  /**
   * Starts an operation. Fails with ERR_OPERATION_RUNNING when one is running for the same target.
   * `inTransaction` runs in the same control-plane transaction (e.g. a directory change that must
   * commit together with the journal entry).
   */
  async start<C extends Record<string, unknown>>(op: { kind: OperationKind; tenantId: string | null; target: string; state: string; checkpoint: C; actor?: string },
    inTransaction?: (s: StoreSession, id: number) => Promise<void>): Promise<Operation<C>> {
    return this.#transaction(async (s) => {
      const r = await s.query<Row>(
        `INSERT INTO domicile_operations (kind, tenant_id, target, state, checkpoint, actor) VALUES ($1, $2, $3, $4, $5::jsonb, $6)
         ON CONFLICT (target) WHERE status = 'running' DO NOTHING RETURNING *`,
        [op.kind, op.tenantId, op.target, op.state, JSON.stringify(op.checkpoint), op.actor ?? null])
      const row = r.rows[0]
      if (!row) {
        const other = await s.query<Row>(`SELECT * FROM domicile_operations WHERE target = $1 AND status = 'running'`, [op.target])
        const o = other.rows[0]
        throw new DomicileError('ERR_OPERATION_RUNNING',
          `Operation ${o ? `#${o.id} (${o.kind}, at "${o.state}")` : ''} is running for "${op.target}". Resume it with --resume or abort it with --abort; operations on one target never overlap.`)
      }
      if (inTransaction) await inTransaction(s, Number(row.id))
      return toOperation<C>(row)
    })
  }

  /** The running operation on a target, if any. */
  async running<C = Record<string, unknown>>(target: string): Promise<Operation<C> | undefined> {
    const r = await this.#owner((s) => s.query<Row>(`SELECT * FROM domicile_operations WHERE target = $1 AND status = 'running'`, [target]))
    return r.rows[0] ? toOperation<C>(r.rows[0]) : undefined
  }

  async get<C = Record<string, unknown>>(id: number): Promise<Operation<C>> {
    const r = await this.#owner((s) => s.query<Row>('SELECT * FROM domicile_operations WHERE id = $1', [id]))
    if (!r.rows[0]) throw new DomicileError('ERR_OPERATION_NOT_FOUND', `No operation #${id} in the journal.`)
    return toOperation<C>(r.rows[0])
  }

  /** Recent operations, newest first (for reports and status listings). */
  async list(opts: { tenantId?: string; limit?: number } = {}): Promise<Operation[]> {
    const r = await this.#owner((s) => opts.tenantId === undefined
      ? s.query<Row>('SELECT * FROM domicile_operations ORDER BY id DESC LIMIT $1', [opts.limit ?? 50])
      : s.query<Row>('SELECT * FROM domicile_operations WHERE tenant_id = $1 ORDER BY id DESC LIMIT $2', [opts.tenantId, opts.limit ?? 50]))
    return r.rows.map((row) => toOperation(row))
  }

  /**
   * Moves a running operation to `state` with its new checkpoint. Fails with ERR_CONFLICT if the
   * operation is no longer running (another process aborted or finished it). `inTransaction` runs
   * in the same control-plane transaction (e.g. the directory's cutover to the new region).
   */
  async advance<C extends Record<string, unknown>>(id: number, state: string, checkpoint: C, inTransaction?: (s: StoreSession) => Promise<void>): Promise<void> {
    await this.#transaction(async (s) => {
      const r = await s.query(`UPDATE domicile_operations SET state = $2, checkpoint = $3::jsonb, updated_at = now() WHERE id = $1 AND status = 'running'`,
        [id, state, JSON.stringify(checkpoint)])
      if (r.rowCount !== 1) throw notRunning(id)
      if (inTransaction) await inTransaction(s)
    })
  }

  /** Ends a running operation. */
  async finish(id: number, status: Exclude<OperationStatus, 'running'>, state: string, checkpoint?: Record<string, unknown>, inTransaction?: (s: StoreSession) => Promise<void>): Promise<void> {
    await this.#transaction(async (s) => {
      const r = await s.query(
        `UPDATE domicile_operations SET status = $2, state = $3, checkpoint = coalesce($4::jsonb, checkpoint), updated_at = now(), finished_at = now()
         WHERE id = $1 AND status = 'running'`, [id, status, state, checkpoint === undefined ? null : JSON.stringify(checkpoint)])
      if (r.rowCount !== 1) throw notRunning(id)
      if (inTransaction) await inTransaction(s)
    })
  }
}

const notRunning = (id: number) => new DomicileError('ERR_CONFLICT', `Operation #${id} is not running any more (finished or aborted elsewhere).`)
