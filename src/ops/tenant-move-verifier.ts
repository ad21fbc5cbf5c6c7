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
import { pkBucket, q, rowHash, tenantArg, tenantWhere, type BucketHash, type Bucketing } from './tenant-move-sql.js'

export type { BucketHash, Bucketing }

export interface BucketSummary {
  readonly bits: number
  readonly hash: BucketHash
  /** bucket -> "count:sum1:sum2" */
  readonly buckets: ReadonlyMap<number, string>
  readonly rows: number
  /**
   * bucket -> change marker of the row versions the summary was computed from (count and a sum
   * over each row version's xmin and ctid, see `changeMarkers`); only meaningful on the store that
   * computed it.
   */
  readonly markers?: ReadonlyMap<number, string>
}

/**
 * The change marker of a row version: a 64-bit hash of its ctid (where it is stored) seeded with
 * its xmin (the transaction that wrote it). Every insert and update makes a new row version with a
 * new xmin, a delete removes one: a bucket whose rows changed has a different count or sum (barring
 * a 64-bit collision of the sum). Reading it needs no row text, so a full pass is far cheaper than
 * hashing the rows' content (hashing the tid directly, not the text of both: ~35 ms a pass over
 * 100,000 rows instead of ~190 ms). Markers are compared only with markers of the same store.
 */
const MARKER = `hashtidextended(t.ctid, t.xmin::text::bigint)`

const bucket = (t: MoveTable, bk: Bucketing): string => pkBucket(t, '$2', bk.hash)

/** Bucket count for a table of `rows` rows: about 32 rows a bucket, 2^8 .. 2^16 buckets. */
export function bucketBits(rows: number): number {
  return Math.min(16, Math.max(8, Math.ceil(Math.log2(Math.max(1, rows) / 32))))
}

/** The tenant's row count in a table. */
export async function countRows(s: StoreSession, t: MoveTable, tenantId: string): Promise<number> {
  const r = await s.query<{ n: string }>(`SELECT count(*)::text AS n FROM ${q(t.name)} WHERE ${tenantWhere(t)}`, [tenantArg(t, tenantId)])
  return Number(r.rows[0]?.n ?? 0)
}

/** One table's bucket summary for the tenant, in the session's current transaction. */
export async function summarize(s: StoreSession, t: MoveTable, tenantId: string, bk: Bucketing, only?: readonly number[]): Promise<BucketSummary> {
  const params: unknown[] = [tenantArg(t, tenantId), bk.bits]
  let filter = ''
  if (only) {
    params.push(only)
    filter = 'WHERE x.b = ANY($3::int[])'
  }
  const r = await s.query<{ b: number; v: string; n: number; mk: string }>(
    `SELECT x.b, count(*)::int AS n, count(*) || ':' || sum(('x' || substr(x.m, 1, 15))::bit(60)::bigint) || ':' || sum(('x' || substr(x.m, 16, 15))::bit(60)::bigint) AS v,
            count(*) || ':' || sum(x.mk) AS mk
     FROM (SELECT ${bucket(t, bk)} AS b, ${rowHash(t)} AS m, ${MARKER} AS mk FROM ${q(t.name)} t WHERE ${tenantWhere(t, '$1', 't')}) x ${filter} GROUP BY x.b`, params)
  const buckets = new Map<number, string>()
  const markers = new Map<number, string>()
  let rows = 0
  for (const row of r.rows) {
    buckets.set(Number(row.b), row.v)
    markers.set(Number(row.b), row.mk)
    rows += Number(row.n)
  }
  return { bits: bk.bits, hash: bk.hash, buckets, rows, markers }
}

/** Per bucket, the change markers of the tenant's row versions in a table (see MARKER), in the session's current transaction. */
export async function changeMarkers(s: StoreSession, t: MoveTable, tenantId: string, bk: Bucketing): Promise<Map<number, string>> {
  const r = await s.query<{ b: number; mk: string }>(
    `SELECT x.b, count(*) || ':' || sum(x.mk) AS mk FROM (SELECT ${bucket(t, bk)} AS b, ${MARKER} AS mk FROM ${q(t.name)} t WHERE ${tenantWhere(t, '$1', 't')}) x GROUP BY x.b`, [tenantArg(t, tenantId), bk.bits])
  return new Map(r.rows.map((row) => [Number(row.b), row.mk]))
}

