/**
 * The repository for one tenant-scoped table inside a tenant transaction: insert, get, find
 * (equality), update, delete, list with cursor pagination. Sensitive columns are sealed on the way
 * in and come back as sealed values; equality on a searchable sensitive column compares blind
 * indexes; anything else on a sensitive column is refused, never sent to the database as plaintext.
 *
 * During an encrypt-in-place migration of a sensitive column (src/schema/column-layout.ts,
 * src/ops/encrypt-column.ts) a row holds its value either sealed or, not yet migrated, in
 * plaintext. Reads accept both: a plaintext value is sealed in memory as it is read, so the
 * application gets the same SealedValue either way and its reveal is audited like any other.
 * Writes follow the migration's direction (sealed, with the blind index, when encrypting; plaintext
 * when decrypting, the rollback). An equality `find` matches sealed rows by blind index and, only
 * while the column still has a plaintext column, plaintext rows by comparison in this module's own
 * SQL; every candidate is then checked by opening it, as for any blind-index lookup. The layout is
 * read from the store's catalog and re-read every `LAYOUT_TTL_MS`; a statement written for a layout
 * that changed meanwhile fails with a retryable ERR_CONFLICT (one-shot calls retry it themselves).
 */
import { fromDb } from './db-value.js'
import { DomicileError } from '../errors.js'
import { BLIND_INDEX_SUFFIX, SHADOW_SUFFIX, type ResolvedColumn, type ResolvedTable } from '../schema/define-schema.js'
import { q } from '../schema/ddl.js'
import { tenantMatch, tenantParam } from '../schema/tenant-column.js'
import { defaultLayout, LAYOUT_SQL, tableLayout, type CatalogColumn, type ColumnLayout, type TableLayout } from '../schema/column-layout.js'
import type { TenantTransaction } from '../regions/router.js'
import { blindIndexPredicate, candidateFilter, type BlindMatch, type FinishLookup } from './candidate-filter.js'
import type { FieldProtection } from './field-protection.js'

export type Row = Record<string, unknown>

export interface ListOptions {
  /** 1..1000, default 50 */
  readonly limit?: number
  /** The `nextCursor` of the previous page. */
  readonly cursor?: string
}

export interface Page<R> {
  readonly rows: R[]
  /** Pass as `cursor` for the next page; undefined on the last page. */
  readonly nextCursor?: string
}

export interface Repository<R extends Row = Row> {
  insert(row: R): Promise<R>
  get(id: string | number): Promise<R | undefined>
  find(where: Partial<R>, opts?: { limit?: number }): Promise<R[]>
  update(id: string | number, patch: Partial<R>): Promise<R | undefined>
  delete(id: string | number): Promise<boolean>
  list(opts?: ListOptions): Promise<Page<R>>
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i

/**
 * A row key as text, in the form the database gives it back (the key is bound into every sealed
 * value's encryption context, so `007` and `7` must not be two keys of one row): integers without
 * leading zeros, uuids in lower case.
 */
function rowKeyOf(v: unknown, table: ResolvedTable): string {
  const type = (table.columns.get(table.primaryKey) ?? keyColumn(table)).type
  const path = `${table.name}.${table.primaryKey}`
  if (type === 'integer' || type === 'bigint') {
    if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v)
    if (typeof v === 'bigint') return v.toString()
    if (typeof v === 'string' && /^-?\d{1,19}$/.test(v)) return BigInt(v).toString()
    throw new DomicileError('ERR_INPUT_INVALID', `${path}: the primary key is an integer: expected a number, a bigint or a string of digits.`, { path })
  }
  if (type === 'uuid') {
    if (typeof v === 'string' && UUID.test(v)) return v.toLowerCase()
    throw new DomicileError('ERR_INPUT_INVALID', `${path}: the primary key is a uuid: expected a string like 123e4567-e89b-12d3-a456-426614174000.`, { path })
  }
  if (typeof v === 'string' && v.length > 0) return v
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v)
  if (typeof v === 'bigint') return v.toString()
  throw new DomicileError('ERR_INPUT_INVALID', `${path}: the primary key must be a non-empty string or an integer.`, { path })
}

