/**
 * Moves a tenant's rows between two region stores as they are stored: ciphertext, blind indexes
 * and plain columns travel as the row type's text, never decrypted. Each batch leaves the source
 * as one array value (built by the server) and enters the target as one parameter cast back to the
 * table's row type, so no row is parsed in this process.
 *
 * - Bulk copy: keyset batches in primary-key order; a row whose parent row is not in the target yet
 *   (a foreign key) is left for catch-up, which writes parents before children.
 * - Repair: rows given by primary key are upserted (parents first) and rows gone from the source
 *   deleted (children first), in one target transaction per step.
 * - Purge: the tenant's rows in a store are deleted, children first.
 */
import type { StoreSession } from '../regions/store-driver.js'
import type { MovePlan, MoveTable } from './tenant-move-plan.js'
import { pkArray, q, rowValue, writeTx } from './tenant-move-sql.js'

export interface Batch {
  readonly rows: number
  /** The rows as the text of an array of the table's row type; null when empty. */
  readonly data: string | null
  /** The last primary key of the batch, as text. */
  readonly last: string | null
}

/** Reads the next keyset batch of the tenant's rows from the source (its own statement). */
export async function readBatch(s: StoreSession, t: MoveTable, tenantId: string, after: string | null, limit: number): Promise<Batch> {
  const pk = `t.${q(t.pk)}`
  const where = after === null ? 't.tenant_id = $1' : `t.tenant_id = $1 AND ${pk} > $3::text::${t.pkType}`
  const params: unknown[] = after === null ? [tenantId, limit] : [tenantId, limit, after]
  const r = await s.query<{ n: number; data: string | null; last: string | null }>(
    `WITH b AS MATERIALIZED (SELECT ${pk} AS k, ${rowValue(t)} AS r FROM ${q(t.name)} t WHERE ${where} ORDER BY ${pk} LIMIT $2)
     SELECT (SELECT count(*)::int FROM b) AS n, (SELECT array_agg(b.r)::text FROM b) AS data, (SELECT b.k::text FROM b ORDER BY b.k DESC LIMIT 1) AS last`, params)
  const row = r.rows[0]
  return { rows: Number(row?.n ?? 0), data: row?.data ?? null, last: row?.last ?? null }
}

/** Rows of the tenant with the given primary keys, in the source's current transaction. */
export async function readRows(s: StoreSession, t: MoveTable, tenantId: string, keys: readonly string[]): Promise<Batch> {
  if (keys.length === 0) return { rows: 0, data: null, last: null }
  const r = await s.query<{ n: number; data: string | null }>(
    `SELECT count(*)::int AS n, array_agg(${rowValue(t)})::text AS data FROM ${q(t.name)} t WHERE t.tenant_id = $1 AND t.${q(t.pk)} = ANY(${pkArray(t, '$2')})`,
    [tenantId, keys])
  return { rows: Number(r.rows[0]?.n ?? 0), data: r.rows[0]?.data ?? null, last: null }
}

/** `SELECT` of the batch's rows whose parents exist in the target (every foreign key, MATCH SIMPLE). */
function rowsWithParents(t: MoveTable): string {
  const conds = t.foreignKeys.map((fk) => {
    const nulls = fk.columns.map((c) => `r.${q(c)} IS NULL`)
    const match = fk.columns.map((c, i) => `p.${q(fk.parentColumns[i]!)} = r.${q(c)}`).join(' AND ')
    return `(${[...nulls, `EXISTS (SELECT 1 FROM ${q(fk.parent)} p WHERE ${match})`].join(' OR ')})`
  })
  return `SELECT r.* FROM unnest($1::${q(t.name)}[]) r${conds.length ? ` WHERE ${conds.join(' AND ')}` : ''}`
}

/** Bulk copy: inserts a batch into the target; rows already there are left alone. Returns rows inserted. */
export async function insertBatch(s: StoreSession, t: MoveTable, batch: Batch): Promise<number> {
  if (batch.data === null || batch.rows === 0) return 0
  const r = await s.query(`INSERT INTO ${q(t.name)} ${rowsWithParents(t)} ON CONFLICT DO NOTHING`, [batch.data])
  return r.rowCount
}

/** Changes to apply to one table of the target. */
export interface TableRepair {
  readonly table: MoveTable
  readonly upsert: Batch
  readonly remove: readonly string[]
}

/**
 * Applies repairs in one target transaction: upserts parents first, then deletes children first.
 * Returns the rows written and deleted.
 */
export async function applyRepairs(s: StoreSession, plan: MovePlan, tenantId: string, repairs: readonly TableRepair[]): Promise<number> {
  const byName = new Map(repairs.map((r) => [r.table.name, r]))
  let n = 0
  await writeTx(s, async () => {
    for (const t of plan.tables) {
      const r = byName.get(t.name)
      if (!r || r.upsert.data === null || r.upsert.rows === 0) continue
      const others = t.columns.filter((c) => c !== 'tenant_id' && c !== t.pk)
      const onConflict = others.length === 0 ? 'DO NOTHING' : `DO UPDATE SET ${others.map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')}`
      const res = await s.query(`INSERT INTO ${q(t.name)} SELECT r.* FROM unnest($1::${q(t.name)}[]) r ON CONFLICT (tenant_id, ${q(t.pk)}) ${onConflict}`, [r.upsert.data])
      n += res.rowCount
    }
    for (const t of [...plan.tables].reverse()) {
      const r = byName.get(t.name)
      if (!r || r.remove.length === 0) continue
      const res = await s.query(`DELETE FROM ${q(t.name)} WHERE tenant_id = $1 AND ${q(t.pk)} = ANY(${pkArray(t, '$2')})`, [tenantId, r.remove])
      n += res.rowCount
    }
  }, { deferred: plan.deferred })
  return n
}

/** Deletes the tenant's rows from every table of a store (children first), in the caller's transaction. Returns rows deleted. */
export async function deleteTenantRows(s: StoreSession, plan: MovePlan, tenantId: string): Promise<number> {
  let n = 0
  for (const t of [...plan.tables].reverse()) {
    const r = await s.query(`DELETE FROM ${q(t.name)} WHERE tenant_id = $1`, [tenantId])
    n += r.rowCount
  }
  return n
}

/** The tenant's rows left in each table of a store (for the checks after a purge or an abort). */
export async function remainingRows(s: StoreSession, plan: MovePlan, tenantId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const t of plan.tables) {
    const r = await s.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q(t.name)} WHERE tenant_id = $1`, [tenantId])
    out[t.name] = Number(r.rows[0]?.n ?? 0)
  }
  return out
}
