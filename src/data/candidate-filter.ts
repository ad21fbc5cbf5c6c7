/**
 * The lookup path of `find`, in one place. Blind indexes are short on purpose, so an equality
 * search on a sensitive column returns candidates that only share an index value; each is opened
 * inside the data layer and compared with the searched value, and the plaintext never reaches the
 * caller. The speed-ups of this path live here:
 *
 * - Held keys: `candidateFilter` fetches, inside the transaction, a private copy of every data key
 *   its candidates were sealed under (checked against the tenant's key state like any key use), so
 *   the filter itself is synchronous and needs no session. The copies are zeroed when it ran, or
 *   when the transaction rolls back.
 * - Overlap with COMMIT: when the lookup is the whole transaction (one call of the one-shot
 *   repository), `finishWhileCommitting` runs the filter from the router's after-commit hook,
 *   while the COMMIT is in flight. The transaction only read, so committing first changes nothing
 *   in the store, and no row reaches the caller unchecked. Inside `withTenant` the filter runs at
 *   once, before `find` returns.
 *
 * - Dual read: `blindIndexPredicate` is the WHERE predicate of an equality search on a searchable
 *   sensitive column. While an index-key rotation rebuilds the column it matches the blind index
 *   under either key (`IN`), so a search never misses a row; otherwise one `=`.
 *
 * Below the FieldProtection seam, sealing and blind indexes use cipher and HMAC contexts prepared
 * ahead for cached keys (src/crypto/context-reserve.ts, fed and retired by the data-key cache).
 */
import { DomicileError } from '../errors.js'
import type { TenantTransaction } from '../regions/router.js'
import type { ResolvedColumn, ResolvedTable } from '../schema/define-schema.js'
import type { FieldProtection } from './field-protection.js'

export type Row = Record<string, unknown>

/** A searched sensitive column and the value searched for. */
export type BlindMatch = readonly [column: ResolvedColumn, value: unknown]

/** The rest of a lookup: drops false positives, shapes rows; synchronous, no session. Run it once. */
export type FinishLookup<R> = () => R[]

/**
 * The SQL predicate of an equality search on searchable sensitive column `col` (its blind-index
 * column, `indexColumnSql`, already quoted): pushes the blind index of `value` under every index key
 * the search must cover onto `params` and returns `idx = $n`, or `idx IN ($n, $m)` during an
 * index-key rotation. Synchronous when the keys are cached.
 *
 * @example
 * const clause = blindIndexPredicate(fields, table, col, 'ada@example.com', params, q(col.indexColumn))
 * clauses.push(clause instanceof Promise ? await clause : clause)
 */
export function blindIndexPredicate(
  fields: FieldProtection, table: ResolvedTable, col: ResolvedColumn, value: unknown, params: unknown[], indexColumnSql: string,
): string | Promise<string> {
  const probes = fields.indexProbes(table, col, value)
  return probes instanceof Promise ? probes.then((p) => predicate(p, params, indexColumnSql)) : predicate(probes, params, indexColumnSql)
}

function predicate(probes: readonly Uint8Array[], params: unknown[], indexColumnSql: string): string {
  /* Precondition: a search covers at least one index key. */
  if (probes.length === 0) throw new DomicileError('ERR_KEY_NOT_FOUND', 'No blind-index key is available for this search. Retry; if it persists, check the tenant\'s keys with "domicile key status".')
  const refs = probes.map((p) => {
    params.push(p)
    return `$${params.length}`
  })
  return refs.length === 1 ? `${indexColumnSql} = ${refs[0]}` : `${indexColumnSql} IN (${refs.join(', ')})`
}

/**
 * Prepares the filter of one lookup's candidate `rows`: holds the keys it needs (now, in the
 * transaction) and returns the synchronous rest. `toPublic` shapes a stored row for the caller.
 */
export async function candidateFilter<R>(
  table: ResolvedTable, rows: readonly Row[], blind: readonly BlindMatch[], fields: FieldProtection | undefined, toPublic: (row: Row) => R,
): Promise<FinishLookup<R>> {
  if (blind.length === 0 || fields === undefined) return () => rows.map(toPublic)
  try {
    for (const row of rows) {
      for (const [col] of blind) {
        const stored = row[col.name]
        if (!(stored instanceof Uint8Array)) continue
        const h = fields.holdKeyFor(stored)
        if (h instanceof Promise) await h
      }
    }
  } catch (e) {
    fields.releaseHeldKeys()
    throw e
  }
  const pk = table.primaryKey
  return () => {
    try {
      const out: R[] = []
      for (const row of rows) {
        const rowKey = String(row[pk])
        let ok = true
        for (const [col, v] of blind) {
          const stored = row[col.name]
          // A NULL never equals a searched value; held keys make every other check synchronous.
          if (!(stored instanceof Uint8Array) || !fields.matchesHeld(table, col, rowKey, stored, v)) {
            ok = false
            break
          }
        }
        if (ok) out.push(toPublic(row))
      }
      return out
    } finally {
      fields.releaseHeldKeys()
    }
  }
}

/**
 * Runs `finish` while the COMMIT of `tx` is in flight (`tx` must do nothing after this lookup).
 * Returns the rows once the transaction has committed.
 */
export function finishWhileCommitting<R>(tx: TenantTransaction, finish: FinishLookup<R>): () => R[] {
  let out: R[] | undefined
  tx.onCommit(() => {
    out = finish()
  })
  return () => {
    /* Postcondition: the filter ran (the router runs commit hooks before the COMMIT resolves). */
    if (out === undefined) throw new DomicileError('ERR_QUERY_FAILED', 'find: the result filter did not run. Retry the lookup.')
    return out
  }
}
