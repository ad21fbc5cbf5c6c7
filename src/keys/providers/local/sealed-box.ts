/**
 * Sealed box: AES-256-GCM with a random 96-bit nonce, stored as base64 fields in a key file.
 *
 * Used by the local keystore to keep key material and import-job private keys encrypted under
 * keys derived from the root key. Opening fails with one opaque error.
 */

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import { DecryptionFailedError } from '../../../errors.js'

export interface SealedBox {
  readonly nonce: string
  readonly ciphertext: string
  readonly tag: string
}

/** Encrypt `plaintext` under a 32-byte key, binding `aad`. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): SealedBox {
  const nonce = randomBytes(12)
  const cipher = createCipheriv('aes-256-gcm', key, nonce)
  cipher.setAAD(aad)
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()])
  return { nonce: nonce.toString('base64'), ciphertext: ciphertext.toString('base64'), tag: cipher.getAuthTag().toString('base64') }
}

/** Decrypt a sealed box into a fresh, non-pooled buffer the caller must zero; any failure (wrong key, wrong aad, tampering, bad shape) is DecryptionFailedError. */
export function open(key: Uint8Array, box: SealedBox, aad: Uint8Array): Buffer {
  try {
    const nonce = Buffer.from(box.nonce, 'base64')
    const tag = Buffer.from(box.tag, 'base64')
    if (nonce.length !== 12 || tag.length !== 16) throw new DecryptionFailedError()
    const decipher = createDecipheriv('aes-256-gcm', key, nonce, { authTagLength: 16 })
    decipher.setAAD(aad)
    decipher.setAuthTag(tag)
    const head = decipher.update(Buffer.from(box.ciphertext, 'base64'))
    try {
      const tail = decipher.final()
      // Buffer.alloc is never pool-backed: the plaintext gets its own memory we can zero.
      const out = Buffer.alloc(head.length + tail.length)
      head.copy(out)
      tail.copy(out, head.length)
      return out
    } finally {
      head.fill(0)
    }
  } catch {
    throw new DecryptionFailedError()
  }
}

/** True when `v` has the shape of a SealedBox. */
export function isSealedBox(v: unknown): v is SealedBox {
  if (typeof v !== 'object' || v === null) return false
  const b = v as Record<string, unknown>
  return typeof b.nonce === 'string' && typeof b.ciphertext === 'string' && typeof b.tag === 'string'
}
