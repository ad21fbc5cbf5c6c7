/**
 * The description of a region-local analytics query, and its validation against the schema.
 * Validation runs before any SQL is built: only aggregates over non-sensitive columns of a tenant
 * table, grouped by non-sensitive columns, can pass. Raw rows, sensitive or blind-index columns,
 * the tenant id, row identifiers, global tables and unknown names are refused with a typed error
 * saying why. What passes is a plan whose identifiers are all schema columns.
 *
 * @example
 * ```ts
 * const plan = validateAnalyticsQuery(schema, { table: 'orders', groupBy: ['status'], measures: ['count', 'avg:amount'] })
 * ```
 */
import { DomicileError } from '../errors.js'
import { BLIND_INDEX_SUFFIX, SHADOW_SUFFIX, type ColumnType, type ResolvedColumn, type ResolvedTable, type Schema } from '../schema/define-schema.js'

/** A filter value: compared as a parameter, never spliced into SQL. Dates and timestamps as ISO text. */
export type FilterValue = string | number | boolean | Date

/** Range and equality on one non-sensitive column. Several operators combine with AND. */
export interface FilterRange {
  readonly eq?: FilterValue
  readonly ne?: FilterValue
  readonly lt?: FilterValue
  readonly lte?: FilterValue
  readonly gt?: FilterValue
  readonly gte?: FilterValue
}

export interface AnalyticsQuery {
  /** A tenant-scoped table of the schema. */
  readonly table: string
  /** Non-sensitive columns to group by (none: one group over all rows). */
  readonly groupBy?: readonly string[]
  /** `count`, `sum:COL`, `avg:COL`, `min:COL`, `max:COL` (COL numeric; min/max also timestamptz). */
  readonly measures: readonly string[]
  /** Column → value (equality) or { eq, ne, lt, lte, gt, gte } on non-sensitive columns. */
  readonly where?: Readonly<Record<string, FilterValue | FilterRange>>
  /** Groups with fewer rows than this are suppressed inside each region. Default 5, at least 2. */
  readonly minGroupSize?: number
  /** Who runs the query, for the audit record. */
  readonly actor?: string
  /** Statement timeout in each region (ms). Default 30000. */
  readonly timeoutMs?: number
}

export type MeasureKind = 'sum' | 'avg' | 'min' | 'max'
export type FilterOp = '=' | '<>' | '<' | '<=' | '>' | '>='

export interface PlannedColumn {
  readonly name: string
  readonly type: ColumnType
}

export interface PlannedFilter {
  readonly column: PlannedColumn
  readonly op: FilterOp
  /** The parameter value (text form for the engine's cast). */
  readonly value: string | number | boolean
}

/** A validated query: every identifier is a non-sensitive column of a tenant table. */
export interface AnalyticsPlan {
  readonly table: string
  readonly groupBy: readonly PlannedColumn[]
  /** Measured columns and what is measured on each (count(*) is always computed). */
  readonly measured: ReadonlyArray<{ readonly column: PlannedColumn; readonly kinds: ReadonlySet<MeasureKind> }>
  /** The measures as asked, normalised and de-duplicated (for output order and the audit record). */
  readonly measures: readonly string[]
  readonly filters: readonly PlannedFilter[]
  readonly minGroupSize: number
  readonly timeoutMs: number
}

