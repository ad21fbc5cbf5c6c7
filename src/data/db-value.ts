/**
 * One form for the values a store returns, whatever the engine: pg returns int8 and numeric as
 * strings and PGlite int8 as a number; dates and byte arrays come back in engine-specific types.
 */
import type { ResolvedColumn } from '../schema/define-schema.js'

/** A stored value of `col` in the form the data layer hands out. */
export function fromDb(col: ResolvedColumn, v: unknown): unknown {
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
