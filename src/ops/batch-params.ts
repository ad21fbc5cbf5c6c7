/**
 * How the online operations send a batch of values to PostgreSQL for one UPDATE … FROM unnest(…)
 * statement: the one place that knows the fast form (used by encrypt-in-place and data-key
 * re-encryption).
 */
import { DomicileError } from '../errors.js'

/** A column of a batch as `batchColumn` returns it. */
export interface BatchColumn {
  readonly arrays: string[]
  readonly names: string[]
  readonly value: string
}

/**
 * One column of a batch as UPDATE parameters: strings as a `text[]`; byte strings as one `bytea`
 * (sent in binary, where a `bytea[]` would be written and parsed as hex text, element by element)
 * with the offset and length of each value, cut out again by `substring`. Appends to `params`;
 * returns the unnest arrays, their column names, and the SQL expression of a row's value.
 */
export function batchColumn(name: string, type: 'text' | 'bytea', values: ReadonlyArray<string | Uint8Array>, params: unknown[]): BatchColumn {
  /* Precondition: the values are all of the column's form (text, or sealed bytes). */
  if (!values.every((v) => (type === 'text' ? typeof v === 'string' : v instanceof Uint8Array))) {
    throw new DomicileError('ERR_UNEXPECTED', `A batch value is not ${type === 'text' ? 'text' : 'bytes'}; nothing was written.`)
  }
  if (type === 'text') {
    params.push(values)
    return { arrays: [`$${params.length}::text[]`], names: [name], value: `v.${name}` }
  }
  const bytes = values as readonly Uint8Array[]
  const offsets: number[] = []
  const lengths: number[] = []
  let at = 1
  for (const b of bytes) {
    offsets.push(at)
    lengths.push(b.byteLength)
    at += b.byteLength
  }
  params.push(Buffer.concat(bytes), offsets, lengths)
  const n = params.length
  return { arrays: [`$${n - 1}::int4[]`, `$${n}::int4[]`], names: [`${name}_at`, `${name}_len`], value: `substring($${n - 2}::bytea FROM v.${name}_at FOR v.${name}_len)` }
}

/** `unnest(keys, columns…) AS v(k, …)`: the batch as rows, `v.k` its row key as text (`keys` is the `text[]` placeholder). */
export function batchRows(keys: string, columns: readonly BatchColumn[]): string {
  return `unnest(${keys}::text[], ${columns.flatMap((c) => c.arrays).join(', ')}) AS v(k, ${columns.flatMap((c) => c.names).join(', ')})`
}
