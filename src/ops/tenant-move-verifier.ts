/**
 * What a tenant move compares between the source and the target region: per table, the rows in
 * each hash bucket of the primary key (2^bits buckets), their count and the sums of two 60-bit
 * halves of each row's md5 (an order-free multiset hash, 120 bits). Buckets that differ say where
 * the regions differ, so catch-up fetches only those rows; a table whose buckets are all equal
 * has the same rows in both regions. The table's content hash is sha256 over its buckets.
 */
import { createHash } from 'node:crypto'
import type { StoreSession } from '../regions/store-driver.js'
import type { MoveTable } from './tenant-move-plan.js'
import { pkBucket, q, rowHash } from './tenant-move-sql.js'

export interface BucketSummary {
  readonly bits: number
  /** bucket -> "count:sum1:sum2" */
  readonly buckets: ReadonlyMap<number, string>
  readonly rows: number
}

/** Bucket count for a table of `rows` rows: about 32 rows a bucket, 2^8 .. 2^16 buckets. */
export function bucketBits(rows: number): number {
  return Math.min(16, Math.max(8, Math.ceil(Math.log2(Math.max(1, rows) / 32))))
}

/** The tenant's row count in a table. */
export async function countRows(s: StoreSession, t: MoveTable, tenantId: string): Promise<number> {
  const r = await s.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q(t.name)} WHERE tenant_id = $1`, [tenantId])
  return Number(r.rows[0]?.n ?? 0)
}

/** One table's bucket summary for the tenant, in the session's current transaction. */
export async function summarize(s: StoreSession, t: MoveTable, tenantId: string, bits: number, only?: readonly number[]): Promise<BucketSummary> {
  const params: unknown[] = [tenantId, bits]
  let filter = ''
  if (only) {
    params.push(only)
    filter = 'WHERE x.b = ANY($3::int[])'
  }
  const r = await s.query<{ b: number; v: string; n: number }>(
    `SELECT x.b, count(*)::int AS n, count(*) || ':' || sum(('x' || substr(x.m, 1, 15))::bit(60)::bigint) || ':' || sum(('x' || substr(x.m, 16, 15))::bit(60)::bigint) AS v
     FROM (SELECT ${pkBucket(t, '$2')} AS b, ${rowHash(t)} AS m FROM ${q(t.name)} t WHERE t.tenant_id = $1) x ${filter} GROUP BY x.b`, params)
  const buckets = new Map<number, string>()
  let rows = 0
  for (const row of r.rows) {
    buckets.set(Number(row.b), row.v)
    rows += Number(row.n)
  }
  return { bits, buckets, rows }
}

/** Buckets whose content differs between two summaries (same bits). */
export function differingBuckets(a: BucketSummary, b: BucketSummary): number[] {
  const out = new Set<number>()
  for (const [k, v] of a.buckets) if (b.buckets.get(k) !== v) out.add(k)
  for (const k of b.buckets.keys()) if (!a.buckets.has(k)) out.add(k)
  return [...out].sort((x, y) => x - y)
}

/** Replaces some buckets of a summary with a fresh partial one. */
export function patchSummary(base: BucketSummary, fresh: BucketSummary, buckets: readonly number[]): BucketSummary {
  const m = new Map(base.buckets)
  for (const b of buckets) {
    const v = fresh.buckets.get(b)
    if (v === undefined) m.delete(b)
    else m.set(b, v)
  }
  let rows = 0
  for (const v of m.values()) rows += Number(v.slice(0, v.indexOf(':')))
  return { bits: base.bits, buckets: m, rows }
}

/** The table's content hash: sha256 over its buckets in order (hex). */
export function contentHash(s: BucketSummary): string {
  const h = createHash('sha256').update(`domicile.move.v1:${s.bits}\n`)
  for (const b of [...s.buckets.keys()].sort((x, y) => x - y)) h.update(`${b}=${s.buckets.get(b)}\n`)
  return h.digest('hex')
}

/** Primary key (as text) -> row md5, for the rows in some buckets. */
export async function rowHashes(s: StoreSession, t: MoveTable, tenantId: string, bits: number, buckets: readonly number[]): Promise<Map<string, string>> {
  const r = await s.query<{ k: string; m: string }>(
    `SELECT x.k, x.m FROM (SELECT t.${q(t.pk)}::text AS k, ${pkBucket(t, '$2')} AS b, ${rowHash(t)} AS m FROM ${q(t.name)} t WHERE t.tenant_id = $1) x WHERE x.b = ANY($3::int[])`,
    [tenantId, bits, buckets])
  return new Map(r.rows.map((row) => [row.k, row.m]))
}
