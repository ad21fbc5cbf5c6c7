/**
 * From an existing database's catalog (and a value sample) to a proposed Domicile schema that
 * describes the tables as they are (`adopted: true`, src/schema/define-schema.ts):
 * - a table with the tenant column is `tenant` (tenantColumn = that column);
 * - the tenants table itself is `tenant` too, keyed by the tenant id (tenantColumn = its primary
 *   key column): the table the tenant column's foreign keys reference, or, without such keys, a
 *   table named after the tenant column (`company_id` → `companies`) or like `tenants`,
 *   `organizations`, `accounts`, `companies`;
 * - every other table is `global` (replicated reference data). A global table that looks personal
 *   (column names, sampled values) or references a tenant table is flagged: it probably belongs to
 *   tenants and needs the tenant column.
 * Columns keep their existing types where the schema model has one; a column of another type (or
 * a generated one, or a name the model cannot take) stays out of the model, with the reason. A
 * table without a primary key, or whose key or tenant column is such a column, stays out whole.
 * Sensitive columns are suggestions with evidence until accepted (`sensitive` option, --sensitive).
 *
 * @example
 * ```ts
 * const p = proposeSchema(catalog, samples, { region: 'eu-west-1', tenantColumn: 'company_id', sensitive: ['contacts.email'] })
 * defineSchema(tableDefs(p)) // validates; tables are adopted
 * ```
 */
import { DomicileError } from '../errors.js'
import { BLIND_INDEX_SUFFIX, SHADOW_SUFFIX, type ColumnDef, type ColumnType, type TableDef, type TenantColumnDef } from '../schema/define-schema.js'
import type { Catalog, CatalogColumn, CatalogTable } from './catalog-reader.js'
import { columnFindings, modelType, suggestionEvidence, tenantColumnType } from './classify-columns.js'
import type { ColumnSample } from './sample-values.js'

export type TableClassification = 'tenant' | 'tenants-table' | 'global'

export interface ColumnProposal {
  readonly name: string
  readonly sqlType: string
  /** The schema-model type; null when the column stays out of the model. */
  readonly type: ColumnType | null
  readonly nullable: boolean
  readonly hasDefault: boolean
  readonly role: 'tenant-column' | 'primary-key' | 'column'
  /** Why the column stays out of the model; null when it is in. */
  readonly leftOut: string | null
  /** Evidence for a sensitive-column suggestion (tenant tables); null when none. */
  readonly suggestion: readonly string[] | null
  /** Marked sensitive in the proposed schema (accepted with --sensitive). */
  readonly sensitive: boolean
  /** Advice about the column, e.g. why a personal-looking column cannot be sensitive. */
  readonly note: string | null
}

export interface TableProposal {
  readonly name: string
  readonly classification: TableClassification
  /** Why it got this classification, in words. */
  readonly reason: string
  readonly rows: number
  readonly rowsExact: boolean
  readonly tenantColumn: TenantColumnDef | null
  readonly primaryKey: readonly string[] | null
  /** false: the table stays out of the proposed schema (`leftOut` says why). */
  readonly inModel: boolean
  readonly leftOut: string | null
  /** A global table that looks personal or references tenant tables: the evidence. Empty otherwise. */
  readonly flagged: readonly string[]
  readonly columns: readonly ColumnProposal[]
  readonly foreignKeys: number
  readonly checks: number
  readonly indexes: number
  readonly warnings: readonly string[]
}

export interface SchemaProposal {
  readonly region: string
  readonly dbSchema: string
  readonly tenantColumn: string
  readonly sampleRows: number
  readonly tables: readonly TableProposal[]
}

export interface ProposeOptions {
  readonly region: string
  readonly tenantColumn: string
  /** `TABLE.COLUMN` entries to mark sensitive. */
  readonly sensitive?: readonly string[]
  readonly sampleRows?: number
}

const IDENT = /^[a-z][a-z0-9_]{0,47}$/
/** Code-point order (not the locale's): the same output on every machine. */
const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0)
const RESERVED_COLUMNS = new Set(['tenant_id', 'oid', 'ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid'])
const TENANTS_TABLE_NAMES = ['tenants', 'companies', 'organizations', 'organisations', 'accounts', 'orgs', 'workspaces']

function inputError(message: string, path: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', message, { path })
}

/** Why a table name cannot be in the schema model, or undefined. */
function badTableName(name: string): string | undefined {
  if (!IDENT.test(name)) return 'its name is not a lower-case identifier of at most 48 characters (a-z, 0-9, _), which the schema model needs'
  if (name.startsWith('domicile_')) return 'a table of Domicile itself'
  if (name.startsWith('pg_')) return 'its name starts with "pg_" (PostgreSQL resolves such names to its system catalogs first)'
  return undefined
}

