/**
 * Audit records of one tenant transaction, in the tenant's region, that survive its rollback.
 *
 * Records go in through the transaction's records (`domicile_audit_append`, which SQL in the
 * scope cannot call). If the transaction rolls back, the records it held are gone with it: they
 * are written again after the rollback, in a transaction of their own (`after.appendAudit`),
 * marked `rolledBack`. A record the transaction could not take (an error aborted it; it cannot
 * commit then, the router's COMMIT refuses an aborted transaction) is kept and written the same
 * way. So each record is stored exactly once whatever the transaction's fate: in it, or after it.
 * One instance per transaction (`transactionAudit(tx)`), shared by reveals and key-provider calls.
 */
import type { AfterRollback, TenantTransaction } from '../regions/router.js'
import type { AuditRecord } from '../regions/tenant-records.js'
import type { AuditEvent, AuditSink } from './audit-sink.js'

export class TransactionAudit {
  readonly #tx: TenantTransaction
  /** Written in the transaction: written again if it rolls back. */
  readonly #written: AuditRecord[] = []
  /** Not taken by the transaction: written after its rollback. */
  readonly #unwritten: AuditRecord[] = []
  #hooked = false

  constructor(tx: TenantTransaction) {
    this.#tx = tx
  }

  /**
   * Appends records in the transaction. When it fails, the records are kept for after the
   * rollback (`onFailure` may first change a record, e.g. to say its plaintext was withheld) and
   * the error is thrown.
   */
  async append(records: readonly AuditRecord[], onFailure?: (r: AuditRecord, error: unknown) => AuditRecord): Promise<void> {
    if (records.length === 0) return
    if (!this.#hooked) {
      this.#hooked = true
      this.#tx.onRollback((after: AfterRollback) => {
        const all = [...this.#written, ...this.#unwritten]
        if (all.length === 0) return
        return after.appendAudit(all.map((r) => ({ ...r, detail: { ...r.detail, rolledBack: 1 } })))
      })
    }
    try {
      await this.#tx.records.appendAudit(records)
    } catch (e) {
      for (const r of records) this.#unwritten.push(onFailure ? onFailure(r, e) : r)
      throw e
    }
    this.#written.push(...records)
  }

  /** An audit sink writing into this transaction (for key-provider calls made for it). */
  sink(): AuditSink {
    return { record: (event) => this.append([fromEvent(event)]) }
  }
}

/** A sink event as a region audit record (the tenant is the transaction's). Identifiers only. */
function fromEvent(e: AuditEvent): AuditRecord {
  return {
    type: e.type,
    outcome: e.outcome,
    actor: e.actor ?? null,
    detail: { ...(e.detail ?? {}), ...(e.code === undefined ? {} : { code: e.code }), ...(e.region === undefined ? {} : { region: e.region }) },
  }
}

const perTransaction = new WeakMap<TenantTransaction, TransactionAudit>()

/** The transaction's audit (one per transaction, so one rollback hook). */
export function transactionAudit(tx: TenantTransaction): TransactionAudit {
  let a = perTransaction.get(tx)
  if (a === undefined) {
    a = new TransactionAudit(tx)
    perTransaction.set(tx, a)
  }
  return a
}
