/**
 * Table and column definitions: each table is classified `tenant` (region-pinned, row-level
 * security on `tenant_id`) or `global` (replicated reference data, never personal). Sensitive
 * columns (field-level encryption) are declared here, optionally searchable by equality through a
 * blind index. The definition is validated once, when `defineSchema` is called.
 *
 * @example
 * ```ts
 * import { defineSchema } from 'domicile'
 * export default defineSchema({
 *   customers: {
 *     scope: 'tenant',
 *     primaryKey: 'id',
 *     columns: {
 *       id: { type: 'text' },
 *       email: { type: 'text', sensitive: { searchable: true, normalize: ['trim', 'lower'] } },
 *     },
 *   },
 * })
 * ```
 *
 * Adopted tables (`adopted: true`) describe a table the application already has, as it is:
 * `domicile migrate` attaches to it and never creates or rewrites it (`domicile adopt inspect`
 * writes them, docs/ADOPTING.md). They differ from tables Domicile creates in four ways:
 * - `tenantColumn: { name, type }` (type `text` | `integer` | `bigint` | `uuid`) names the existing
 *   column that holds the tenant id. It is a real column of the table, declared here only: it must
 *   NOT appear again in `columns` (like `tenant_id` of a created table, Domicile fills and filters it).
 *   Required for a tenant table, refused for a global one. A created table keeps the implicit
 *   `tenant_id text` column, and refuses `tenantColumn`.
 * - `primaryKey` may be a list (a composite key); its entries are columns or the tenant column. The
 *   resolved table keeps the whole list in `primaryKeyColumns`, and in `primaryKey` (one name, for
 *   single-key code paths) the key without the tenant column when that leaves one column, else the
 *   list's first entry (the tenant column itself for a table keyed by the tenant id alone).
 * - a column may say `default: true`: the database fills it when an insert omits it (bigserial,
 *   now()). Never on a sensitive column (the database would write plaintext).
 * - `columns` may be empty (a table whose only column is its tenant column).
 * Every option above is refused on a table without `adopted: true`, so a typo stays an error.
 *
 * @example
 * ```ts
 * import { defineSchema } from 'domicile'
 * export default defineSchema({
 *   contacts: {
 *     scope: 'tenant',
 *     adopted: true,
 *     tenantColumn: { name: 'company_id', type: 'bigint' },
 *     primaryKey: ['company_id', 'id'],
 *     columns: { id: { type: 'bigint', default: true }, email: { type: 'text', sensitive: true } },
 *   },
 * })
 * ```
 */
import { DomicileError } from '../errors.js'
import { assessIndexLength } from './index-length.js'

export type ColumnType = 'text' | 'integer' | 'bigint' | 'boolean' | 'numeric' | 'timestamptz' | 'jsonb' | 'uuid' | 'bytea'
export type Normalization = 'trim' | 'lower' | 'nfkc'

export interface SensitiveOptions {
  /** Equality search through a blind index column beside the ciphertext. */
  readonly searchable?: boolean
  /** Applied before the blind index is computed (not to the stored value). */
  readonly normalize?: readonly Normalization[]
  /** Blind index length in bytes (4..32). Default 4: short enough that values collide in large tables (less for an observer to learn); false positives are filtered out by opening the candidates. */
  readonly indexBytes?: number
  /** Expected rows per tenant, used only to warn about index length. Default 100000. */
  readonly expectedRows?: number
}

export interface ColumnDef {
  readonly type: ColumnType
  readonly nullable?: boolean
  /** true or options: stored as AES-256-GCM ciphertext under the tenant's data key. */
  readonly sensitive?: boolean | SensitiveOptions
  /** Adopted tables only: the database fills the column when an insert omits it (bigserial, now()). */
  readonly default?: boolean
  /** Residency lint: `{ notPersonal: 'reason' }` waives the personal-name check (`domicile lint`) for this column, with the reason shown in its output. */
  readonly residency?: ResidencyOptions
}

export interface ResidencyOptions {
  /** Why this column holds no personal data although its name looks personal (non-empty). */
  readonly notPersonal: string
}

/** The type of an adopted table's tenant column; the tenant id is its value as text (`7` for a bigint). */
export type TenantColumnType = 'text' | 'integer' | 'bigint' | 'uuid'

/** The column holding the tenant id. */
export interface TenantColumnDef {
  readonly name: string
  readonly type: TenantColumnType
}

