/**
 * SQL a tenant move shares between its copier and its verifier: the tenant filter on the table's
 * own tenant column, the one text form of a row (the same bytes in both regions, whatever each
 * server's settings), the per-row content hash, the hash bucket of a primary key, and transactions
 * with fixed output settings on owner sessions.
 */
import type { StoreSession } from '../regions/store-driver.js'
import { q } from '../schema/ddl.js'
import { tenantMatch } from '../schema/tenant-column.js'
import type { MoveTable } from './tenant-move-plan.js'
import { tenantSweepParam } from './tenant-rows.js'

/** The tenant filter of a statement on the table: `<tenant column> = <placeholder>[::type]`. */
export const tenantWhere = (t: MoveTable, placeholder = '$1', alias?: string): string => tenantMatch(t.def, placeholder, alias)

/** The tenant id as the filter's parameter (null, matching no row, where the tenant column cannot hold it). */
export const tenantArg = (t: MoveTable, tenantId: string): string | null => tenantSweepParam(t.def, tenantId)

/**
 * Output settings that make a row's text identical on both servers (time zone, date style,
 * bytea and float output), for this transaction only: owner sessions are pooled.
 */
const SETTINGS = "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'; SET LOCAL bytea_output = 'hex'; SET LOCAL extra_float_digits = 3; SET LOCAL standard_conforming_strings = on"

/** A read transaction on the source: one snapshot for every statement of a step. */
export async function readTx<T>(s: StoreSession, fn: () => Promise<T>, opts: { timeoutMs?: number } = {}): Promise<T> {
  const timeout = opts.timeoutMs === undefined ? '' : `; SET LOCAL statement_timeout = ${Math.max(1, Math.ceil(opts.timeoutMs))}`
  await s.exec(`BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; ${SETTINGS}${timeout}`)
  try {
    const r = await fn()
    await s.exec('COMMIT')
    return r
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => s.discard())
    throw e
  }
}

/** A write transaction; `deferred` defers DEFERRABLE constraints to the commit. */
export async function writeTx<T>(s: StoreSession, fn: () => Promise<T>, opts: { deferred?: boolean; repeatable?: boolean } = {}): Promise<T> {
  await s.exec(`BEGIN${opts.repeatable ? ' ISOLATION LEVEL REPEATABLE READ' : ''}; ${SETTINGS}${opts.deferred ? '; SET CONSTRAINTS ALL DEFERRED' : ''}`)
  try {
    const r = await fn()
    await s.exec('SELECT 1; COMMIT')
    return r
  } catch (e) {
    await s.exec('ROLLBACK').catch(() => s.discard())
    throw e
  }
}

/** The row as a value of the target table's row type (its columns in the target's order). */
export const rowValue = (t: MoveTable, alias = 't'): string => `ROW(${t.columns.map((c) => `${alias}.${q(c)}`).join(', ')})`

/** md5 of the row's text: hex, 32 characters. */
export const rowHash = (t: MoveTable, alias = 't'): string => `md5(${rowValue(t, alias)}::text)`

/**
 * How a primary key picks its hash bucket, the same in both regions:
 * - `hashtext`: the low bits of PostgreSQL's `hashtext` of the key's text (moves planned since
 *   2026-12; a pass over a 100,000-row table costs ~30 ms instead of ~130 ms). Both servers must
 *   hash alike: the same byte order, which every server a move runs between has (x86-64, arm64).
 *   Servers that did not would see every bucket differ and never cut over: nothing is lost.
 * - `md5`: the top bits of the key's md5 (moves planned before, resumed by a newer version).
 */
export type BucketHash = 'md5' | 'hashtext'

/** A table's bucketing during a move: 2^bits buckets, keys assigned by `hash`. */
export interface Bucketing {
  readonly bits: number
  readonly hash: BucketHash
}

/** The hash bucket (0 .. 2^bits - 1) of the row's primary key, the same in both regions. */
export const pkBucket = (t: MoveTable, bitsParam: string, hash: BucketHash, alias = 't'): string => hash === 'hashtext'
  ? `(hashtext(${alias}.${q(t.pk)}::text) & ((1 << ${bitsParam}::int) - 1))`
  : `(('x' || substr(md5(${alias}.${q(t.pk)}::text), 1, 4))::bit(16)::int >> (16 - ${bitsParam}::int))`

/** Casts a text[] parameter to an array of the table's primary-key type. */
export const pkArray = (t: MoveTable, param: string): string => `${param}::text[]::${t.pkType}[]`

export { q }