function unknownColumn(table: ResolvedTable, name: string): DomicileError {
  return new DomicileError('ERR_COLUMN_UNKNOWN', `Table "${table.name}" has no column "${name}". Columns: ${[...table.columns.keys()].join(', ')}.`, { path: `${table.name}.${name}` })
}

function required(table: ResolvedTable, col: ResolvedColumn): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', `${table.name}.${col.name}: a value is required (declare the column nullable: true to allow null).`, { path: `${table.name}.${col.name}` })
}

/** Converts a plain value to a query parameter for its column type. */
function param(col: ResolvedColumn, v: unknown, table: ResolvedTable): unknown {
  if (v === null || v === undefined) {
    if (!col.nullable) throw required(table, col)
    return null
  }
  switch (col.type) {
    case 'jsonb':
      return JSON.stringify(v)
    case 'integer':
      // Row keys travel as strings (cursors, CLI), so a digit string is an integer too.
      if (typeof v === 'string' && /^-?\d{1,10}$/.test(v)) return Number(v)
      if (typeof v !== 'number' || !Number.isInteger(v)) throw badType(table, col, 'an integer')
      return v
    case 'bigint':
      if (typeof v !== 'bigint' && !(typeof v === 'number' && Number.isSafeInteger(v)) && !(typeof v === 'string' && /^-?\d+$/.test(v))) throw badType(table, col, 'an integer (number, bigint or digit string)')
      return String(v)
    case 'boolean':
      if (typeof v !== 'boolean') throw badType(table, col, 'a boolean')
      return v
    case 'timestamptz':
      if (!(v instanceof Date) && typeof v !== 'string') throw badType(table, col, 'a Date or ISO string')
      return v instanceof Date ? v.toISOString() : v
    case 'bytea':
      if (!(v instanceof Uint8Array)) throw badType(table, col, 'a Uint8Array')
      return v
    case 'uuid':
      if (typeof v !== 'string' || !UUID.test(v)) throw badType(table, col, 'a uuid string')
      return v.toLowerCase()
    default:
      if (typeof v === 'object') throw badType(table, col, 'a string or number')
      return String(v)
  }
}

function badType(table: ResolvedTable, col: ResolvedColumn, expected: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', `${table.name}.${col.name}: expected ${expected}.`, { path: `${table.name}.${col.name}` })
}

// Sealed values and blind indexes are typed bytea: a plaintext column (a migration) refuses them
// instead of storing their text form.
const castFor = (col: ResolvedColumn): string => (col.sensitive ? '::bytea' : col.type === 'jsonb' ? '::jsonb' : col.type === 'text' ? '' : `::${col.type}`)

/**
 * The row key's column as a column definition: the primary key column, or for an adopted table keyed
 * by its tenant column alone (a tenants table such as `accounts`), that column (the key is the tenant id).
 */
function keyColumn(t: ResolvedTable): ResolvedColumn {
  const c = t.columns.get(t.primaryKey)
  if (c) return c
  return { name: t.primaryKey, type: t.tenantColumn!.type, nullable: false, sensitive: false, hasDefault: false }
}

/** Whether the table's row key is its tenant id (an adopted table keyed by its tenant column alone). */
const keyedByTenant = (t: ResolvedTable): boolean => t.tenantColumn !== null && t.primaryKey === t.tenantColumn.name


interface Statements {
  readonly selectList: string
  readonly plainList: string
  readonly get: string
  /** `<tenant column> = $1[::type]`. */
  readonly tenant: string
}

/** How often the layout of a table with sensitive columns is read again (per region, per process). */
export const LAYOUT_TTL_MS = 2000

/** SQL texts that depend only on the table definition and its layout, built once per (table, layout). */
const statements = new WeakMap<ResolvedTable, Map<string, Statements>>()

/** The select list entry of a column; a column with a plaintext form also selects it as `<name>__shadow`. */
function selectEntry(col: ResolvedColumn, layout: ColumnLayout | undefined): string {
  if (!col.sensitive || layout === undefined) return q(col.name)
  const sealed = layout.sealedColumn === undefined ? `NULL::bytea AS ${q(col.name)}` : layout.sealedColumn === col.name ? q(col.name) : `${q(layout.sealedColumn)} AS ${q(col.name)}`
  return layout.plainColumn === undefined ? sealed : `${sealed}, ${q(layout.plainColumn)}::text AS ${q(col.name + SHADOW_SUFFIX)}`
}

