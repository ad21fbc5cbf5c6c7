/**
 * AES-256-GCM on node:crypto, with the one parameter set we use: 32-byte key, 12-byte (96-bit)
 * nonce, 16-byte (128-bit) tag. Anything else is refused before OpenSSL sees it, because GCM with
 * other nonce or tag sizes is where the known footguns live (GHASH-derived IVs, short tags).
 *
 * This is the only place that encrypts or decrypts with AES-GCM: the sealed-field codec, the local
 * keystore (sealed boxes, wrapped data keys) and the key proxy all call it, and the Wycheproof
 * vectors (test/unit/crypto/aead.test.ts) run through these functions. The two step functions
 * (`gcmSealInto`, `gcmOpenAt`) exist for the codec's hot paths: it checks its own inputs once and
 * seals with ciphers prepared ahead (src/crypto/context-reserve.ts).
 *
 * Every decryption failure, whatever its reason, is the one opaque `DecryptionFailedError`.
 */

import { createCipheriv, createDecipheriv, type CipherGCM } from 'node:crypto'
import { DecryptionFailedError, DomicileError } from '../errors.js'

const AES_GCM_ALGORITHM = 'aes-256-gcm'
export const AES_KEY_BYTES = 32
export const GCM_NONCE_BYTES = 12
export const GCM_TAG_BYTES = 16

/** One options object for every cipher (read, never changed, by node:crypto). */
const GCM_OPTIONS = Object.freeze({ authTagLength: GCM_TAG_BYTES })
const EMPTY = new Uint8Array(0)
const typedFill = Uint8Array.prototype.fill // skips Buffer#fill's argument parsing

/** Throws ERR_KEY_INVALID unless `key` is a 32-byte AES key. */
export function assertAesKey(key: Uint8Array): void {
  /* Precondition: the key is exactly 32 bytes (AES-256). */
  if (!(key instanceof Uint8Array) || key.byteLength !== AES_KEY_BYTES) {
    throw new DomicileError('ERR_KEY_INVALID', 'AES-256-GCM needs a 32-byte key. Pass the 32-byte data key.')
  }
}

/** Throws ERR_INPUT_INVALID unless `nonce` is 12 bytes. */
function assertGcmNonce(nonce: Uint8Array): void {
  /* Precondition: the nonce is exactly 12 bytes (96 bits). */
  if (!(nonce instanceof Uint8Array) || nonce.byteLength !== GCM_NONCE_BYTES) {
    throw new DomicileError('ERR_INPUT_INVALID', 'AES-GCM nonces are 12 bytes. Draw them from the CSPRNG (a NonceSource).')
  }
}

function assertBytes(value: unknown, what: string): asserts value is Uint8Array {
  /* Precondition: plaintext, ciphertext and additional data are byte arrays. */
  if (!(value instanceof Uint8Array)) {
    throw new DomicileError('ERR_INPUT_INVALID', `The ${what} must be a Uint8Array.`)
  }
}

/**
 * A GCM cipher for ONE message under `key` and `nonce` (both checked). Seal with `gcmSealInto`.
 *
 * @example
 * gcmSealInto(gcmCipher(key, nonce), plaintext, aad, out, 0)
 */
export function gcmCipher(key: Uint8Array, nonce: Uint8Array): CipherGCM {
  assertAesKey(key)
  assertGcmNonce(nonce)
  return createCipheriv(AES_GCM_ALGORITHM, key, nonce, GCM_OPTIONS)
}

/**
 * The encryption step: authenticates `aad`, encrypts `plaintext` with a fresh `cipher` (from
 * `gcmCipher`, or one prepared ahead with the same parameters) and writes ciphertext || 16-byte
 * tag into `out` at `offset` (room for plaintext length + 16 bytes). The cipher is used up.
 */
export function gcmSealInto(cipher: CipherGCM, plaintext: Uint8Array, aad: Uint8Array, out: Uint8Array, offset: number): void {
  cipher.setAAD(aad)
  out.set(cipher.update(plaintext), offset)
  cipher.final() // GCM is a stream mode: final() yields no bytes
  out.set(cipher.getAuthTag(), offset + plaintext.byteLength)
}

/**
 * The decryption step: opens `input[start .. length-16)` with the tag in the last 16 bytes.
 * The caller has checked the key (32 bytes), the nonce (12 bytes) and that the input holds at
 * least `start + 16` bytes. Returns the plaintext in a fresh buffer the caller zeroes when done;
 * any failure is `DecryptionFailedError` and no unauthenticated byte leaves.
 */
export function gcmOpenAt(key: Uint8Array, nonce: Uint8Array, input: Uint8Array, start: number, aad: Uint8Array): Buffer {
  const end = input.byteLength - GCM_TAG_BYTES
  let pt: Buffer | undefined
  try {
    const decipher = createDecipheriv(AES_GCM_ALGORITHM, key, nonce, GCM_OPTIONS)
    decipher.setAuthTag(input.subarray(end))
    decipher.setAAD(aad)
    pt = decipher.update(input.subarray(start, end))
    decipher.final()
    return pt
  } catch {
    if (pt !== undefined) typedFill.call(pt, 0) // unauthenticated plaintext never leaves this function
    throw new DecryptionFailedError()
  }
}

/**
 * Encrypts `plaintext` under `key` and `nonce`; returns ciphertext || 16-byte tag.
 * The caller owns nonce uniqueness: never reuse a nonce under the same key.
 *
 * @example
 * const nonce = randomBytes(12)
 * const ct = aesGcmEncrypt(key, nonce, Buffer.from('hi'), aad)
 */
export function aesGcmEncrypt(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array = EMPTY): Buffer {
  assertBytes(plaintext, 'plaintext')
  assertBytes(aad, 'additional data')
  const cipher = gcmCipher(key, nonce)
  const out = Buffer.allocUnsafe(plaintext.byteLength + GCM_TAG_BYTES)
  gcmSealInto(cipher, plaintext, aad, out, 0)
  return out
}

/**
 * Decrypts ciphertext || tag produced by `aesGcmEncrypt`. Any failure (wrong key, nonce, AAD,
 * tampering, too short) throws `DecryptionFailedError` and nothing else. The result is a fresh
 * buffer of its own memory: zero it when it held key material.
 *
 * @example
 * aesGcmDecrypt(key, nonce, ct, aad).toString() // 'hi'
 */
export function aesGcmDecrypt(key: Uint8Array, nonce: Uint8Array, ciphertextAndTag: Uint8Array, aad: Uint8Array = EMPTY): Buffer {
  assertAesKey(key)
  assertGcmNonce(nonce)
  assertBytes(ciphertextAndTag, 'ciphertext')
  assertBytes(aad, 'additional data')
  /* Precondition: the input holds at least a full tag. */
  if (ciphertextAndTag.byteLength < GCM_TAG_BYTES) throw new DecryptionFailedError()
  return gcmOpenAt(key, nonce, ciphertextAndTag, 0, aad)
}
