/**
 * Blind indexes: equality search over sealed columns without decrypting.
 *
 * Each tenant has one index root key (wrapped by the tenant's KEK, like data keys). Each indexed
 * column gets its own key, derived with HKDF-SHA-256, so equal values in different tenants, tables
 * or columns give unrelated indexes:
 *
 *   columnKey = HKDF-SHA-256(ikm = indexRootKey, salt = "domicile/blind-index/v1",
 *                            info = lp("column") || lp(tenantId) || lp(table) || lp(column), L = 32)
 *   index     = first `bytes` bytes of HMAC-SHA-256(columnKey, typeTag || value bytes)
 *
 * with typeTag 0x01 for (normalised) UTF-8 text and 0x02 for raw bytes; lp(x) is a uint32 BE length
 * then x. A blind index reveals which rows hold equal values; its length is a trade-off between
 * false positives per lookup and how much it reveals (see `assessIndexLength` in src/schema/index-length.ts).
 */

import { DomicileError } from '../errors.js'
import { hkdfSha256 } from '../crypto/hkdf.js'
import { hmacSha256 } from '../crypto/hmac.js'
import { encodeLengthPrefixed } from '../crypto/length-prefix.js'
import { BLIND_INDEX_MAX_BYTES, BLIND_INDEX_MIN_BYTES } from '../schema/index-length.js'

export { BLIND_INDEX_MAX_BYTES, BLIND_INDEX_MIN_BYTES }

export const BLIND_INDEX_SALT = 'domicile/blind-index/v1'
const COLUMN_KEY_BYTES = 32
const TYPE_TEXT = 0x01
const TYPE_BYTES = 0x02
const TEXT_TAG = Uint8Array.of(TYPE_TEXT)
const BYTES_TAG = Uint8Array.of(TYPE_BYTES)
const SALT_BYTES = Buffer.from(BLIND_INDEX_SALT, 'utf8')

export type IndexNormalization = 'trim' | 'lower' | 'nfkc'

export interface BlindIndexOptions {
  /** Normalisations for text values, applied in the fixed order nfkc, lower, trim (whatever the array order). */
  readonly normalize?: readonly IndexNormalization[]
  /** Output length in bytes, 4..32. */
  readonly bytes: number
}

export interface IndexColumnRef {
  readonly tenantId: string
  readonly table: string
  readonly column: string
}

const LONE_SURROGATE = /\p{Surrogate}/u
function isWellFormed(s: string): boolean {
  return !LONE_SURROGATE.test(s)
}

const NORMALIZATIONS: readonly IndexNormalization[] = ['nfkc', 'lower', 'trim']

/**
 * Derives the 32-byte HMAC key of one indexed column from the tenant's index root key.
 * The result is key material: keep it private and `fill(0)` it when dropped.
 *
 * @example
 * const k = deriveColumnIndexKey(indexRootKey, { tenantId: 'acme', table: 'customers', column: 'email' })
 */
export function deriveColumnIndexKey(indexRootKey: Uint8Array, ref: IndexColumnRef): Uint8Array {
  /* Precondition: the index root key is 32 bytes. */
  if (!(indexRootKey instanceof Uint8Array) || indexRootKey.byteLength !== 32) {
    throw new DomicileError('ERR_KEY_INVALID', 'The blind-index root key must be 32 bytes.')
  }
  for (const what of ['tenantId', 'table', 'column'] as const) {
    /* Precondition: tenant id, table and column are non-empty strings. */
    if (typeof ref?.[what] !== 'string' || ref[what].length === 0) {
      throw new DomicileError('ERR_INPUT_INVALID', `The index column's ${what} must be a non-empty string.`, { path: what })
    }
  }
  const info = encodeLengthPrefixed(['column', ref.tenantId, ref.table, ref.column])
  return hkdfSha256(indexRootKey, SALT_BYTES, info, COLUMN_KEY_BYTES)
}

/**
 * Applies the chosen normalisations in the fixed order: NFKC, then lower case (locale-independent
 * `toLowerCase`), then trimming of leading/trailing white space.
 *
 * @example
 * normalizeForIndex('  Ａda@Example.COM ', ['trim', 'lower', 'nfkc']) // 'ada@example.com'
 */
export function normalizeForIndex(value: string, normalize: readonly IndexNormalization[] = []): string {
  /* Precondition: value is a string. */
  if (typeof value !== 'string') throw new DomicileError('ERR_INPUT_INVALID', 'Only text values can be normalised for a blind index.')
  for (const n of normalize) {
    /* Precondition: every normalisation is one of trim, lower, nfkc. */
    if (!NORMALIZATIONS.includes(n)) {
      throw new DomicileError('ERR_INPUT_INVALID', 'Unknown blind-index normalisation. Use "trim", "lower" or "nfkc".', { path: 'normalize' })
    }
  }
  let v = value
  if (normalize.includes('nfkc')) v = v.normalize('NFKC')
  if (normalize.includes('lower')) v = v.toLowerCase()
  if (normalize.includes('trim')) v = v.trim()
  return v
}

/**
 * The blind index of `value` under a column key: HMAC-SHA-256 truncated to `bytes` bytes.
 *
 * @example
 * const idx = blindIndex(columnKey, 'Ada@Example.com', { normalize: ['trim', 'lower'], bytes: 8 })
 */
export function blindIndex(columnKey: Uint8Array, value: string | Uint8Array, options: BlindIndexOptions): Buffer {
  /* Precondition: the column key is 32 bytes. */
  if (!(columnKey instanceof Uint8Array) || columnKey.byteLength !== COLUMN_KEY_BYTES) {
    throw new DomicileError('ERR_KEY_INVALID', 'The blind-index column key must be 32 bytes (from deriveColumnIndexKey).')
  }
  const bytes = options?.bytes
  /* Precondition: the index length is an integer from 4 to 32 bytes. */
  if (!Number.isInteger(bytes) || bytes < BLIND_INDEX_MIN_BYTES || bytes > BLIND_INDEX_MAX_BYTES) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The blind-index length (bytes) must be an integer from 4 to 32.', { path: 'bytes' })
  }
  if (typeof value === 'string') {
    /* Precondition: text is well-formed UTF-16 (no lone surrogates), so distinct texts never share bytes. */
    if (!isWellFormed(value)) throw new DomicileError('ERR_INPUT_INVALID', 'The text contains a lone surrogate. Pass well-formed text, or bytes.')
    return hmacSha256(columnKey, TEXT_TAG, normalizeForIndex(value, options.normalize)).subarray(0, bytes)
  }
  if (value instanceof Uint8Array) {
    /* Precondition: normalisation applies to text only. */
    if (options.normalize !== undefined && options.normalize.length > 0) {
      throw new DomicileError('ERR_INPUT_INVALID', 'Normalisation applies to text only; remove it for a bytes column.', { path: 'normalize' })
    }
    return hmacSha256(columnKey, BYTES_TAG, value).subarray(0, bytes)
  }
  throw new DomicileError('ERR_INPUT_INVALID', 'A blind index is computed over a string or a Uint8Array.')
}