/** Why a column name cannot be in the schema model, or undefined. */
function badColumnName(name: string): string | undefined {
  if (!IDENT.test(name)) return 'name is not a lower-case identifier of at most 48 characters'
  if (RESERVED_COLUMNS.has(name)) return `name "${name}" is reserved by Domicile`
  if (name.endsWith(BLIND_INDEX_SUFFIX) || name.endsWith(SHADOW_SUFFIX)) return `name ends in "${BLIND_INDEX_SUFFIX}" or "${SHADOW_SUFFIX}" (Domicile's own columns)`
  return undefined
}

/** Names a tenants table could have, from the tenant column: company_id → company, companies. */
function namesFromTenantColumn(col: string): string[] {
  const stem = col.replace(/_(id|key|uuid)$/, '')
  if (stem === col || stem === '') return []
  return [stem, `${stem}s`, `${stem}es`, stem.endsWith('y') ? `${stem.slice(0, -1)}ies` : `${stem}s`]
}

/** The tenants table: referenced by the tenant column's foreign keys, else found by its name. */
function findTenantsTable(catalog: Catalog, tenantColumn: string): { table: CatalogTable; reason: string } | undefined {
  const candidates = catalog.tables.filter((t) => t.primaryKey?.length === 1 && !t.columns.some((c) => c.name === tenantColumn)
    && tenantColumnType(t.columns.find((c) => c.name === t.primaryKey![0])!) !== undefined)
  const referencing = new Map<string, string[]>()
  for (const t of catalog.tables) {
    for (const fk of t.foreignKeys) {
      if (fk.columns.length !== 1 || fk.columns[0] !== tenantColumn || fk.refSchema !== catalog.schema) continue
      const target = candidates.find((c) => c.name === fk.refTable && c.primaryKey![0] === fk.refColumns[0])
      if (target) referencing.set(target.name, [...(referencing.get(target.name) ?? []), t.name])
    }
  }
  const best = [...referencing.entries()].sort((a, b) => b[1].length - a[1].length || byCodePoint(a[0], b[0]))[0]
  if (best) {
    const by = [...new Set(best[1])].sort()
    return { table: candidates.find((c) => c.name === best[0])!, reason: `${tenantColumn} in ${by.join(', ')} references its key` }
  }
  for (const name of [...namesFromTenantColumn(tenantColumn), ...TENANTS_TABLE_NAMES]) {
    const t = candidates.find((c) => c.name === name)
    if (t) return { table: t, reason: `named like one (no foreign key from ${tenantColumn} references it)` }
  }
  return undefined
}

/** Columns that several tables use to reference another table's key: candidates for --tenant-column. */
function tenantColumnCandidates(catalog: Catalog): string[] {
  const uses = new Map<string, Set<string>>()
  for (const t of catalog.tables) {
    for (const fk of t.foreignKeys) {
      if (fk.columns.length === 0) continue
      const first = fk.columns[0]!
      uses.set(first, (uses.get(first) ?? new Set()).add(t.name))
    }
  }
  return [...uses.entries()].filter(([, ts]) => ts.size >= 2).sort((a, b) => b[1].size - a[1].size || byCodePoint(a[0], b[0])).slice(0, 5).map(([c, ts]) => `${c} (${ts.size} tables)`)
}

/** Builds the proposal. Throws ERR_INPUT_INVALID when no table has the tenant column. */
export function proposeSchema(catalog: Catalog, samples: ReadonlyMap<string, ReadonlyMap<string, ColumnSample>>, opts: ProposeOptions): SchemaProposal {
  const tc = opts.tenantColumn
  const withColumn = catalog.tables.filter((t) => t.columns.some((c) => c.name === tc))
  /* Precondition: at least one table has the tenant column. */
  if (withColumn.length === 0) {
    const candidates = tenantColumnCandidates(catalog)
    throw inputError(`No table in schema ${JSON.stringify(catalog.schema)} of region ${opts.region} has a column named ${JSON.stringify(tc)} (${catalog.tables.length} table${catalog.tables.length === 1 ? '' : 's'} read).${candidates.length > 0 ? ` Columns that several tables use to reference another table: ${candidates.join(', ')}.` : ''} Pass the column that holds the tenant id with --tenant-column NAME.`, '--tenant-column')
  }
  const tenants = findTenantsTable(catalog, tc)
  const tenantTableNames = new Set([...withColumn.map((t) => t.name), ...(tenants ? [tenants.table.name] : [])])
  const tables = catalog.tables.map((t) => proposeTable(t, catalog.schema, tc, tenants?.table.name === t.name ? tenants.reason : undefined, tenantTableNames, samples.get(t.name)))
  const order: Record<TableClassification, number> = { 'tenants-table': 0, tenant: 1, global: 2 }
  tables.sort((a, b) => order[a.classification] - order[b.classification] || byCodePoint(a.name, b.name))
  const proposal = { region: opts.region, dbSchema: catalog.schema, tenantColumn: tc, sampleRows: opts.sampleRows ?? 0, tables }
  return acceptSensitive(proposal, opts.sensitive ?? [])
}

