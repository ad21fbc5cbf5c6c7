/**
 * Merging the regions' partial aggregates: counts and sums add (exactly), minima and maxima
 * combine, and an average is the total sum over the total number of non-null values (never an
 * average of averages). A group suppressed in one region (too small there) and kept in another is
 * merged from the regions that kept it: suppression happens in each region before anything leaves
 * it, so the merged figures of such a group cover only those regions, and the suppressed part is
 * counted in `suppressedGroups`.
 */
import { addDecimal, compareDecimal } from './exact-decimal.js'
import { measureKey, type AnalyticsPlan } from './analytics-query.js'
import type { GroupValue, MeasuredPartial, RegionPartial } from './region-aggregate.js'

/** One result group: the group columns' values, `count`, then `sum_<col>`, `avg_<col>`, `min_<col>`, `max_<col>` as asked. */
export type AnalyticsGroup = Record<string, GroupValue>

interface Acc {
  values: readonly GroupValue[]
  count: number
  measured: Array<{ sum: string | null; nonNull: number; min: string | null; max: string | null }>
}

/** Timestamps are UTC ISO text of one fixed width (ordered as text); the rest are decimals. */
function pick(a: string | null, b: string | null, textual: boolean, want: 'min' | 'max'): string | null {
  if (a === null) return b
  if (b === null) return a
  const c = textual ? (a < b ? -1 : a > b ? 1 : 0) : compareDecimal(a, b)
  return (want === 'min' ? c <= 0 : c >= 0) ? a : b
}

function combine(acc: Acc['measured'][number], p: MeasuredPartial, textual: boolean): void {
  acc.sum = acc.sum === null ? p.sum : p.sum === null ? acc.sum : addDecimal(acc.sum, p.sum)
  acc.nonNull += p.nonNull
  acc.min = pick(acc.min, p.min, textual, 'min')
  acc.max = pick(acc.max, p.max, textual, 'max')
}

const asNumber = (v: string | null): number | null => (v === null ? null : Number(v))

/** Merges the partials into result groups, in a stable order (by group values). */
export function mergeAggregates(plan: AnalyticsPlan, partials: readonly RegionPartial[]): { groups: AnalyticsGroup[]; suppressedGroups: number } {
  const accs = new Map<string, Acc>()
  let suppressedGroups = 0
  for (const part of partials) {
    suppressedGroups += part.suppressed
    for (const g of part.groups) {
      let acc = accs.get(g.key)
      if (!acc) {
        acc = { values: g.values, count: 0, measured: plan.measured.map(() => ({ sum: null, nonNull: 0, min: null, max: null })) }
        accs.set(g.key, acc)
      }
      acc.count += g.count
      plan.measured.forEach(({ column }, i) => combine(acc.measured[i]!, g.measured[i]!, column.type === 'timestamptz'))
    }
  }
  const index = new Map(plan.measured.map(({ column }, i) => [column.name, i]))
  const groups = [...accs.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, acc]) => {
    const out: AnalyticsGroup = {}
    plan.groupBy.forEach((g, i) => { out[g.name] = acc.values[i] ?? null })
    for (const m of plan.measures) {
      if (m === 'count') {
        out.count = acc.count
        continue
      }
      const [kind, col] = m.split(':') as [string, string]
      const a = acc.measured[index.get(col)!]!
      const timestamp = plan.measured[index.get(col)!]!.column.type === 'timestamptz'
      const key = measureKey(m)
      if (kind === 'sum') out[key] = asNumber(a.sum)
      else if (kind === 'avg') out[key] = a.sum === null || a.nonNull === 0 ? null : Number(a.sum) / a.nonNull
      else out[key] = timestamp ? a[kind as 'min' | 'max'] : asNumber(a[kind as 'min' | 'max'])
    }
    if (!('count' in out)) out.count = acc.count
    return out
  })
  return { groups, suppressedGroups }
}
