/**
 * The local provider's wrapped-key format:
 *   version (1 byte, 0x01) || nonce (12 bytes) || AES-256-GCM ciphertext || tag (16 bytes)
 * under the key-encryption key, with AAD = encodeWrapContext(context). Unwrapping under any other
 * context, key or byte string fails with the one opaque DecryptionFailedError.
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { DecryptionFailedError } from '../../../errors.js'
import { encodeWrapContext } from '../../key-provider.js'
import type { WrapContext } from '../../key-provider.js'

export const WRAP_FORMAT_VERSION = 0x01
const NONCE = 12
const TAG = 16

/** Wrap `plaintextKey` under `kek` bound to `context`. */
export function sealDataKey(kek: Uint8Array, plaintextKey: Uint8Array, context: WrapContext): Uint8Array {
  const nonce = randomBytes(NONCE)
  const cipher = createCipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG })
  cipher.setAAD(encodeWrapContext(context))
  const body = Buffer.concat([cipher.update(plaintextKey), cipher.final()])
  const out = new Uint8Array(1 + NONCE + body.length + TAG)
  out[0] = WRAP_FORMAT_VERSION
  out.set(nonce, 1)
  out.set(body, 1 + NONCE)
  out.set(cipher.getAuthTag(), 1 + NONCE + body.length)
  return out
}

/** Unwrap; returns a fresh, non-pooled Uint8Array the caller owns, or throws DecryptionFailedError. */
export function openDataKey(kek: Uint8Array, wrapped: Uint8Array, context: WrapContext): Uint8Array {
  /* Precondition: the wrapped key has our version byte and room for nonce, tag and one byte. */
  if (wrapped.length < 1 + NONCE + TAG + 1 || wrapped[0] !== WRAP_FORMAT_VERSION) throw new DecryptionFailedError()
  let head: Buffer | undefined
  try {
    const nonce = wrapped.subarray(1, 1 + NONCE)
    const body = wrapped.subarray(1 + NONCE, wrapped.length - TAG)
    const tag = wrapped.subarray(wrapped.length - TAG)
    const decipher = createDecipheriv('aes-256-gcm', kek, nonce, { authTagLength: TAG })
    decipher.setAAD(encodeWrapContext(context))
    decipher.setAuthTag(tag)
    head = decipher.update(body)
    const tail = decipher.final()
    const out = new Uint8Array(head.length + tail.length)
    out.set(head)
    out.set(tail, head.length)
    return out
  } catch {
    throw new DecryptionFailedError()
  } finally {
    head?.fill(0)
  }
}