function proposeTable(t: CatalogTable, schema: string, tc: string, tenantsReason: string | undefined, tenantTables: ReadonlySet<string>, sample: ReadonlyMap<string, ColumnSample> | undefined): TableProposal {
  const classification: TableClassification = tenantsReason !== undefined ? 'tenants-table' : t.columns.some((c) => c.name === tc) ? 'tenant' : 'global'
  const reason = tenantsReason ?? (classification === 'tenant' ? `has the tenant column ${tc}` : `no ${tc} column`)
  const scope = classification === 'global' ? 'global' : 'tenant'
  const warnings: string[] = []
  let leftOut: string | null = badTableName(t.name) ?? null
  if (leftOut === null && t.primaryKey === null) leftOut = 'it has no primary key (Domicile needs one to address rows); add one, then inspect again'
  const pk = t.primaryKey ?? []
  let tenantColumn: TenantColumnDef | null = null
  const tenantColumnName = classification === 'tenant' ? tc : classification === 'tenants-table' ? pk[0]! : undefined
  if (leftOut === null && t.primaryKey !== null && t.primaryKey.length > 1 && (t.primaryKey.length !== 2 || tenantColumnName === undefined || !t.primaryKey.includes(tenantColumnName))) {
    leftOut = `its primary key (${t.primaryKey.join(', ')}) is not (tenant column, one column): a row's key within its tenant must be one value`
  }
  if (tenantColumnName !== undefined) {
    const col = t.columns.find((c) => c.name === tenantColumnName)!
    const type = tenantColumnType(col)
    const bad = badColumnName(col.name) !== undefined && col.name !== 'tenant_id'
    if (type === undefined) leftOut ??= `its tenant column ${col.name} has type ${col.sqlType}; a tenant column is text, integer, bigint or uuid`
    else if (bad || !IDENT.test(col.name)) leftOut ??= `its tenant column's name ${JSON.stringify(col.name)} is not one the schema model can take`
    else tenantColumn = { name: col.name, type }
    if (!col.notNull) warnings.push(`${col.name} allows NULL: after migrate, rows without a tenant are visible to no tenant`)
  }
  const columns = t.columns.map((c): ColumnProposal => proposeColumn(t.name, c, scope, tenantColumnName, pk, sample?.get(c.name)))
  for (const c of columns) {
    if (c.role === 'primary-key' && c.leftOut !== null) leftOut ??= `its primary key column ${c.name} stays out of the model (${c.leftOut})`
    const cat = t.columns.find((x) => x.name === c.name)!
    if (c.leftOut !== null && c.role === 'column' && cat.notNull && !cat.hasDefault) warnings.push(`${c.name} is NOT NULL without a default and stays out of the model: inserts through Domicile cannot fill it`)
  }
  const flagged: string[] = []
  if (classification === 'global') {
    for (const c of t.columns) {
      const evidence = suggestionEvidence(columnFindings(t.name, c.name, sample?.get(c.name)), 'global')
      if (evidence.length > 0) flagged.push(`${c.name}: ${evidence.join('; ')}`)
    }
    for (const fk of t.foreignKeys) {
      if (fk.refSchema === schema && tenantTables.has(fk.refTable)) flagged.push(`${fk.columns.join(', ')} references tenant table ${fk.refTable}: its rows probably belong to tenants`)
    }
  }
  return {
    name: t.name, classification, reason, rows: t.rows, rowsExact: t.rowsExact, tenantColumn, primaryKey: t.primaryKey,
    inModel: leftOut === null, leftOut, flagged, columns, foreignKeys: t.foreignKeys.length, checks: t.checks, indexes: t.indexes, warnings,
  }
}