export const DEFAULT_MIN_GROUP_SIZE = 5
const DEFAULT_TIMEOUT_MS = 30_000
const MAX_GROUP_BY = 8
const MAX_MEASURES = 32
const QUERY_KEYS = new Set(['table', 'groupBy', 'measures', 'where', 'minGroupSize', 'actor', 'timeoutMs'])
const RANGE_OPS: Readonly<Record<keyof FilterRange, FilterOp>> = { eq: '=', ne: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=' }
const NUMERIC: ReadonlySet<ColumnType> = new Set(['integer', 'bigint', 'numeric'])
const ORDERED: ReadonlySet<ColumnType> = new Set(['integer', 'bigint', 'numeric', 'timestamptz'])
/** Types whose values can be grouped and compared as equal (not jsonb or bytea: no stable grouping value). */
const GROUPABLE: ReadonlySet<ColumnType> = new Set(['text', 'integer', 'bigint', 'boolean', 'numeric', 'timestamptz', 'uuid'])

function unsupported(message: string, path: string): DomicileError {
  return new DomicileError('ERR_QUERY_UNSUPPORTED', message, { path })
}

function inputInvalid(message: string, path: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', message, { path })
}

/** The key of a measure in a result group: `count`, `sum_amount`, `avg_amount`, ... */
export function measureKey(measure: string): string {
  return measure === 'count' ? 'count' : measure.replace(':', '_')
}

/**
 * Resolves a column name for a role in the query. Refuses Domicile's own columns, sensitive
 * columns, and unknown names, each with its own reason.
 */
function column(table: ResolvedTable, name: unknown, role: 'group by' | 'measure' | 'filter on', path: string): ResolvedColumn {
  if (typeof name !== 'string' || name === '') throw inputInvalid(`${path}: expected a column name.`, path)
  /* Precondition: no query groups by, measures or filters on the tenant id (per-tenant figures must not leave a region). */
  if (name === 'tenant_id' || name === table.tenantColumn?.name) {
    throw unsupported(`${path}: analytics cannot ${role} "${name}", the tenant id: results would identify tenants across regions. Group by a non-sensitive attribute instead.`, path)
  }
  /* Precondition: blind-index and shadow columns are never queried (they are derived from sensitive values). */
  if (name.endsWith(BLIND_INDEX_SUFFIX) || name.endsWith(SHADOW_SUFFIX)) {
    throw unsupported(`${path}: "${name}" is a blind-index or encryption column derived from a sensitive field; analytics never reads it.`, path)
  }
  const col = table.columns.get(name)
  if (!col) throw new DomicileError('ERR_COLUMN_UNKNOWN', `${path}: table "${table.name}" has no column "${name}" (columns: ${[...table.columns.keys()].join(', ')}).`, { path })
  /* Precondition: no query groups by, measures or filters on a sensitive column. */
  if (col.sensitive) {
    throw unsupported(`${path}: "${name}" is a sensitive column (sealed under each tenant's key); analytics cannot ${role} it. Use non-sensitive columns only.`, path)
  }
  return col
}

function filterValue(col: ResolvedColumn, v: unknown, path: string): string | number | boolean {
  const bad = (what: string): DomicileError => inputInvalid(`${path}: expected ${what} for ${col.type} column "${col.name}".`, path)
  switch (col.type) {
    case 'integer':
    case 'bigint':
      if (typeof v === 'number' && Number.isSafeInteger(v)) return v
      if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) return v
      throw bad('an integer')
    case 'numeric':
      if (typeof v === 'number' && Number.isFinite(v)) return v
      if (typeof v === 'string' && /^-?\d{1,100}(\.\d{1,100})?$/.test(v)) return v
      throw bad('a decimal number')
    case 'boolean':
      if (typeof v === 'boolean') return v
      if (v === 'true' || v === 'false') return v === 'true'
      throw bad('true or false')
    case 'timestamptz': {
      const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined
      if (d && !Number.isNaN(d.getTime())) return d.toISOString()
      throw bad('an ISO 8601 timestamp')
    }
    case 'uuid':
      if (typeof v === 'string' && /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(v)) return v
      throw bad('a UUID')
    case 'text':
      if (typeof v === 'string' && !v.includes('\u0000')) return v
      throw bad('a string without NUL characters')
    default:
      throw unsupported(`${path}: analytics cannot filter on ${col.type} column "${col.name}".`, path)
  }
}

/**
 * Validates a query against the schema, before any SQL is built. Throws ERR_TABLE_UNKNOWN,
 * ERR_COLUMN_UNKNOWN, ERR_QUERY_UNSUPPORTED (what analytics refuses to compute) or
 * ERR_INPUT_INVALID (malformed input), each naming the offending part, never a filter value.
 */
