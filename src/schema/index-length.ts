/**
 * Blind-index length advice for the schema: how many false positives per lookup a length gives
 * and whether it is effectively unique. Pure arithmetic; the index itself is src/fields/blind-index.ts.
 */
import { DomicileError } from '../errors.js'

export const BLIND_INDEX_MIN_BYTES = 4
export const BLIND_INDEX_MAX_BYTES = 32

export type IndexLengthWarningCode = 'BLIND_INDEX_TOO_SHORT' | 'BLIND_INDEX_EFFECTIVELY_UNIQUE'

export interface IndexLengthWarning {
  readonly code: IndexLengthWarningCode
  readonly message: string
  /** Expected rows matching a lookup by coincidence: expectedRows / 2^(8*bytes). */
  readonly falsePositivesPerLookup: number
  /** Smallest length in 4..32 keeping false positives per lookup at or below 1. */
  readonly suggestedBytes: number
}

/**
 * Checks a blind-index length against the expected number of rows in the column.
 *
 * The rule:
 * - False positives: a lookup matches, by coincidence, about N / 2^(8*bytes) rows that hold other
 *   values (N = expectedRows). Above 1 the index stops narrowing lookups well:
 *   `BLIND_INDEX_TOO_SHORT`.
 * - Effectively unique: by the birthday bound, N distinct values fall into 2^(8*bytes) buckets
 *   without any collision with probability about 1/2 or more when N < 2^(4*bytes). Then the index
 *   is a one-to-one pseudonym of the values: it reveals exactly which rows are equal (like
 *   deterministic encryption), and truncation gives no cover. We warn
 *   `BLIND_INDEX_EFFECTIVELY_UNIQUE` when that holds AND a shorter allowed length would still
 *   keep false positives at or below 1, i.e. when the warning is actionable. At the 4-byte minimum
 *   there is nothing shorter, so no warning.
 *
 * @example
 * assessIndexLength({ bytes: 16, expectedRows: 10_000 }) // [{ code: 'BLIND_INDEX_EFFECTIVELY_UNIQUE', suggestedBytes: 4, ... }]
 */
export function assessIndexLength(input: { bytes: number; expectedRows: number }): IndexLengthWarning[] {
  const { bytes, expectedRows } = input ?? {}
  /* Precondition: the index length is an integer from 4 to 32 bytes. */
  if (!Number.isInteger(bytes) || bytes < BLIND_INDEX_MIN_BYTES || bytes > BLIND_INDEX_MAX_BYTES) {
    throw new DomicileError('ERR_INPUT_INVALID', 'The blind-index length (bytes) must be an integer from 4 to 32.', { path: 'bytes' })
  }
  /* Precondition: expectedRows is a non-negative finite number. */
  if (typeof expectedRows !== 'number' || !Number.isFinite(expectedRows) || expectedRows < 0) {
    throw new DomicileError('ERR_INPUT_INVALID', 'expectedRows must be a non-negative finite number.', { path: 'expectedRows' })
  }
  const fp = expectedRows / 2 ** (8 * bytes)
  let suggested = BLIND_INDEX_MIN_BYTES
  while (suggested < BLIND_INDEX_MAX_BYTES && expectedRows / 2 ** (8 * suggested) > 1) suggested++
  const warnings: IndexLengthWarning[] = []
  if (fp > 1) {
    warnings.push({
      code: 'BLIND_INDEX_TOO_SHORT',
      message: `A ${bytes}-byte blind index over about ${expectedRows} rows matches about ${fp.toPrecision(3)} unrelated rows per lookup. Use at least ${suggested} bytes.`,
      falsePositivesPerLookup: fp,
      suggestedBytes: suggested,
    })
  }
  if (expectedRows < 2 ** (4 * bytes) && suggested < bytes) {
    warnings.push({
      code: 'BLIND_INDEX_EFFECTIVELY_UNIQUE',
      message: `A ${bytes}-byte blind index over about ${expectedRows} rows is effectively unique: it reveals exactly which rows hold equal values. ${suggested} bytes keep false positives at or below about one per lookup and make coincidental collisions likelier, which gives equal-looking rows some cover.`,
      falsePositivesPerLookup: fp,
      suggestedBytes: suggested,
    })
  }
  return warnings
}
