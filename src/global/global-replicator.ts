/**
 * The replicator of global tables: applies the control plane's outbox to each region's copy, in
 * version order, idempotently. One region at a time is one owner transaction on that region:
 * it locks the region's applied version (`domicile_global_applied`, FOR UPDATE, so two replicators
 * never interleave on one region), reads the outbox entries after it from the control plane,
 * applies them (an upsert carries the row's whole state, a delete its key) and moves the version
 * in the same transaction. A region that cannot be reached is skipped and reported; it catches up
 * from its own version, in order, on a later pass. Each successful pass also records the region's
 * version in the control plane (`domicile_global_replicas`) for `replicate status` (written when it
 * moved, else at most once a minute).
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { q } from '../schema/ddl.js'
import { ownerTransaction } from '../regions/owner-transaction.js'
import type { Placement } from '../regions/placement.js'
import type { StoreSession } from '../regions/store-driver.js'
import type { ResolvedTable, Schema } from '../schema/define-schema.js'

/** Outbox entries applied per region transaction. */
const BATCH = 500

export interface RegionReplication {
  /** The region, or `region/cell` for a cell of a region with several. */
  readonly region: string
  readonly ok: boolean
  /** Entries applied by this pass. */
  readonly applied: number
  /** The region's version after this pass (null when it could not be read). */
  readonly version: number | null
  readonly code?: string
  readonly message?: string
}

interface OutboxEntry {
  readonly version: number
  readonly table: string
  readonly op: 'upsert' | 'delete'
  /** The entry's row as JSON text (exact: numerics and bigints are never parsed in JavaScript). */
  readonly row: string
}

async function readOutbox(d: Domicile, after: number): Promise<OutboxEntry[]> {
  // The data plane may read the outbox (SELECT only).
  return internalsOf(d).controlPlane.withSession(async (s) => {
    const r = await s.query<{ version: string | number; table_name: string; op: 'upsert' | 'delete'; row: string }>(
      'SELECT version, table_name, op, row::text AS row FROM domicile_global_outbox WHERE version > $1 ORDER BY version LIMIT $2', [after, BATCH])
    return r.rows.map((e) => ({ version: Number(e.version), table: e.table_name, op: e.op, row: e.row }))
  })
}

/** The global table an outbox entry names, in this process's schema. */
function targetOf(schema: Schema, e: OutboxEntry): ResolvedTable {
  const t = schema.tables.get(e.table)
  /* Precondition: an outbox entry is applied only to a global table of this process's schema (never to a tenant table). */
  if (!t || t.scope !== 'global') {
    throw new DomicileError('ERR_TABLE_UNKNOWN', `Outbox entry ${e.version} names table "${e.table}", which is not a global table in this process's schema. Deploy the schema that defines it (and run "domicile migrate"); the region waits at version ${e.version - 1} until then.`)
  }
  return t
}

async function applyEntry(s: StoreSession, schema: Schema, e: OutboxEntry): Promise<void> {
  const t = targetOf(schema, e)
  const name = q(t.name)
  const pk = q(t.primaryKey)
  if (e.op === 'delete') {
    await s.query(`DELETE FROM ${name} WHERE ${pk} = (SELECT k.${pk} FROM jsonb_populate_record(NULL::${name}, $1::jsonb) k)`, [e.row])
    return
  }
  const keys = Object.keys(JSON.parse(e.row) as Record<string, unknown>)
  for (const k of keys) {
    if (!t.columns.has(k)) throw new DomicileError('ERR_COLUMN_UNKNOWN', `Outbox entry ${e.version} carries column "${k}" that table "${t.name}" does not have in this process's schema. Deploy the current schema and run "domicile migrate".`)
  }
  if (!keys.includes(t.primaryKey)) throw new DomicileError('ERR_INPUT_INVALID', `Outbox entry ${e.version} has no primary key; it was not written by Domicile.`)
  const list = keys.map(q).join(', ')
  const others = keys.filter((k) => k !== t.primaryKey)
  const set = (others.length > 0 ? others : [t.primaryKey]).map((c) => `${q(c)} = EXCLUDED.${q(c)}`).join(', ')
  await s.query(`INSERT INTO ${name} (${list}) SELECT ${list} FROM jsonb_populate_record(NULL::${name}, $1::jsonb) ON CONFLICT (${pk}) DO UPDATE SET ${set}`, [e.row])
}

/** One region transaction: lock the version, apply the next batch, move the version. Returns [applied, version]. */
async function applyBatch(d: Domicile, where: Placement, region: string): Promise<[number, number]> {
  const { router, schema } = internalsOf(d)
  return router.withRegionAdmin(where, async (s) => {
    await s.exec('BEGIN')
    try {
      const cur = await s.query<{ version: string | number }>('SELECT version FROM domicile_global_applied WHERE singleton FOR UPDATE')
      if (cur.rows.length === 0) throw new DomicileError('ERR_NOT_MIGRATED', `Region "${region}" has no replication state. Run "domicile migrate".`)
      const from = Number(cur.rows[0]!.version)
      const entries = await readOutbox(d, from)
      for (const e of entries) await applyEntry(s, schema, e)
      const to = entries.length > 0 ? entries[entries.length - 1]!.version : from
      if (to !== from) await s.query('UPDATE domicile_global_applied SET version = $1, applied_at = now() WHERE singleton', [to])
      await s.exec('COMMIT')
      return [entries.length, to]
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => s.discard())
      throw e
    }
  })
}

async function report(d: Domicile, region: string, version: number): Promise<void> {
  await ownerTransaction(internalsOf(d).controlPlane, (s) => s.query(
    `INSERT INTO domicile_global_replicas (region, version, reported_at) VALUES ($1, $2, now())
     ON CONFLICT (region) DO UPDATE SET version = GREATEST(domicile_global_replicas.version, EXCLUDED.version), reported_at = now()
     WHERE domicile_global_replicas.version < EXCLUDED.version OR domicile_global_replicas.reported_at < now() - interval '60 seconds'`, [region, version]))
}

/**
 * Brings one region store up to the outbox's latest version: `region` is a region with one store or
 * `region/cell` (each cell keeps its own replica). Never throws a DomicileError: it reports it.
 */
export async function replicateRegion(d: Domicile, region: string): Promise<RegionReplication> {
  let applied = 0
  let version: number | null = null
  try {
    const where = internalsOf(d).router.resolve(region)
    for (;;) {
      const [n, v] = await applyBatch(d, where, region)
      applied += n
      version = v
      if (n < BATCH) break
    }
    await report(d, region, version ?? 0).catch(() => undefined) // a report is advisory
    return { region, ok: true, applied, version }
  } catch (e) {
    if (!isDomicileError(e)) throw e
    return { region, ok: false, applied, version, code: e.code, message: e.message }
  }
}

/**
 * One catch-up pass over every region this process serves (in parallel): each reachable region
 * ends at the outbox's latest version; an unreachable one is reported and left for a later pass.
 *
 * @example
 * ```ts
 * const regions = await replicateOnce(domicile)
 * for (const r of regions) if (!r.ok) console.warn(r.region, r.code)
 * ```
 */
export async function replicateOnce(d: Domicile, opts: { regions?: readonly string[] } = {}): Promise<RegionReplication[]> {
  return Promise.all(replicaNames(d, opts.regions).map((r) => replicateRegion(d, r)))
}

/** The replicas to keep current: every store (each cell) of the given regions, or of all regions. */
export function replicaNames(d: Domicile, regions?: readonly string[]): string[] {
  const { router } = internalsOf(d)
  return router.stores.filter((w) => regions === undefined || regions.includes(w.region)).map((w) => router.label(w))
}