export function validateAnalyticsQuery(schema: Schema, q: AnalyticsQuery): AnalyticsPlan {
  if (typeof q !== 'object' || q === null) throw inputInvalid('query: expected { table, groupBy, measures, where?, minGroupSize? }.', 'query')
  /* Precondition: a query asks for aggregates only; raw-row selection does not exist. */
  for (const k of Object.keys(q)) {
    if (!QUERY_KEYS.has(k)) {
      throw unsupported(`query.${k}: not an analytics option (allowed: ${[...QUERY_KEYS].join(', ')}). Analytics returns aggregates only, never rows or selected columns.`, `query.${k}`)
    }
  }
  if (typeof q.table !== 'string' || q.table === '') throw inputInvalid('table: expected a table name.', 'table')
  const table = schema.tables.get(q.table)
  if (!table) throw new DomicileError('ERR_TABLE_UNKNOWN', `table: the schema has no table "${q.table}" (tables: ${[...schema.tables.keys()].join(', ')}).`, { path: 'table' })
  /* Precondition: only tenant tables are analysed (global tables are reference data, the same in every region). */
  if (table.scope !== 'tenant') {
    throw unsupported(`table: "${table.name}" is a global table (reference data replicated to every region); analytics aggregates tenant tables. Read a global table directly.`, 'table')
  }

  const groupNames = q.groupBy ?? []
  if (!Array.isArray(groupNames)) throw inputInvalid('groupBy: expected a list of column names.', 'groupBy')
  if (groupNames.length > MAX_GROUP_BY) throw unsupported(`groupBy: at most ${MAX_GROUP_BY} columns.`, 'groupBy')
  const groupBy: PlannedColumn[] = []
  for (const [i, name] of groupNames.entries()) {
    const col = column(table, name, 'group by', `groupBy[${i}]`)
    /* Precondition: no query groups by the primary key (one group per row is raw-row selection). */
    if (col.name === table.primaryKey) {
      throw unsupported(`groupBy[${i}]: "${col.name}" is the primary key of "${table.name}": grouping by it returns rows one by one. Group by an attribute shared by many rows.`, `groupBy[${i}]`)
    }
    if (!GROUPABLE.has(col.type)) throw unsupported(`groupBy[${i}]: analytics cannot group by ${col.type} column "${col.name}".`, `groupBy[${i}]`)
    if (groupBy.some((g) => g.name === col.name)) throw inputInvalid(`groupBy[${i}]: "${col.name}" is listed twice.`, `groupBy[${i}]`)
    groupBy.push({ name: col.name, type: col.type })
  }

  if (!Array.isArray(q.measures) || q.measures.length === 0) {
    throw inputInvalid('measures: expected at least one of count, sum:COL, avg:COL, min:COL, max:COL.', 'measures')
  }
  if (q.measures.length > MAX_MEASURES) throw unsupported(`measures: at most ${MAX_MEASURES}.`, 'measures')
  const measures: string[] = []
  const measured = new Map<string, { column: PlannedColumn; kinds: Set<MeasureKind> }>()
  for (const [i, m] of q.measures.entries()) {
    const path = `measures[${i}]`
    if (typeof m !== 'string') throw inputInvalid(`${path}: expected count, sum:COL, avg:COL, min:COL or max:COL.`, path)
    if (m === 'count') {
      if (!measures.includes(m)) measures.push(m)
      continue
    }
    const match = /^(sum|avg|min|max):(.*)$/.exec(m)
    if (!match) throw inputInvalid(`${path}: expected count, sum:COL, avg:COL, min:COL or max:COL.`, path)
    const kind = match[1] as MeasureKind
    const col = column(table, match[2], 'measure', path)
    if (kind === 'sum' || kind === 'avg') {
      if (!NUMERIC.has(col.type)) throw unsupported(`${path}: ${kind} needs an integer, bigint or numeric column; "${col.name}" is ${col.type}.`, path)
    } else {
      /* Precondition: min/max only on ordered numeric and time columns (min/max of a text column would hand out one row's value). */
      if (!ORDERED.has(col.type)) throw unsupported(`${path}: ${kind} needs a numeric or timestamptz column; "${col.name}" is ${col.type}, whose extreme value would be one row's value.`, path)
      if (col.name === table.primaryKey) throw unsupported(`${path}: ${kind} of the primary key would return a row identifier.`, path)
    }
    const name = `${kind}:${col.name}`
    if (!measures.includes(name)) measures.push(name)
    const entry = measured.get(col.name) ?? { column: { name: col.name, type: col.type }, kinds: new Set<MeasureKind>() }
    entry.kinds.add(kind)
    measured.set(col.name, entry)
  }
  for (const g of groupBy) {
    if (measures.some((m) => measureKey(m) === g.name)) {
      throw unsupported(`groupBy: the column "${g.name}" has the name of a measure in the result; it cannot be both.`, 'groupBy')
    }
  }

  const filters: PlannedFilter[] = []
  if (q.where !== undefined) {
    if (typeof q.where !== 'object' || q.where === null || Array.isArray(q.where)) throw inputInvalid('where: expected an object of column → value or { eq, ne, lt, lte, gt, gte }.', 'where')
    for (const [name, cond] of Object.entries(q.where)) {
      const path = `where.${name}`
      const col = column(table, name, 'filter on', path)
      if (!GROUPABLE.has(col.type)) throw unsupported(`${path}: analytics cannot filter on ${col.type} column "${col.name}".`, path)
      const planned = { name: col.name, type: col.type }
      const isRange = typeof cond === 'object' && cond !== null && !(cond instanceof Date)
      if (!isRange) {
        filters.push({ column: planned, op: '=', value: filterValue(col, cond, path) })
        continue
      }
      const entries = Object.entries(cond)
      if (entries.length === 0) throw inputInvalid(`${path}: expected at least one of eq, ne, lt, lte, gt, gte.`, path)
      for (const [op, v] of entries) {
        const sqlOp = Object.hasOwn(RANGE_OPS, op) ? RANGE_OPS[op as keyof FilterRange] : undefined
        if (!sqlOp) throw inputInvalid(`${path}.${op}: expected one of eq, ne, lt, lte, gt, gte.`, `${path}.${op}`)
        if (sqlOp !== '=' && sqlOp !== '<>' && !ORDERED.has(col.type)) {
          throw unsupported(`${path}.${op}: range filters need a numeric or timestamptz column; "${col.name}" is ${col.type}.`, `${path}.${op}`)
        }
        filters.push({ column: planned, op: sqlOp, value: filterValue(col, v, `${path}.${op}`) })
      }
    }
  }

  const minGroupSize = q.minGroupSize ?? DEFAULT_MIN_GROUP_SIZE
  /* Precondition: the minimum group size is at least 2 (a group of one is a row). */
  if (!Number.isInteger(minGroupSize) || minGroupSize < 2 || minGroupSize > 1_000_000) {
    throw inputInvalid('minGroupSize: expected an integer from 2 to 1000000 (a group of one row is a row).', 'minGroupSize')
  }
  const timeoutMs = q.timeoutMs ?? DEFAULT_TIMEOUT_MS
  if (!Number.isInteger(timeoutMs) || timeoutMs < 100 || timeoutMs > 3_600_000) {
    throw inputInvalid('timeoutMs: expected an integer from 100 to 3600000.', 'timeoutMs')
  }
  if (q.actor !== undefined && (typeof q.actor !== 'string' || q.actor.trim() === '')) throw inputInvalid('actor: expected a non-empty string.', 'actor')
  return {
    table: table.name,
    groupBy,
    measured: [...measured.values()],
    measures,
    filters,
    minGroupSize,
    timeoutMs,
  }
}

/** The query's shape for the audit record: names and operators only, never filter values. */
export function queryShape(plan: AnalyticsPlan): Record<string, string | number> {
  return {
    table: plan.table,
    groupBy: plan.groupBy.map((g) => g.name).join(','),
    measures: plan.measures.join(','),
    filters: plan.filters.map((f) => `${f.column.name} ${f.op}`).join(','),
    minGroupSize: plan.minGroupSize,
  }
}
