/**
 * Validation of a global table's rows before anything is written: the table must be a `global`
 * table of the schema (never a tenant table, never one with sensitive columns: global tables are
 * replicated to every region and must not hold personal data), every key a column of it, every
 * value of the column's type, NOT NULL columns present. The result is the row's canonical JSON
 * form, which the control plane stores and the outbox carries to every region.
 */
import { DomicileError } from '../errors.js'
import type { ResolvedColumn, ResolvedTable, Schema } from '../schema/define-schema.js'

export type GlobalJson = string | number | boolean | null | GlobalJson[] | { [k: string]: GlobalJson }

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i
const NUMERIC = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/
const DIGITS = /^-?\d+$/
const HEX_BYTES = /^\\x([0-9a-fA-F]{2})*$/
const INT32_MIN = -2147483648
const INT32_MAX = 2147483647
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n

/** The definition of a global table, or a typed refusal. */
export function globalTable(schema: Schema, name: string): ResolvedTable {
  const t = schema.table(name) // ERR_TABLE_UNKNOWN
  /* Precondition: global writes go to global tables only. */
  if (t.scope !== 'global') {
    throw new DomicileError('ERR_INPUT_INVALID', `"${name}" is a tenant-scoped table: its rows live in each tenant's home region, never in the control plane. Write it with withTenant / "domicile rows insert".`, { path: name })
  }
  /* Precondition: a global table has no sensitive column (it would replicate personal data to every region). */
  if (t.sensitiveColumns.length > 0) {
    throw new DomicileError('ERR_SCHEMA_INVALID', `"${name}" is global but declares sensitive columns; global tables are replicated to every region and cannot hold personal data. Move those columns to a tenant-scoped table.`, { path: name })
  }
  return t
}

function bad(t: ResolvedTable, c: ResolvedColumn, expected: string): DomicileError {
  return new DomicileError('ERR_INPUT_INVALID', `${t.name}.${c.name}: expected ${expected}.`, { path: `${t.name}.${c.name}` })
}

function inInt64(v: bigint): boolean {
  return v >= INT64_MIN && v <= INT64_MAX
}

/** A JSON value without undefined, functions, symbols, non-finite numbers or cycles. */
function plainJson(v: unknown, depth = 0): v is GlobalJson {
  if (depth > 64) return false
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return typeof v !== 'string' || !v.includes('\u0000')
  if (typeof v === 'number') return Number.isFinite(v)
  if (Array.isArray(v)) return v.every((x) => plainJson(x, depth + 1))
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) return Object.values(v as object).every((x) => plainJson(x, depth + 1))
  return false
}

/** One column value in its canonical JSON form (what PostgreSQL's jsonb_populate_record reads back exactly). */
export function columnValue(t: ResolvedTable, c: ResolvedColumn, v: unknown): GlobalJson {
  if (v === null || v === undefined) {
    if (!c.nullable) throw new DomicileError('ERR_INPUT_INVALID', `${t.name}.${c.name}: a value is required (the column is not nullable).`, { path: `${t.name}.${c.name}` })
    return null
  }
  switch (c.type) {
    case 'text':
      if (typeof v === 'number' && Number.isFinite(v)) return String(v)
      if (typeof v !== 'string') throw bad(t, c, 'a string')
      if (v.includes('\u0000')) throw bad(t, c, 'text without NUL characters')
      return v
    case 'integer': {
      const n = typeof v === 'string' && DIGITS.test(v) ? Number(v) : v
      if (typeof n !== 'number' || !Number.isInteger(n) || n < INT32_MIN || n > INT32_MAX) throw bad(t, c, 'an integer (32-bit)')
      return n
    }
    case 'bigint': {
      let b: bigint
      if (typeof v === 'bigint') b = v
      else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v)
      else if (typeof v === 'string' && DIGITS.test(v)) b = BigInt(v)
      else throw bad(t, c, 'an integer (number, bigint or digit string)')
      if (!inInt64(b)) throw bad(t, c, 'an integer within 64 bits')
      return b.toString()
    }
    case 'numeric':
      if (typeof v === 'number' && Number.isFinite(v)) return String(v)
      if (typeof v === 'string' && NUMERIC.test(v)) return v
      throw bad(t, c, 'a finite number or a decimal string')
    case 'boolean':
      if (typeof v !== 'boolean') throw bad(t, c, 'true or false')
      return v
    case 'timestamptz': {
      const d = v instanceof Date ? v : typeof v === 'string' ? new Date(v) : undefined
      if (!d || Number.isNaN(d.getTime())) throw bad(t, c, 'a Date or an ISO 8601 timestamp')
      return d.toISOString()
    }
    case 'uuid':
      if (typeof v !== 'string' || !UUID.test(v)) throw bad(t, c, 'a UUID string')
      return v.toLowerCase()
    case 'bytea':
      if (v instanceof Uint8Array) return `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`
      if (typeof v === 'string' && HEX_BYTES.test(v)) return v.toLowerCase()
      throw bad(t, c, 'a Uint8Array or a "\\\\x..." hex string')
    case 'jsonb':
      if (!plainJson(v)) throw bad(t, c, 'a JSON value (no undefined, NaN, NUL characters, class instances or deep nesting)')
      return v
  }
}

/**
 * The whole row, every column of the table (a column left out is NULL, or refused when NOT NULL):
 * an upsert replaces the row, so each outbox entry is the row's complete state and replaying it
 * is idempotent.
 */
export function canonicalRow(t: ResolvedTable, row: unknown): Record<string, GlobalJson> {
  if (typeof row !== 'object' || row === null || Array.isArray(row)) {
    throw new DomicileError('ERR_INPUT_INVALID', `${t.name}: expected a row object of column -> value.`, { path: t.name })
  }
  /* Precondition: every key of the row is a column of the table (an unknown column is refused, never dropped). */
  for (const k of Object.keys(row)) {
    if (!t.columns.has(k)) {
      throw new DomicileError('ERR_COLUMN_UNKNOWN', `Table "${t.name}" has no column "${k}". Columns: ${[...t.columns.keys()].join(', ')}. Global tables hold reference data only; personal data belongs in a tenant-scoped table.`, { path: `${t.name}.${k}` })
    }
  }
  const out: Record<string, GlobalJson> = {}
  for (const c of t.columns.values()) out[c.name] = columnValue(t, c, (row as Record<string, unknown>)[c.name])
  const pk = out[t.primaryKey]
  if (pk === '' || pk === null) throw new DomicileError('ERR_INPUT_INVALID', `${t.name}.${t.primaryKey}: the primary key must not be empty.`, { path: `${t.name}.${t.primaryKey}` })
  return out
}

/** A primary-key value (from the library or the command line) in canonical JSON form. */
export function primaryKeyValue(t: ResolvedTable, id: unknown): GlobalJson {
  const c = t.columns.get(t.primaryKey)!
  const v = columnValue(t, c, id)
  if (v === '' || v === null) throw new DomicileError('ERR_INPUT_INVALID', `${t.name}.${t.primaryKey}: the primary key must not be empty.`, { path: `${t.name}.${t.primaryKey}` })
  return v
}
