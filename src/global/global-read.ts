/**
 * Reads of a global table outside a tenant scope: a region's replica, or (no region) the control
 * plane's authoritative copy, in one read-only transaction, ordered by primary key. Inside a tenant
 * scope, read the region's local copy with `scope.sql` / `scope.db` (the data plane has SELECT on
 * global tables, nothing else).
 */
import { fromDb } from '../data/db-value.js'
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError } from '../errors.js'
import { q } from '../schema/ddl.js'
import type { ResolvedColumn } from '../schema/define-schema.js'
import type { StoreSession } from '../regions/store-driver.js'
import { globalTable } from './global-row.js'

export interface ListGlobalOptions {
  /** A region's replica; default: the control plane's copy. */
  readonly region?: string
  /** At most this many rows (1..100000, default 10000). */
  readonly limit?: number
}


/**
 * The rows of a global table.
 *
 * @example
 * ```ts
 * const plans = await listGlobal(domicile, 'plans', { region: 'eu-west-1' })
 * ```
 */
export async function listGlobal(d: Domicile, table: string, opts: ListGlobalOptions = {}): Promise<Record<string, unknown>[]> {
  const t = globalTable(d.schema, table)
  const limit = opts.limit ?? 10_000
  if (!Number.isInteger(limit) || limit < 1 || limit > 100_000) throw new DomicileError('ERR_INPUT_INVALID', 'limit: expected an integer from 1 to 100000.', { path: 'limit' })
  const cols = [...t.columns.values()]
  const sql = `SELECT ${cols.map((c) => q(c.name)).join(', ')} FROM ${q(t.name)} ORDER BY ${q(t.primaryKey)} LIMIT ${limit}`
  const read = async (s: StoreSession): Promise<Record<string, unknown>[]> => {
    await s.exec('BEGIN READ ONLY')
    try {
      const r = await s.query<Record<string, unknown>>(sql)
      await s.exec('COMMIT')
      return r.rows.map((row) => Object.fromEntries(cols.map((c) => [c.name, fromDb(c, row[c.name])])))
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => s.discard())
      throw e
    }
  }
  const { router, controlPlane } = internalsOf(d)
  if (opts.region === undefined) return controlPlane.withSession(read, { role: 'owner' })
  // A region with one store, or one cell of a region as `region/cell`.
  return router.withRegionAdmin(router.resolve(opts.region), read)
}