export interface TableDef {
  readonly scope: 'tenant' | 'global'
  /** A column name; an adopted table may list several (a composite key, which may include the tenant column). */
  readonly primaryKey: string | readonly string[]
  /** An existing table of the application: migrate attaches to it, never creates or rewrites it. */
  readonly adopted?: boolean
  /** Adopted tenant tables: the existing column holding the tenant id (not listed again in `columns`). */
  readonly tenantColumn?: TenantColumnDef
  readonly columns: Readonly<Record<string, ColumnDef>>
  /** Plain (non-sensitive) columns to index, for find() speed. */
  readonly indexes?: readonly string[]
}

export interface ResolvedColumn {
  readonly name: string
  readonly type: ColumnType
  readonly nullable: boolean
  readonly sensitive: false | Required<Pick<SensitiveOptions, 'searchable' | 'indexBytes' | 'expectedRows'>> & { normalize: readonly Normalization[] }
  /** Name of the blind-index column, when searchable. */
  readonly indexColumn?: string
  /** The reason given in `residency: { notPersonal }`, when the column waives the residency linter's name check. */
  readonly notPersonal?: string
  /** The database fills it when an insert omits it (adopted tables only). */
  readonly hasDefault: boolean
}

export interface ResolvedTable {
  readonly name: string
  readonly scope: 'tenant' | 'global'
  /** One column name: the whole key, or for a composite key of an adopted table see the module comment. */
  readonly primaryKey: string
  /** The whole primary key, in order (one entry unless the table is adopted with a composite key). */
  readonly primaryKeyColumns: readonly string[]
  /** An existing table of the application (`adopted: true`). */
  readonly adopted: boolean
  /** Where the tenant id lives: `tenant_id` text for a created tenant table, the declared column for an adopted one; null for a global table. */
  readonly tenantColumn: TenantColumnDef | null
  readonly columns: ReadonlyMap<string, ResolvedColumn>
  readonly sensitiveColumns: readonly ResolvedColumn[]
  readonly indexes: readonly string[]
}

/** Advice about a valid schema, e.g. a blind index length that leaks or collides too much. */
export interface SchemaWarning {
  readonly path: string
  readonly code: string
  readonly message: string
}

export interface Schema {
  readonly tables: ReadonlyMap<string, ResolvedTable>
  readonly warnings: readonly SchemaWarning[]
  table(name: string): ResolvedTable
}

const SCHEMA_BRAND = Symbol.for('domicile.schema')
const IDENT = /^[a-z][a-z0-9_]{0,47}$/
const COLUMN_TYPES: readonly ColumnType[] = ['text', 'integer', 'bigint', 'boolean', 'numeric', 'timestamptz', 'jsonb', 'uuid', 'bytea']
const RESERVED_COLUMNS = new Set(['tenant_id', 'oid', 'ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid'])
export const BLIND_INDEX_SUFFIX = '__bidx'
/** A sensitive column's second physical column while an encrypt-in-place migration runs (src/schema/column-layout.ts). */
export const SHADOW_SUFFIX = '__shadow'

function invalid(path: string, message: string): DomicileError {
  return new DomicileError('ERR_SCHEMA_INVALID', `${path}: ${message}`, { path })
}

const TABLE_KEYS = ['scope', 'primaryKey', 'columns', 'indexes', 'adopted', 'tenantColumn'] as const
const COLUMN_KEYS = ['type', 'nullable', 'sensitive', 'residency', 'default'] as const
const TENANT_COLUMN_KEYS = ['name', 'type'] as const
const TENANT_COLUMN_TYPES: readonly TenantColumnType[] = ['text', 'integer', 'bigint', 'uuid']
const SYSTEM_COLUMNS = new Set(['oid', 'ctid', 'xmin', 'xmax', 'cmin', 'cmax', 'tableoid'])
/** A created tenant table's tenant column. */
const IMPLICIT_TENANT_COLUMN: TenantColumnDef = Object.freeze({ name: 'tenant_id', type: 'text' })
const RESIDENCY_KEYS = ['notPersonal'] as const
const SENSITIVE_KEYS = ['searchable', 'normalize', 'indexBytes', 'expectedRows'] as const

/** A misspelt option is an error, never silently ignored (a typo in `sensitive` would store plaintext). */
function onlyKeys(o: object, allowed: readonly string[], path: string): void {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) throw invalid(`${path}.${k}`, `no such option (allowed: ${allowed.join(', ')})`)
  }
}

