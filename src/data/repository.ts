/**
 * The repository for one tenant-scoped table inside a tenant transaction: insert, get, find
 * (equality), update, delete, list with cursor pagination. Sensitive columns are sealed on the way
 * in and come back as sealed values; equality on a searchable sensitive column compares blind
 * indexes; anything else on a sensitive column is refused, never sent to the database as plaintext.
 */
import { DomicileError } from '../errors.js'
import { BLIND_INDEX_SUFFIX, type ResolvedColumn, type ResolvedTable } from '../schema/define-schema.js'
import { q } from '../schema/ddl.js'
import type { TenantTransaction } from '../regions/router.js'
import { candidateFilter, type BlindMatch, type FinishLookup } from './candidate-filter.js'
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

function rowKeyOf(v: unknown, table: ResolvedTable): string {
  if (typeof v === 'string' && v.length > 0) return v
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v)
  if (typeof v === 'bigint') return v.toString()
  throw new DomicileError('ERR_INPUT_INVALID', `${table.name}.${table.primaryKey}: the primary key must be a non-empty string or an integer.`, { path: `${table.name}.${table.primaryKey}` })
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
    default:
      if (typeof v === 'object') throw badType(table, col, 'a string or number')
      return String(v)
  }
}

function badType(table: ResolvedTable, col: ResolvedColumn, expected: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', `${table.name}.${col.name}: expected ${expected}.`, { path: `${table.name}.${col.name}` })
}

const castFor = (col: ResolvedColumn): string => (col.sensitive ? '' : col.type === 'jsonb' ? '::jsonb' : col.type === 'text' ? '' : `::${col.type}`)

/** Normalises engine differences in returned values (pg returns int8 as string, PGlite as number). */
function fromDb(col: ResolvedColumn, v: unknown): unknown {
  if (v === null || v === undefined) return null
  switch (col.type) {
    case 'bigint':
    case 'numeric':
      return String(v)
    case 'integer':
      return Number(v)
    case 'timestamptz':
      return v instanceof Date ? v : new Date(String(v))
    case 'bytea':
      return v instanceof Uint8Array ? new Uint8Array(v) : v
    default:
      return v
  }
}

interface Statements {
  readonly selectList: string
  readonly plainList: string
  readonly get: string
}

/** SQL texts that depend only on the table definition, built once per schema table. */
const statements = new WeakMap<ResolvedTable, Statements>()

function statementsFor(t: ResolvedTable): Statements {
  let st = statements.get(t)
  if (!st) {
    const selectList = [...t.columns.keys()].map(q).join(', ')
    const pk = t.columns.get(t.primaryKey)!
    st = {
      selectList,
      plainList: [...t.columns.values()].filter((c) => !c.sensitive).map((c) => q(c.name)).join(', '),
      get: `SELECT ${selectList} FROM ${q(t.name)} WHERE tenant_id = $1 AND ${q(pk.name)} = $2${castFor(pk)}`,
    }
    statements.set(t, st)
  }
  return st
}

export class TableRepository<R extends Row = Row> implements Repository<R> {
  readonly #t: ResolvedTable
  readonly #tx: TenantTransaction
  readonly #fields: FieldProtection | undefined
  readonly #selectList: string
  /** Insert returns only plain columns: the sealed bytes are already in hand. */
  readonly #plainList: string
  readonly #getSql: string

  constructor(table: ResolvedTable, tx: TenantTransaction, fields: FieldProtection | undefined) {
    this.#t = table
    this.#tx = tx
    this.#fields = fields
    const st = statementsFor(table)
    this.#selectList = st.selectList
    this.#plainList = st.plainList
    this.#getSql = st.get
  }

  #needFields(): FieldProtection {
    if (!this.#fields) throw new DomicileError('ERR_KEY_NOT_FOUND', `Table "${this.#t.name}" has sensitive columns but no key is bound to tenant "${this.#tx.tenantId}". Bind one with "domicile tenant add --custody".`)
    return this.#fields
  }