function statementsFor(t: ResolvedTable, layout: TableLayout): Statements {
  let byLayout = statements.get(t)
  if (!byLayout) {
    byLayout = new Map()
    statements.set(t, byLayout)
  }
  let st = byLayout.get(layout.key)
  if (!st) {
    // A table keyed by its tenant column alone (an adopted tenants table) also selects its key.
    const keyEntry = t.columns.has(t.primaryKey) ? [] : [q(t.primaryKey)]
    const selectList = [...[...t.columns.values()].map((c) => selectEntry(c, layout.columns.get(c.name))), ...keyEntry].join(', ')
    const pk = keyColumn(t)
    const tenant = tenantMatch(t, '$1')
    st = {
      selectList,
      plainList: [...[...t.columns.values()].filter((c) => !c.sensitive).map((c) => q(c.name)), ...keyEntry].join(', ') || keyEntry.join(', '),
      get: `SELECT ${selectList} FROM ${q(t.name)} WHERE ${tenant} AND ${q(pk.name)} = $2${castFor(pk)}`,
      tenant,
    }
    if (byLayout.size > 16) byLayout.clear()
    byLayout.set(layout.key, st)
  }
  return st
}

/** Layouts read from the stores, per table and region, with when they were read. */
const layouts = new WeakMap<ResolvedTable, Map<string, { layout: TableLayout; at: number }>>()

/** Forgets the layouts of a table (all regions): the next call reads the catalog again. */
export function forgetLayout(t: ResolvedTable): void {
  layouts.delete(t)
}

/** SQLSTATEs of a statement written for a layout that no longer exists (column, type, operator). */
const LAYOUT_CHANGED = /SQLSTATE (42703|42804|42883)\b/

/** A statement failed because the table's layout changed under it (a migration's swap): retryable. */
export class LayoutChangedError extends DomicileError {
  constructor(table: string) {
    super('ERR_CONFLICT', `The storage layout of table "${table}" changed while this statement was prepared (an encrypt-in-place migration step). Retry the transaction.`)
  }
}

export class TableRepository<R extends Row = Row> implements Repository<R> {
  readonly #t: ResolvedTable
  readonly #tx: TenantTransaction
  readonly #fields: FieldProtection | undefined
  #layout: TableLayout
  #st: Statements

  constructor(table: ResolvedTable, tx: TenantTransaction, fields: FieldProtection | undefined) {
    this.#t = table
    this.#tx = tx
    this.#fields = fields
    this.#layout = defaultLayout(table)
    this.#st = statementsFor(table, this.#layout)
  }