/** The reason of a column's `residency: { notPersonal }` waiver, validated; undefined without one. */
function residencyWaiver(c: ColumnDef, cpath: string): string | undefined {
  if (c.residency === undefined) return undefined
  const path = `${cpath}.residency`
  if (typeof c.residency !== 'object' || c.residency === null || Array.isArray(c.residency)) throw invalid(path, 'expected { notPersonal: \'why this column holds no personal data\' }')
  onlyKeys(c.residency, RESIDENCY_KEYS, path)
  const reason: unknown = c.residency.notPersonal
  /* Precondition: a residency waiver states its reason. */
  if (typeof reason !== 'string' || reason.trim() === '') throw invalid(`${path}.notPersonal`, 'expected a non-empty reason saying why the column holds no personal data (shown by "domicile lint")')
  if (reason.length > 500) throw invalid(`${path}.notPersonal`, 'expected a reason of at most 500 characters')
  /* Precondition: a sensitive column is personal by declaration, so it cannot be waived as not personal. */
  if (c.sensitive) throw invalid(path, 'a sensitive column cannot be declared not personal; drop one of the two options')
  return reason.trim()
}

/** An adopted tenant table's `tenantColumn`, validated; null for any other table (which may not declare one). */
function tenantColumnOf(def: TableDef, adopted: boolean, path: string): TenantColumnDef | null {
  const tc: unknown = def.tenantColumn
  const tpath = `${path}.tenantColumn`
  if (!adopted) {
    /* Precondition: only an adopted table names its tenant column; a created one has tenant_id (text). */
    if (tc !== undefined) throw invalid(tpath, 'only an adopted table (adopted: true) names its tenant column; a table Domicile creates has the tenant column tenant_id (text)')
    return def.scope === 'tenant' ? IMPLICIT_TENANT_COLUMN : null
  }
  if (def.scope === 'global') {
    /* Precondition: a global table has no tenant column. */
    if (tc !== undefined) throw invalid(tpath, 'a global table has no tenant column; drop tenantColumn or make the table scope: \'tenant\'')
    return null
  }
  /* Precondition: an adopted tenant table names its tenant column. */
  if (tc === undefined) throw invalid(tpath, 'an adopted tenant table names the existing column that holds the tenant id, e.g. { name: \'company_id\', type: \'bigint\' }')
  if (typeof tc !== 'object' || tc === null || Array.isArray(tc)) throw invalid(tpath, 'expected { name, type }')
  onlyKeys(tc, TENANT_COLUMN_KEYS, tpath)
  const { name, type } = tc as { name: unknown; type: unknown }
  if (typeof name !== 'string' || !IDENT.test(name) || SYSTEM_COLUMNS.has(name) || name.endsWith(BLIND_INDEX_SUFFIX) || name.endsWith(SHADOW_SUFFIX)) {
    throw invalid(`${tpath}.name`, 'expected the name of an existing column: a lower-case identifier (a-z, 0-9, _; max 48), not a system column')
  }
  if (typeof type !== 'string' || !TENANT_COLUMN_TYPES.includes(type as TenantColumnType)) throw invalid(`${tpath}.type`, `expected ${TENANT_COLUMN_TYPES.map((t) => `"${t}"`).join(' | ')}`)
  /* Precondition: the tenant column is declared once, in tenantColumn, never again in columns. */
  if (Object.hasOwn(def.columns, name)) throw invalid(`${path}.columns.${name}`, 'the tenant column is declared once, in tenantColumn; remove it from columns')
  return Object.freeze({ name, type: type as TenantColumnType })
}

/** The primary key's columns, validated against the table's columns (and tenant column). */
function primaryKeyOf(def: TableDef, adopted: boolean, columns: ReadonlyMap<string, ResolvedColumn>, tenantColumn: TenantColumnDef | null, path: string): string[] {
  const ppath = `${path}.primaryKey`
  const raw: unknown = def.primaryKey
  if (Array.isArray(raw)) {
    /* Precondition: a composite primary key describes an existing table. */
    if (!adopted) throw invalid(ppath, 'a list (a composite key) is only for an adopted table (adopted: true); a table Domicile creates has one key column')
    if (raw.length === 0 || raw.some((k) => typeof k !== 'string') || new Set(raw).size !== raw.length) throw invalid(ppath, 'expected a column name or a list of distinct column names')
  }
  const keys = Array.isArray(raw) ? [...(raw as string[])] : [raw as string]
  for (const k of keys) {
    if (adopted && tenantColumn !== null && k === tenantColumn.name) continue
    const pk = typeof k === 'string' ? columns.get(k) : undefined
    if (!pk) throw invalid(ppath, adopted && tenantColumn !== null ? 'expected names of the table\'s columns or of its tenant column' : 'expected the name of one of the table\'s columns')
    /* Precondition: the primary key is not sensitive (it is bound into every field's AAD). */
    if (pk.sensitive) throw invalid(ppath, 'the primary key cannot be a sensitive column')
    if (pk.nullable) throw invalid(ppath, 'the primary key cannot be nullable')
  }
  if (keys.length > 1) {
    const rest = keys.filter((k) => k !== tenantColumn?.name)
    /* Precondition: a composite key is the tenant column and one more column (a row's key within its tenant). */
    if (rest.length !== 1 || keys.length !== 2) {
      throw invalid(ppath, `a composite key is supported as (tenant column, one column), e.g. ['${tenantColumn?.name ?? 'company_id'}', 'id']: a row's key within its tenant is then one value (its key on the CLI, in get(), and in its encryption context)`)
    }
  }
  return keys
}

