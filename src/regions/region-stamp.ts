/**
 * The region stamp: each store records, when first migrated, which region (or the control plane)
 * it is. The router checks it when a store is first used and again inside every tenant
 * transaction, so a swapped connection string cannot send one region's data to another's store.
 */
import { DomicileError } from '../errors.js'
import type { StoreSession } from './store-driver.js'

export type StampKind = 'region' | 'control-plane'
export const CONTROL_PLANE_STAMP = '(control-plane)'

export interface Stamp {
  readonly kind: StampKind
  readonly region: string
}

export async function readStamp(session: StoreSession): Promise<Stamp | undefined> {
  const exists = await session.query<{ t: string | null }>(`SELECT to_regclass('domicile_stamp')::text AS t`)
  if (!exists.rows[0]?.t) return undefined
  const r = await session.query<{ kind: StampKind; region: string }>('SELECT kind, region FROM domicile_stamp')
  return r.rows[0]
}

export function mismatch(expected: Stamp, found: Stamp): DomicileError {
  const what = (s: Stamp) => (s.kind === 'control-plane' ? 'the control plane' : `region "${s.region}"`)
  return new DomicileError('ERR_REGION_MISMATCH',
    `The store configured as ${what(expected)} is stamped as ${what(found)}. Refusing to use it: check the connection settings for ${what(expected)}.`)
}

/** Checks a store's stamp; writes it if the store is new (migrate only). */
export async function ensureStamp(session: StoreSession, expected: Stamp, opts: { write: boolean }): Promise<void> {
  const found = await readStamp(session)
  if (!found) {
    if (!opts.write) throw notMigrated(expected)
    await session.query('INSERT INTO domicile_stamp (kind, region) VALUES ($1, $2) ON CONFLICT DO NOTHING', [expected.kind, expected.region])
    const again = await readStamp(session)
    if (!again || again.kind !== expected.kind || again.region !== expected.region) throw mismatch(expected, again ?? expected)
    return
  }
  if (found.kind !== expected.kind || found.region !== expected.region) throw mismatch(expected, found)
}

export function notMigrated(expected: Stamp): DomicileError {
  const what = expected.kind === 'control-plane' ? 'The control plane' : `Region "${expected.region}"`
  return new DomicileError('ERR_NOT_MIGRATED', `${what} has no Domicile tables yet. Run "domicile migrate".`)
}
