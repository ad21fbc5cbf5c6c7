/**
 * The region stamp: each store records, when first migrated, which region and cell (or the
 * control plane) it is. The router checks it when a store is first used and again inside every
 * tenant transaction, so a swapped connection string cannot send one region's (or cell's) data to
 * another's store.
 */
import { DomicileError } from '../errors.js'
import { DEFAULT_CELL } from './placement.js'
import type { StoreSession } from './store-driver.js'

export type StampKind = 'region' | 'control-plane'
export const CONTROL_PLANE_STAMP = '(control-plane)'

export interface Stamp {
  readonly kind: StampKind
  readonly region: string
  /** The region's cell; "main" for a region with one store and for the control plane. */
  readonly cell?: string
}

export async function readStamp(session: StoreSession): Promise<Stamp | undefined> {
  const exists = await session.query<{ t: string | null; cell: boolean }>(
    `SELECT to_regclass('domicile_stamp')::text AS t,
            EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass('domicile_stamp') AND attname = 'cell' AND NOT attisdropped) AS cell`)
  if (!exists.rows[0]?.t) return undefined
  // A store stamped before cells existed is its region's only cell.
  const r = await session.query<{ kind: StampKind; region: string; cell: string }>(
    exists.rows[0].cell ? 'SELECT kind, region, cell FROM domicile_stamp' : `SELECT kind, region, '${DEFAULT_CELL}' AS cell FROM domicile_stamp`)
  return r.rows[0]
}

const cellOf = (s: Stamp): string => s.cell ?? DEFAULT_CELL

function same(a: Stamp, b: Stamp): boolean {
  return a.kind === b.kind && a.region === b.region && cellOf(a) === cellOf(b)
}

export function mismatch(expected: Stamp, found: Stamp): DomicileError {
  const what = (s: Stamp) => (s.kind === 'control-plane' ? 'the control plane' : `region "${s.region}"${cellOf(s) === DEFAULT_CELL ? '' : ` cell "${cellOf(s)}"`}`)
  return new DomicileError('ERR_REGION_MISMATCH',
    `The store configured as ${what(expected)} is stamped as ${what(found)}. Refusing to use it: check the connection settings for ${what(expected)}.`)
}

/** Checks a store's stamp; writes it if the store is new (migrate only). */
export async function ensureStamp(session: StoreSession, expected: Stamp, opts: { write: boolean }): Promise<void> {
  const found = await readStamp(session)
  if (!found) {
    if (!opts.write) throw notMigrated(expected)
    await session.query('INSERT INTO domicile_stamp (kind, region, cell) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [expected.kind, expected.region, cellOf(expected)])
    const again = await readStamp(session)
    if (!again || !same(again, expected)) throw mismatch(expected, again ?? expected)
    return
  }
  if (!same(found, expected)) throw mismatch(expected, found)
}

export function notMigrated(expected: Stamp): DomicileError {
  const what = expected.kind === 'control-plane' ? 'The control plane' : `Region "${expected.region}"${cellOf(expected) === DEFAULT_CELL ? '' : ` cell "${cellOf(expected)}"`}`
  return new DomicileError('ERR_NOT_MIGRATED', `${what} has no Domicile tables yet. Run "domicile migrate".`)
}
