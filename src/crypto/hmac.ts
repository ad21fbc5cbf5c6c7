/**
 * HMAC-SHA-256 on node:crypto: the only place that computes one for stored data (blind indexes,
 * local key-material fingerprints). The Wycheproof vectors (test/unit/crypto/hkdf-hmac.test.ts) run
 * through `hmacSha256`, on both of its paths: a key managed by the data-key cache gets a keyed HMAC
 * prepared ahead (src/crypto/context-reserve.ts), any other key a new one.
 */

import { createHmac } from 'node:crypto'
import { DomicileError } from '../errors.js'
import { takeHmac } from './context-reserve.js'

/** One message part: bytes, or text (hashed as its UTF-8 bytes). */
export type HmacPart = Uint8Array | string

/**
 * HMAC-SHA-256 under `key` of the concatenation of `parts` (32 bytes out; callers that keep a
 * prefix, like blind indexes, take `subarray(0, n)`).
 *
 * @example
 * hmacSha256(key, Uint8Array.of(1), 'ada@example.com').length // 32
 */
export function hmacSha256(key: Uint8Array, ...parts: HmacPart[]): Buffer {
  /* Precondition: the HMAC key is a non-empty Uint8Array. */
  if (!(key instanceof Uint8Array) || key.byteLength === 0) throw new DomicileError('ERR_KEY_INVALID', 'HMAC keys must be non-empty Uint8Arrays.')
  for (const p of parts) {
    /* Precondition: every message part is a Uint8Array or a string. */
    if (typeof p !== 'string' && !(p instanceof Uint8Array)) throw new DomicileError('ERR_INPUT_INVALID', 'HMAC message parts must be Uint8Arrays or strings.')
  }
  const h = takeHmac(key) ?? createHmac('sha256', key)
  for (const p of parts) {
    if (typeof p === 'string') h.update(p, 'utf8')
    else h.update(p)
  }
  return h.digest()
}