function proposeColumn(table: string, c: CatalogColumn, scope: 'tenant' | 'global', tenantColumn: string | undefined, pk: readonly string[], sample: ColumnSample | undefined): ColumnProposal {
  const role = c.name === tenantColumn ? 'tenant-column' : pk.includes(c.name) ? 'primary-key' : 'column'
  const type = modelType(c)
  let leftOut: string | null = null
  if (role !== 'tenant-column') {
    leftOut = badColumnName(c.name) ?? null
    if (leftOut === null && c.generated) leftOut = 'generated column: computed by the database'
    if (leftOut === null && type === undefined) leftOut = `unsupported type ${c.sqlType}: kept out of the model`
  }
  const evidence = scope === 'tenant' ? suggestionEvidence(columnFindings(table, c.name, sample), 'tenant') : []
  let note: string | null = null
  let suggestion: string[] | null = evidence.length > 0 ? evidence : null
  if (suggestion !== null && role !== 'column') {
    note = `looks personal (${evidence.join('; ')}), but it is ${role === 'tenant-column' ? 'the tenant column' : 'part of the primary key'}, which cannot be sensitive`
    suggestion = null
  } else if (suggestion !== null && leftOut !== null) {
    note = `looks personal (${evidence.join('; ')}), but it stays out of the model`
    suggestion = null
  } else if (suggestion !== null && c.hasDefault) {
    note = 'has a database default: drop the default before marking it sensitive (the database would write plaintext)'
  }
  if (scope === 'global' && c.name === 'name' && columnFindings(table, c.name, undefined).genericName) {
    note = '"domicile lint" checks names word by word: if it holds no personal data, add residency: { notPersonal: \'why\' }'
  }
  return {
    name: c.name, sqlType: c.sqlType, type: leftOut === null && role !== 'tenant-column' ? type! : null, nullable: !c.notNull, hasDefault: c.hasDefault,
    role, leftOut, suggestion, sensitive: false, note,
  }
}

/** Marks the `TABLE.COLUMN` entries sensitive; refuses entries the proposal cannot honour. */
function acceptSensitive(p: SchemaProposal, entries: readonly string[]): SchemaProposal {
  const accepted = new Map<string, Set<string>>()
  for (const entry of entries) {
    const m = /^([^.\s]+)\.([^.\s]+)$/.exec(entry.trim())
    if (!m) throw inputError(`--sensitive: expected TABLE.COLUMN entries separated by commas, e.g. --sensitive contacts.email,contacts.phone (got ${JSON.stringify(entry)}).`, '--sensitive')
    const [, tname, cname] = m as unknown as [string, string, string]
    const t = p.tables.find((x) => x.name === tname)
    if (!t) throw new DomicileError('ERR_TABLE_UNKNOWN', `--sensitive ${entry}: schema ${JSON.stringify(p.dbSchema)} has no table ${JSON.stringify(tname)}.`, { path: '--sensitive' })
    const c = t.columns.find((x) => x.name === cname)
    if (!c) throw new DomicileError('ERR_COLUMN_UNKNOWN', `--sensitive ${entry}: table ${tname} has no column ${JSON.stringify(cname)}. Its columns: ${t.columns.map((x) => x.name).join(', ')}.`, { path: '--sensitive' })
    /* Precondition: an accepted sensitive column is one the proposed schema can encrypt. */
    if (t.classification === 'global') throw inputError(`--sensitive ${entry}: ${tname} is a global table (no ${p.tenantColumn} column): global tables are copied to every region and cannot hold sensitive columns. If its rows belong to tenants, add the tenant column to it first.`, '--sensitive')
    if (!t.inModel) throw inputError(`--sensitive ${entry}: table ${tname} stays out of the proposed schema (${t.leftOut}).`, '--sensitive')
    if (c.role !== 'column') throw inputError(`--sensitive ${entry}: ${c.role === 'tenant-column' ? 'the tenant column' : 'a primary key column'} cannot be sensitive (it addresses the row and is bound into every sealed field).`, '--sensitive')
    if (c.leftOut !== null) throw inputError(`--sensitive ${entry}: the column stays out of the proposed schema (${c.leftOut}).`, '--sensitive')
    if (c.hasDefault) throw inputError(`--sensitive ${entry}: the column has a database default, which would write plaintext; drop the default first.`, '--sensitive')
    accepted.set(tname, (accepted.get(tname) ?? new Set()).add(cname))
  }
  if (accepted.size === 0) return p
  return {
    ...p,
    tables: p.tables.map((t) => accepted.has(t.name) ? { ...t, columns: t.columns.map((c) => accepted.get(t.name)!.has(c.name) ? { ...c, sensitive: true } : c) } : t),
  }
}

/** The proposal's tables as schema definitions (tables in the model only), for defineSchema. */
export function tableDefs(p: SchemaProposal): Record<string, TableDef> {
  const out: Record<string, TableDef> = {}
  for (const t of p.tables) {
    if (!t.inModel) continue
    const columns: Record<string, ColumnDef> = {}
    for (const c of t.columns) {
      if (c.role === 'tenant-column' || c.leftOut !== null || c.type === null) continue
      columns[c.name] = { type: c.type, ...(c.nullable ? { nullable: true } : {}), ...(c.hasDefault ? { default: true } : {}), ...(c.sensitive ? { sensitive: true } : {}) }
    }
    const pk = t.primaryKey!
    out[t.name] = {
      scope: t.classification === 'global' ? 'global' : 'tenant',
      adopted: true,
      ...(t.tenantColumn ? { tenantColumn: t.tenantColumn } : {}),
      primaryKey: pk.length === 1 ? pk[0]! : [...pk],
      columns,
    }
  }
  return out
}