/** The single-key name of a (possibly composite) key: see the module comment. */
function singleKey(keys: readonly string[], tenantColumn: TenantColumnDef | null): string {
  if (keys.length === 1) return keys[0]!
  const rest = keys.filter((k) => k !== tenantColumn?.name)
  return rest.length === 1 ? rest[0]! : keys[0]!
}

/** Validates and freezes a schema definition. Throws ERR_SCHEMA_INVALID naming the offending path. */
export function defineSchema(tables: Readonly<Record<string, TableDef>>): Schema {
  if (typeof tables !== 'object' || tables === null) throw invalid('schema', 'expected an object of table definitions')
  const resolved = new Map<string, ResolvedTable>()
  const warnings: SchemaWarning[] = []
  for (const [tname, def] of Object.entries(tables)) {
    const path = `tables.${tname}`
    /* Precondition: table names are lower-case identifiers, not internal, and not named like a system catalog. */
    if (!IDENT.test(tname) || tname.startsWith('domicile_') || tname.startsWith('pg_')) {
      throw invalid(path, 'table names are lower-case identifiers (a-z, 0-9, _; max 48) and may not start with "domicile_" or "pg_" (PostgreSQL resolves pg_ names to its system catalogs first)')
    }
    if (typeof def !== 'object' || def === null) throw invalid(path, 'expected a table definition object')
    onlyKeys(def, TABLE_KEYS, path)
    if (def.scope !== 'tenant' && def.scope !== 'global') throw invalid(`${path}.scope`, 'expected "tenant" | "global"')
    if (def.adopted !== undefined && typeof def.adopted !== 'boolean') throw invalid(`${path}.adopted`, 'expected true or false')
    const adopted = def.adopted === true
    if (typeof def.columns !== 'object' || def.columns === null || Array.isArray(def.columns)) throw invalid(`${path}.columns`, adopted ? 'expected an object of column definitions' : 'expected at least one column')
    if (!adopted && Object.keys(def.columns).length === 0) throw invalid(`${path}.columns`, 'expected at least one column')
    const tenantColumn = tenantColumnOf(def, adopted, path)
    const columns = new Map<string, ResolvedColumn>()
    for (const [cname, c] of Object.entries(def.columns)) {
      const cpath = `${path}.columns.${cname}`
      /* Precondition: column names are lower-case identifiers that cannot collide with Domicile's own columns. */
      if (!IDENT.test(cname) || cname.endsWith(BLIND_INDEX_SUFFIX) || cname.endsWith(SHADOW_SUFFIX) || RESERVED_COLUMNS.has(cname)) throw invalid(cpath, `column names are lower-case identifiers, not "tenant_id" or a system column, and may not end in "${BLIND_INDEX_SUFFIX}" or "${SHADOW_SUFFIX}"`)
      if (typeof c !== 'object' || c === null) throw invalid(cpath, 'expected a column definition object')
      onlyKeys(c, COLUMN_KEYS, cpath)
      if (!COLUMN_TYPES.includes(c.type)) throw invalid(`${cpath}.type`, `expected ${COLUMN_TYPES.map((t) => `"${t}"`).join(' | ')}`)
      if (c.nullable !== undefined && typeof c.nullable !== 'boolean') throw invalid(`${cpath}.nullable`, 'expected true or false')
      if (c.default !== undefined) {
        /* Precondition: only an adopted table has database defaults (Domicile creates none). */
        if (!adopted) throw invalid(`${cpath}.default`, 'only a column of an adopted table (adopted: true) can have a database default')
        if (typeof c.default !== 'boolean') throw invalid(`${cpath}.default`, 'expected true (the database fills the column when an insert omits it) or false')
        /* Precondition: a sensitive column has no database default (the database would write plaintext). */
        if (c.default && c.sensitive) throw invalid(`${cpath}.default`, 'a sensitive column cannot have a database default: the database would write plaintext; drop one of the two options')
      }
      if (c.sensitive !== undefined && typeof c.sensitive !== 'boolean' && (typeof c.sensitive !== 'object' || c.sensitive === null || Array.isArray(c.sensitive))) {
        throw invalid(`${cpath}.sensitive`, 'expected true, false or an options object { searchable, normalize, indexBytes, expectedRows }')
      }
      let sensitive: ResolvedColumn['sensitive'] = false
      if (c.sensitive) {
        /* Precondition: global tables hold no personal data, so no sensitive columns. */
        if (def.scope === 'global') throw invalid(`${cpath}.sensitive`, 'a global table is replicated reference data and cannot hold sensitive columns; move the column to a tenant-scoped table')
        const o: SensitiveOptions = c.sensitive === true ? {} : c.sensitive
        onlyKeys(o, SENSITIVE_KEYS, `${cpath}.sensitive`)
        if (o.searchable !== undefined && typeof o.searchable !== 'boolean') throw invalid(`${cpath}.sensitive.searchable`, 'expected true or false')
        if (o.normalize !== undefined && !Array.isArray(o.normalize)) throw invalid(`${cpath}.sensitive.normalize`, 'expected a list of "trim" | "lower" | "nfkc"')
        const indexBytes = o.indexBytes ?? 4
        if (!Number.isInteger(indexBytes) || indexBytes < 4 || indexBytes > 32) throw invalid(`${cpath}.sensitive.indexBytes`, 'expected an integer from 4 to 32')
        const normalize = o.normalize ?? []
        for (const n of normalize) if (!['trim', 'lower', 'nfkc'].includes(n)) throw invalid(`${cpath}.sensitive.normalize`, 'expected a list of "trim" | "lower" | "nfkc"')
        const expectedRows = o.expectedRows ?? 100_000
        if (!Number.isInteger(expectedRows) || expectedRows < 1) throw invalid(`${cpath}.sensitive.expectedRows`, 'expected a positive integer')
        sensitive = { searchable: o.searchable === true, indexBytes, expectedRows, normalize: Object.freeze([...normalize]) }
        if (sensitive.searchable) {
          for (const w of assessIndexLength({ bytes: indexBytes, expectedRows })) warnings.push({ path: `${cpath}.sensitive.indexBytes`, code: w.code, message: w.message })
        }
      }
      const notPersonal = residencyWaiver(c, cpath)
      const col: ResolvedColumn = Object.freeze({
        name: cname,
        type: c.type,
        nullable: c.nullable === true,
        sensitive,
        ...(sensitive && sensitive.searchable ? { indexColumn: `${cname}${BLIND_INDEX_SUFFIX}` } : {}),
        ...(notPersonal !== undefined ? { notPersonal } : {}),
        hasDefault: c.default === true,
      })
      columns.set(cname, col)
    }
    const primaryKeyColumns = Object.freeze(primaryKeyOf(def, adopted, columns, tenantColumn, path))
    if (def.indexes !== undefined && !Array.isArray(def.indexes)) throw invalid(`${path}.indexes`, 'expected a list of column names')
    const indexes = [...(def.indexes ?? [])]
    for (const ix of indexes) {
      const col = columns.get(ix)
      if (!col) throw invalid(`${path}.indexes`, 'expected names of the table\'s columns')
      if (col.sensitive) throw invalid(`${path}.indexes`, 'a sensitive column cannot carry a plain index; declare it searchable instead')
    }
    const sensitiveColumns = [...columns.values()].filter((c) => c.sensitive)
    resolved.set(tname, Object.freeze({ name: tname, scope: def.scope, primaryKey: singleKey(primaryKeyColumns, tenantColumn), primaryKeyColumns, adopted, tenantColumn, columns, sensitiveColumns, indexes }))
  }
  const schema: Schema = {
    tables: resolved,
    warnings: Object.freeze(warnings),
    table(name: string): ResolvedTable {
      const t = resolved.get(name)
      if (!t) throw new DomicileError('ERR_TABLE_UNKNOWN', `No table named "${name}" in the schema. Known tables: ${[...resolved.keys()].join(', ') || '(none)'}.`)
      return t
    },
  }
  Object.defineProperty(schema, SCHEMA_BRAND, { value: true })
  return Object.freeze(schema)
}

export function isSchema(v: unknown): v is Schema {
  return typeof v === 'object' && v !== null && (v as Record<symbol, unknown>)[SCHEMA_BRAND] === true
}
