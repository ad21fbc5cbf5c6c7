/**
 * What the repository needs from field-level encryption, as a seam: seal a value for a cell,
 * compute a blind index for equality search, and wrap stored ciphertext as a sealed value.
 * Implemented by fields/field-encryptor.ts; one instance per tenant transaction.
 */
import type { ResolvedColumn, ResolvedTable } from '../schema/define-schema.js'

/** Hit paths answer synchronously (no promise per value); misses return a promise. */
export type MaybePromise<T> = T | Promise<T>

export interface FieldProtection {
  /** Throws ERR_INPUT_INVALID unless `value` can be sealed in the column; touches no key (a write checks every value before it seals any). */
  check(table: ResolvedTable, column: ResolvedColumn, value: unknown): void
  seal(table: ResolvedTable, column: ResolvedColumn, rowKey: string, value: unknown): MaybePromise<Uint8Array>
  /** The blind index a write stores: under the tenant's current index key. */
  index(table: ResolvedTable, column: ResolvedColumn, value: unknown): MaybePromise<Uint8Array>
  /**
   * The blind indexes an equality search must look for (src/data/candidate-filter.ts,
   * `blindIndexPredicate`): the one under the current index key first and, while an index-key
   * rotation rebuilds the column (dual-read period), the one under the other key too, so a search
   * never misses a row the rebuild has not reached yet (or has already reached).
   */
  indexProbes(table: ResolvedTable, column: ResolvedColumn, value: unknown): MaybePromise<readonly Uint8Array[]>
  wrap(table: ResolvedTable, column: ResolvedColumn, rowKey: string, stored: Uint8Array): unknown
  /**
   * For the blind-index candidate filter (src/data/candidate-filter.ts): fetches now, inside the
   * transaction, the data key `stored` was sealed under (the key state is checked as for any use)
   * and keeps a private copy for `matchesHeld`, so the filter can run without the session. Copies
   * are zeroed by `releaseHeldKeys()`, and when the transaction rolls back.
   */
  holdKeyFor(stored: Uint8Array): MaybePromise<void>
  /**
   * Whether a stored value equals `value` (after the column's normalisation), with held keys only:
   * synchronous, never fetches a key (the session may be gone). Opens it inside the data layer
   * only, to drop blind-index false positives; the plaintext never reaches the caller.
   */
  matchesHeld(table: ResolvedTable, column: ResolvedColumn, rowKey: string, stored: Uint8Array, value: unknown): boolean
  releaseHeldKeys(): void
}
