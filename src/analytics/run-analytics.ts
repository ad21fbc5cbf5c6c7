/**
 * Region-local analytics: validates the query against the schema, runs one aggregate statement in
 * every configured region at once (src/analytics/region-aggregate.ts), merges what came back, and
 * records an `analytics.query` audit record in the control plane (the query's shape and which
 * regions contributed; never a filter value or a figure) before the result is returned. A region
 * that cannot answer is listed in `unavailable`: a partial result always says it is partial.
 *
 * @example
 * ```ts
 * const r = await runAnalytics(domicile, { table: 'customers', groupBy: ['plan'], measures: ['count'] })
 * // { groups: [{ plan: 'pro', count: 12 }], contributed: ['eu-west-1', 'us-east-1'], unavailable: [], suppressedGroups: 1 }
 * ```
 */
import type { Domicile } from '../domicile.js'
import { internalsOf } from '../domicile-internals.js'
import { DomicileError, isDomicileError } from '../errors.js'
import { queryShape, validateAnalyticsQuery, type AnalyticsQuery } from './analytics-query.js'
import { mergeAggregates, type AnalyticsGroup } from './merge-aggregates.js'
import { aggregateRegion, type RegionPartial } from './region-aggregate.js'

export type { AnalyticsQuery, FilterRange, FilterValue } from './analytics-query.js'
export type { AnalyticsGroup } from './merge-aggregates.js'

export interface AnalyticsResult {
  /** Merged groups of the regions that contributed; each group's `count` is its row count there. */
  readonly groups: AnalyticsGroup[]
  /** Regions whose aggregates are in the result (`region/cell` for each cell of a region with several). */
  readonly contributed: string[]
  /** Regions (or cells) that could not answer (down, not served by this process, wrong store, timed out): not in the figures. */
  readonly unavailable: string[]
  /** Groups dropped inside their region (each cell) for having fewer rows than the minimum group size, summed over stores. */
  readonly suppressedGroups: number
}

/** Region failures that make a partial result; anything else (a bug, a refused statement) fails the query. */
const UNAVAILABLE_CODES = new Set(['ERR_REGION_UNAVAILABLE', 'ERR_REGION_UNKNOWN', 'ERR_REGION_MISMATCH', 'ERR_NOT_MIGRATED', 'ERR_TIMEOUT'])

/**
 * Runs an aggregate query over a tenant table in every region. Throws ERR_TABLE_UNKNOWN,
 * ERR_COLUMN_UNKNOWN, ERR_QUERY_UNSUPPORTED or ERR_INPUT_INVALID before any SQL runs.
 */
export async function runAnalytics(d: Domicile, query: AnalyticsQuery): Promise<AnalyticsResult> {
  const p = internalsOf(d)
  const actor = typeof query?.actor === 'string' ? query.actor : undefined
  let plan
  try {
    plan = validateAnalyticsQuery(p.schema, query)
  } catch (e) {
    // A refused query is recorded too (the refusal's code; the table only when it is a schema table).
    if (isDomicileError(e)) {
      const table = typeof query?.table === 'string' && p.schema.tables.has(query.table) ? query.table : '(unknown)'
      await p.directory.audit({ type: 'analytics.query', outcome: 'denied', ...(actor ? { actor } : {}), detail: { table, code: e.code } }).catch(() => undefined)
    }
    throw e
  }
  // Every store: each cell of each region answers for itself, and small groups are suppressed in it.
  const stores = p.router.stores
  const regions = stores.map((w) => p.router.label(w))
  const settled = await Promise.allSettled(stores.map((where) => aggregateRegion(p.router, where, plan)))
  const partials: RegionPartial[] = []
  const contributed: string[] = []
  const unavailable: string[] = []
  settled.forEach((s, i) => {
    const region = regions[i]!
    if (s.status === 'fulfilled') {
      partials.push(s.value)
      contributed.push(region)
    } else if (isDomicileError(s.reason) && UNAVAILABLE_CODES.has(s.reason.code)) {
      unavailable.push(region)
    }
  })
  const failed = settled.find((s, i) => s.status === 'rejected' && !unavailable.includes(regions[i]!))
  if (failed && failed.status === 'rejected') {
    await p.directory.audit({ type: 'analytics.query', outcome: 'error', ...(actor ? { actor } : {}), detail: { ...queryShape(plan), code: isDomicileError(failed.reason) ? failed.reason.code : 'ERR_UNEXPECTED' } }).catch(() => undefined)
    throw failed.reason
  }
  const { groups, suppressedGroups } = mergeAggregates(plan, partials)
  /* Precondition: no result is returned without its audit record. */
  try {
    await p.directory.audit({
      type: 'analytics.query',
      outcome: 'ok',
      ...(actor ? { actor } : {}),
      detail: { ...queryShape(plan), contributed: contributed.join(','), unavailable: unavailable.join(',') },
    })
  } catch (e) {
    throw new DomicileError('ERR_REGION_UNAVAILABLE', 'The analytics result was not returned: its audit record could not be written to the control plane. Check the control plane and run the query again.', { cause: e })
  }
  return { groups, contributed, unavailable, suppressedGroups }
}
