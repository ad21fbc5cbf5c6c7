/**
 * AES-256-GCM on node:crypto, with the one parameter set we use: 32-byte key, 12-byte (96-bit)
 * nonce, 16-byte (128-bit) tag. Anything else is refused before OpenSSL sees it, because GCM with
 * other nonce or tag sizes is where the known footguns live (GHASH-derived IVs, short tags).
 *
 * Every decryption failure, whatever its reason, is the one opaque `DecryptionFailedError`.
 */

import { createCipheriv, createDecipheriv, KeyObject } from 'node:crypto'
import { DecryptionFailedError, DomicileError } from '../errors.js'
import { defaultNonceSource, type NonceSource } from './nonce-source.js'

export const AES_GCM_ALGORITHM = 'aes-256-gcm'
export const AES_KEY_BYTES = 32
export const GCM_NONCE_BYTES = 12
export const GCM_TAG_BYTES = 16

/** A 32-byte AES key: raw bytes, or a secret KeyObject of 32 bytes. */
export type AeadKey = Uint8Array | KeyObject

const EMPTY = new Uint8Array(0)

/** Throws ERR_KEY_INVALID unless `key` is a 32-byte AES key. */
export function assertAesKey(key: AeadKey): void {
  /* Precondition: the key is exactly 32 bytes (AES-256). */
  if (key instanceof KeyObject) {
    if (key.type !== 'secret' || key.symmetricKeySize !== AES_KEY_BYTES) {
      throw new DomicileError('ERR_KEY_INVALID', 'AES-256-GCM needs a 32-byte secret key. Pass the 32-byte data key.')
    }
    return
  }
  if (!(key instanceof Uint8Array) || key.byteLength !== AES_KEY_BYTES) {
    throw new DomicileError('ERR_KEY_INVALID', 'AES-256-GCM needs a 32-byte key. Pass the 32-byte data key.')
  }
}

/** Throws ERR_INPUT_INVALID unless `nonce` is 12 bytes. */
export function assertGcmNonce(nonce: Uint8Array): void {
  /* Precondition: the nonce is exactly 12 bytes (96 bits). */
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== GCM_NONCE_BYTES) {
    throw new DomicileError('ERR_INPUT_INVALID', 'AES-GCM nonces are 12 bytes. Use a NonceSource to draw them.')
  }
}

function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) {
    throw new DomicileError('ERR_INPUT_INVALID', `The ${what} must be a Uint8Array.`)
  }
}

/**
 * Encrypts `plaintext` under `key` and `nonce`; returns ciphertext || 16-byte tag.
 * The caller owns nonce uniqueness: never reuse a nonce under the same key.
 *
 * @example
 * const ct = aesGcmEncrypt(key, nonceSource.next(), Buffer.from('hi'), aad)
 */
export function aesGcmEncrypt(key: AeadKey, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY): Buffer {
  assertAesKey(key)
  assertGcmNonce(nonce)
  assertBytes(plaintext, 'plaintext')
  assertBytes(aad, 'additional data')
  const cipher = createCipheriv(AES_GCM_ALGORITHM, key, nonce, { authTagLength: GCM_TAG_BYTES })
  if (aad.byteLength > 0) cipher.setAAD(aad)
  const out = Buffer.allocUnsafe(plaintext.byteLength + GCM_TAG_BYTES)
  const ct = cipher.update(plaintext)
  out.set(ct, 0)
  const rest = cipher.final()
  if (rest.length > 0) out.set(rest, ct.length) // GCM is a stream mode: final() yields nothing
  out.set(cipher.getAuthTag(), plaintext.byteLength)
  return out
}

/**
 * Decrypts ciphertext || tag produced by `aesGcmEncrypt`. Any failure (wrong key, nonce, AAD,
 * tampering, too short) throws `DecryptionFailedError` and nothing else.
 */
export function aesGcmDecrypt(key: AeadKey, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array = EMPTY): Buffer {
  assertAesKey(key)
  assertGcmNonce(nonce)
  assertBytes(ciphertextAndTag, 'ciphertext')
  assertBytes(aad, 'additional data')
  /* Precondition: the input holds at least a full tag. */
  if (ciphertextAndTag.byteLength < GCM_TAG_BYTES) throw new DecryptionFailedError()
  const ctLen = ciphertextAndTag.byteLength - GCM_TAG_BYTES
  let pt: Buffer | undefined
  try {
    const decipher = createDecipheriv(AES_GCM_ALGORITHM, key, nonce, { authTagLength: GCM_TAG_BYTES })
    decipher.setAuthTag(ciphertextAndTag.subarray(ctLen))
    if (aad.byteLength > 0) decipher.setAAD(aad)
    pt = decipher.update(ciphertextAndTag.subarray(0, ctLen))
    decipher.final()
    return pt
  } catch {
    pt?.fill(0) // unauthenticated plaintext never leaves this function
    throw new DecryptionFailedError()
  }
}

/**
 * Encrypts with a fresh random nonce; returns nonce (12) || ciphertext || tag (16).
 *
 * @example
 * const sealed = aesGcmSeal(key, Buffer.from('secret'), aad)
 * aesGcmOpen(key, sealed, aad).toString() // 'secret'
 */
export function aesGcmSeal(key: AeadKey, plaintext: Uint8Array, aad: Uint8Array = EMPTY, nonces: NonceSource = defaultNonceSource): Buffer {
  const nonce = nonces.next()
  const body = aesGcmEncrypt(key, nonce, plaintext, aad)
  const out = Buffer.allocUnsafe(GCM_NONCE_BYTES + body.length)
  out.set(nonce, 0)
  out.set(body, GCM_NONCE_BYTES)
  return out
}

/** Opens nonce || ciphertext || tag from `aesGcmSeal`. Failures: `DecryptionFailedError`. */
export function aesGcmOpen(key: AeadKey, sealed: Uint8Array, aad: Uint8Array = EMPTY): Buffer {
  assertBytes(sealed, 'sealed value')
  /* Precondition: the sealed value holds a nonce and a tag. */
  if (sealed.byteLength < GCM_NONCE_BYTES + GCM_TAG_BYTES) throw new DecryptionFailedError()
  return aesGcmDecrypt(key, sealed.subarray(0, GCM_NONCE_BYTES), sealed.subarray(GCM_NONCE_BYTES), aad)
}
