/**
 * Runs the aggregate statement in one region and reads its result into a partial: per kept group,
 * its count and the exact sums, non-null counts, minima and maxima; and the number of groups the
 * region suppressed. The statement runs on the region's owner session (it spans the region's
 * tenants, so row-level security, which binds one tenant, does not apply) inside a READ ONLY
 * transaction with a statement timeout, after checking the store's stamp in the same transaction.
 */
import { DomicileError } from '../errors.js'
import { mismatch } from '../regions/region-stamp.js'
import type { Placement } from '../regions/placement.js'
import type { RegionRouter } from '../regions/router.js'
import { normalizeDecimal } from './exact-decimal.js'
import type { AnalyticsPlan, PlannedColumn } from './analytics-query.js'
import { groupAlias, measureAlias, regionAggregateSql } from './region-aggregate-sql.js'

/** A group value as it appears in results. */
export type GroupValue = string | number | boolean | null

/** What one region says about one measured column of one group (exact text forms). */
export interface MeasuredPartial {
  /** Sum of the non-null values (null: none). */
  readonly sum: string | null
  /** Number of non-null values. */
  readonly nonNull: number
  readonly min: string | null
  readonly max: string | null
}

export interface PartialGroup {
  /** Canonical key of the group values, equal across regions for equal values. */
  readonly key: string
  readonly values: readonly GroupValue[]
  readonly count: number
  /** In the order of `plan.measured`. */
  readonly measured: readonly MeasuredPartial[]
}

export interface RegionPartial {
  readonly region: string
  readonly groups: readonly PartialGroup[]
  /** Groups smaller than the minimum size, dropped in the region. */
  readonly suppressed: number
}

/** A group column's value: its canonical key part and the value shown in results. */
function groupValue(raw: unknown, col: PlannedColumn): { key: string | boolean | null; value: GroupValue } {
  if (raw === null || raw === undefined) return { key: null, value: null }
  switch (col.type) {
    case 'integer': {
      const n = Number(raw)
      return { key: String(n), value: n }
    }
    case 'bigint': {
      const text = String(raw)
      const n = Number(text)
      return { key: text, value: Number.isSafeInteger(n) ? n : text }
    }
    case 'numeric': {
      const text = normalizeDecimal(String(raw))
      return { key: text, value: Number(text) }
    }
    case 'boolean':
      return { key: raw === true || raw === 't', value: raw === true || raw === 't' }
    default:
      return { key: String(raw), value: String(raw) }
  }
}

const text = (v: unknown): string | null => (v === null || v === undefined ? null : String(v))

/** Reads the statement's rows (see region-aggregate-sql.ts for their shape). */
export function readPartial(region: string, plan: AnalyticsPlan, rows: readonly Record<string, unknown>[]): RegionPartial {
  const groups: PartialGroup[] = []
  let suppressed = 0
  for (const row of rows) {
    suppressed = Number(row.suppressed)
    if (row.n === null || row.n === undefined) continue
    const parts = plan.groupBy.map((g, i) => groupValue(row[groupAlias(i)], g))
    const measured = plan.measured.map(({ kinds }, i): MeasuredPartial => ({
      sum: kinds.has('sum') || kinds.has('avg') ? text(row[measureAlias('sum', i)]) : null,
      nonNull: kinds.has('sum') || kinds.has('avg') ? Number(row[measureAlias('nn', i)]) : 0,
      min: kinds.has('min') ? text(row[measureAlias('min', i)]) : null,
      max: kinds.has('max') ? text(row[measureAlias('max', i)]) : null,
    }))
    groups.push({ key: JSON.stringify(parts.map((p) => p.key)), values: parts.map((p) => p.value), count: Number(row.n), measured })
  }
  return { region, groups, suppressed }
}

/**
 * The region's partial result. Throws ERR_REGION_UNAVAILABLE (store down), ERR_REGION_MISMATCH
 * (wrong store behind the region's name), ERR_QUERY_FAILED (statement failed or timed out).
 */
export async function aggregateRegion(router: RegionRouter, where: Placement, plan: AnalyticsPlan): Promise<RegionPartial> {
  const stmt = regionAggregateSql(plan)
  const region = router.label(where)
  return router.withRegionAdmin(where, async (s) => {
    try {
      // timeoutMs is a validated integer; SET does not take parameters.
      const stamp = (await s.exec(
        `BEGIN; SET TRANSACTION READ ONLY; SET LOCAL statement_timeout = ${Math.trunc(plan.timeoutMs)}; SELECT kind, region, cell FROM domicile_stamp`,
      ))[0] as { kind?: string; region?: string; cell?: string } | undefined
      /* Precondition: the aggregates come from the store stamped with the region's (and cell's) name. */
      if (stamp?.kind !== 'region' || stamp.region !== where.region || stamp.cell !== where.cell) {
        throw mismatch({ kind: 'region', ...where }, { kind: stamp?.kind === 'control-plane' ? 'control-plane' : 'region', region: String(stamp?.region ?? '(none)'), cell: String(stamp?.cell ?? '(none)') })
      }
      const r = await s.query(stmt.sql, stmt.params)
      await s.exec('COMMIT')
      return readPartial(region, plan, r.rows)
    } catch (e) {
      await s.exec('ROLLBACK').catch(() => s.discard())
      if (e instanceof DomicileError && e.code === 'ERR_QUERY_FAILED' && e.message.includes('SQLSTATE 57014')) {
        throw new DomicileError('ERR_TIMEOUT', `Region "${region}": the aggregate did not finish within ${plan.timeoutMs} ms (statement timeout). Narrow the query with filters or raise timeoutMs.`)
      }
      throw e
    }
  })
}