/** Buckets whose markers differ (a bucket present on one side only included). */
export function changedBuckets(before: ReadonlyMap<number, string>, now: ReadonlyMap<number, string>): number[] {
  const out = new Set<number>()
  for (const [k, v] of now) if (before.get(k) !== v) out.add(k)
  for (const k of before.keys()) if (!now.has(k)) out.add(k)
  return [...out].sort((x, y) => x - y)
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
  const mk = base.markers && fresh.markers ? new Map(base.markers) : undefined
  for (const b of buckets) {
    const v = fresh.buckets.get(b)
    if (v === undefined) m.delete(b)
    else m.set(b, v)
    const x = fresh.markers?.get(b)
    if (x === undefined) mk?.delete(b)
    else mk?.set(b, x)
  }
  let rows = 0
  for (const v of m.values()) rows += Number(v.slice(0, v.indexOf(':')))
  return mk ? { bits: base.bits, hash: base.hash, buckets: m, rows, markers: mk } : { bits: base.bits, hash: base.hash, buckets: m, rows }
}

/** The table's content hash: sha256 over its buckets in order (hex); v1 for md5 buckets, v2 for hashtext. */
export function contentHash(s: BucketSummary): string {
  const h = createHash('sha256').update(`domicile.move.${s.hash === 'md5' ? 'v1' : 'v2'}:${s.bits}\n`)
  for (const b of [...s.buckets.keys()].sort((x, y) => x - y)) h.update(`${b}=${s.buckets.get(b)}\n`)
  return h.digest('hex')
}

/** Primary key (as text) -> row md5, for the rows in some buckets. */
export async function rowHashes(s: StoreSession, t: MoveTable, tenantId: string, bk: Bucketing, buckets: readonly number[]): Promise<Map<string, string>> {
  const r = await s.query<{ k: string; m: string }>(
    `SELECT x.k, x.m FROM (SELECT t.${q(t.pk)}::text AS k, ${bucket(t, bk)} AS b, ${rowHash(t)} AS m FROM ${q(t.name)} t WHERE ${tenantWhere(t, '$1', 't')}) x WHERE x.b = ANY($3::int[])`,
    [tenantArg(t, tenantId), bk.bits, buckets])
  return new Map(r.rows.map((row) => [row.k, row.m]))
}

/**
 * The rows of some buckets in one pass: primary key -> (bucket, row md5), and those buckets'
 * summary (with change markers), summed here exactly as `summarize` sums them in SQL.
 */
export async function bucketRows(s: StoreSession, t: MoveTable, tenantId: string, bk: Bucketing, buckets: readonly number[]): Promise<{ summary: BucketSummary; rows: Map<string, { b: number; m: string }> }> {
  const r = await s.query<{ k: string; b: number; m: string; mk: string }>(
    `SELECT x.k, x.b, x.m, x.mk::text AS mk FROM (SELECT t.${q(t.pk)}::text AS k, ${bucket(t, bk)} AS b, ${rowHash(t)} AS m, ${MARKER} AS mk FROM ${q(t.name)} t WHERE ${tenantWhere(t, '$1', 't')}) x WHERE x.b = ANY($3::int[])`,
    [tenantArg(t, tenantId), bk.bits, buckets])
  const acc = new Map<number, { n: number; s1: bigint; s2: bigint; mk: bigint }>()
  const rows = new Map<string, { b: number; m: string }>()
  for (const row of r.rows) {
    const b = Number(row.b)
    rows.set(row.k, { b, m: row.m })
    const a = acc.get(b) ?? { n: 0, s1: 0n, s2: 0n, mk: 0n }
    a.n++
    a.s1 += BigInt(`0x${row.m.slice(0, 15)}`)
    a.s2 += BigInt(`0x${row.m.slice(15, 30)}`)
    a.mk += BigInt(row.mk)
    acc.set(b, a)
  }
  const out = new Map<number, string>()
  const markers = new Map<number, string>()
  let n = 0
  for (const [b, a] of acc) {
    out.set(b, `${a.n}:${a.s1}:${a.s2}`)
    markers.set(b, `${a.n}:${a.mk}`)
    n += a.n
  }
  return { summary: { bits: bk.bits, hash: bk.hash, buckets: out, rows: n, markers }, rows }
}
