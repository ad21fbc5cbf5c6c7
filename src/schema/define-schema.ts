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
  /** Residency lint: `{ notPersonal: 'reason' }` waives the personal-name check (`domicile lint`) for this column, with the reason shown in its output. */
  readonly residency?: ResidencyOptions
}

export interface ResidencyOptions {
  /** Why this column holds no personal data although its name looks personal (non-empty). */
  readonly notPersonal: string
}

export interface TableDef {
  readonly scope: 'tenant' | 'global'
  readonly primaryKey: string
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
}

export interface ResolvedTable {
  readonly name: string
  readonly scope: 'tenant' | 'global'
  readonly primaryKey: string
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

const TABLE_KEYS = ['scope', 'primaryKey', 'columns', 'indexes'] as const
const COLUMN_KEYS = ['type', 'nullable', 'sensitive', 'residency'] as const
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
    if (typeof def.columns !== 'object' || def.columns === null || Object.keys(def.columns).length === 0) throw invalid(`${path}.columns`, 'expected at least one column')
    const columns = new Map<string, ResolvedColumn>()
    for (const [cname, c] of Object.entries(def.columns)) {
      const cpath = `${path}.columns.${cname}`
      /* Precondition: column names are lower-case identifiers that cannot collide with Domicile's own columns. */
      if (!IDENT.test(cname) || cname.endsWith(BLIND_INDEX_SUFFIX) || cname.endsWith(SHADOW_SUFFIX) || RESERVED_COLUMNS.has(cname)) throw invalid(cpath, `column names are lower-case identifiers, not "tenant_id" or a system column, and may not end in "${BLIND_INDEX_SUFFIX}" or "${SHADOW_SUFFIX}"`)
      if (typeof c !== 'object' || c === null) throw invalid(cpath, 'expected a column definition object')
      onlyKeys(c, COLUMN_KEYS, cpath)
      if (!COLUMN_TYPES.includes(c.type)) throw invalid(`${cpath}.type`, `expected ${COLUMN_TYPES.map((t) => `"${t}"`).join(' | ')}`)
      if (c.nullable !== undefined && typeof c.nullable !== 'boolean') throw invalid(`${cpath}.nullable`, 'expected true or false')
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
      })
      columns.set(cname, col)
    }
    const pk = columns.get(def.primaryKey)
    if (!pk) throw invalid(`${path}.primaryKey`, 'expected the name of one of the table\'s columns')
    /* Precondition: the primary key is not sensitive (it is bound into every field's AAD). */
    if (pk.sensitive) throw invalid(`${path}.primaryKey`, 'the primary key cannot be a sensitive column')
    if (pk.nullable) throw invalid(`${path}.primaryKey`, 'the primary key cannot be nullable')
    if (def.indexes !== undefined && !Array.isArray(def.indexes)) throw invalid(`${path}.indexes`, 'expected a list of column names')
    const indexes = [...(def.indexes ?? [])]
    for (const ix of indexes) {
      const col = columns.get(ix)
      if (!col) throw invalid(`${path}.indexes`, 'expected names of the table\'s columns')
      if (col.sensitive) throw invalid(`${path}.indexes`, 'a sensitive column cannot carry a plain index; declare it searchable instead')
    }
    const sensitiveColumns = [...columns.values()].filter((c) => c.sensitive)
    resolved.set(tname, Object.freeze({ name: tname, scope: def.scope, primaryKey: def.primaryKey, columns, sensitiveColumns, indexes }))
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
