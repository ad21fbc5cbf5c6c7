/**
 * HKDF-SHA-256 (RFC 5869) on node:crypto's `hkdfSync`: the one key-derivation function we use
 * (per-column blind-index keys from the tenant's index root key).
 */

import { hkdfSync } from 'node:crypto'
import { DomicileError } from '../errors.js'

/** RFC 5869: at most 255 * HashLen bytes of output. */
const HKDF_SHA256_MAX_LENGTH = 255 * 32

/**
 * Derives `length` bytes from `ikm` with HKDF-SHA-256 (extract with `salt`, expand with `info`).
 * An empty salt is allowed and means HashLen zero bytes, as RFC 5869 says.
 *
 * @example
 * const k = hkdfSha256(rootKey, Buffer.from('salt label'), info, 32)
 */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array, info: Uint8Array, length: number): Buffer {
  /* Precondition: inputs are byte arrays. */
  if (!(ikm instanceof Uint8Array) || !(salt instanceof Uint8Array) || !(info instanceof Uint8Array)) {
    throw new DomicileError('ERR_INPUT_INVALID', 'HKDF inputs (ikm, salt, info) must be Uint8Arrays.')
  }
  /* Precondition: output length is between 1 and 255 * 32 bytes. */
  if (!Number.isInteger(length) || length < 1 || length > HKDF_SHA256_MAX_LENGTH) {
    throw new DomicileError('ERR_INPUT_INVALID', 'HKDF-SHA-256 output length must be an integer from 1 to 8160 bytes.')
  }
  /* Precondition: info fits node's limit (1024 bytes). */
  if (info.byteLength > 1024) {
    throw new DomicileError('ERR_INPUT_INVALID', 'HKDF info must be at most 1024 bytes. Shorten the identifiers it encodes.')
  }
  return Buffer.from(hkdfSync('sha256', ikm, salt, info, length))
}
