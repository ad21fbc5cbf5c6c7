/**
 * Writes of global tables (reference data): to the control plane, the authoritative copy, in one
 * owner transaction that writes the row (or deletes it) AND appends the outbox entry that carries
 * the row's new state to every region (src/global/global-replicator.ts). The row is validated
 * against the schema first (src/global/global-row.ts): an invalid row writes nothing anywhere.
 *
 * Versions are gapless in commit order: writers take the outbox's table lock (EXCLUSIVE: readers
 * are not blocked) before drawing a version, so no entry can commit after a higher one was seen.
 * The commit sends NOTIFY domicile_global, which running replicators take as a nudge.
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { q } from '../schema/ddl.js'
import { ownerTransaction } from '../regions/owner-transaction.js'
import { canonicalRow, globalTable, primaryKeyValue, type GlobalJson } from './global-row.js'

/** The NOTIFY channel of committed global writes. */
export const GLOBAL_CHANNEL = 'domicile_global'

export interface GlobalWriteOptions {
  /** Who wrote, recorded with the outbox entry. */
  readonly actor?: string
}

export interface GlobalWriteResult {
  readonly table: string
  /** The primary key, as text. */
  readonly id: string
  readonly op: 'upsert' | 'delete'
  /** The outbox version of this write; null for a delete that found no row (nothing written). */
  readonly version: number | null
  /** The row as the control plane stored it (upsert), or its primary key (delete). */
  readonly row: Record<string, unknown> | null
}

/**
 * Inserts or replaces one row of a global table (all columns; a column left out is NULL).
 *
 * @example
 * ```ts
 * await upsertGlobal(domicile, 'plans', { id: 'pro', name: 'Pro', price_cents: 4900 })
 * ```
 */
export async function upsertGlobal(d: Domicile, table: string, row: Record<string, unknown>, opts: GlobalWriteOptions = {}): Promise<GlobalWriteResult> {
  const t = globalTable(d.schema, table)
  const canon = canonicalRow(t, row)
  const cols = [...t.columns.keys()]
  const list = cols.map(q).join(', ')
  const others = cols.filter((c) => c !== t.primaryKey)
  const set = (others.length > 0 ? others : [t.primaryKey]).map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')
  const name = q(t.name)
  return ownerTransaction(internalsOf(d).controlPlane, async (s) => {
    await s.query('LOCK TABLE domicile_global_outbox IN EXCLUSIVE MODE')
    const r = await s.query<{ version: string | number; row: string; pk: string }>(
      `WITH w AS (
         INSERT INTO ${name} AS g (${list}) SELECT ${list} FROM jsonb_populate_record(NULL::${name}, $1::jsonb)
         ON CONFLICT (${q(t.primaryKey)}) DO UPDATE SET ${set}
         RETURNING to_jsonb(g.*) AS j)
       INSERT INTO domicile_global_outbox (table_name, pk, op, row, actor)
       SELECT $2, w.j ->> $3::text, 'upsert', (SELECT jsonb_object_agg(e.key, e.value) FROM jsonb_each(w.j) e WHERE e.key = ANY($4::text[])), $5 FROM w
       RETURNING version, row::text AS row, pk`,
      [JSON.stringify(canon), t.name, t.primaryKey, cols, opts.actor ?? null])
    const e = r.rows[0]!
    await s.query('SELECT pg_notify($1, $2)', [GLOBAL_CHANNEL, String(e.version)])
    return { table: t.name, id: e.pk, op: 'upsert', version: Number(e.version), row: JSON.parse(e.row) as Record<string, unknown> }
  })
}

/**
 * Deletes one row of a global table by primary key. A row that does not exist writes nothing
 * (`version: null`).
 *
 * @example
 * ```ts
 * const { version } = await deleteGlobal(domicile, 'plans', 'legacy')
 * ```
 */
export async function deleteGlobal(d: Domicile, table: string, id: string | number, opts: GlobalWriteOptions = {}): Promise<GlobalWriteResult> {
  const t = globalTable(d.schema, table)
  const key: Record<string, GlobalJson> = { [t.primaryKey]: primaryKeyValue(t, id) }
  const name = q(t.name)
  const pk = q(t.primaryKey)
  return ownerTransaction(internalsOf(d).controlPlane, async (s) => {
    await s.query('LOCK TABLE domicile_global_outbox IN EXCLUSIVE MODE')
    const r = await s.query<{ version: string | number; row: string; pk: string }>(
      `WITH w AS (
         DELETE FROM ${name} AS g WHERE g.${pk} = (SELECT k.${pk} FROM jsonb_populate_record(NULL::${name}, $1::jsonb) k)
         RETURNING to_jsonb(g.*) AS j)
       INSERT INTO domicile_global_outbox (table_name, pk, op, row, actor)
       SELECT $2, w.j ->> $3::text, 'delete', jsonb_build_object($3::text, w.j -> $3::text), $4 FROM w
       RETURNING version, row::text AS row, pk`,
      [JSON.stringify(key), t.name, t.primaryKey, opts.actor ?? null])
    const e = r.rows[0]
    if (!e) return { table: t.name, id: String(key[t.primaryKey]), op: 'delete', version: null, row: null }
    await s.query('SELECT pg_notify($1, $2)', [GLOBAL_CHANNEL, String(e.version)])
    return { table: t.name, id: e.pk, op: 'delete', version: Number(e.version), row: JSON.parse(e.row) as Record<string, unknown> }
  })
}