  #toPublic(dbRow: Row): R {
    const out: Row = {}
    const rowKey = String(dbRow[this.#t.primaryKey])
    for (const col of this.#t.columns.values()) {
      const v = dbRow[col.name]
      if (col.sensitive) out[col.name] = v === null || v === undefined ? null : this.#needFields().wrap(this.#t, col, rowKey, v as Uint8Array)
      else out[col.name] = fromDb(col, v)
    }
    return out as R
  }

  /** Column -> parameter for writes, sealing sensitive values and computing blind indexes. */
  async #encodeWrite(rowKey: string, row: Row, skipPk: boolean): Promise<Array<[string, unknown, string]>> {
    const out: Array<[string, unknown, string]> = []
    for (const [name, v] of Object.entries(row)) {
      const col = this.#t.columns.get(name)
      if (!col) throw unknownColumn(this.#t, name)
      if (skipPk && name === this.#t.primaryKey) continue
      if (v === undefined) continue
      if (col.sensitive) {
        if (v === null) {
          if (!col.nullable) throw required(this.#t, col)
          out.push([name, null, ''])
          if (col.indexColumn) out.push([col.indexColumn, null, ''])
          continue
        }
        const fields = this.#needFields()
        const sealed = fields.seal(this.#t, col, rowKey, v)
        out.push([name, sealed instanceof Promise ? await sealed : sealed, ''])
        if (col.indexColumn) {
          const ix = fields.index(this.#t, col, v)
          out.push([col.indexColumn, ix instanceof Promise ? await ix : ix, ''])
        }
      } else {
        out.push([name, param(col, v, this.#t), castFor(col)])
      }
    }
    return out
  }

  async insert(row: R): Promise<R> {
    if (typeof row !== 'object' || row === null) throw new DomicileError('ERR_INPUT_INVALID', `insert into ${this.#t.name}: expected a row object.`)
    const rowKey = rowKeyOf(row[this.#t.primaryKey], this.#t)
    for (const col of this.#t.columns.values()) {
      /* Precondition: every non-nullable column has a value on insert. */
      if (!col.nullable && (row[col.name] === undefined || row[col.name] === null)) throw required(this.#t, col)
    }
    const cols = await this.#encodeWrite(rowKey, row, false)
    const params: unknown[] = [this.#tx.tenantId]
    const names = ['tenant_id']
    const values = ['$1']
    for (const [name, v, cast] of cols) {
      params.push(v)
      names.push(q(name))
      values.push(`$${params.length}${cast}`)
    }
    const r = await this.#tx.session.query<Row>(
      `INSERT INTO ${q(this.#t.name)} (${names.join(', ')}) VALUES (${values.join(', ')}) RETURNING ${this.#plainList}`, params)
    const back = r.rows[0]!
    // The sealed buffers went to the driver as parameters: the returned values get their own copy.
    for (const [name, v] of cols) if (this.#t.columns.get(name)?.sensitive) back[name] = v instanceof Uint8Array ? new Uint8Array(v) : v
    return this.#toPublic(back)
  }

  async get(id: string | number): Promise<R | undefined> {
    const key = rowKeyOf(id, this.#t)
    const pk = this.#t.columns.get(this.#t.primaryKey)!
    const r = await this.#tx.session.query<Row>(this.#getSql, [this.#tx.tenantId, param(pk, key, this.#t)])
    return r.rows[0] ? this.#toPublic(r.rows[0]) : undefined
  }

  async #where(where: Row, params: unknown[], blind: BlindMatch[]): Promise<string[]> {
    const clauses = ['tenant_id = $1']
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
          clauses.push(`${q(name)} IS NULL`)
          continue
        }
        if (typeof v === 'object' && !(v instanceof Uint8Array)) {
          throw new DomicileError('ERR_QUERY_UNSUPPORTED', `${this.#t.name}.${name} is sensitive: only equality with a plain value is supported (no ranges, LIKE or operators).`, { path: `${this.#t.name}.${name}` })
        }
        const ix = this.#needFields().index(this.#t, col, v)
        params.push(ix instanceof Promise ? await ix : ix)
        clauses.push(`${q(col.indexColumn)} = $${params.length}`)
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
    const params: unknown[] = [this.#tx.tenantId]
    const blind: BlindMatch[] = []
    const clauses = await this.#where(where as Row, params, blind)
    params.push(limit)
    const r = await this.#tx.session.query<Row>(
      `SELECT ${this.#selectList} FROM ${q(this.#t.name)} WHERE ${clauses.join(' AND ')} ORDER BY ${q(this.#t.primaryKey)} LIMIT $${params.length}`, params)
    return { rows: r.rows, blind }
  }

  async update(id: string | number, patch: Partial<R>): Promise<R | undefined> {
    const key = rowKeyOf(id, this.#t)
    if (typeof patch !== 'object' || patch === null) throw new DomicileError('ERR_INPUT_INVALID', `update on ${this.#t.name}: expected an object of column -> value.`)
    if (this.#t.primaryKey in patch && patch[this.#t.primaryKey] !== undefined && String(patch[this.#t.primaryKey]) !== key) {
      throw new DomicileError('ERR_INPUT_INVALID', `${this.#t.name}.${this.#t.primaryKey}: the primary key cannot be changed by update; insert a new row and delete the old one.`)
    }
    const cols = await this.#encodeWrite(key, patch as Row, true)
    if (cols.length === 0) return this.get(id)
    const pk = this.#t.columns.get(this.#t.primaryKey)!
    const params: unknown[] = [this.#tx.tenantId, param(pk, key, this.#t)]
    const sets = cols.map(([name, v, cast]) => {
      params.push(v)
      return `${q(name)} = $${params.length}${cast}`
    })
    const r = await this.#tx.session.query<Row>(
      `UPDATE ${q(this.#t.name)} SET ${sets.join(', ')} WHERE tenant_id = $1 AND ${q(pk.name)} = $2${castFor(pk)} RETURNING ${this.#selectList}`, params)
    return r.rows[0] ? this.#toPublic(r.rows[0]) : undefined
  }

  async delete(id: string | number): Promise<boolean> {
    const key = rowKeyOf(id, this.#t)
    const pk = this.#t.columns.get(this.#t.primaryKey)!
    const r = await this.#tx.session.query(
      `DELETE FROM ${q(this.#t.name)} WHERE tenant_id = $1 AND ${q(pk.name)} = $2${castFor(pk)}`, [this.#tx.tenantId, param(pk, key, this.#t)])
    return r.rowCount > 0
  }

  async list(opts: ListOptions = {}): Promise<Page<R>> {
    const limit = clampLimit(opts.limit ?? 50)
    const pk = this.#t.columns.get(this.#t.primaryKey)!
    const params: unknown[] = [this.#tx.tenantId]
    let after = ''
    if (opts.cursor !== undefined) {
      params.push(param(pk, decodeCursor(opts.cursor), this.#t))
      after = ` AND ${q(pk.name)} > $2${castFor(pk)}`
    }
    params.push(limit + 1)
    const r = await this.#tx.session.query<Row>(
      `SELECT ${this.#selectList} FROM ${q(this.#t.name)} WHERE tenant_id = $1${after} ORDER BY ${q(pk.name)} LIMIT $${params.length}`, params)
    const more = r.rows.length > limit
    const rows = (more ? r.rows.slice(0, limit) : r.rows).map((row) => this.#toPublic(row))
    const last = rows.at(-1)
    return more && last ? { rows, nextCursor: encodeCursor(String(last[pk.name])) } : { rows }
  }
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
