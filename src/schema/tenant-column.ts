/**
 * Where a tenant table keeps its tenant id, and how SQL compares it. A table Domicile creates has
 * `tenant_id text`; an adopted table (src/schema/define-schema.ts) names its own column, of type
 * `text`, `integer`, `bigint` or `uuid`. A tenant's id is always text (a slug): for a numeric or uuid
 * column it is the column's value in its canonical text form (`7`, never `007`; a lower-case uuid), so
 * one tenant id names exactly one column value and no two tenant ids name the same rows.
 *
 * Every statement that filters or writes a tenant table's rows by tenant goes through this module, so
 * the cast is always on the parameter's side (the column's own index is used) and a tenant id that
 * cannot be a value of the column is refused before any SQL runs (ERR_TENANT_INVALID).
 */
import { DomicileError } from '../errors.js'
import type { ResolvedTable, TenantColumnDef, TenantColumnType } from './define-schema.js'
import { q } from './sql-ident.js'

/** Canonical text forms of each tenant-column type; the SQL twins below must accept the same strings. */
const CANONICAL: Readonly<Record<TenantColumnType, RegExp>> = {
  text: /^/,
  integer: /^(0|[1-9][0-9]{0,9})$/,
  bigint: /^(0|[1-9][0-9]{0,18})$/,
  uuid: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
}
const MAX: Partial<Readonly<Record<TenantColumnType, bigint>>> = { integer: 2147483647n, bigint: 9223372036854775807n }

/** The table's tenant column; a global table has none (a programming error to ask). */
export function tenantColumnOf(t: ResolvedTable): TenantColumnDef {
  if (t.tenantColumn === null) throw new DomicileError('ERR_UNEXPECTED', `Table "${t.name}" is global: it has no tenant column.`)
  return t.tenantColumn
}

/** The quoted tenant column, optionally qualified by a table alias. */
export function tenantColumnSql(t: ResolvedTable, alias?: string): string {
  const c = q(tenantColumnOf(t).name)
  return alias === undefined ? c : `${alias}.${c}`
}

/** The cast that turns a text parameter into the tenant column's type ('' for text). */
export function tenantCast(t: ResolvedTable): string {
  const type = tenantColumnOf(t).type
  return type === 'text' ? '' : `::${type}`
}

/** `<tenant column> = <placeholder>::<type>`: the tenant filter of a statement (placeholder e.g. `$1`). */
export function tenantMatch(t: ResolvedTable, placeholder: string, alias?: string): string {
  return `${tenantColumnSql(t, alias)} = ${placeholder}${tenantCast(t)}`
}

/** Whether a tenant id is a canonical value of the column type. */
export function tenantFitsColumn(type: TenantColumnType, tenantId: string): boolean {
  if (!CANONICAL[type].test(tenantId)) return false
  const max = MAX[type]
  return max === undefined || BigInt(tenantId) <= max
}

/**
 * The tenant id as the statement parameter for this table's tenant column. Precondition: the id is
 * a canonical value of the column's type (a tenant `acme` has no rows in a table keyed by a bigint).
 */
export function tenantParam(t: ResolvedTable, tenantId: string): string {
  const type = tenantColumnOf(t).type
  /* Precondition: the tenant id is a value the tenant column can hold, in its one canonical form. */
  if (type !== 'text' && !tenantFitsColumn(type, tenantId)) {
    throw new DomicileError('ERR_TENANT_INVALID', `Tenant "${tenantId}" cannot have rows in table "${t.name}": its tenant column ${tenantColumnOf(t).name} is ${type}, so tenant ids there are ${type === 'uuid' ? 'lower-case uuids' : 'integers written without leading zeros'}. Use the tenant whose id is the column's value (docs/ADOPTING.md).`, { path: `${t.name}.${tenantColumnOf(t).name}` })
  }
  return tenantId
}

/**
 * The row-level security comparison for a tenant table: the tenant column equals the transaction's
 * verified tenant (`domicile_tenant()`, src/schema/isolation-ddl.ts), evaluated once per statement.
 * For a non-text column the tenant id is cast only when it is a canonical value of the column's type;
 * any other id matches no row (NULL), never an error and never another tenant's rows.
 */
export function tenantPolicyPredicate(t: ResolvedTable): string {
  const { type } = tenantColumnOf(t)
  const col = tenantColumnSql(t)
  if (type === 'text') return `${col} = (SELECT domicile_tenant())`
  const shape = CANONICAL[type].source.replace(/'/g, "''")
  const bound = MAX[type] === undefined ? '' : ` AND x::numeric <= ${MAX[type]!.toString()}`
  return `${col} = (SELECT CASE WHEN x ~ '${shape}'${bound} THEN x::${type} END FROM (SELECT domicile_tenant() AS x) s)`
}
