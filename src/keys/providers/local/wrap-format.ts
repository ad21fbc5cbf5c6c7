/**
 * The local provider's wrapped-key format:
 *   version (1 byte, 0x01) || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)
 * under the key-encryption key, with AAD = encodeWrapContext(context) (AES-GCM from
 * src/crypto/aead.ts). Unwrapping under any other context, key or byte string fails with the one
 * opaque DecryptionFailedError.
 */

import { randomBytes } from 'node:crypto'
import { aesGcmDecrypt, aesGcmEncrypt, GCM_NONCE_BYTES, GCM_TAG_BYTES } from '../../../crypto/aead.js'
import { DecryptionFailedError } from '../../../errors.js'
import { encodeWrapContext } from '../../key-provider.js'
import type { WrapContext } from '../../key-provider.js'

export const WRAP_FORMAT_VERSION = 0x01
const BODY_AT = 1 + GCM_NONCE_BYTES

/** Wrap `plaintextKey` under `kek` bound to `context`. */
export function sealDataKey(kek: Uint8Array, plaintextKey: Uint8Array, context: WrapContext): Uint8Array {
  const nonce = randomBytes(GCM_NONCE_BYTES)
  const body = aesGcmEncrypt(kek, nonce, plaintextKey, encodeWrapContext(context))
  const out = new Uint8Array(BODY_AT + body.length)
  out[0] = WRAP_FORMAT_VERSION
  out.set(nonce, 1)
  out.set(body, BODY_AT)
  return out
}

/** Unwrap; returns a fresh, non-pooled Uint8Array the caller owns (and zeroes), or throws DecryptionFailedError. */
export function openDataKey(kek: Uint8Array, wrapped: Uint8Array, context: WrapContext): Uint8Array {
  /* Precondition: the wrapped key has our version byte and room for nonce, tag and one byte. */
  if (!(wrapped instanceof Uint8Array) || wrapped.length < BODY_AT + GCM_TAG_BYTES + 1 || wrapped[0] !== WRAP_FORMAT_VERSION) throw new DecryptionFailedError()
  const pt = aesGcmDecrypt(kek, wrapped.subarray(1, BODY_AT), wrapped.subarray(BODY_AT), encodeWrapContext(context))
  const out = new Uint8Array(pt.length) // a plain Uint8Array of its own memory, as the KeyProvider seam returns
  out.set(pt)
  pt.fill(0)
  return out
}
