/**
 * HMAC-SHA-256 on node:crypto: computing a tag, and verifying a possibly truncated one in
 * constant time.
 */

import { createHmac, timingSafeEqual } from 'node:crypto'
import { DomicileError } from '../errors.js'

export const HMAC_SHA256_BYTES = 32
/** Shortest tag `hmacSha256Verify` accepts (128 bits, RFC 2104 section 5 guidance). */
export const HMAC_MIN_VERIFY_BYTES = 16

function assertBytes(v: unknown, what: string): asserts v is Uint8Array {
  if (!(v instanceof Uint8Array)) throw new DomicileError('ERR_INPUT_INVALID', `The HMAC ${what} must be a Uint8Array.`)
}

/**
 * HMAC-SHA-256 of the concatenation of `parts` under `key` (32 bytes out).
 *
 * @example
 * hmacSha256(key, Buffer.from('message')).length // 32
 */
export function hmacSha256(key: Uint8Array, ...parts: Uint8Array[]): Buffer {
  assertBytes(key, 'key')
  /* Precondition: the key is not empty. */
  if (key.byteLength === 0) throw new DomicileError('ERR_KEY_INVALID', 'HMAC keys must not be empty.')
  const h = createHmac('sha256', key)
  for (const p of parts) {
    assertBytes(p, 'message')
    h.update(p)
  }
  return h.digest()
}

/**
 * True when `tag` equals the first `tag.length` bytes of HMAC-SHA-256(key, message).
 * Tags shorter than 16 bytes or longer than 32 are refused (false), never compared.
 */
export function hmacSha256Verify(key: Uint8Array, message: Uint8Array, tag: Uint8Array): boolean {
  assertBytes(tag, 'tag')
  if (tag.byteLength < HMAC_MIN_VERIFY_BYTES || tag.byteLength > HMAC_SHA256_BYTES) return false
  const full = hmacSha256(key, message)
  return timingSafeEqual(full.subarray(0, tag.byteLength), tag)
}