  /**
   * The table's current layout in this region: read from the catalog when older than
   * LAYOUT_TTL_MS (one query, on this transaction). Tables without sensitive columns skip it.
   */
  #fresh(): void | Promise<void> {
    if (this.#t.sensitiveColumns.length === 0) return
    const hit = layouts.get(this.#t)?.get(this.#tx.region)
    if (hit !== undefined && performance.now() - hit.at < LAYOUT_TTL_MS) {
      this.#use(hit.layout)
      return
    }
    return this.#readLayout()
  }

  async #readLayout(): Promise<void> {
    const r = await this.#tx.session.query<CatalogColumn>(LAYOUT_SQL, [q(this.#t.name)])
    const layout = tableLayout(this.#t, r.rows)
    let byRegion = layouts.get(this.#t)
    if (!byRegion) {
      byRegion = new Map()
      layouts.set(this.#t, byRegion)
    }
    byRegion.set(this.#tx.region, { layout, at: performance.now() })
    this.#use(layout)
  }

  #use(layout: TableLayout): void {
    if (layout === this.#layout) return
    this.#layout = layout
    this.#st = statementsFor(this.#t, layout)
  }

  /** Runs a statement; a failure that means the layout changed is the retryable LayoutChangedError. */
  async #query(sql: string, params: unknown[]): Promise<{ rows: Row[]; rowCount: number }> {
    try {
      return await this.#tx.session.query<Row>(sql, params)
    } catch (e) {
      if (this.#t.sensitiveColumns.length > 0 && e instanceof Error && LAYOUT_CHANGED.test(e.message)) {
        layouts.get(this.#t)?.delete(this.#tx.region)
        throw new LayoutChangedError(this.#t.name)
      }
      throw e
    }
  }

  /**
   * Seals, in memory, the plaintext values of rows read during a migration (selected as
   * `<column>__shadow`), so every sensitive value reaches the caller (and the candidate filter)
   * as sealed bytes. Mutates `rows`; synchronous when nothing is migrating.
   */
  async #sealPlaintext(rows: Row[]): Promise<void> {
    if (this.#layout.key === '') return
    for (const [name, l] of this.#layout.columns) {
      if (l.plainColumn === undefined) continue
      const col = this.#t.columns.get(name)!
      const alias = name + SHADOW_SUFFIX
      for (const row of rows) {
        const plain = row[alias]
        delete row[alias]
        if (plain === null || plain === undefined || row[name] instanceof Uint8Array) continue
        const sealed = this.#needFields().seal(this.#t, col, this.#rowKeyOf(row), plain)
        row[name] = sealed instanceof Promise ? await sealed : sealed
      }
    }
  }

  /** The tenant id as this table's tenant-column parameter (refused if the column cannot hold it). */
  #tenant(): string {
    return this.#t.tenantColumn?.type === 'text' ? this.#tx.tenantId : tenantParam(this.#t, this.#tx.tenantId)
  }

  /** A row's key: its primary key value as text, or the tenant id for a table keyed by it. */
  #rowKeyOf(row: Row): string {
    return keyedByTenant(this.#t) ? this.#tx.tenantId : String(row[this.#t.primaryKey])
  }

  #needFields(): FieldProtection {
    if (!this.#fields) throw new DomicileError('ERR_KEY_NOT_FOUND', `Table "${this.#t.name}" has sensitive columns but no key is bound to tenant "${this.#tx.tenantId}" (it was added with --custody none). Bind one: "domicile tenant bind-key ${this.#tx.tenantId} --custody kms" (or byok / hyok), or bindTenantKey() from the library.`)
    return this.#fields
  }

  #toPublic(dbRow: Row): R {
    const out: Row = {}
    const rowKey = this.#rowKeyOf(dbRow)
    for (const col of this.#t.columns.values()) {
      const v = dbRow[col.name]
      if (col.sensitive) out[col.name] = v === null || v === undefined ? null : this.#needFields().wrap(this.#t, col, rowKey, v as Uint8Array)
      else out[col.name] = fromDb(col, v)
    }
    return out as R
  }

  /**
   * Column -> parameter for writes, sealing sensitive values and computing blind indexes. Entries
   * are [physical column, value, cast, logical column]; during a migration a sensitive value also
   * clears the column of its other form, and goes in plaintext when the migration decrypts.
   */
  async #encodeWrite(rowKey: string, row: Row, skipPk: boolean): Promise<Array<[string, unknown, string, string]>> {
    const out: Array<[string, unknown, string, string]> = []
    // First every column is checked (known, of the right type, allowed now); only then is anything
    // sealed: a refused row never makes the tenant's first data key nor leaves key audit records.
    const toSeal: Array<[ResolvedColumn, unknown, ColumnLayout]> = []
    for (const [name, v] of Object.entries(row)) {
      const col = this.#t.columns.get(name)
      if (!col) throw unknownColumn(this.#t, name)
      if (skipPk && name === this.#t.primaryKey) continue
      if (v === undefined) continue
      if (!col.sensitive) {
        out.push([name, param(col, v, this.#t), castFor(col), name])
        continue
      }
      const l = this.#layout.columns.get(name)!
      if (l.write === 'refuse') {
        /* Precondition: no plaintext is written into a column declared sensitive outside a migration. */
        throw new DomicileError('ERR_NOT_MIGRATED', `${this.#t.name}.${name} is declared sensitive but still holds plaintext in region "${this.#tx.region}". Run "domicile migrate", then "domicile migrate encrypt ${this.#t.name}.${name}"; until then writes of this column are refused.`, { path: `${this.#t.name}.${name}` })
      }
      if (v === null) {
        if (!col.nullable) throw required(this.#t, col)
        if (l.sealedColumn !== undefined) out.push([l.sealedColumn, null, '::bytea', name])
        if (l.plainColumn !== undefined) out.push([l.plainColumn, null, '::text', name])
        if (col.indexColumn) out.push([col.indexColumn, null, '::bytea', name])
        continue
      }
      if (l.write === 'plain') {
        // The rollback (decrypt) of a migration: plaintext, no blind index, the sealed form cleared.
        if (typeof v !== 'string') throw badType(this.#t, col, 'a string')
        out.push([l.plainColumn!, v, '::text', name])
        out.push([l.sealedColumn!, null, '::bytea', name])
        if (col.indexColumn) out.push([col.indexColumn, null, '::bytea', name])
        continue
      }
      this.#needFields().check(this.#t, col, v)
      toSeal.push([col, v, l])
    }
    for (const [col, v, l] of toSeal) {
      const fields = this.#needFields()
      const sealed = fields.seal(this.#t, col, rowKey, v)
      out.push([l.sealedColumn ?? col.name, sealed instanceof Promise ? await sealed : sealed, '::bytea', col.name])
      if (l.plainColumn !== undefined) out.push([l.plainColumn, null, '::text', col.name])
      if (col.indexColumn) {
        const ix = fields.index(this.#t, col, v)
        out.push([col.indexColumn, ix instanceof Promise ? await ix : ix, '::bytea', col.name])
      }
    }
    return out
  }

  async insert(row: R): Promise<R> {
    if (typeof row !== 'object' || row === null) throw new DomicileError('ERR_INPUT_INVALID', `insert into ${this.#t.name}: expected a row object.`)
    const pkCol = this.#t.columns.get(this.#t.primaryKey)
    // A key the database fills (bigserial, identity, gen_random_uuid()) may be omitted.
    const keyFromDb = pkCol?.hasDefault === true && (row[this.#t.primaryKey] === undefined || row[this.#t.primaryKey] === null)
    for (const col of this.#t.columns.values()) {
      /* Precondition: every non-nullable column has a value on insert, unless the database fills it. */
      if (!col.nullable && !col.hasDefault && (row[col.name] === undefined || row[col.name] === null)) throw required(this.#t, col)
    }
    const tenant = this.#tenant()
    const fresh = this.#fresh()
    if (fresh) await fresh
    let rowKey: string
    let input: Row = row
    if (keyedByTenant(this.#t)) rowKey = this.#tx.tenantId
    else if (!keyFromDb) rowKey = rowKeyOf(row[this.#t.primaryKey], this.#t)
    else if (this.#t.sensitiveColumns.some((c) => row[c.name] !== undefined && row[c.name] !== null)) {
      // A sealed value is bound to its row's key, so the key is drawn first, as the default would.
      rowKey = await this.#drawKey()
      input = { ...row, [this.#t.primaryKey]: rowKey }
    } else {
      rowKey = ''
      const { [this.#t.primaryKey]: _omitted, ...rest } = row as Row
      input = rest
    }
    const cols = await this.#encodeWrite(rowKey, input, false)
    const params: unknown[] = [tenant]
    const names = [q(this.#t.tenantColumn!.name)]
    const values = [`$1${this.#t.tenantColumn!.type === 'text' ? '' : `::${this.#t.tenantColumn!.type}`}`]
    for (const [name, v, cast] of cols) {
      params.push(v)
      names.push(q(name))
      values.push(`$${params.length}${cast}`)
    }
    const r = await this.#query(
      `INSERT INTO ${q(this.#t.name)} (${names.join(', ')}) VALUES (${values.join(', ')}) RETURNING ${this.#st.plainList}`, params)
    const back = r.rows[0]!
    // The sealed buffers went to the driver as parameters: the returned values get their own copy.
    // A value written in plaintext (a migration's rollback) comes back sealed in memory, as on read.
    for (const [name, v, , logical] of cols) {
      if (name === logical && !this.#t.columns.get(name)?.sensitive) continue
      if (name === this.#t.columns.get(logical)?.indexColumn) continue
      if (v instanceof Uint8Array) back[logical] = new Uint8Array(v)
      else if (typeof v === 'string') back[logical + SHADOW_SUFFIX] = v
      else back[logical] ??= null
    }
    await this.#sealPlaintext([back])
    return this.#toPublic(back)
  }

  /**
   * The next value of the key column's default, drawn the way an insert would (the column's
   * sequence for bigserial and identity columns, else its default expression), in this transaction.
   */
  async #drawKey(): Promise<string> {
    const t = this.#t
    const r = await this.#tx.session.query<{ seq: string | null; expr: string | null }>(
      `SELECT pg_get_serial_sequence($1, $2) AS seq, (SELECT pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef d JOIN pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
         WHERE d.adrelid = to_regclass($1) AND a.attname = $2) AS expr`, [q(t.name), t.primaryKey])
    const { seq, expr } = r.rows[0] ?? { seq: null, expr: null }
    // The expression is the table owner's column default (the catalog is not writable by scopes).
    const k = seq !== null
      ? await this.#tx.session.query<{ k: string }>('SELECT nextval($1::regclass)::text AS k', [seq])
      : expr !== null ? await this.#tx.session.query<{ k: string }>(`SELECT (${expr})::text AS k`) : undefined
    /* Postcondition: a key was drawn. */
    if (!k?.rows[0]?.k) throw new DomicileError('ERR_SCHEMA_INVALID', `${t.name}.${t.primaryKey} is declared default: true but has no default in region "${this.#tx.region}". Give the key a value on insert, or fix the schema.`, { path: `tables.${t.name}.columns.${t.primaryKey}.default` })
    return k.rows[0].k
  }

  async get(id: string | number): Promise<R | undefined> {
    const key = rowKeyOf(id, this.#t)
    const pk = keyColumn(this.#t)
    const fresh = this.#fresh()
    if (fresh) await fresh
    const r = await this.#query(this.#st.get, [this.#tenant(), param(pk, key, this.#t)])
    if (!r.rows[0]) return undefined
    await this.#sealPlaintext(r.rows)
    return this.#toPublic(r.rows[0])
  }

  async #where(where: Row, params: unknown[], blind: BlindMatch[]): Promise<string[]> {
    const clauses = [this.#st.tenant]
    for (const [name, v] of Object.entries(where)) {
      if (name.endsWith(BLIND_INDEX_SUFFIX)) throw unknownColumn(this.#t, name)
      const col = this.#t.columns.get(name)
      if (!col) throw unknownColumn(this.#t, name)
      if (col.sensitive) {
        /* Precondition: a sensitive column is only compared through its blind index. */
        if (!col.indexColumn) {
          throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${this.#t.name}.${name} is sensitive and not searchable, so it cannot be filtered on. Declare it { sensitive: { searchable: true } } to allow equality search.`, { path: `${this.#t.name}.${name}` })
        }
        if (v === null || v === undefined) {
          const l = this.#layout.columns.get(name)!
          clauses.push([l.sealedColumn, l.plainColumn].filter((c) => c !== undefined).map((c) => `${q(c!)} IS NULL`).join(' AND '))
          continue
        }
        if (typeof v === 'object' && !(v instanceof Uint8Array)) {
          throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${this.#t.name}.${name} is sensitive: only equality with a plain value is supported (no ranges, LIKE or operators).`, { path: `${this.#t.name}.${name}` })
        }
        clauses.push(await this.#sensitiveEquals(col, v, params))
        blind.push([col, v])
        continue
      }
      if (v === null || v === undefined) {
        clauses.push(`${q(name)} IS NULL`)
        continue
      }
      if (typeof v === 'object' && !(v instanceof Date) && !(v instanceof Uint8Array) && col.type !== 'jsonb') {
        throw new DomicileError('ERR_QUERY_UNSUPPORTED', `find on ${this.#t.name}.${name}: only equality with a plain value is supported; use scope.sql or scope.db for other predicates.`, { path: `${this.#t.name}.${name}` })
      }
      params.push(param(col, v, this.#t))
      clauses.push(`${q(name)} = $${params.length}${castFor(col)}`)
    }
    return clauses
  }

  /**
   * Equality on a searchable sensitive column: the blind index; during a migration also the
   * plaintext of rows not yet sealed, compared in this SQL after the column's normalisations as
   * PostgreSQL spells them (a prefilter: every candidate is opened and compared exactly after).
   */
  async #sensitiveEquals(col: ResolvedColumn, v: unknown, params: unknown[]): Promise<string> {
    const l = this.#layout.columns.get(col.name)!
    const parts: string[] = []
    if (l.sealedColumn !== undefined && l.hasIndex) {
      // `idx = $n`, or `idx IN ($n, $m)` under both index keys while an index-key rotation runs.
      const clause = blindIndexPredicate(this.#needFields(), this.#t, col, v, params, q(col.indexColumn!))
      parts.push(clause instanceof Promise ? await clause : clause)
    }
    if (l.plainColumn !== undefined && (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) {
      /* Precondition: a plaintext comparison runs only on a column that still has a plaintext form (a migration). */
      params.push(String(v))
      const n = col.sensitive ? col.sensitive.normalize : []
      parts.push(`${normalizedSql(`${q(l.plainColumn)}::text`, n)} = ${normalizedSql(`$${params.length}::text`, n)}`)
    }
    if (parts.length === 0) {
      // The blind-index column is missing (the store was not migrated): let the statement say so.
      const clause = blindIndexPredicate(this.#needFields(), this.#t, col, v, params, q(col.indexColumn!))
      return clause instanceof Promise ? await clause : clause
    }
    return parts.length === 1 ? parts[0]! : `(${parts.join(' OR ')})`
  }

  async find(where: Partial<R>, opts: { limit?: number } = {}): Promise<R[]> {
    return (await this.findDeferred(where, opts))()
  }

  /**
   * `find` up to its client-side rest: runs the statement and holds (inside the transaction) the
   * keys its blind-index candidates need, and returns the synchronous rest (drop false positives,
   * shape rows) to run now or while the COMMIT is in flight (src/data/candidate-filter.ts).
   */
  async findDeferred(where: Partial<R>, opts: { limit?: number } = {}): Promise<FinishLookup<R>> {
    const { rows, blind } = await this.#select(where, opts)
    return candidateFilter(this.#t, rows, blind, blind.length > 0 ? this.#needFields() : undefined, (row) => this.#toPublic(row))
  }

  async #select(where: Partial<R>, opts: { limit?: number }): Promise<{ rows: Row[]; blind: BlindMatch[] }> {
    if (typeof where !== 'object' || where === null) throw new DomicileError('ERR_INPUT_INVALID', `find on ${this.#t.name}: expected an object of column -> value.`)
    const limit = clampLimit(opts.limit ?? 1000)
    const fresh = this.#fresh()
    if (fresh) await fresh
    const params: unknown[] = [this.#tenant()]
    const blind: BlindMatch[] = []
    const clauses = await this.#where(where as Row, params, blind)
    params.push(limit)
    const r = await this.#query(
      `SELECT ${this.#st.selectList} FROM ${q(this.#t.name)} WHERE ${clauses.join(' AND ')} ORDER BY ${q(this.#t.primaryKey)} LIMIT $${params.length}`, params)
    await this.#sealPlaintext(r.rows)
    return { rows: r.rows, blind }
  }

  async update(id: string | number, patch: Partial<R>): Promise<R | undefined> {
    const key = rowKeyOf(id, this.#t)
    if (typeof patch !== 'object' || patch === null) throw new DomicileError('ERR_INPUT_INVALID', `update on ${this.#t.name}: expected an object of column -> value.`)
    if (this.#t.primaryKey in patch && patch[this.#t.primaryKey] !== undefined && String(patch[this.#t.primaryKey]) !== key) {
      throw new DomicileError('ERR_INPUT_INVALID', `${this.#t.name}.${this.#t.primaryKey}: the primary key cannot be changed by update; insert a new row and delete the old one.`)
    }
    const fresh = this.#fresh()
    if (fresh) await fresh
    const cols = await this.#encodeWrite(key, patch as Row, true)
    if (cols.length === 0) return this.get(id)
    const pk = keyColumn(this.#t)
    const params: unknown[] = [this.#tenant(), param(pk, key, this.#t)]
    const sets = cols.map(([name, v, cast]) => {
      params.push(v)
      return `${q(name)} = $${params.length}${cast}`
    })
    const r = await this.#query(
      `UPDATE ${q(this.#t.name)} SET ${sets.join(', ')} WHERE ${this.#st.tenant} AND ${q(pk.name)} = $2${castFor(pk)} RETURNING ${this.#st.selectList}`, params)
    if (!r.rows[0]) return undefined
    await this.#sealPlaintext(r.rows)
    return this.#toPublic(r.rows[0])
  }

  async delete(id: string | number): Promise<boolean> {
    const key = rowKeyOf(id, this.#t)
    const pk = keyColumn(this.#t)
    const r = await this.#tx.session.query(
      `DELETE FROM ${q(this.#t.name)} WHERE ${this.#st.tenant} AND ${q(pk.name)} = $2${castFor(pk)}`, [this.#tenant(), param(pk, key, this.#t)])
    return r.rowCount > 0
  }

  async list(opts: ListOptions = {}): Promise<Page<R>> {
    const limit = clampLimit(opts.limit ?? 50)
    const pk = keyColumn(this.#t)
    const params: unknown[] = [this.#tenant()]
    let after = ''
    if (opts.cursor !== undefined) {
      params.push(param(pk, decodeCursor(opts.cursor), this.#t))
      after = ` AND ${q(pk.name)} > $2${castFor(pk)}`
    }
    params.push(limit + 1)
    const fresh = this.#fresh()
    if (fresh) await fresh
    const r = await this.#query(
      `SELECT ${this.#st.selectList} FROM ${q(this.#t.name)} WHERE ${this.#st.tenant}${after} ORDER BY ${q(pk.name)} LIMIT $${params.length}`, params)
    await this.#sealPlaintext(r.rows)
    const more = r.rows.length > limit
    const rows = (more ? r.rows.slice(0, limit) : r.rows).map((row) => this.#toPublic(row))
    const last = rows.at(-1)
    return more && last ? { rows, nextCursor: encodeCursor(String(last[pk.name])) } : { rows }
  }
}

/** Characters JavaScript's String.prototype.trim removes (WhiteSpace and LineTerminator). */
const JS_TRIM = '\t\n\u000b\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000\ufeff'
const JS_TRIM_SQL = `'${[...JS_TRIM].map((c) => `\\${c.charCodeAt(0).toString(16).padStart(4, '0')}`).join('')}'`

/**
 * A text expression with the blind index's normalisations applied in its order (NFKC, lower case,
 * trim), as PostgreSQL spells them: the whitespace trimmed is JavaScript's; NFKC and lower case
 * follow the server's Unicode tables and collation.
 */
function normalizedSql(expr: string, normalize: readonly string[]): string {
  let e = expr
  if (normalize.includes('nfkc')) e = `normalize(${e}, NFKC)`
  if (normalize.includes('lower')) e = `lower(${e})`
  if (normalize.includes('trim')) e = `btrim(${e}, U&${JS_TRIM_SQL})`
  return e
}

function clampLimit(n: number): number {
  if (!Number.isInteger(n) || n < 1 || n > 1000) throw new DomicileError('ERR_INPUT_INVALID', 'limit: expected an integer from 1 to 1000.')
  return n
}

function encodeCursor(key: string): string {
  return Buffer.from(JSON.stringify({ k: key }), 'utf8').toString('base64url')
}

function decodeCursor(c: string): string {
  try {
    const v = JSON.parse(Buffer.from(c, 'base64url').toString('utf8')) as { k?: unknown }
    if (typeof v.k === 'string') return v.k
  } catch {
    // fall through
  }
  throw new DomicileError('ERR_INPUT_INVALID', 'cursor: not a cursor returned by list(); start again without one.')
}
