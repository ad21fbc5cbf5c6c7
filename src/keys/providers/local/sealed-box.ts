/**
 * Sealed box: AES-256-GCM (src/crypto/aead.ts) with a random 96-bit nonce, stored as base64 fields
 * in a key file.
 *
 * Used by the local keystore to keep key material and import-job private keys encrypted under
 * keys derived from the root key. Opening fails with one opaque error.
 */

import { randomBytes } from 'node:crypto'
import { aesGcmDecrypt, aesGcmEncrypt, GCM_NONCE_BYTES, GCM_TAG_BYTES } from '../../../crypto/aead.js'
import { DecryptionFailedError } from '../../../errors.js'

export interface SealedBox {
  readonly nonce: string
  readonly ciphertext: string
  readonly tag: string
}

/** Encrypt `plaintext` under a 32-byte key, binding `aad`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): SealedBox {
  const nonce = randomBytes(GCM_NONCE_BYTES)
  const body = aesGcmEncrypt(key, nonce, plaintext, aad)
  const tagAt = body.length - GCM_TAG_BYTES
  return { nonce: nonce.toString('base64'), ciphertext: body.toString('base64', 0, tagAt), tag: body.toString('base64', tagAt) }
}

/**
 * Decrypt a sealed box into a fresh, non-pooled buffer the caller must zero; any failure (wrong key,
 * wrong aad, tampering, bad shape) is DecryptionFailedError.
 */
export function open(key: Uint8Array, box: SealedBox, aad: Uint8Array): Buffer {
  let nonce: Buffer, body: Buffer
  try {
    nonce = Buffer.from(box.nonce, 'base64')
    const ct = Buffer.from(box.ciphertext, 'base64')
    const tag = Buffer.from(box.tag, 'base64')
    /* Precondition: a sealed box has a 12-byte nonce and a 16-byte tag. */
    if (nonce.length !== GCM_NONCE_BYTES || tag.length !== GCM_TAG_BYTES) throw new DecryptionFailedError()
    body = Buffer.concat([ct, tag])
  } catch {
    throw new DecryptionFailedError()
  }
  return aesGcmDecrypt(key, nonce, body, aad)
}

/** True when `v` has the shape of a SealedBox. */
export function isSealedBox(v: unknown): v is SealedBox {
  if (typeof v !== 'object' || v === null) return false
  const b = v as Record<string, unknown>
  return typeof b.nonce === 'string' && typeof b.ciphertext === 'string' && typeof b.tag === 'string'
}
