/**
 * The one aggregate statement run in each region, built from a validated plan only: identifiers
 * are schema columns (quoted), filter values and the minimum group size are parameters. Groups
 * smaller than the minimum are dropped in the region's SQL, and counted there, so only the
 * aggregates of large-enough groups leave the region. Values come back as text where exactness
 * matters (bigint, numeric sums) and as UTC ISO text for timestamps, so merging is exact.
 *
 * Output: one row per kept group (`n` not null), or a single row with `n` null when every group was
 * suppressed or there were none; `suppressed` (the number of suppressed groups) on every row.
 */
import { q } from '../schema/ddl.js'
import type { AnalyticsPlan, MeasureKind, PlannedColumn } from './analytics-query.js'

const SQL_TYPE: Readonly<Record<string, string>> = {
  text: 'text', integer: 'integer', bigint: 'bigint', boolean: 'boolean', numeric: 'numeric', timestamptz: 'timestamptz', uuid: 'uuid',
}

/** A timestamp as UTC ISO 8601 text with microseconds: the same in every region, ordered as text. */
const isoUtc = (expr: string): string => `to_char((${expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`

/** How a value of a column type leaves the region (as the engine's text where exactness matters). */
function outExpr(expr: string, type: string): string {
  if (type === 'timestamptz') return isoUtc(expr)
  if (type === 'bigint' || type === 'numeric') return `(${expr})::text`
  if (type === 'uuid') return `(${expr})::text`
  return expr
}

/** Column aliases in the result rows: group columns g0.., measured columns per kind. */
export const groupAlias = (i: number): string => `g${i}`
export const measureAlias = (kind: MeasureKind | 'nn', i: number): string => `${kind}${i}`

export interface RegionStatement {
  readonly sql: string
  readonly params: readonly unknown[]
}

export function regionAggregateSql(plan: AnalyticsPlan): RegionStatement {
  const params: unknown[] = []
  const param = (v: unknown, type: string): string => {
    params.push(v)
    return `$${params.length}::${type}`
  }
  const inner: string[] = []
  plan.groupBy.forEach((g: PlannedColumn, i) => inner.push(`${outExpr(q(g.name), g.type)} AS ${groupAlias(i)}`))
  inner.push('count(*) AS n')
  plan.measured.forEach(({ column, kinds }, i) => {
    const c = q(column.name)
    // sum and avg need the sum and the number of non-null values (avg = total sum / total count).
    if (kinds.has('sum') || kinds.has('avg')) {
      inner.push(`sum(${c})::text AS ${measureAlias('sum', i)}`)
      inner.push(`count(${c}) AS ${measureAlias('nn', i)}`)
    }
    if (kinds.has('min')) inner.push(`${outExpr(`min(${c})`, column.type)} AS ${measureAlias('min', i)}`)
    if (kinds.has('max')) inner.push(`${outExpr(`max(${c})`, column.type)} AS ${measureAlias('max', i)}`)
  })
  const where = plan.filters.map((f) => `${q(f.column.name)} ${f.op} ${param(f.value, SQL_TYPE[f.column.type]!)}`)
  const groupBy = plan.groupBy.length > 0 ? `GROUP BY ${plan.groupBy.map((g) => q(g.name)).join(', ')}` : 'HAVING count(*) > 0'
  const min = param(plan.minGroupSize, 'bigint')
  const cols = [...plan.groupBy.map((_g, i) => `agg.${groupAlias(i)}`), 'agg.n::text AS n']
  plan.measured.forEach(({ kinds }, i) => {
    const a = (k: MeasureKind | 'nn'): string => `agg.${measureAlias(k, i)}`
    if (kinds.has('sum') || kinds.has('avg')) cols.push(a('sum'), `${a('nn')}::text AS ${measureAlias('nn', i)}`)
    if (kinds.has('min')) cols.push(a('min'))
    if (kinds.has('max')) cols.push(a('max'))
  })
  const sql =
    `WITH agg AS (SELECT ${inner.join(', ')} FROM ${q(plan.table)}${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ${groupBy}), ` +
    `small AS (SELECT count(*) AS suppressed FROM agg WHERE n < ${min}) ` +
    `SELECT small.suppressed::text AS suppressed, ${cols.join(', ')} ` +
    `FROM small LEFT JOIN agg ON agg.n >= ${min}`
  return { sql, params }
}
