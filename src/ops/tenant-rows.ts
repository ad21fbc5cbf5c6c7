/**
 * What the online operations (moves, encrypt-in-place, rotations, shredding, the residency report)
 * need besides src/schema/tenant-column.ts to address a tenant table's rows:
 * - the parameter of a statement that sweeps all of one tenant's rows: a tenant whose id the
 *   table's tenant column cannot hold (tenant `acme`, a `bigint` column) has no rows there, so the
 *   parameter is NULL and the comparison matches no row, the same answer row-level security gives;
 * - the tenant column read back as the tenant id (its canonical text form, `7` for a bigint);
 * - the SQL type of the row key (`primaryKey`, the one column that tells a tenant's rows apart:
 *   defineSchema allows a composite key only as (tenant column, one column)).
 * For a table Domicile creates nothing changes: `"tenant_id" = $1`, no cast, the id as given.
 */
import { DomicileError } from '../errors.js'
import type { ColumnType, ResolvedTable } from '../schema/define-schema.js'
import { tenantColumnOf, tenantColumnSql, tenantFitsColumn, tenantParam } from '../schema/tenant-column.js'

/**
 * The tenant id as the parameter of a statement over all of the tenant's rows in a table: the id
 * itself, or null (matches no row) when the table's tenant column cannot hold it.
 *
 * @example
 * await s.query(`DELETE FROM contacts WHERE ${tenantMatch(t, '$1')}`, [tenantSweepParam(t, tenantId)])
 */
export function tenantSweepParam(t: ResolvedTable, tenantId: string): string | null {
  const { type } = tenantColumnOf(t)
  return type === 'text' || tenantFitsColumn(type, tenantId) ? tenantParam(t, tenantId) : null
}

/** The tenant column as the tenant id (text), for statements that list or group tenants. */
export function tenantIdSql(t: ResolvedTable, alias?: string): string {
  const c = tenantColumnSql(t, alias)
  return tenantColumnOf(t).type === 'text' ? c : `${c}::text`
}

const KEY_SQL_TYPE: Readonly<Record<ColumnType, string>> = {
  text: 'text', integer: 'integer', bigint: 'bigint', uuid: 'uuid', numeric: 'numeric', boolean: 'boolean', timestamptz: 'timestamptz', jsonb: 'jsonb', bytea: 'bytea',
}

/** The SQL type of the row key (`primaryKey`): the tenant column's own type for a table keyed by it alone. */
export function rowKeySqlType(t: ResolvedTable): string {
  const col = t.columns.get(t.primaryKey)
  if (col) return KEY_SQL_TYPE[col.type] ?? 'text'
  if (t.tenantColumn !== null && t.tenantColumn.name === t.primaryKey) return t.tenantColumn.type
  throw new DomicileError('ERR_UNEXPECTED', `Table "${t.name}" has no key column "${t.primaryKey}".`)
}

/** `::type` for a row-key parameter ('' for text). */
export function rowKeyCast(t: ResolvedTable): string {
  const type = rowKeySqlType(t)
  return type === 'text' ? '' : `::${type}`
}
